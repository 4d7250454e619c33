"""Forward-simulated reco distributions of a transfer network against the simulation (thesis Figs 6.5, 6.16)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.plots.style import dress_ratio_axis, save_figure  # noqa: E402

#: per reco object: (quantity index in (pT, η, φ, m), name, label, unit, edges)
RECO_QUANTITIES = ((0, "pt", r"p_{T,%s}", "GeV", np.linspace(0.0, 300.0, 31)),
                   (1, "eta", r"\eta_{%s}", "", np.linspace(-2.5, 2.5, 26)))
SLOT_LABELS = {"a1": r"\gamma_1", "a2": r"\gamma_2", "b": "b", "mu": r"\mu", "j1": "j_1", "j2": "j_2", "j3": "j_3"}


def _density(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1] - 1e-9), edges)
    norm = max(counts.sum(), 1) * np.diff(edges)
    return counts / norm, np.sqrt(counts) / norm


def plot_transfer_distribution(truth: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray],
                               edges: np.ndarray, xlabel: str, path: str | Path, title: str,
                               generated_label: str = "transfer") -> dict[str, float]:
    """Normalised reco distributions per α (keys: α labels), simulation solid and network dashed, with
    the ratio network/simulation below; returns the largest |ratio − 1| per α in bins with ≥ 20 events."""
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    worst = {}
    for i, label in enumerate(truth):
        color = f"C{i}"
        t_val, t_err = _density(truth[label], edges)
        g_val, g_err = _density(generated[label], edges)
        mplhep.histplot(t_val, edges, yerr=t_err, ax=ax, color=color, label=f"simulation, {label}")
        mplhep.histplot(g_val, edges, ax=ax, color=color, ls="--", label=f"{generated_label}, {label}")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(t_val > 0, g_val / t_val, np.nan)
            ratio_err = np.where(t_val > 0, np.hypot(g_err, ratio * t_err) / t_val, np.nan)
        mplhep.histplot(ratio, edges, yerr=ratio_err, ax=rax, histtype="errorbar", color=color, markersize=3)
        counts, _ = np.histogram(truth[label], edges)
        good = (counts >= 20) & np.isfinite(ratio)
        worst[label] = float(np.max(np.abs(ratio[good] - 1))) if good.any() else float("nan")
    ax.set_ylabel("normalised density" + (f" [1/{xlabel.split('[')[-1]}" if "[" in xlabel else ""))
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="x-small", ncol=2)
    ax.set_xlim(edges[0], edges[-1])
    dress_ratio_axis(rax, f"{generated_label}/\nsimulation", (0.5, 1.5), xlabel)
    save_figure(fig, path)
    return worst
