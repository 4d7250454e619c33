"""Figures of the ML-MEM chain (thesis §6.3-6.4).

* :func:`plot_likelihood_scans` — −2Δlog L vs α for a small (400) and a large (10k) event set and
  pull histograms, one column per α_true (Figs 6.14/6.17/6.19);
* :func:`plot_likelihood_comparison` — −2Δlog L curves and their difference to a reference curve
  with bootstrap bands (closure test against the analytic likelihood);
* :func:`plot_pull_histograms` — pull histograms with mean/width and the N(0, 1) expectation;
* :func:`plot_calibration` — reco-level vs hard-level α̂ with asymmetric 68 % errors per set (Fig 6.8);
* :func:`plot_integration_diagnostics` — iterations to reach the target precision and the relative
  error after a fixed number of iterations, per integration setup (Fig 6.13).

α is passed in radians and shown in degrees. Every function writes one file with :func:`save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.mem.likelihood import Estimate, pull_summary  # noqa: E402
from lhcflow.plots.style import save_figure  # noqa: E402

ALPHA_LABEL = r"$\alpha$ [deg]"
NLL_LABEL = r"$-2\,\Delta\log L$"
PULL_EDGES = np.linspace(-4.0, 4.0, 21)


@dataclass
class LikelihoodCurve:
    """One −2Δlog L curve on the scan grid, with an optional bootstrap/Bayesian band (std)."""

    label: str
    neg2ll: np.ndarray
    band: np.ndarray | None = None
    color: str | None = None
    linestyle: str = "-"


@dataclass
class ScanColumn:
    """Everything drawn for one α_true (radians)."""

    alpha_true: float
    small: Sequence[LikelihoodCurve] = ()
    large: Sequence[LikelihoodCurve] = ()
    pulls: Mapping[str, np.ndarray] = field(default_factory=dict)
    mirror: Mapping[str, np.ndarray] = field(default_factory=dict)  # per label: sets with α̂ at −α_true


def _draw_curves(ax, alpha_deg, curves, alpha_true_deg, ymax):
    for c in curves:
        line, = ax.plot(alpha_deg, c.neg2ll, color=c.color, ls=c.linestyle, label=c.label)
        if c.band is not None:
            ax.fill_between(alpha_deg, c.neg2ll - c.band, c.neg2ll + c.band, color=line.get_color(), alpha=0.3, lw=0)
    ax.axvline(alpha_true_deg, color="grey", lw=0.8, ls=":")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlim(alpha_deg[0], alpha_deg[-1])
    ax.set_ylim(0, ymax)
    ax.set_ylabel(NLL_LABEL)


def _draw_pulls(ax, pulls_by_label: Mapping[str, np.ndarray], colors: Mapping[str, str | None],
                mirror: Mapping[str, np.ndarray] | None = None):
    """Pull histograms (overflow in the edge bins); μ and w over the sets whose α̂ is not at the CP
    mirror −α_true when ``mirror`` flags them (those are counted in the label)."""
    n_max = 0
    for label, values in pulls_by_label.items():
        values = np.asarray(values, dtype=float)
        flags = np.asarray((mirror or {}).get(label, np.zeros(len(values), bool)), bool)
        s = pull_summary(values[~flags])
        counts, _ = np.histogram(np.clip(values[np.isfinite(values)], PULL_EDGES[0], PULL_EDGES[-1] - 1e-9), PULL_EDGES)
        n_max = max(n_max, s["n"])
        at_mirror = f" ({int(flags.sum())} at $-\\alpha$, not in $\\mu$, $w$)" if flags.any() else ""
        mplhep.histplot(counts, PULL_EDGES, ax=ax, color=colors.get(label),
                        label=f"{label}: $\\mu$={s['mean']:.2f}$\\pm${s['mean_error']:.2f}, "
                              f"$w$={s['width']:.2f}$\\pm${s['width_error']:.2f}{at_mirror}")
    x = np.linspace(PULL_EDGES[0], PULL_EDGES[-1], 200)
    width = PULL_EDGES[1] - PULL_EDGES[0]
    ax.plot(x, n_max * width * np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi), color="grey", ls="--", label=r"$\mathcal{N}(0,1)$")
    ax.set_xlabel(r"pull $(\hat\alpha - \alpha_\mathrm{true})/\sigma$")
    ax.set_ylabel("sets")
    ax.set_xlim(PULL_EDGES[0], PULL_EDGES[-1])
    ax.legend(fontsize="x-small")


def _curve_colors(columns: Sequence[ScanColumn]) -> dict[str, str | None]:
    colors: dict[str, str | None] = {}
    for col in columns:
        for c in (*col.small, *col.large):
            colors.setdefault(c.label, c.color)
    for i, label in enumerate(name for col in columns for name in col.pulls):
        if colors.get(label) is None:
            colors[label] = f"C{i}"
    return colors


def plot_likelihood_scans(alpha: np.ndarray, columns: Sequence[ScanColumn], path: str | Path, *,
                          small_title: str = "400 events", large_title: str = "10k events",
                          ymax: tuple[float, float] = (10.0, 50.0)) -> None:
    """Columns = α_true; rows: small-set scans, large-set scans, pull histograms (rows without data are left out)."""
    alpha_deg = np.degrees(alpha)
    rows = [r for r, has in (("small", any(c.small for c in columns)), ("large", any(c.large for c in columns)),
                             ("pulls", any(c.pulls for c in columns))) if has]
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(4.5 * len(columns), 3.6 * len(rows)), squeeze=False)
    colors = _curve_colors(columns)
    for j, col in enumerate(columns):
        a_true = math.degrees(col.alpha_true)
        for i, row in enumerate(rows):
            ax = axes[i, j]
            if row == "pulls":
                _draw_pulls(ax, col.pulls, colors, col.mirror)
                continue
            curves = col.small if row == "small" else col.large
            _draw_curves(ax, alpha_deg, curves, a_true, ymax[0] if row == "small" else ymax[1])
            ax.set_xlabel(ALPHA_LABEL)
            ax.set_title(rf"$\alpha_\mathrm{{true}}$ = {a_true:g}°, {small_title if row == 'small' else large_title}",
                         fontsize="medium")
            ax.legend(fontsize="x-small", loc="upper center")
    fig.tight_layout()
    save_figure(fig, path)


def plot_likelihood_comparison(alpha: np.ndarray, columns: Sequence[ScanColumn], path: str | Path, *,
                               reference: str, compare: Sequence[str] | None = None, title: str = "",
                               ymax: float = 10.0, zoom: bool = True) -> None:
    """Top: −2Δlog L curves (``column.small``); bottom: the curves in ``compare`` (default: those with a
    band) minus the ``reference`` curve, with their bands. ``zoom`` limits α to where the reference is
    below ``ymax`` (plus a margin)."""
    alpha_deg = np.degrees(alpha)
    fig, axes = plt.subplots(2, len(columns), figsize=(4.5 * len(columns), 5.5), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.05})
    for j, col in enumerate(columns):
        ax, rax = axes[0, j], axes[1, j]
        a_true = math.degrees(col.alpha_true)
        _draw_curves(ax, alpha_deg, col.small, a_true, ymax)
        ax.set_title(rf"$\alpha_\mathrm{{true}}$ = {a_true:g}°" + (f", {title}" if title else ""), fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper center")
        ref = next(c for c in col.small if c.label == reference)
        visible = ref.neg2ll <= ymax
        labels = compare if compare is not None else [c.label for c in col.small if c.band is not None]
        for c in col.small:
            if c.label == reference or c.label not in labels:
                continue
            diff = np.where(visible, c.neg2ll - ref.neg2ll, np.nan)
            line, = rax.plot(alpha_deg, diff, color=c.color, ls=c.linestyle, label=c.label)
            if c.band is not None:
                rax.fill_between(alpha_deg, diff - c.band, diff + c.band, color=line.get_color(), alpha=0.3, lw=0)
        if zoom and visible.any():
            lo, hi = alpha_deg[visible].min(), alpha_deg[visible].max()
            pad = 0.3 * (hi - lo) + 1.0
            ax.set_xlim(max(alpha_deg[0], lo - pad), min(alpha_deg[-1], hi + pad))
        rax.axhline(0.0, color="grey", lw=0.8)
        rax.set_ylabel(f"$\\Delta$ to {reference}", fontsize="small")
        rax.set_xlabel(ALPHA_LABEL)
    save_figure(fig, path)


def plot_pull_histograms(columns: Sequence[ScanColumn], path: str | Path, *, title: str = "") -> None:
    """One panel per α_true with the pull histogram of every labelled likelihood and N(0, 1)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.8), squeeze=False)
    colors = _curve_colors(columns)
    for j, col in enumerate(columns):
        _draw_pulls(axes[0, j], col.pulls, colors, col.mirror)
        axes[0, j].set_title(rf"$\alpha_\mathrm{{true}}$ = {math.degrees(col.alpha_true):g}°"
                             + (f", {title}" if title else ""), fontsize="medium")
    fig.tight_layout()
    save_figure(fig, path)


