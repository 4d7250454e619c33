"""Generator validation figures: the Fig 4.4 analogue (Train / Generated / Truth with a
ratio and a δ[%] panel, Eq 4.10) and the Fig 4.2 analogue (Δη-Δφ maps of jet pairs).

Histograms come from :func:`lhcflow.plots.distributions.fill_histograms` (files, streamed)
or :func:`lhcflow.physics.metrics.batch_histograms` (in-memory batches), both built on
:func:`~lhcflow.plots.distributions.empty_histogram`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.plots.style import dress_distribution_axes, dress_ratio_axis, save_figure  # noqa: E402
from lhcflow.data.events import EventBatch, ObjectType  # noqa: E402
from lhcflow.physics.kinematics import delta_phi  # noqa: E402
from lhcflow.physics.metrics import batch_histograms, relative_deviation_percent, zjets_benchmark_observables  # noqa: E402
from lhcflow.physics.observables import Observable  # noqa: E402

COLORS = {"Train": "C0", "Generated": "C3", "Truth": "black"}


def normalised_density(h) -> tuple[np.ndarray, np.ndarray]:
    """Unit-area density and its statistical error sqrt(Σw²) of a weighted ``hist.Hist``
    (flow bins excluded)."""
    widths = np.diff(h.axes[0].edges)
    norm = h.sum(flow=False).value
    if not norm > 0:
        return np.zeros_like(widths), np.zeros_like(widths)
    var = h.variances(flow=False)
    err = np.sqrt(var) if var is not None else np.sqrt(np.abs(h.values(flow=False)))
    return h.values(flow=False) / norm / widths, err / norm / widths


def replica_band(hists: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation of the normalised densities of several
    replica histograms (e.g. Bayesian network samples, thesis §4.3) — the ``band`` argument
    of :func:`plot_truth_generated`."""
    dens = np.stack([normalised_density(h)[0] for h in hists])
    return dens.mean(axis=0), dens.std(axis=0, ddof=1 if len(hists) > 1 else 0)


def plot_truth_generated(train_hist, gen_hist, truth_hist, observable: Observable, path: str | Path,
                         band: tuple[np.ndarray, np.ndarray] | None = None, title: str | None = None,
                         labels: Mapping[str, str] | None = None) -> None:
    """Fig 4.4 panel: normalised Train, Generated and Truth distributions; the ratios
    Generated/Truth and Train/Truth; and ``δ[%] = 100 |Gen − Truth| / Truth`` (Eq 4.10).

    ``band`` is an optional per-bin ``(mean, σ)`` of the generated normalised density
    (see :func:`replica_band`), drawn as mean ± σ in the top and ratio panels.
    """
    names = {"Train": "Train", "Generated": "Generated", "Truth": "Truth", **(labels or {})}
    hists = {"Train": train_hist, "Generated": gen_hist, "Truth": truth_hist}
    edges = truth_hist.axes[0].edges
    dens = {k: normalised_density(h) for k, h in hists.items()}
    truth, truth_err = dens["Truth"]
    fig, (ax, rax, dax) = plt.subplots(3, 1, figsize=(6, 7), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1, 1], "hspace": 0.06})
    for key in ("Truth", "Train", "Generated"):
        val, err = dens[key]
        mplhep.histplot(val, edges, yerr=err if key != "Truth" else None, ax=ax, label=names[key],
                        color=COLORS[key], histtype="step", lw=1.2, ls="--" if key == "Train" else "-")
    if band is not None:
        mean, sigma = (np.asarray(a, dtype=np.float64) for a in band)
        ax.stairs(mean + sigma, edges, baseline=mean - sigma, fill=True, color=COLORS["Generated"], alpha=0.3,
                  label=f"{names['Generated']} ±1σ")
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = truth > 0
        rel_err = np.where(ok, truth_err / truth, np.nan)
        rax.stairs(1 + rel_err, edges, baseline=1 - rel_err, fill=True, color="grey", alpha=0.3)
        for key in ("Train", "Generated"):
            val, err = dens[key]
            mplhep.histplot(np.where(ok, val / truth, np.nan), edges, yerr=np.where(ok, err / truth, np.nan),
                            ax=rax, color=COLORS[key], histtype="step", ls="--" if key == "Train" else "-")
        if band is not None:
            rax.stairs(np.where(ok, (mean + sigma) / truth, np.nan), edges,
                       baseline=np.where(ok, (mean - sigma) / truth, np.nan), fill=True,
                       color=COLORS["Generated"], alpha=0.3)
    delta = relative_deviation_percent(gen_hist, truth_hist)  # Eq 4.10
    centres = 0.5 * (edges[1:] + edges[:-1])
    dax.plot(centres, delta, "o", ms=2.5, color=COLORS["Generated"])
    finite = delta[np.isfinite(delta)]
    dax.set_ylim(0, min(100.0, max(10.0, 1.2 * float(np.nanmax(finite)) if finite.size else 10.0)))
    dax.set_ylabel("$\\delta$ [%]", fontsize="small")
    dress_ratio_axis(rax, f"ratio to\n{names['Truth']}", (0.7, 1.3), "")
    dax.set_xlabel(observable.axis_label)
    dress_distribution_axes(ax, observable, edges, title)
    save_figure(fig, path)


