"""Figures of the neural-importance-sampling chain (thesis Ch. 5).

Summary figures read the per-experiment ``summary.json`` of the workflow:

* :func:`plot_results` — σ/I, unweighting efficiency and pull per variant (Tabs 5.1/5.2, Fig 5.13-like);
* :func:`plot_variance_history` — variance during training, mean and 5-95% band (Fig 5.10 left);
* :func:`plot_scan` — a metric and the relative deviation of the integral vs a scanned parameter
  (Fig 5.10 right, Fig 5.12 left/middle);
* :func:`plot_weight_distributions` — w/⟨w⟩ histograms (Fig 5.12 right).

Diagnostic figures take trained integrators:

* :func:`plot_channel_weights_1d` — target, mappings, prior and learned α_i(x) (Figs 5.5/5.6);
* :func:`plot_channel_maps` — 2D channel-wise and combined densities, α_0(x) (Figs 5.7/5.8);
* :func:`plot_channel_observables` — distributions stacked per channel and channel weights vs an
  observable (Fig 5.11), with :func:`drell_yan_observables` for p_T,e and M_ee.

Every function saves the figure with :func:`save_figure` and returns the plotted arrays as a dict.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lhcflow.physics import kinematics  # noqa: E402
from lhcflow.plots.style import save_figure  # noqa: E402

METRIC_LABELS = {
    "rel_std": r"$\sigma/I$ per event",
    "rel_error": r"relative error $\Delta I/I$",
    "error": r"error $\Delta I$",
    "integral": r"integral $I$",
    "unweighting_efficiency": r"unweighting efficiency $\epsilon$",
    "pull": r"pull $(I - I_\mathrm{exact})/\Delta I$",
    "n_calls_train": "training calls",
    "n_calls_eval": "evaluation calls",
    "time_train": "training time [s]",
    "time_eval": "evaluation time [s]",
}
LOG_METRICS = {"rel_std", "rel_error", "error", "time_train", "time_eval", "n_calls_train", "n_calls_eval"}
CHANNEL_LABELS = {"photon": r"$\gamma$", "z": r"$Z$", "zprime": r"$Z'$"}
Observable = tuple[str, Callable[[torch.Tensor], Any], np.ndarray, str]


# =========================================================================== summary helpers

def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _stat(row: Mapping, metric: str) -> tuple[float, float]:
    """(mean, std) of a row's metric; NaN where missing."""
    m = (row.get("metrics") or {}).get(metric) or {}
    return _float(m.get("mean")), _float(m.get("std"))


def _yerr(std: Sequence[float]) -> np.ndarray:
    """Error bars with NaN (single seed) drawn as zero."""
    return np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)


def _row_label(row: Mapping) -> str:
    return str(row.get("label") or row.get("variant") or row.get("method") or "?")


def _variant_labels(summary: Mapping) -> dict[str, str]:
    labels: dict[str, str] = {}
    for row in summary.get("rows", []):
        labels.setdefault(str(row.get("variant")), _row_label(row))
    return labels


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _result_rows(summary: Mapping) -> tuple[list[Mapping], Any]:
    """Rows without a scan value, else the rows at the first scan value (and that value)."""
    rows = list(summary.get("rows", []))
    plain = [r for r in rows if r.get("scan_value") is None]
    if plain or not rows:
        return plain, None
    scan = summary.get("scan") or {}
    for first in (scan.get("values") or [])[:1] + [rows[0]["scan_value"]]:
        chosen = [r for r in rows if _same(r.get("scan_value"), first)]
        if chosen:
            return chosen, first
    return [], None


def _scan_text(summary: Mapping, value: Any) -> str:
    """'Γ = 0.5 GeV' from the scan label '$Γ$ [GeV]' and a value."""
    scan = summary.get("scan") or {}
    label = str(scan.get("label") or scan.get("parameter") or "scan")
    match = re.fullmatch(r"(.*?)\s*\[(.*)\]", label)
    name, unit = (match.group(1), f" {match.group(2)}") if match else (label, "")
    return f"{name} = {value:g}{unit}" if isinstance(value, (int, float)) else f"{name} = {value}{unit}"