def plot_calibration(alpha_true: Sequence[float], hard: Sequence[Sequence[Estimate]],
                     reco: Sequence[Sequence[Estimate]], path: str | Path, *, reco_label: str = "reco level") -> None:
    """Per α_true: reco-level vs hard-level α̂ of each event set with asymmetric 68 % errors (Fig 6.8)."""
    fig, axes = plt.subplots(1, len(alpha_true), figsize=(4.2 * len(alpha_true), 4.2), squeeze=False)
    for j, (a_true, h_sets, r_sets) in enumerate(zip(alpha_true, hard, reco)):
        ax = axes[0, j]
        hx = np.degrees([e.alpha_hat for e in h_sets])
        ry = np.degrees([e.alpha_hat for e in r_sets])
        xerr = np.degrees([[e.sigma_minus for e in h_sets], [e.sigma_plus for e in h_sets]])
        yerr = np.degrees([[e.sigma_minus for e in r_sets], [e.sigma_plus for e in r_sets]])
        ax.errorbar(hx, ry, xerr=xerr, yerr=yerr, fmt="o", ms=3, lw=0.8, color="C0", label=f"{len(hx)} sets")
        lo = min(np.min(hx - xerr[0]), np.min(ry - yerr[0]), math.degrees(a_true)) - 5
        hi = max(np.max(hx + xerr[1]), np.max(ry + yerr[1]), math.degrees(a_true)) + 5
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.axvline(math.degrees(a_true), color="grey", lw=0.5, ls=":")
        ax.axhline(math.degrees(a_true), color="grey", lw=0.5, ls=":")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(r"hard level $\hat\alpha$ [deg]")
        ax.set_ylabel(rf"{reco_label} $\hat\alpha$ [deg]")
        ax.set_title(rf"$\alpha_\mathrm{{true}}$ = {math.degrees(a_true):g}°", fontsize="medium")
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, path)


