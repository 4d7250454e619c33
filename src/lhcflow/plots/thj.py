"""Figures of the tHj chain: σ(α) with the Eq 6.3 fit (Fig 6.2) and hard-level kinematics per α (Fig 6.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import hist
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.physics.observables import Observable  # noqa: E402
from lhcflow.plots.distributions import empty_histogram, plot_comparison  # noqa: E402
from lhcflow.plots.style import dress_ratio_axis, save_figure  # noqa: E402
from lhcflow.thj.hard import eq63  # noqa: E402

PB_TO_FB = 1000.0
HEAVY_LABELS = {"top": "t only", "antitop": "t̄ only", "top_antitop": "t + t̄"}

#: Fig 6.3 observables: name, label, unit, bins, range, log y
HARD_OBSERVABLES = [Observable(name, label, unit, bins, lo, hi, compute=None, log_y=logy) for name, label, unit, bins, lo, hi, logy in (
    ("pt_t", r"$p_{T,t}$", "GeV", 40, 0.0, 400.0, True),
    ("eta_t", r"$\eta_t$", "", 40, -5.0, 5.0, False),
    ("pt_H", r"$p_{T,H}$", "GeV", 40, 0.0, 400.0, True),
    ("eta_H", r"$\eta_H$", "", 40, -5.0, 5.0, False),
    ("pt_j", r"$p_{T,j}$", "GeV", 40, 0.0, 250.0, True),
    ("eta_j", r"$\eta_j$", "", 40, -5.0, 5.0, False),
    ("m_tH", r"$m_{tH}$", "GeV", 40, 250.0, 1250.0, True),
    ("deta_tj", r"$|\Delta\eta_{t,j}|$", "", 40, 0.0, 8.0, False),
)]


def plot_sigma_alpha(angles_deg: Sequence[float], values_pb: Sequence[float], errors_pb: Sequence[float],
                     parameters_pb: Mapping[str, float], path: str | Path, title: str,
                     ylabel: str = r"$\sigma(\alpha)$ [fb]",
                     independent: tuple[Sequence[float], Sequence[float], Sequence[float]] | None = None,
                     labels: tuple[str, str] = (r"from the factorised $\sigma_i$",
                                                r"separate integration at fixed $\alpha$")) -> None:
    """σ at the fit angles with error bars, the Eq 6.3 curve, and their ratio (Fig 6.2 analogue).

    ``independent`` = (angles, values, errors) of separate integrations at fixed α, drawn as a check.
    """
    a = np.asarray(angles_deg, dtype=float)
    v, e = np.asarray(values_pb) * PB_TO_FB, np.asarray(errors_pb) * PB_TO_FB
    grid = np.linspace(-180.0, 180.0, 361)
    curve = eq63(np.radians(grid), parameters_pb) * PB_TO_FB
    at_points = eq63(np.radians(a), parameters_pb) * PB_TO_FB
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    ax.plot(grid, curve, color="C0", label="Eq. (6.3) fit")
    ax.errorbar(a, v, yerr=e, fmt="o", color="k", ms=4, label=labels[0])
    rel = [np.max(e / np.abs(at_points))]
    if independent is not None:
        ia = np.asarray(independent[0], dtype=float)
        iv, ie = np.asarray(independent[1]) * PB_TO_FB, np.asarray(independent[2]) * PB_TO_FB
        ax.errorbar(ia + 3, iv, yerr=ie, fmt="s", color="C3", ms=4, label=labels[1])
        ref = eq63(np.radians(ia), parameters_pb) * PB_TO_FB
        rax.errorbar(ia + 3, iv / ref, yerr=ie / np.abs(ref), fmt="s", color="C3", ms=4)
        rel.append(np.max(np.abs(iv / ref - 1) + ie / np.abs(ref)))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    text = "\n".join(f"{k} = {val * PB_TO_FB:.3g} fb" for k, val in parameters_pb.items())
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize="small")
    ax.legend(fontsize="small", loc="upper right")
    with np.errstate(divide="ignore", invalid="ignore"):
        rax.errorbar(a, v / at_points, yerr=e / np.abs(at_points), fmt="o", color="k", ms=4)
    half = float(np.clip(1.3 * max(rel), 0.05, 1.0))
    dress_ratio_axis(rax, "ratio to fit", (1 - half, 1 + half), r"CP phase $\alpha$ [deg]")
    rax.set_xlim(-185, 185)
    rax.set_xticks([-180, -135, -90, -45, 0, 45, 90, 135, 180])
    save_figure(fig, path)


def hard_histograms(values: Mapping[str, np.ndarray], weights: np.ndarray) -> dict[str, hist.Hist]:
    """Weighted histograms of the Fig 6.3 observables."""
    out = {}
    for obs in HARD_OBSERVABLES:
        h = empty_histogram(obs)
        h.fill(values[obs.name], weight=weights)
        out[obs.name] = h
    return out


def plot_hard_distributions(samples: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]], out_dir: str | Path,
                            fmt: str = "png", reference: str | None = None) -> list[Path]:
    """Normalised hard-level distributions per α with ratios to ``reference`` (Fig 6.3 analogue)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hists = {label: hard_histograms(values, weights) for label, (values, weights) in samples.items()}
    paths = []
    for obs in HARD_OBSERVABLES:
        path = out_dir / f"{obs.name}.{fmt}"
        plot_comparison({label: h[obs.name] for label, h in hists.items()}, obs, path, reference=reference,
                        title=r"$pp \to tHj$, hard scattering")
        paths.append(path)
    return paths


def summary_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) rows of the cross-section summary for the report table."""
    fit = record["fit"]
    rows = [("heavy lines used downstream", HEAVY_LABELS[record["heavy"]])]
    for name, row in record["by_heavy"].items():
        rows += [(f"σ(0°), {HEAVY_LABELS[name]}",
                  f"{row['sigma_0_pb'] * PB_TO_FB:.2f} ± {row['sigma_0_err_pb'] * PB_TO_FB:.2f} fb"),
                 (f"σ(180°)/σ(0°), {HEAVY_LABELS[name]}", f"{row['ratio_180_0']:.3f} ± {row['ratio_180_0_err']:.3f}")]
    rows.append(("t share of σ(0°)", f"{record['top_fraction_alpha0']:.4f} ± {record['top_fraction_alpha0_err']:.4f}"))
    rows += [(f"{k} (Eq. 6.3)", f"{v * PB_TO_FB:.4g} ± {fit['errors'][k] * PB_TO_FB:.2g} fb")
             for k, v in fit["parameters"].items()]
    return rows


def cut_flow_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(cut, events, fraction, rate) rows of the α = 0 cut flow (Table 6.1 layout)."""
    rows = []
    for step in record["cut_flow_alpha0"]["steps"]:
        fraction = f"{step['fraction']:.3f}" if "fraction" in step else ""
        rows.append((step["name"], str(step.get("events", "")), fraction, f"{step['rate_ab']:.4g}"))
    return rows


THESIS_HEADER = ("quantity", "ours", "thesis", "source", "ratio", "note")


def thesis_rows(record: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Rows of the comparison with Tables 6.1 and 6.2 (:func:`lhcflow.thj.thesis.compare`) of a fiducial record."""
    return [(row["name"], f"{row['value']:.4g} ± {row['error']:.2g} {row['unit']}".strip(),
             f"{row['reference']:.4g} {row['unit']}".strip(), row["reference_source"],
             f"{row['ratio']:.3f} ± {row['ratio_error']:.3f}", row["note"]) for row in record.get("thesis_comparison", [])]
