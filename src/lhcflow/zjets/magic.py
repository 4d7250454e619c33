"""The magic transformation of thesis §4.2.1 (Eq 4.7-4.9).

Training events are reweighted by the linear smoothing function ``f(ΔR_jj)`` (Eq 4.7),
a product over all jet pairs for 3-jet events, which flattens the collinear peak just
above ``R_min``; the network is trained on these weights (Eq 4.8, batch-normalised in the
loss). Generated n-jet events get the inverse weights ``f̄`` (Eq 4.9), zero below ``R_min``
to enforce the jet separation, times the training-set mean ``⟨f⟩_n`` (see
:func:`generated_weights`); :func:`normalise_multiplicities` then scales each multiplicity to its
training fraction. The weighted events can be unweighted by rejection (thesis §2.2.5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from collections.abc import Mapping
from pathlib import Path

from lhcflow.data.events import EventBatch, ObjectType
from lhcflow.physics.observables import pair_delta_r
from lhcflow.zjets.preprocessing import by_multiplicity

log = logging.getLogger(__name__)

R_MINUS = 0.2
R_PLUS = 1.5
R_MIN = 0.4


def smoothing_weight(dr: np.ndarray, r_minus: float = R_MINUS, r_plus: float = R_PLUS) -> np.ndarray:
    """``f(ΔR)`` of Eq 4.7: 0 below R₋, linear on [R₋, R₊], 1 above R₊."""
    _check_radii(r_minus, r_plus)
    dr = np.asarray(dr, dtype=np.float64)
    return np.clip((dr - r_minus) / (r_plus - r_minus), 0.0, 1.0)


def inverse_smoothing_weight(dr: np.ndarray, r_min: float = R_MIN, r_minus: float = R_MINUS,
                             r_plus: float = R_PLUS) -> np.ndarray:
    """``f̄(ΔR)`` of Eq 4.9: 0 below R_min, (R₊−R₋)/(ΔR−R₋) on [R_min, R₊], 1 above R₊;
    ``f·f̄ = 1`` on [R_min, ∞)."""
    _check_radii(r_minus, r_plus)
    if r_min <= r_minus:
        raise ValueError(f"R_min={r_min} must exceed R_-={r_minus}")
    dr = np.asarray(dr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = (r_plus - r_minus) / (dr - r_minus)
    return np.where(dr < r_min, 0.0, np.where(dr <= r_plus, mid, 1.0))


def jet_pair_delta_r(batch: EventBatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(ΔR, both-jets-present mask)`` for every pair of jet slots of the layout."""
    jet_slots = [k for k in range(batch.n_slots) if np.any(batch.type[:, k] == ObjectType.JET)]
    pairs = []
    for a in range(len(jet_slots)):
        for b in range(a + 1, len(jet_slots)):
            i, j = jet_slots[a], jet_slots[b]
            dr, mask = pair_delta_r(batch, i, j)
            mask = mask & (batch.type[:, i] == ObjectType.JET) & (batch.type[:, j] == ObjectType.JET)
            pairs.append((np.asarray(dr, dtype=np.float64), mask))
    return pairs


def training_weights(batch: EventBatch, r_minus: float = R_MINUS, r_plus: float = R_PLUS) -> np.ndarray:
    """Magic-transformation weights of the training events: 1 for one jet,
    ``f(ΔR_j1j2)`` for two, ``f(ΔR_j1j2) f(ΔR_j2j3) f(ΔR_j1j3)`` for three (below Eq 4.7).

    Multiplies into nothing else: combine with ``batch.weight`` in the loss if needed.
    """
    w = np.ones(len(batch))
    for dr, mask in jet_pair_delta_r(batch):
        w = np.where(mask, w * smoothing_weight(dr, r_minus, r_plus), w)
    return w


def inverse_weights(batch: EventBatch, r_min: float = R_MIN, r_minus: float = R_MINUS,
                    r_plus: float = R_PLUS) -> np.ndarray:
    """Weights of generated events (Eq 4.9): product of ``f̄`` over jet pairs, hence zero
    if any ``ΔR_jj < R_min``."""
    w = np.ones(len(batch))
    for dr, mask in jet_pair_delta_r(batch):
        w = np.where(mask, w * inverse_smoothing_weight(dr, r_min, r_minus, r_plus), w)
    return w