def _log_if_positive(ax, values, axis: str = "y") -> None:
    v = np.asarray(values, dtype=float)
    if np.any(np.isfinite(v) & (v > 0)):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _title(summary: Mapping) -> str:
    return str(summary.get("experiment") or (summary.get("integrand") or {}).get("name") or "")


# =========================================================================== summary figures

def plot_results(summary: Mapping, path: str | Path,
                 metrics: Sequence[str] = ("rel_std", "unweighting_efficiency")) -> dict[str, Any]:
    """Mean ± std over seeds of each metric per variant, plus the pull if ``exact`` is known.

    The per-variant comparison behind Tabs 5.1/5.2 and Fig 5.13. Rows of a scan are used only
    when there are no plain rows, then at the first scan value.
    Returns {"labels": [...], metric: {"mean": array, "std": array}, ...}.
    """
    rows, scan_value = _result_rows(summary)
    exact = summary.get("exact")
    panels = list(metrics) + (["pull"] if exact is not None else [])
    labels = [_row_label(r) for r in rows]
    out: dict[str, Any] = {"labels": labels}
    fig, axes = plt.subplots(1, len(panels), figsize=(max(3.0, 0.6 * len(rows) + 1.5) * len(panels), 4),
                             squeeze=False)
    pos = np.arange(len(rows))
    for ax, metric in zip(axes[0], panels):
        if metric == "pull":
            mean, std = _pulls(rows, float(exact))
            ax.axhspan(-1, 1, color="grey", alpha=0.2, lw=0)
            ax.axhline(0, color="grey", lw=0.8)
        else:
            stats = np.array([_stat(r, metric) for r in rows], dtype=float).reshape(-1, 2)
            mean, std = stats[:, 0], stats[:, 1]
        out[metric] = {"mean": mean, "std": std}
        for i in range(len(rows)):
            ax.errorbar(pos[i], mean[i], yerr=_yerr(std[i:i + 1]), fmt="o", color=f"C{i % 10}", capsize=3)
        if metric in LOG_METRICS:
            _log_if_positive(ax, mean)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_xticks(pos, labels, rotation=35, ha="right", fontsize="small")
        ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        if not rows:
            _note(ax, "no results")
    title = _title(summary)
    if scan_value is not None:
        title += f" ({_scan_text(summary, scan_value)})"
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return out


