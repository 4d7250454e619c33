"""Merging validation of a showered multi-jet LHE sample: differential jet rates and jet pT spectra,
split by the parton multiplicity of the LHE event, with the merging scale marked.

The differential jet rate sqrt(d_{n,n+1}) is the kT scale at which the exclusive kT algorithm turns
n + 1 jets into n (:func:`lhcflow.generation.jets.jet_rates`). Below the merging scale the
distribution comes from the shower of the lower multiplicities, above it from the matrix element of
the higher ones; a good merging gives a sum that is smooth across the scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import hist
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
import uproot  # noqa: E402

from lhcflow.atomic import write_json  # noqa: E402
from lhcflow.generation.pythia import hard_partons  # noqa: E402
from lhcflow.generation.shards import combine_shards  # noqa: E402
from lhcflow.plots.style import save_figure  # noqa: E402

DJR = {"DJR_d01": (0, 1), "DJR_d12": (1, 2), "DJR_d23": (2, 3)}
SCALE_LABEL = {"mlm": "MLM qCut", "ckkwl": "CKKW-L merging scale"}


@dataclass
class MergedEvents:
    """Per event: jet rates (GeV), jet pTs (jagged, GeV), LHE parton multiplicity, dσ (pb)."""
    djr: dict[str, np.ndarray]
    jet_pt: ak.Array
    partons: np.ndarray
    sigma_pb: np.ndarray
    scheme: str
    scale_gev: float | None
    scale_type: str | None


def read_merged_events(roots: Sequence[str | Path], metas: Sequence[dict]) -> MergedEvents:
    """The shards of one sample; each event's dσ is σ × w / Σw (σ: :func:`combine_shards`)."""
    if not metas or "merging" not in metas[0] or metas[0]["merging"]["scheme"] == "none":
        raise ValueError("merging plots need the shards of a merged LHE sample (MLM or CKKW-L)")
    parts = [uproot.open(path)["Events"].arrays([*DJR, "Jet_pt", "GenHard_pdgId", "genWeight"])
             for path in roots]
    events = ak.concatenate(parts)
    weights = ak.to_numpy(events.genWeight).astype(np.float64)
    sigma = combine_shards(list(metas))["cross_section_pb"]
    merging = metas[0]["merging"]
    return MergedEvents(
        djr={name: ak.to_numpy(events[name]).astype(np.float64) for name in DJR},
        jet_pt=events.Jet_pt,
        partons=hard_partons(ak.zip({"pdgId": events.GenHard_pdgId})),
        sigma_pb=sigma * weights / weights.sum() if weights.sum() != 0 else weights,
        scheme=merging["scheme"], scale_gev=merging.get("merging_scale_gev"),
        scale_type=merging.get("scale_type"),
    )


def _split_hists(values: np.ndarray, partons: np.ndarray, sigma: np.ndarray, edges: np.ndarray) -> dict:
    """Weighted histograms per LHE parton multiplicity and their sum (key ``None``)."""
    axis = hist.axis.Variable(edges, underflow=False, overflow=False)
    out = {}
    for n in [None, *np.unique(partons)]:
        mask = np.ones(len(values), bool) if n is None else partons == n
        h = hist.Hist(axis, storage=hist.storage.Weight())
        h.fill(values[mask], weight=sigma[mask])
        out[n] = h
    return out


def plot_split(values: np.ndarray, events: MergedEvents, edges: np.ndarray, xlabel: str, ylabel: str,
               path: str | Path, per_log: bool, title: str) -> dict:
    """dσ/dx (or dσ/dlog10 x) on log axes, total and per LHE parton multiplicity, the fraction of each
    multiplicity below, the merging scale as a dashed line; returns the histogram contents."""
    hists = _split_hists(values, events.partons, events.sigma_pb, edges)
    width = np.diff(np.log10(edges)) if per_log else np.diff(edges)
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    total = hists[None]
    total_val = total.values()
    mplhep.histplot(total_val / width, edges, yerr=np.sqrt(total.variances()) / width, ax=ax, color="black",
                    label="sum", histtype="step", lw=1.6)
    contents = {"edges": edges.tolist(), "sum": total_val.tolist()}
    for k, n in enumerate(n for n in hists if n is not None):
        h = hists[n]
        label = f"{n} parton{'s' if n != 1 else ''} (LHE)"
        mplhep.histplot(h.values() / width, edges, yerr=np.sqrt(h.variances()) / width, ax=ax, color=f"C{k}",
                        label=label, histtype="step", ls="--")
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(total_val > 0, h.values() / total_val, np.nan)
        mplhep.histplot(fraction, edges, ax=rax, color=f"C{k}", histtype="step")
        contents[str(n)] = h.values().tolist()
    if events.scale_gev and edges[0] < events.scale_gev < edges[-1]:
        kind = SCALE_LABEL.get(events.scheme, "merging scale")
        if events.scheme == "ckkwl" and events.scale_type == "ptlund":
            kind += r" ($p_\mathrm{T}^\mathrm{Lund}$)"
        for a in (ax, rax):
            a.axvline(events.scale_gev, color="grey", ls=":", lw=1.2)
        ax.text(events.scale_gev * 1.05, 0.97, f"{kind} = {events.scale_gev:g} GeV", va="top",
                transform=ax.get_xaxis_transform(), fontsize="small", color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small", loc="lower left")
    rax.set_ylim(0, 1.05)
    rax.set_ylabel("fraction\nof sum", fontsize="small")
    rax.set_xlabel(xlabel)
    rax.set_xlim(edges[0], edges[-1])
    rax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    rax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:g}"))
    rax.xaxis.set_minor_formatter(mticker.NullFormatter())
    save_figure(fig, path)
    return contents


def merging_figures(roots: Sequence[str | Path], metas: Sequence[dict], out_dir: str | Path, fmt: str = "png",
                    title: str = "") -> list[Path]:
    """Differential jet rates d01, d12, d23 and the pT of the three leading jets, split by the LHE
    parton multiplicity; the histogram contents go to ``histograms.json``."""
    events = read_merged_events(roots, metas)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, contents = [], {}
    djr_edges = np.geomspace(1.0, 500.0, 41)
    for name, (lo, hi) in DJR.items():
        path = out_dir / f"djr_d{lo}{hi}.{fmt}"
        xlabel = rf"$\sqrt{{d_{{{lo}{hi}}}}}$ [GeV] (exclusive $k_\mathrm{{T}}$, R = 1)"
        ylabel = rf"d$\sigma$/d$\log_{{10}}\sqrt{{d_{{{lo}{hi}}}}}$ [pb]"
        contents[name] = plot_split(events.djr[name], events, djr_edges, xlabel, ylabel, path, True, title)
        written.append(path)
    pt_edges = np.geomspace(20.0, 500.0, 31)
    padded = ak.fill_none(ak.pad_none(events.jet_pt, 3, axis=1), 0.0)
    for k in range(3):
        path = out_dir / f"jet{k + 1}_pt.{fmt}"
        values = ak.to_numpy(padded[:, k]).astype(np.float64)
        xlabel, ylabel = rf"$p_\mathrm{{T}}$ of jet {k + 1} [GeV]", r"d$\sigma$/d$p_\mathrm{T}$ [pb/GeV]"
        contents[f"jet{k + 1}_pt"] = plot_split(values, events, pt_edges, xlabel, ylabel, path, False, title)
        written.append(path)
    write_json(out_dir / "histograms.json", {"scheme": events.scheme, "scale_gev": events.scale_gev,
                                             "histograms": contents})
    return written