def mean_training_weight(batch: EventBatch, r_minus: float = R_MINUS,
                         r_plus: float = R_PLUS) -> dict[int, float]:
    """``⟨f⟩_n = Σ_i w_i f_i / Σ_i w_i`` over the n-jet events (event weights ``w``), the
    normalisation of the density learned with the weights of Eq 4.8; see :func:`generated_weights`."""
    out = {}
    for n, sub in by_multiplicity(batch).items():
        total = float(sub.weight.sum())
        if len(sub) and total <= 0:
            raise ValueError(f"the {n}-jet training events have total weight {total}: ⟨f⟩_{n} is undefined")
        if len(sub):
            out[n] = float(np.sum(sub.weight * training_weights(sub, r_minus, r_plus)) / total)
    return out


def generated_weights(batch: EventBatch, mean_f: Mapping[int, float], r_min: float = R_MIN,
                      r_minus: float = R_MINUS, r_plus: float = R_PLUS) -> np.ndarray:
    """Importance weights ``⟨f⟩_n f̄(x)`` of generated n-jet events, before
    :func:`normalise_multiplicities`.

    Trained with the f-weighted loss of Eq 4.8, the chain learns the normalised density
    ``p_f(x|n) = f(x) p(x|n) / ⟨f⟩_n`` (``⟨f⟩_n`` from :func:`mean_training_weight`). For
    ``x ~ p_f`` the weight towards ``p(x|n)`` is ``p/p_f = ⟨f⟩_n / f(x) = ⟨f⟩_n f̄(x)`` on
    ``ΔR_jj ≥ R_min`` (Eq 4.9, zero below), so ``E[⟨f⟩_n f̄] = P(ΔR_jj ≥ R_min | n)``: 1 for a
    generator that learned p_f on data with the jet separation cut. Their mean per multiplicity is
    the closure test of the generator (``f̄`` alone would average to ``1/⟨f⟩_n`` instead).
    """
    counts = batch.multiplicity(ObjectType.JET)
    missing = sorted(set(np.unique(counts).tolist()) - {int(k) for k in mean_f})
    if missing:
        raise ValueError(f"no ⟨f⟩_n for jet multiplicities {missing} (have {sorted(mean_f)})")
    norm = np.zeros(len(batch))
    for n, value in mean_f.items():
        norm[counts == int(n)] = float(value)
    return norm * inverse_weights(batch, r_min, r_minus, r_plus)


@dataclass(frozen=True)
class MagicClosure:
    """Mean importance weight ``⟨⟨f⟩_n f̄⟩`` of the generated n-jet events and its error
    (std/√N_n): 1 for a generator that learned ``p_f``; above 1 where it over-populates the
    region that ``f`` suppresses (small ΔR_jj), below 1 where it fills ΔR_jj < R_min."""

    n_jets: int
    events: int
    mean: float
    error: float

    def to_dict(self) -> dict:
        return {"events": self.events, "mean": self.mean, "error": self.error}


class MultiplicityTally:
    """Running per-multiplicity sums of the importance weights ``⟨f⟩_n f̄`` of generated events: what
    :func:`multiplicity_scales` needs, gathered block by block so that sampling can stream."""

    def __init__(self) -> None:
        self.events: dict[int, int] = {}
        self.sum: dict[int, float] = {}
        self.sum_sq: dict[int, float] = {}
        self.max: dict[int, float] = {}
        self.zeros = 0

    def add(self, weights: np.ndarray, n_jets: np.ndarray) -> None:
        weights = _check_weights(weights)
        n_jets = np.asarray(n_jets)
        self.zeros += int(np.count_nonzero(weights == 0))
        for n in np.unique(n_jets).tolist():
            w = weights[n_jets == n]
            n = int(n)
            self.events[n] = self.events.get(n, 0) + len(w)
            self.sum[n] = self.sum.get(n, 0.0) + float(w.sum())
            self.sum_sq[n] = self.sum_sq.get(n, 0.0) + float(np.square(w).sum())
            self.max[n] = max(self.max.get(n, 0.0), float(w.max()))

    @property
    def total(self) -> int:
        return sum(self.events.values())

    def closure(self) -> dict[int, MagicClosure]:
        """:class:`MagicClosure` per multiplicity: the mean weight and its error std/√N_n."""
        out = {}
        for n, k in sorted(self.events.items()):
            mean = self.sum[n] / k
            var = max(self.sum_sq[n] - k * mean * mean, 0.0) / (k - 1) if k > 1 else float("nan")
            out[n] = MagicClosure(n, k, mean, float(np.sqrt(var / k)))
        return out