def plot_integration_diagnostics(setups: Mapping[str, object], path: str | Path, *, max_iterations: int | None = None,
                                 after: int = 10, target: float | None = None) -> None:
    """Left: iterations needed per event (2 … max); right: relative error after ``after`` iterations
    (from ``rel_error_history``; events that converged earlier keep their last value). ``setups`` maps a
    label to a :class:`MemResult` (or anything with ``iterations`` and ``rel_error_history``); ``target``
    marks the target precision."""
    fig, (ax_it, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    n_max = max_iterations or max(np.asarray(r.rel_error_history).shape[1] for r in setups.values())
    it_edges = np.arange(0.5, n_max + 1.5)
    all_err = np.concatenate([_error_after(r, after) for r in setups.values()])
    all_err = all_err[np.isfinite(all_err) & (all_err > 0)]
    lo, hi = (np.log10(all_err.min()), np.log10(all_err.max())) if len(all_err) else (-3.0, 0.0)
    err_edges = np.logspace(math.floor(lo * 4) / 4, math.ceil(hi * 4) / 4 + 1e-9, 31)
    for i, (label, res) in enumerate(setups.items()):
        counts, _ = np.histogram(np.asarray(res.iterations), it_edges)
        mplhep.histplot(counts, it_edges, ax=ax_it, color=f"C{i}", label=label)
        err = _error_after(res, after)
        counts, _ = np.histogram(np.clip(err[np.isfinite(err)], err_edges[0], err_edges[-1] * 0.999), err_edges)
        mplhep.histplot(counts, err_edges, ax=ax_err, color=f"C{i}", label=label)
    ax_it.set_xlabel("iterations")
    ax_it.set_ylabel("events")
    ax_it.set_xlim(it_edges[0], it_edges[-1])
    ax_it.legend(fontsize="small")
    if target is not None:
        ax_err.axvline(target, color="grey", ls="--", lw=0.8, label="target")
    ax_err.set_xscale("log")
    ax_err.set_xlabel(f"relative error after {after} iterations")
    ax_err.set_ylabel("events")
    ax_err.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)


def _error_after(result, after: int) -> np.ndarray:
    """Max-over-α relative error after ``after`` iterations (or at the event's last iteration if earlier)."""
    hist = np.asarray(result.rel_error_history, dtype=float)
    cols = np.minimum(np.asarray(result.iterations), after) - 1
    return hist[np.arange(len(hist)), np.clip(cols, 0, hist.shape[1] - 1)]
