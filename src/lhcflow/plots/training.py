"""Training diagnostics: loss curves of the networks of a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
