"""Training diagnostics: loss curves of the networks of a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.plots.style import save_figure  # noqa: E402


def plot_loss_curves(histories: Sequence[dict], path: str | Path) -> None:
    """Training (solid) and validation (dashed) loss per epoch, one colour per network."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, h in enumerate(histories):
        label = f"{h.get('kind', '')} net{h.get('net', i + 1)}".strip()
        ax.plot(h["epoch"], h["train_loss"], color=f"C{i}", label=f"{label} train")
        if any(v == v for v in h["val_loss"]):  # not all NaN
            ax.plot(h["epoch"], h["val_loss"], color=f"C{i}", ls="--", label=f"{label} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative log-likelihood / flow-matching MSE)")
    ax.legend(fontsize="small")
    save_figure(fig, path)


def plot_size_scan(result: dict, observables, path: str | Path) -> None:
    """Relative predictive uncertainty per bin, one line per training-set fraction (Fig. 4.7)."""
    fig, axes = plt.subplots(1, len(observables), figsize=(5 * len(observables), 4), squeeze=False)
    for ax, obs in zip(axes[0], observables):
        for i, (fraction, entry) in enumerate(sorted(result[obs.name].items(), key=lambda kv: float(kv[0]))):
            edges = np.asarray(entry["edges"])
            ax.stairs(np.nan_to_num(entry["relative_sigma_pred"]), edges, color=f"C{i}",
                      label=f"{float(fraction):.0%} of training data")
        ax.set_xlabel(obs.axis_label)
        ax.set_ylabel(r"relative uncertainty $\sigma_\mathrm{pred}/\langle n\rangle$")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    save_figure(fig, path)