def _pulls(rows: Sequence[Mapping], exact: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean ± std of the stored pull, or (⟨I⟩ − exact)/⟨ΔI⟩ ± std(I)/⟨ΔI⟩ without one."""
    mean, std = [], []
    for r in rows:
        m, s = _stat(r, "pull")
        if not np.isfinite(m):
            integral, spread = _stat(r, "integral")
            error, _ = _stat(r, "error")
            m, s = (integral - exact) / error, spread / error
        mean.append(m)
        std.append(s)
    return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)


def _seed_mean(runs: Sequence[Sequence[Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and per-step mean over seeds of [[step, v1, v2, ...], ...] lists (NaN-aware)."""
    table: dict[float, list[list[float]]] = {}
    for run in runs:
        for entry in run or []:
            table.setdefault(float(entry[0]), []).append([_float(v) for v in entry[1:]])
    steps = np.array(sorted(table), dtype=float)
    if not len(steps):
        return steps, np.zeros((0, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps stay NaN
        values = np.array([np.nanmean(np.array(table[s], dtype=float), axis=0) for s in steps])
    return steps, values


def plot_variance_history(summary: Mapping, path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Fig 5.10 left: σ²/I² during training, mean over seeds with the seed-averaged 5-95% band.

    Returns {variant: {"steps", "mean", "q05", "q95"}} for the variants that have a history.
    """
    labels = _variant_labels(summary)
    out: dict[str, dict[str, np.ndarray]] = {}
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (variant, runs) in enumerate((summary.get("histories") or {}).items()):
        steps, mean = _seed_mean([run.get("variance") for run in runs or []])
        if not len(steps):
            continue
        entry = {"steps": steps, "mean": mean[:, 0]}
        color = f"C{i % 10}"
        ax.plot(steps, entry["mean"], color=color, label=labels.get(variant, variant))
        s_steps, band = _seed_mean([run.get("spread") for run in runs or []])
        if len(s_steps):
            entry.update(band_steps=s_steps, q05=band[:, 0], q95=band[:, 1])
            ax.fill_between(s_steps, band[:, 0], band[:, 1], color=color, alpha=0.25, lw=0)
        out[variant] = entry
    if out:
        _log_if_positive(ax, np.concatenate([e["mean"] for e in out.values()]))
        ax.legend(fontsize="small")
    else:
        _note(ax, "no variance history recorded")
    ax.set_xlabel("training step")
    ax.set_ylabel(r"variance $\sigma^2/I^2$")
    ax.set_title(_title(summary), fontsize="medium")
    save_figure(fig, path)
    return out


def plot_scan(summary: Mapping, path: str | Path, metric: str = "rel_error",
              deviation: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Fig 5.10 right / Fig 5.12: ``metric`` (mean ± std over seeds) vs the scanned parameter per
    variant and, with ``deviation``, (I − I_ref)/I_ref where I_ref is the same variant's mean
    integral at the first scan value (e.g. R = 1).

    Returns {variant: {"values", "mean", "std", "deviation", "deviation_std"}}.
    """
    scan = summary.get("scan") or {}
    order = [float(v) for v in scan.get("values") or []]
    rows = [r for r in summary.get("rows", []) if r.get("scan_value") is not None]
    variants: dict[str, list[Mapping]] = {}
    for r in rows:
        variants.setdefault(str(r.get("variant")), []).append(r)
    n_panels = 2 if deviation else 1
    fig, axes = plt.subplots(n_panels, 1, figsize=(6, 4 + 2.2 * (n_panels - 1)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2][:n_panels], "hspace": 0.08})
    ax, dax = axes[0, 0], (axes[1, 0] if deviation else None)
    out: dict[str, dict[str, np.ndarray]] = {}
    markers = "osD^vP*X"
    for i, (variant, vrows) in enumerate(variants.items()):
        vrows = sorted(vrows, key=lambda r: float(r["scan_value"]))
        x = np.array([float(r["scan_value"]) for r in vrows])
        stats = np.array([_stat(r, metric) for r in vrows], dtype=float)
        ints = np.array([_stat(r, "integral") for r in vrows], dtype=float)
        first = order[0] if order else x[0]
        ref_rows = [k for k, v in enumerate(x) if _same(v, first)] or [0]
        ref = ints[ref_rows[0], 0]
        with np.errstate(all="ignore"):
            dev, dev_std = ints[:, 0] / ref - 1.0, ints[:, 1] / abs(ref)
        out[variant] = {"values": x, "mean": stats[:, 0], "std": stats[:, 1], "deviation": dev,
                        "deviation_std": dev_std}
        style = dict(color=f"C{i % 10}", marker=markers[i % len(markers)], capsize=3, ms=5)
        ax.errorbar(x, stats[:, 0], yerr=_yerr(stats[:, 1]), label=_row_label(vrows[0]), **style)
        if dax is not None:
            dax.errorbar(x, dev, yerr=_yerr(dev_std), **style)
    if out:
        _log_if_positive(ax, np.concatenate([v["mean"] for v in out.values()]))
        ax.legend(fontsize="small")
        if scan.get("log") and all(np.all(v["values"] > 0) for v in out.values()):
            ax.set_xscale("log")
    else:
        _note(ax, "no scan results")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(_title(summary), fontsize="medium")
    bottom = ax
    if dax is not None:
        dax.axhline(0, color="grey", lw=0.8)
        ref_text = _scan_text(summary, order[0]) if order else "first value"
        dax.set_ylabel(f"$(I - I_\\mathrm{{ref}})/I_\\mathrm{{ref}}$\nref: {ref_text}", fontsize="small")
        bottom = dax
    bottom.set_xlabel(str(scan.get("label") or scan.get("parameter") or "scan value"))
    save_figure(fig, path)
    return out


def plot_weight_distributions(summary: Mapping, path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Fig 5.12 right: fraction of events per bin of w/⟨w⟩ for each stored histogram, log-log.

    Keys of ``summary["weights"]`` are "variant|scan_value". Returns {key: {"edges", "fraction"}}.
    """
    labels = _variant_labels(summary)
    hists = summary.get("weights") or {}
    order = list(labels)

    def sort_key(key: str):
        variant, _, value = key.partition("|")
        rank = order.index(variant) if variant in order else len(order)
        try:
            return rank, float(value) if value else -math.inf, ""
        except ValueError:
            return rank, math.inf, value

    fig, ax = plt.subplots(figsize=(6, 4))
    out: dict[str, dict[str, np.ndarray]] = {}
    all_positive = True
    for i, key in enumerate(sorted(hists, key=sort_key)):
        edges, counts = (np.asarray(a, dtype=float) for a in hists[key])
        total = counts.sum()
        fraction = counts / total if total > 0 else counts * 0.0
        out[key] = {"edges": edges, "fraction": fraction}
        variant, _, value = key.partition("|")
        label = labels.get(variant, variant)
        if value:
            try:
                label += f", {_scan_text(summary, float(value))}"
            except ValueError:
                label += f", {value}"
        ax.stairs(np.where(fraction > 0, fraction, np.nan), edges, color=f"C{i % 10}", label=label)
        all_positive &= bool(len(edges) and edges[0] > 0)
    if out:
        if all_positive:
            ax.set_xscale("log")
        _log_if_positive(ax, np.concatenate([v["fraction"] for v in out.values()]))
        ax.legend(fontsize="small")
    else:
        _note(ax, "no weight histograms stored")
    ax.set_xlabel(r"$w/\langle w\rangle$")
    ax.set_ylabel("fraction of events")
    ax.set_title(_title(summary), fontsize="medium")
    save_figure(fig, path)
    return out


# =========================================================================== integrator diagnostics

def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _channel_names(integrand, names: Sequence[str] | None = None) -> list[str]:
    if names is not None:
        return [str(n) for n in names]
    meta = getattr(integrand, "meta", {}) or {}
    raw = meta.get("channel_names") or [f"channel {i}" for i in range(integrand.n_channels)]
    return [CHANNEL_LABELS.get(str(n), str(n)) for n in raw]


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n_channels: int,
             batch_size: int = 100_000) -> torch.Tensor:
    parts = [fn(x[i:i + batch_size]).to(torch.float64) for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else x.new_zeros((0, n_channels))


def learned_channel_weights(integrator, integrand, x: torch.Tensor) -> torch.Tensor:
    """α_i(x): the integrator's learned weights (MadNIS, Eq 5.8) or else the integrand's prior."""
    fn = getattr(integrator, "channel_weights", None)
    return _batched(fn if callable(fn) else integrand.channel_weights, x, integrand.n_channels)


def _prior_weights(integrand, x: torch.Tensor) -> torch.Tensor:
    return _batched(integrand.channel_weights, x, integrand.n_channels)


def plot_channel_weights_1d(integrators, integrand, path: str | Path, x_range: tuple[float, float],
                            n_points: int = 400, labels: Sequence[str] | None = None
                            ) -> dict[str, np.ndarray]:
    """Figs 5.5/5.6: top, the normalised target f(x) and the channel mapping densities g_i(x);
    bottom, the prior α_i(x) (dotted) and the learned α_i(x) of each integrator (one per training).

    ``labels`` name the channels. Returns {"x", "f", "g" (n_ch, n), "prior" (n, n_ch),
    "learned" (n_integrators, n, n_ch)}.
    """
    if not isinstance(integrators, (list, tuple)):
        integrators = [integrators]
    x = torch.linspace(float(x_range[0]), float(x_range[1]), int(n_points), dtype=torch.float64)[:, None]
    with torch.no_grad():
        f = _numpy(integrand.function(x)).astype(float)
        norm = integrand.exact if integrand.exact else np.trapezoid(f, _numpy(x[:, 0]))
        g = np.stack([np.exp(_numpy(c.log_density(x)).astype(float)) for c in integrand.channels])
        prior = _numpy(integrand.channel_weights(x)).astype(float)
        learned = [_numpy(learned_channel_weights(it, integrand, x)).astype(float) for it in integrators]
        learned = np.stack(learned) if learned else np.zeros((0, len(x), integrand.n_channels))
    names = _channel_names(integrand, labels)
    xs = _numpy(x[:, 0])
    fig, (ax, wax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [1, 1], "hspace": 0.08})
    ax.fill_between(xs, f / norm, color="grey", alpha=0.3, lw=0)
    ax.plot(xs, f / norm, color="black", label=r"target $f(x)/I$")
    for i, name in enumerate(names):
        ax.plot(xs, g[i], color=f"C{i % 10}", ls="--", label=f"mapping $g_{{{i + 1}}}$ ({name})")
        wax.plot(xs, prior[:, i], color=f"C{i % 10}", ls=":", lw=2, label=rf"prior $\alpha_{{{i + 1}}}$")
        for k, alpha in enumerate(learned):
            wax.plot(xs, alpha[:, i], color=f"C{i % 10}", lw=0.8, alpha=0.7,
                     label=rf"learned $\alpha_{{{i + 1}}}$" if k == 0 else None)
    ax.set_ylabel("normalised density")
    ax.legend(fontsize="small")
    wax.set_ylabel(r"channel weight $\alpha_i(x)$")
    wax.set_ylim(-0.05, 1.05)
    wax.set_xlabel("$x$")
    wax.set_xlim(xs[0], xs[-1])
    wax.legend(fontsize="small", ncol=2)
    ax.set_title(f"{integrand.name}: {len(learned)} training(s)", fontsize="medium")
    save_figure(fig, path)
    return {"x": xs, "f": f / norm, "g": g, "prior": prior, "learned": learned}


def _binned_mean(x: np.ndarray, y: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per 2D bin of (x, y); NaN in empty bins."""
    counts, _, _ = np.histogram2d(x, y, bins=[edges, edges])
    sums, _, _ = np.histogram2d(x, y, bins=[edges, edges], weights=values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def plot_channel_maps(integrator, integrand, path: str | Path, n: int = 100_000,
                      extent: tuple[float, float] = (-1.5, 1.5), bins: int = 80, seed: int = 0
                      ) -> dict[str, Any]:
    """Figs 5.7/5.8: densities of the points generated in each channel (not weighted by the channel
    weights), the combined weighted density and, for ≥ 2 channels, the mean α_1(x) per bin.

    Densities are normalised to the number of points (per channel) or the total weight, so the
    part outside ``extent`` is missing. Returns {"edges", "channels" (n_ch, bins, bins) [x, y],
    "combined" (bins, bins), "alpha0" (bins, bins) or None, "channel_counts"}.
    """
    sample = integrator.sample_weighted(int(n), seed=seed)
    x, w, ch = _numpy(sample.x).astype(float), _numpy(sample.weights).astype(float), _numpy(sample.channels)
    edges = np.linspace(float(extent[0]), float(extent[1]), int(bins) + 1)
    area = np.diff(edges)[0] ** 2
    n_ch = integrand.n_channels
    names = _channel_names(integrand)
    per_channel = []
    for i in range(n_ch):
        xi = x[ch == i]
        h, _, _ = np.histogram2d(xi[:, 0], xi[:, 1], bins=[edges, edges])
        per_channel.append(h / max(len(xi), 1) / area)
    total = w.sum()
    combined, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges], weights=w)
    combined = combined / (total if total > 0 else 1.0) / area
    alpha0 = None
    if n_ch >= 2:
        with torch.no_grad():
            alpha = _numpy(learned_channel_weights(integrator, integrand, sample.x))[:, 0].astype(float)
        alpha0 = _binned_mean(x[:, 0], x[:, 1], alpha, edges)
    panels = [(f"channel {i + 1}: {names[i]}\n({sample.channel_counts[i]} points)", per_channel[i], None)
              for i in range(n_ch)]
    panels.append(("combined (weighted)", combined, None))
    if alpha0 is not None:
        panels.append((rf"learned $\alpha_1(x)$ ({names[0]})", alpha0, (0.0, 1.0)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, values, limits) in zip(axes[0], panels):
        vmin, vmax = limits if limits else (0.0, None)
        mesh = ax.pcolormesh(edges, edges, values.T, cmap="viridis" if limits is None else "coolwarm",
                             vmin=vmin, vmax=vmax, shading="flat")
        fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04,
                     label=r"$\alpha_1$" if limits else "density")
        ax.set_title(title, fontsize="small")
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.suptitle(f"{integrand.name}: {n_ch} channel(s)")
    fig.tight_layout()
    save_figure(fig, path)
    return {"edges": edges, "channels": np.stack(per_channel), "combined": combined, "alpha0": alpha0,
            "channel_counts": list(sample.channel_counts)}


def plot_channel_observables(integrator, integrand, observables: Sequence[Observable], path: str | Path,
                             n: int = 200_000, seed: int = 0, channel_names: Sequence[str] | None = None,
                             stack: str = "unweighted") -> dict[str, dict[str, np.ndarray]]:
    """Fig 5.11: per observable (one column), top: dσ/dO stacked by channel with the weighted total
    of all channels (dashed, the 'truth'); bottom: the learned (solid) and prior (dashed) channel
    weights averaged per bin, weighted by the event weights (so ⟨α_i⟩ is channel i's share).

    ``stack="unweighted"`` (thesis caption) histograms the points of channel i without their
    weights, normalised to the channel integral I_i = Σ_{channel i} w / N — the stack then matches
    the truth only as far as the channel densities learned α_i f; ``stack="weighted"`` uses the
    weights w of each channel's events (the stack sums to the truth exactly).
    ``observables``: (name, x -> values (n,), bin edges, axis label). Returns {name: {"edges",
    "stacked" (n_ch, bins), "total" (bins,), "alpha" (n_ch, bins), "prior" (n_ch, bins)}}.
    """
    if stack not in ("unweighted", "weighted"):
        raise ValueError(f"stack must be 'unweighted' or 'weighted', got {stack!r}")
    sample = integrator.sample_weighted(int(n), seed=seed)
    with torch.no_grad():
        alpha = _numpy(learned_channel_weights(integrator, integrand, sample.x)).astype(float)
        prior = _numpy(_prior_weights(integrand, sample.x)).astype(float)
    w, ch = _numpy(sample.weights).astype(float), _numpy(sample.channels)
    n_tot = max(len(w), 1)
    n_ch = integrand.n_channels
    names = _channel_names(integrand, channel_names)
    unit = getattr(integrand, "unit", "") or ""
    fig, axes = plt.subplots(2, len(observables), figsize=(5.2 * max(len(observables), 1), 6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4], "hspace": 0.06})
    out: dict[str, dict[str, np.ndarray]] = {}
    for col, (name, fn, edges, label) in enumerate(observables):
        ax, wax = axes[0, col], axes[1, col]
        edges = np.asarray(edges, dtype=float)
        width = np.diff(edges)
        with torch.no_grad():
            values = _numpy(fn(sample.x)).astype(float).reshape(-1)
        ok = np.isfinite(values)
        total = np.histogram(values[ok], edges, weights=w[ok])[0] / n_tot / width
        parts, a_mean, p_mean = [], [], []
        for i in range(n_ch):
            m = ok & (ch == i)
            if stack == "weighted":
                parts.append(np.histogram(values[m], edges, weights=w[m])[0] / n_tot / width)
            else:
                n_i = int((ch == i).sum())
                integral_i = w[ch == i].sum() / n_tot
                parts.append(np.histogram(values[m], edges)[0] / max(n_i, 1) * integral_i / width)
        w_bin = np.histogram(values[ok], edges, weights=w[ok])[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            for i in range(n_ch):
                a_mean.append(np.histogram(values[ok], edges, weights=w[ok] * alpha[ok, i])[0] / w_bin)
                p_mean.append(np.histogram(values[ok], edges, weights=w[ok] * prior[ok, i])[0] / w_bin)
        stacked = np.array(parts).reshape(n_ch, len(width))
        base = np.zeros(len(width))
        for i in range(n_ch):
            ax.stairs(base + stacked[i], edges, baseline=base, fill=True, alpha=0.6, color=f"C{i % 10}",
                      label=names[i])
            base = base + stacked[i]
        ax.stairs(total, edges, color="black", ls="--", lw=1.2, label="truth (weighted)")
        _log_if_positive(ax, total)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylabel(_density_label(unit, label))
        ax.tick_params(labelbottom=False)
        ax.legend(fontsize="small", title="stacked: " + stack, title_fontsize="small")
        for i in range(n_ch):
            wax.stairs(a_mean[i], edges, color=f"C{i % 10}", lw=1.5)
            wax.stairs(p_mean[i], edges, color=f"C{i % 10}", ls="--", lw=1.0)
        wax.plot([], [], color="grey", label="learned")
        wax.plot([], [], color="grey", ls="--", label="prior")
        wax.legend(fontsize="x-small", ncol=2)
        wax.set_ylim(-0.05, 1.05)
        wax.set_xlim(edges[0], edges[-1])
        wax.set_ylabel(r"$\langle\alpha_i\rangle$")
        wax.set_xlabel(label)
        out[name] = {"edges": edges, "stacked": stacked, "total": total,
                     "alpha": np.array(a_mean).reshape(n_ch, -1), "prior": np.array(p_mean).reshape(n_ch, -1)}
    fig.suptitle(f"{integrand.name}: {n_ch} channel(s)")
    save_figure(fig, path)
    return out


def _density_label(unit: str, axis_label: str) -> str:
    """'dσ/dO [pb/GeV]' from the integrand unit and the unit in the observable's axis label."""
    match = re.search(r"\[([^\]]*)\]\s*$", axis_label)
    obs_unit = match.group(1) if match else ""
    name = r"$\mathrm{d}\sigma/\mathrm{d}O$" if unit else r"$\mathrm{d}I/\mathrm{d}O$"
    if unit or obs_unit:
        return f"{name} [{unit or '1'}{'/' + obs_unit if obs_unit else ''}]"
    return name


def drell_yan_observables(integrand) -> list[Observable]:
    """p_T of the electron and M_ee from ``integrand.meta["momenta"]`` (the observables of Fig 5.11)."""
    momenta = integrand.meta["momenta"]

    def pt_e(x: torch.Tensor) -> torch.Tensor:
        p = momenta(x)
        return kinematics.pt(p[:, 2, 1], p[:, 2, 2])

    def m_ee(x: torch.Tensor) -> torch.Tensor:
        p = momenta(x)
        return kinematics.mass(*(p[:, 2] + p[:, 3]).unbind(-1))

    return [("pt_e", pt_e, np.linspace(0.0, 250.0, 51), r"$p_{T,e^-}$ [GeV]"),
            ("m_ee", m_ee, np.linspace(0.0, 500.0, 101), r"$M_{e^+e^-}$ [GeV]")]