def plot_benchmark(train: EventBatch, generated: EventBatch, truth: EventBatch, out_dir: str | Path,
                   observables: Sequence[Observable] | None = None, fmt: str = "png",
                   bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[Path]:
    """All Fig 4.4 panels (one file per observable, default :func:`zjets_benchmark_observables`);
    samples are weighted by ``batch.weight``."""
    observables = list(zjets_benchmark_observables() if observables is None else observables)
    h = [batch_histograms(b, observables) for b in (train, generated, truth)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for obs in observables:
        if h[2][obs.name].sum(flow=False).value <= 0:
            continue
        path = out_dir / f"{obs.name}.{fmt}"
        plot_truth_generated(h[0][obs.name], h[1][obs.name], h[2][obs.name], obs, path,
                             band=(bands or {}).get(obs.name))
        written.append(path)
    return written


def jet_pair_delta_eta_phi(batch: EventBatch, n_jets: int = 2, pair: tuple[int, int] = (0, 1),
                           jet_offset: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Δη, Δφ (wrapped to (−π, π]) and weights of jet pair ``pair`` (0-based jet indices)
    in the events with exactly ``n_jets`` stored jets."""
    sel = batch.multiplicity(ObjectType.JET) == n_jets
    i, j = jet_offset + pair[0], jet_offset + pair[1]
    deta = batch.eta[sel, i].astype(np.float64) - batch.eta[sel, j]
    dphi = delta_phi(batch.phi[sel, i].astype(np.float64), batch.phi[sel, j])
    return deta, dphi, batch.weight[sel]


def plot_delta_eta_phi(truth: EventBatch, generated: EventBatch, path: str | Path, n_jets: int = 2,
                       pair: tuple[int, int] = (0, 1), bins: int = 50, eta_range: tuple[float, float] = (-4.0, 4.0),
                       labels: tuple[str, str] = ("Truth", "Generated")) -> None:
    """Fig 4.2 analogue: weighted, normalised Δη–Δφ maps of one jet pair for Z+``n_jets``
    events, truth (left) and generated (right) on a common colour scale; the dashed circle
    is ΔR = 0.4."""
    x_edges = np.linspace(*eta_range, bins + 1)
    y_edges = np.linspace(-np.pi, np.pi, bins + 1)
    maps = []
    for batch in (truth, generated):
        deta, dphi, w = jet_pair_delta_eta_phi(batch, n_jets, pair)
        h, _, _ = np.histogram2d(deta, dphi, bins=(x_edges, y_edges), weights=w)
        area = np.diff(x_edges)[:, None] * np.diff(y_edges)[None, :]
        total = w.sum()
        maps.append(h / total / area if total > 0 else h)
    vmax = max(float(m.max()) for m in maps) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3), sharey=True, gridspec_kw={"wspace": 0.05})
    theta = np.linspace(0, 2 * np.pi, 200)
    ja, jb = f"j_{pair[0] + 1}", f"j_{pair[1] + 1}"
    for ax, m, label in zip(axes, maps, labels):
        mesh = ax.pcolormesh(x_edges, y_edges, m.T, vmin=0.0, vmax=vmax, cmap="viridis", rasterized=True)
        ax.plot(0.4 * np.cos(theta), 0.4 * np.sin(theta), "w--", lw=0.8)
        ax.set_title(f"{label} (Z+{n_jets} jets)", fontsize="medium")
        ax.set_xlabel(f"$\\Delta\\eta_{{{ja}{jb}}}$")
    axes[0].set_ylabel(f"$\\Delta\\phi_{{{ja}{jb}}}$")
    fig.colorbar(mesh, ax=axes, label="normalised density", pad=0.02)
    save_figure(fig, path)
