"""Precision metrics of generated distributions (thesis §4.2.2, Fig 4.4 and Eq 4.10).

The headline number is the *bulk deviation*: the mean relative deviation
``|a/ref − 1|`` of two normalised histograms over the bins that hold at least 1 % of the
reference events. The thesis quotes percent-level agreement in the bulk of pT
distributions and 1-10 % for M_μμ and ΔR_jj, to be compared with the train-vs-truth
deviation of two statistically independent samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lhcflow.data.events import EventBatch
from lhcflow.physics.observables import Observable, control_observables, exclusive_jets
from lhcflow.zjets.preprocessing import ZJETS_SLOTS



def _values(h) -> np.ndarray:
    """Bin contents without flow bins of a ``hist.Hist`` or an array."""
    if hasattr(h, "values"):
        return np.asarray(h.values(flow=False), dtype=np.float64)
    return np.asarray(h, dtype=np.float64)


def bulk_deviation(hist_a, hist_ref, min_fraction: float = 0.01) -> float:
    """Mean of ``|a/ref − 1|`` over the bins holding ≥ ``min_fraction`` of the (normalised)
    reference; both histograms are normalised to unit sum first. NaN if no bin qualifies."""
    a, ref = _values(hist_a), _values(hist_ref)
    if a.shape != ref.shape:
        raise ValueError(f"histogram shapes differ: {a.shape} vs {ref.shape}")
    a_sum, ref_sum = a.sum(), ref.sum()
    if not (a_sum > 0 and ref_sum > 0):
        return float("nan")
    a, ref = a / a_sum, ref / ref_sum
    bulk = ref >= min_fraction
    if not bulk.any():
        return float("nan")
    return float(np.mean(np.abs(a[bulk] / ref[bulk] - 1.0)))


def relative_deviation_percent(hist_a, hist_ref) -> np.ndarray:
    """Per-bin ``δ[%] = 100 |a − ref| / ref`` of the normalised histograms (Eq 4.10); NaN where ref is empty."""
    a, ref = _values(hist_a), _values(hist_ref)
    a, ref = a / max(a.sum(), 1e-300), ref / max(ref.sum(), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, 100.0 * np.abs(a - ref) / ref, np.nan)


def zjets_benchmark_observables() -> list[Observable]:
    """The Fig 4.4 set: pT,j1 and M_μμ for Z+1j, pT,j2 and ΔR_j1j2 for Z+2j, the three
    ΔR_jj for Z+3j (exclusive in stored jets) and the inclusive H_T."""
    obs = {o.name: o for o in control_observables(ZJETS_SLOTS)}
    return [
        exclusive_jets(obs["j1_pt"], 1),
        exclusive_jets(obs["m_mu1mu2"], 1),
        exclusive_jets(obs["j2_pt"], 2),
        exclusive_jets(obs["dR_j1j2"], 2),
        exclusive_jets(obs["dR_j1j2"], 3),
        exclusive_jets(obs["dR_j2j3"], 3),
        exclusive_jets(obs["dR_j1j3"], 3),
        obs["ht"],
    ]


def batch_histograms(batch: EventBatch, observables: Sequence[Observable], weights: np.ndarray | None = None) -> dict:
    """Weighted histograms (``hist.Hist``, binning of each observable) of one in-memory batch;
    ``weights`` defaults to ``batch.weight``."""
    from lhcflow.plots.distributions import empty_histogram  # plotting stack only when needed

    weights = batch.weight if weights is None else np.asarray(weights, dtype=np.float64)
    hists = {}
    for obs in observables:
        values, mask = obs(batch)
        h = empty_histogram(obs)
        h.fill(np.asarray(values)[mask], weight=weights[mask])
        hists[obs.name] = h
    return hists


def deviation_table(train, generated, truth, observables: Sequence[Observable] | None = None,
                    min_fraction: float = 0.01) -> dict[str, dict[str, float]]:
    """``{observable: {"generated": bulk_deviation(gen, truth), "train": bulk_deviation(train, truth)}}``.

    Each sample is an :class:`EventBatch` (weighted by ``batch.weight``; put the magic
    inverse weights there for generated events) or a mapping ``name -> histogram``
    already filled with the observables' binning. ``observables`` defaults to
    :func:`zjets_benchmark_observables`.
    """
    observables = list(zjets_benchmark_observables() if observables is None else observables)
    h_train, h_gen, h_truth = (_as_hists(s, observables) for s in (train, generated, truth))
    return {obs.name: {"generated": bulk_deviation(h_gen[obs.name], h_truth[obs.name], min_fraction),
                       "train": bulk_deviation(h_train[obs.name], h_truth[obs.name], min_fraction)}
            for obs in observables}


def _as_hists(sample, observables: Sequence[Observable]) -> Mapping:
    if isinstance(sample, EventBatch):
        return batch_histograms(sample, observables)
    return sample
