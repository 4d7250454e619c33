"""Shared figure helpers: axis dressing for distribution panels and atomic saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lhcflow.atomic import atomic_path  # noqa: E402


def dress_distribution_axes(ax, observable, edges, title: str | None = None) -> None:
    """Density label with the observable's unit, log scale if the observable asks for it,
    x range of the binning, legend and optional title."""
    unit = f" [1/{observable.unit}]" if observable.unit else ""
    ax.set_ylabel(f"normalised density{unit}")
    if observable.log_y:
        ax.set_yscale("log")
    ax.set_xlim(edges[0], edges[-1])
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")


def dress_ratio_axis(rax, ylabel: str, ylim: tuple[float, float], xlabel: str) -> None:
    """Ratio panel below a distribution: unit line, y range, labels."""
    rax.axhline(1.0, color="grey", lw=0.8)
    rax.set_ylim(*ylim)
    rax.set_ylabel(ylabel, fontsize="small")
    rax.set_xlabel(xlabel)


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` atomically in the format given by the file suffix and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip("."), bbox_inches="tight", dpi=110)
    plt.close(fig)
