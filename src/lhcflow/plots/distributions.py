"""Weighted 1D distributions of several samples with a ratio panel (hist + mplhep).

Histograms are filled chunk by chunk from canonical files, so memory stays bounded by
the chunk size whatever the sample size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import hist
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402

from lhcflow.data.events import iter_events, read_info  # noqa: E402
from lhcflow.physics.observables import Observable, control_observables  # noqa: E402
from lhcflow.plots.style import dress_distribution_axes, dress_ratio_axis, save_figure  # noqa: E402


def empty_histogram(observable: Observable) -> hist.Hist:
    axis = hist.axis.Regular(observable.bins, observable.low, observable.high, name=observable.name,
                             label=observable.axis_label, underflow=True, overflow=True)
    return hist.Hist(axis, storage=hist.storage.Weight())


def fill_histograms(paths: Sequence[str | Path], observables: Sequence[Observable],
                    chunk_size: int = 200_000) -> dict[str, hist.Hist]:
    """Histograms of ``observables`` over the events of ``paths`` (weighted, streamed)."""
    hists = {obs.name: empty_histogram(obs) for obs in observables}
    for path in paths:
        for batch in iter_events(path, chunk_size):
            for obs in observables:
                values, mask = obs(batch)
                hists[obs.name].fill(values[mask], weight=batch.weight[mask])
    return hists


def plot_comparison(hists: Mapping[str, hist.Hist], observable: Observable, path: str | Path,
                    reference: str | None = None, title: str | None = None) -> None:
    """Normalised distributions of each sample and their ratio to ``reference``.

    Error bars are the statistical uncertainties sqrt(Σw²) of the weighted fills.
    """
    labels = [k for k, h in hists.items() if h.sum(flow=False).value > 0]
    if not labels:
        raise ValueError(f"no sample has entries for {observable.name}")
    reference = reference if reference in labels else labels[0]
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(6, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    edges = hists[reference].axes[0].edges
    widths = np.diff(edges)
    density = {}
    colors = {label: f"C{i}" for i, label in enumerate(labels)}
    for label in labels:
        h = hists[label]
        norm = h.sum(flow=False).value
        density[label] = (h.values() / norm / widths, np.sqrt(h.variances()) / norm / widths)
        mplhep.histplot(density[label][0], edges, yerr=density[label][1], ax=ax, label=label, color=colors[label],
                        histtype="step" if label != reference else "fill",
                        **({"alpha": 0.3} if label == reference else {}))
    ref_val, ref_err = density[reference]
    with np.errstate(divide="ignore", invalid="ignore"):
        for label in labels:
            val, err = density[label]
            ratio = np.where(ref_val > 0, val / ref_val, np.nan)
            ratio_err = np.where(ref_val > 0, err / ref_val, np.nan)
            if label == reference:
                rax.fill_between(edges, np.append(1 - ratio_err, 1 - ratio_err[-1]),
                                 np.append(1 + ratio_err, 1 + ratio_err[-1]), step="post", alpha=0.3,
                                 color=colors[label])
            else:
                mplhep.histplot(ratio, edges, yerr=ratio_err, ax=rax, histtype="errorbar", color=colors[label])
    dress_ratio_axis(rax, f"ratio to\n{reference}", (0.5, 1.5), observable.axis_label)
    dress_distribution_axes(ax, observable, edges, title)
    save_figure(fig, path)


def compare_samples(files: Mapping[str, Sequence[str | Path]], out_dir: str | Path, reference: str | None = None,
                    fmt: str = "png", title: str | None = None, chunk_size: int = 200_000) -> list[Path]:
    """One comparison figure per control observable; ``files`` maps a legend label to the
    canonical files of one sample. Observables are matched by name (slot labels), so samples
    with different slot layouts share the figures of the slots they have in common."""
    filled, observables = {}, {}
    for label, paths in files.items():
        sample_obs = control_observables(read_info(paths[0]).slots)
        filled[label] = fill_histograms(paths, sample_obs, chunk_size)
        observables.update({obs.name: obs for obs in sample_obs if obs.name not in observables})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, obs in observables.items():
        hists = {label: h[name] for label, h in filled.items() if name in h}
        if all(h.sum(flow=False).value == 0 for h in hists.values()):
            continue
        path = out_dir / f"{name}.{fmt}"
        plot_comparison(hists, obs, path, reference=reference, title=title)
        written.append(path)
    return written
