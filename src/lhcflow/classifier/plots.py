"""Classifier diagnostics figures (thesis Figs 4.8-4.13, 6.15, 6.20).

* :func:`plot_roc` — ROC curves with the AUC in the legend (Figs 4.8/4.10, top);
* :func:`plot_weight_distribution` — w on a linear or log x axis, truth and generated
  separately (Figs 4.8/4.10);
* :func:`plot_calibration` — reliability diagram;
* :func:`plot_reweighted` — generated, truth and generated × w with a ratio panel (Fig 4.9 left);
* :func:`plot_weight_clusters` — an observable for events in weight ranges over the full
  samples (Figs 4.9 right, 4.11, 4.12);
* :func:`plot_class_probabilities` — learned vs true acceptance ε(x) or multiplicity
  probabilities as a function of an observable (Figs 6.15, 6.20);
* :func:`plot_bayesian_pull` — w vs σ/μ, its binned median and the Eq 4.18 pulls (Fig 4.13).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import hist
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.classifier.weights import (  # noqa: E402
    auc,
    calibration_curve,
    class_fractions,
    mixed_pull,
    relative_error_profile,
    roc_curve,
)
from lhcflow.data.events import EventBatch  # noqa: E402
from lhcflow.physics.observables import Observable  # noqa: E402
from lhcflow.plots.distributions import empty_histogram, plot_comparison  # noqa: E402
from lhcflow.plots.style import dress_distribution_axes, dress_ratio_axis, save_figure  # noqa: E402

TRUTH, GENERATED = "truth", "generated"


def _finish(fig, ax, path, title: str | None, legend_loc: str = "best") -> None:
    ax.legend(fontsize="small", loc=legend_loc)
    if title:
        ax.set_title(title, fontsize="medium")
    save_figure(fig, path)


def plot_roc(curves: Mapping[str, tuple], path: str | Path, title: str | None = None) -> None:
    """ROC curves; ``curves`` maps a label to ``(D_truth, D_generated[, w_truth, w_generated])``."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, args in curves.items():
        fpr, tpr, _ = roc_curve(*args)
        ax.plot(fpr, tpr, label=f"{label} (AUC = {auc(*args):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="random")
    ax.set_xlabel("false positive rate (generated)")
    ax.set_ylabel("true positive rate (truth)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _finish(fig, ax, path, title, "lower right")


def plot_weight_distribution(w_truth: np.ndarray, w_generated: np.ndarray, path: str | Path,
                             log_x: bool = False, bins: int = 60, w_range: tuple[float, float] | None = None,
                             title: str | None = None) -> None:
    """Histograms (fraction of events, overflow in the edge bins) of the classifier weights
    on the truth and generated samples, linear or logarithmic in w (Figs 4.8/4.10)."""
    w_range = w_range or ((1e-3, 1e2) if log_x else (0.0, 3.0))
    edges = np.geomspace(*w_range, bins + 1) if log_x else np.linspace(*w_range, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, w in ((TRUTH, w_truth), (GENERATED, w_generated)):
        w = np.asarray(w, np.float64)
        counts, _ = np.histogram(np.clip(w, edges[0], edges[-1]), edges)
        ax.stairs(counts / max(len(w), 1), edges, label=f"{label} (median {np.median(w):.3f})")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    if log_x:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("classifier weight $w = D/(1-D)$")
    ax.set_ylabel("fraction of events")
    ax.set_xlim(edges[0], edges[-1])
    _finish(fig, ax, path, title)


def plot_calibration(D: np.ndarray, labels: np.ndarray, path: str | Path, weights: np.ndarray | None = None,
                     bins: int = 20, title: str | None = None) -> None:
    """Weighted fraction of label 1 vs the mean classifier output per bin of D."""
    mean_D, frac, _ = calibration_curve(D, labels, weights, bins)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    ax.plot(mean_D, frac, "o-", ms=3, label="classifier")
    ax.set_xlabel("mean classifier output $D$")
    ax.set_ylabel("fraction of label-1 (truth) events")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _finish(fig, ax, path, title, "upper left")


def _filled(observable: Observable, batch: EventBatch, weight: np.ndarray | None = None) -> hist.Hist:
    values, mask = observable(batch)
    w = batch.weight if weight is None else batch.weight * weight
    h = empty_histogram(observable)
    h.fill(values[mask], weight=w[mask])
    return h


def plot_reweighted(observable: Observable, truth: EventBatch, generated: EventBatch, w_generated: np.ndarray,
                    path: str | Path, title: str | None = None) -> None:
    """Truth, generated and generated reweighted by the classifier, ratios to truth (Fig 4.9 left)."""
    hists = {TRUTH: _filled(observable, truth), GENERATED: _filled(observable, generated),
             f"{GENERATED} × w": _filled(observable, generated, w_generated)}
    plot_comparison(hists, observable, path, reference=TRUTH, title=title)


def _density(h: hist.Hist, edges: np.ndarray) -> np.ndarray:
    return h.values() / max(h.sum(flow=False).value, 1e-300) / np.diff(edges)


def plot_weight_clusters(observable: Observable, truth: EventBatch, generated: EventBatch, w_truth: np.ndarray,
                         w_generated: np.ndarray, path: str | Path,
                         ranges: Sequence[tuple[str, float, float]] = ((GENERATED, 0.0, 0.5), (TRUTH, 2.0, np.inf)),
                         title: str | None = None) -> None:
    """Normalised distributions of events in weight ranges over the full samples (Figs 4.9 right,
    4.11, 4.12). Each range is ``(sample, w_low, w_high)``; by default small weights are
    taken from the generated sample and large ones from the truth, as in the thesis."""
    samples = {TRUTH: (truth, np.asarray(w_truth)), GENERATED: (generated, np.asarray(w_generated))}
    edges = np.linspace(observable.low, observable.high, observable.bins + 1)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, (label, (batch, _)) in enumerate(samples.items()):
        style = {"fill": True, "alpha": 0.25} if label == TRUTH else {}
        ax.stairs(_density(_filled(observable, batch), edges), edges, color=f"C{k}", label=label, **style)
    for k, (sample, lo, hi) in enumerate(ranges):
        batch, w = samples[sample]
        sel = (w >= lo) & (w < hi)
        if not sel.any():
            continue
        span = f"$w > {lo:g}$" if np.isinf(hi) else (f"$w < {hi:g}$" if lo <= 0 else f"${lo:g} < w < {hi:g}$")
        ax.stairs(_density(_filled(observable, batch.select(sel)), edges), edges, color=f"C{k + 2}", lw=1.5,
                  label=f"{span}, {sample} ({100 * sel.mean():.1f}%)")
    dress_distribution_axes(ax, observable, edges, title)
    ax.set_xlabel(observable.axis_label)
    save_figure(fig, path)


def plot_class_probabilities(values: np.ndarray, probabilities: np.ndarray, labels: np.ndarray, path: str | Path,
                             bins: np.ndarray, xlabel: str, class_names: Sequence[str] | None = None,
                             weights: np.ndarray | None = None, title: str | None = None) -> dict[str, np.ndarray]:
    """Binned mean of the classifier output vs the true class fraction as a function of an
    observable, with a learned/truth ratio panel (binomial errors of the truth band). Binary
    (``probabilities`` shape (n,), labels 0/1): the acceptance ε(x) of Fig 6.15; categorical
    (shape (n, k), labels 0..k−1): p(n|x) per class, Fig 6.20. Returns the plotted
    :func:`class_fractions`."""
    fractions = class_fractions(values, probabilities, labels, bins, weights)
    edges, true, learned, err = (fractions[k] for k in ("edges", "true", "learned", "error"))
    names = class_names or (["acceptance"] if len(true) == 1 else [f"class {k}" for k in range(len(true))])
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(len(true)):
            ax.stairs(true[k] + err[k], edges, baseline=true[k] - err[k], fill=True, alpha=0.25, color=f"C{k}")
            ax.stairs(true[k], edges, baseline=None, color=f"C{k}", label=f"{names[k]}, truth")
            ax.stairs(learned[k], edges, baseline=None, color=f"C{k}", ls="--", lw=1.5, label=f"{names[k]}, learned")
            rax.stairs(1 + err[k] / true[k], edges, baseline=1 - err[k] / true[k], fill=True, alpha=0.25,
                       color=f"C{k}")
            rax.stairs(learned[k] / true[k], edges, baseline=None, color=f"C{k}", ls="--", lw=1.5)
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.05)
    dress_ratio_axis(rax, "learned / truth", (0.8, 1.2), xlabel)
    rax.set_xlim(edges[0], edges[-1])
    fig.subplots_adjust(hspace=0.05)
    _finish(fig, ax, path, title)
    return fractions


def plot_bayesian_pull(w: np.ndarray, mu: np.ndarray, sigma: np.ndarray, path: str | Path,
                       w_bins: np.ndarray | None = None, title: str | None = None) -> None:
    """Fig 4.13: 2D histogram of w vs σ/μ (top), median σ/μ per w bin (centre) and the
    Eq 4.18 pulls t = μ(1−w)/σ against a unit Gaussian (bottom)."""
    w = np.asarray(w, np.float64)
    rel = np.asarray(sigma, np.float64) / np.asarray(mu, np.float64)
    prof = relative_error_profile(w, mu, sigma, w_bins)
    edges = prof["edges"]
    fig, (top, mid, bot) = plt.subplots(3, 1, figsize=(5.5, 10))
    rel_hi = float(np.quantile(rel, 0.99)) if len(rel) else 1.0
    top.hist2d(w, rel, bins=[edges, np.linspace(0, rel_hi, 40)], cmin=1, cmap="viridis")
    top.set_xlabel("classifier weight $w$")
    top.set_ylabel(r"$\sigma/\mu$ of the density")
    if title:
        top.set_title(title, fontsize="medium")
    mid.stairs(prof["median"], edges, baseline=None, label="median")
    mid.stairs(prof["q84"], edges, baseline=None, ls=":", color="C0", label="16-84 % quantiles")
    mid.stairs(prof["q16"], edges, baseline=None, ls=":", color="C0")
    mid.set_xlabel("classifier weight $w$")
    mid.set_ylabel(r"$\sigma/\mu$")
    mid.legend(fontsize="small", title=f"Spearman(|log w|, σ/μ) = {prof['spearman']:.2f}")
    t = mixed_pull(w, mu, sigma)
    t = t[np.isfinite(t)]
    bot.hist(np.clip(t, -5, 5), np.linspace(-5, 5, 61), density=True, histtype="step",
             label=f"$t$ (std {np.std(t):.2f})" if len(t) else "$t$")
    grid = np.linspace(-5, 5, 200)
    bot.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), color="grey", ls="--", label="N(0, 1)")
    bot.set_xlabel(r"$t = \mu(1-w)/\sigma$")
    bot.set_ylabel("normalised density")
    bot.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