def multiplicity_scales(tally: MultiplicityTally, fractions: Mapping[int, float]) -> dict[int, float]:
    """Per-multiplicity factors that make the n-jet weights sum to ``N F_n`` (``N`` all events, ``F_n``
    the training fractions the chain draws multiplicities with): weighted multiplicity fractions equal
    to the training ones whatever the generator's closure.

    With the unnormalised ``⟨f⟩_n f̄`` a generator that mis-learns ``p_f`` where ``f`` is small
    shifts the fractions (the magic weights amplify its error there by up to
    ``((R₊−R₋)/(R_min−R₋))^{pairs}``); the per-event weights only reshape each multiplicity
    (Eq 4.9), its total is known from the training data.
    """
    known = {int(k): float(v) for k, v in fractions.items()}
    total = sum(known.values())
    scales = {}
    for n, s_n in sorted(tally.sum.items()):
        if n not in known:
            raise ValueError(f"generated {n}-jet events, but the chain has no fraction for them "
                             f"(have {sorted(known)})")
        if not s_n > 0:
            raise ValueError(f"every generated {n}-jet event has weight 0 (all below R_min): the "
                             "generator did not learn this multiplicity; retrain it")
        scales[n] = tally.total * known[n] / total / s_n
    return scales


def normalise_multiplicities(weights: np.ndarray, n_jets: np.ndarray,
                             fractions: Mapping[int, float]) -> tuple[np.ndarray, dict[int, MagicClosure]]:
    """Self-normalised weights of a whole sample in memory (:func:`multiplicity_scales`). Returns the
    weights and the closure :class:`MagicClosure` of the input weights per multiplicity (report it: it
    is the generator defect that the normalisation takes out of the fractions)."""
    weights = _check_weights(weights)
    n_jets = np.asarray(n_jets)
    tally = MultiplicityTally()
    tally.add(weights, n_jets)
    scales = multiplicity_scales(tally, fractions)
    out = np.zeros_like(weights)
    for n, scale in scales.items():
        members = n_jets == n
        out[members] = weights[members] * scale
    return out, tally.closure()


def require_normalised_weights(path: str | Path, provenance: Mapping) -> None:
    """Refuse a generated file whose magic-transformation weights were not normalised per
    multiplicity (:func:`normalise_multiplicities`; such files have no ``magic_closure`` in their
    provenance): its weighted multiplicity fractions would be silently wrong."""
    if not (provenance.get("magic") or {}).get("enabled"):
        return
    if provenance.get("magic_mean_f") is None:
        raise ValueError(f"{path}: generated with the magic transformation but its provenance has no "
                         "'magic_mean_f' (⟨f⟩_n), so its weights are f̄ of Eq 4.9 without the "
                         "per-multiplicity normalisation; delete it and rerun zjets_preprocess and "
                         "zjets_sample")
    if provenance.get("magic_closure") is None:
        raise ValueError(f"{path}: generated with the magic transformation before its weights were "
                         "normalised per multiplicity (no 'magic_closure' in its provenance), so its "
                         "weighted multiplicity fractions are not the training ones; delete it and "
                         "rerun zjets_sample")


def unweighting_efficiency(weights: np.ndarray, w_max: float | None = None) -> float:
    """Expected acceptance ``⟨w⟩ / w_max`` of rejection unweighting."""
    weights = _check_weights(weights)
    w_max = float(weights.max()) if w_max is None else float(w_max)
    return float(weights.mean() / w_max) if len(weights) and w_max > 0 else 0.0


def unweight(weights: np.ndarray, rng: np.random.Generator | int | None = None,
             w_max: float | None = None) -> np.ndarray:
    """Rejection unweighting: keep event i with probability ``min(w_i / w_max, 1)``
    (``w_max`` defaults to the largest weight). Returns the boolean mask of kept events;
    kept events carry weight 1 (``w_max`` in absolute normalisation). Use one ``w_max`` for
    all multiplicities of a sample of :func:`generated_weights`: the kept n-jet events are then
    proportional to their weight sums, so the multiplicity fractions survive. The efficiency
    is logged; see :func:`unweighting_efficiency`."""
    weights = _check_weights(weights)
    rng = np.random.default_rng(rng)
    if w_max is None:
        w_max = float(weights.max()) if len(weights) else 0.0
    if w_max <= 0:
        return np.zeros(len(weights), dtype=bool)
    keep = rng.random(len(weights)) * w_max < weights
    n_over = int((weights > w_max).sum())
    log.info("unweighting: kept %d of %d events (efficiency %.3f, expected %.3f)%s", keep.sum(), len(weights),
             keep.mean(), unweighting_efficiency(weights, w_max),
             f", {n_over} events above w_max" if n_over else "")
    return keep


def _check_weights(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1:
        raise ValueError("weights must be one-dimensional")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("rejection unweighting needs finite, non-negative weights")
    return weights


def _check_radii(r_minus: float, r_plus: float) -> None:
    if not r_plus > r_minus:
        raise ValueError(f"need R_+ > R_-, got R_-={r_minus}, R_+={r_plus}")
