"""What a trained Z+jets generator must show (the checks of ``zjets/*/metrics.json``): the Z peak of M_μμ, the
weighted jet-multiplicity fractions and their pulls against the truth, no weight below R_min."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lhcflow.physics.observables import pair_mass
from lhcflow.zjets import magic
from lhcflow.zjets.chain import fraction_errors
from lhcflow.zjets.preprocessing import by_multiplicity


def mll_peak(batch, lo: float = 70.0, hi: float = 110.0, width: float = 0.5, smooth: int = 5) -> float:
    """Mode of the weighted M_μμ distribution in [lo, hi] GeV: the maximum of a ``width`` GeV
    histogram smoothed by a ``smooth``-bin moving average (so one noisy bin cannot decide)."""
    mass, mask = pair_mass(batch, 0, 1)
    counts, edges = np.histogram(mass[mask], bins=np.arange(lo, hi + width, width), weights=batch.weight[mask])
    smoothed = np.convolve(counts, np.ones(smooth) / smooth, mode="same")
    return float(edges[np.argmax(smoothed)] + width / 2)


def multiplicity_weights(generated, truth, train) -> dict:
    """Per sample and jet multiplicity n: events N_n, weight sum S_n, mean weight S_n/N_n (for
    generated events N F_n/N_n, see :func:`~lhcflow.zjets.magic.normalise_multiplicities`),
    the weighted fraction S_n/S and its error (:func:`~lhcflow.zjets.chain.fraction_errors`)."""
    out = {}
    for name, batch in (("generated", generated), ("truth", truth), ("train", train)):
        parts = fraction_errors(batch)
        out[name] = {}
        for n, sub in by_multiplicity(batch).items():
            s_n = float(sub.weight.sum())
            out[name][n] = {"events": len(sub), "weight": s_n,
                            "mean_weight": s_n / len(sub) if len(sub) else None,
                            "fraction": parts[n][0], "error": parts[n][1]}
    return out


def multiplicity_pulls(generated, truth, train) -> dict[int, float]:
    """``(F_n^gen − F_n^truth) / σ`` of the weighted multiplicity fractions, with
    ``σ² = σ_gen² + σ_truth² + σ_train²``: the generator draws n with the training fractions,
    which scatter about the truth ones like an independent sample."""
    parts = [fraction_errors(b) for b in (generated, truth, train)]
    pulls = {}
    for n, (f_gen, _) in parts[0].items():
        sigma = np.sqrt(sum(p[n][1] ** 2 for p in parts))
        pulls[n] = float((f_gen - parts[1][n][0]) / sigma) if sigma > 0 else 0.0
    return pulls


def default_checks(generated, truth, histories: Sequence[dict], train) -> dict:
    """What the default configuration must show: falling losses, the Z peak within 2 GeV of
    truth, no weight below R_min, and the weighted multiplicity fractions within 4σ of the truth
    ones (:func:`multiplicity_pulls`; weights, not event counts, carry the magic normalisation)."""
    peak_gen, peak_truth = mll_peak(generated), mll_peak(truth)
    close_pairs = [(events_dr < 0.4) & mask for events_dr, mask in magic.jet_pair_delta_r(generated)]
    weight_below_rmin = float(np.abs(generated.weight[np.any(close_pairs, axis=0)]).sum()) if close_pairs else 0.0
    pulls = multiplicity_pulls(generated, truth, train)
    return {
        "loss_decreased": all(h["train_loss"][-1] < h["train_loss"][0] for h in histories),
        "mll_peak_generated_gev": peak_gen,
        "mll_peak_truth_gev": peak_truth,
        "mll_peak_within_2gev": abs(peak_gen - peak_truth) <= 2.0,
        "weight_below_rmin": weight_below_rmin,
        "multiplicity_pulls": pulls,
        "multiplicities_within_4sigma": all(abs(p) < 4 for p in pulls.values()),
    }
