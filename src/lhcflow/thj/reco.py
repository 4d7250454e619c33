"""Reco-level tHj events: object selection, the cut flow of Table 6.1 and x_reco of Eq 6.8.

Objects (from the detector stage, :mod:`lhcflow.detector`): photons and muons with pT > 20 GeV,
|η| < 2.4; "jets" are all reconstructed jets; the b-jet and the light jets are b-tagged and
untagged jets with pT > 25 GeV, |η| < 2.4 and a mass above ``jet_mass_min_gev`` (10 MeV): a "jet" of
one massless particle (a photon that failed identification, about 0.2 % of the accepted leptonic
events) has m = 0, where the log m feature of the transfer networks (Eq 6.9) has no density.
Every object list is ordered by decreasing pT.

Cut flow, in the order of Table 6.1 and cumulative:

* leptonic (Eq 6.4): ≥ 2 photons; ≥ 1 muon; ≥ 2 jets; exactly 1 b-jet; ≥ 1 light jet;
* hadronic (Eqs 6.5, 6.6): ≥ 2 photons; ≥ 4 jets; exactly 1 b-jet; ≥ 3 light jets.

x_reco (Eq 6.8) is (γ₁, γ₂, b, μ, j₁, …) or (γ₁, γ₂, b, j₁, j₂, j₃, …): the required light jets
followed by up to ``n_extra_jets_max`` (4, §6.1) extra ones, zero-padded. Rates are
σ × BR × fraction in ab (1 pb = 10⁶ ab), fractions relative to all showered events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from lhcflow.data.hard import hard_slots
from lhcflow.physics import kinematics
from lhcflow.thj.files import COUNTS

PB_TO_AB = 1e6
SELECTION_DEFAULTS = {
    "photon_pt_min_gev": 20.0,
    "photon_abs_eta_max": 2.4,
    "muon_pt_min_gev": 20.0,
    "muon_abs_eta_max": 2.4,
    "jet_pt_min_gev": 25.0,
    "jet_abs_eta_max": 2.4,
    # b- and light jets need m > this: a one-particle jet has m = 0, where log m (Eq 6.9) has no density;
    # 10 MeV keeps m > 0 computable from float64 (E, p⃗) up to E ~ 10⁶ GeV (m²/E² ≫ 1e-16)
    "jet_mass_min_gev": 0.01,
    "n_extra_jets_max": 4,
}
# per decay mode: (muon slots, required light jets, required jets)
DECAY_MODES = {"leptonic": (1, 1, 2), "hadronic": (0, 3, 4)}


def selection_config(cfg: Mapping | None = None) -> dict:
    """Table 6.1 thresholds with ``cfg`` overrides; unknown keys raise naming the key."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(SELECTION_DEFAULTS))
    if unknown:
        raise ValueError(f"selection: unknown key(s) {unknown} (allowed: {sorted(SELECTION_DEFAULTS)})")
    merged = {**SELECTION_DEFAULTS, **cfg}
    merged["n_extra_jets_max"] = int(merged["n_extra_jets_max"])
    return merged


def _check_decay(decay: str) -> tuple[int, int, int]:
    if decay not in DECAY_MODES:
        raise ValueError(f"unknown decay mode {decay!r}; choose one of {sorted(DECAY_MODES)}")
    return DECAY_MODES[decay]


@dataclass(frozen=True)
class Step:
    """One cut of Table 6.1: ``count`` (a key of :data:`COUNTS`) within [minimum, maximum]."""

    name: str
    description: str
    count: str
    minimum: int
    maximum: int | None = None

    def passes(self, counts: Mapping[str, np.ndarray]) -> np.ndarray:
        n = counts[self.count]
        return (n >= self.minimum) & (n <= self.maximum if self.maximum is not None else True)


def cut_flow_steps(decay: str, selection: Mapping | None = None) -> list[Step]:
    """The cuts of Table 6.1 for ``decay`` (leptonic/hadronic) in their order."""
    n_muons, n_light, n_jets = _check_decay(decay)
    s = selection_config(selection)
    photons = Step("photons", f">= 2 photons with pT > {s['photon_pt_min_gev']:g} GeV and "
                              f"|eta| < {s['photon_abs_eta_max']:g}", "photons", 2)
    muons = Step("muons", f">= {n_muons} muon with pT > {s['muon_pt_min_gev']:g} GeV and "
                          f"|eta| < {s['muon_abs_eta_max']:g}", "muons", n_muons)
    jets = Step("jets", f">= {n_jets} jets", "jets", n_jets)
    tagged = (f"pT > {s['jet_pt_min_gev']:g} GeV, |eta| < {s['jet_abs_eta_max']:g} and "
              f"m > {s['jet_mass_min_gev']:g} GeV")
    bjet = Step("b_jet", f"1 b-jet with {tagged}", "bjets", 1, 1)
    light = Step("light_jets", f">= {n_light} light jets with {tagged}", "light_jets", n_light)
    return [photons, muons, jets, bjet, light] if n_muons else [photons, jets, bjet, light]


def x_reco_slots(decay: str, selection: Mapping | None = None) -> list[str]:
    """Slot labels of x_reco (Eq 6.8)."""
    n_muons, n_light, _ = _check_decay(decay)
    n_jets = n_light + selection_config(selection)["n_extra_jets_max"]
    return ["a1", "a2", "b"] + ["mu"] * n_muons + [f"j{i + 1}" for i in range(n_jets)]


def _passing(objects: ak.Array, pt_min: float, abs_eta_max: float) -> ak.Array:
    kept = objects[(objects.pt > pt_min) & (abs(objects.eta) < abs_eta_max)]
    return kept[ak.argsort(kept.pt, axis=1, ascending=False)]


def select_objects(objects: Mapping[str, ak.Array], selection: Mapping | None = None) -> dict[str, ak.Array]:
    """Photons, muons, all jets, b-jets and light jets (``pt, eta, phi, mass, btag`` records)."""
    s = selection_config(selection)
    jets = objects["jet"]
    tagged = _passing(jets, s["jet_pt_min_gev"], s["jet_abs_eta_max"])
    tagged = tagged[tagged.mass > s["jet_mass_min_gev"]]
    return {"photons": _passing(objects["photon"], s["photon_pt_min_gev"], s["photon_abs_eta_max"]),
            "muons": _passing(objects["muon"], s["muon_pt_min_gev"], s["muon_abs_eta_max"]),
            "jets": jets[ak.argsort(jets.pt, axis=1, ascending=False)],
            "bjets": tagged[tagged.btag != 0],
            "light_jets": tagged[tagged.btag == 0]}


@dataclass
class RecoEvents:
    """Per event: object counts, cumulative cut flags, x_reco as (pT, η, φ, m) and (E, px, py, pz)."""

    counts: dict[str, np.ndarray]
    passed: np.ndarray  # (n, n_steps), cumulative
    x_reco: np.ndarray  # (n, n_slots, 4) pT, eta, phi, m
    x_reco_p4: np.ndarray  # (n, n_slots, 4) E, px, py, pz
    present: np.ndarray  # (n, n_slots)
    n_extra_jets: np.ndarray

    @property
    def accepted(self) -> np.ndarray:
        return self.passed.all(axis=1)

    @property
    def cuts_passed(self) -> np.ndarray:
        """How many consecutive cuts each event passes (all of them for accepted events)."""
        return self.passed.sum(axis=1).astype(np.int8)


def to_four_momenta(ptetaphim: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(…, 4) (pT, η, φ, m) → (E, px, py, pz); absent slots stay zero."""
    out = kinematics.to_four_momenta(np.asarray(ptetaphim, dtype=np.float64))
    return np.where(present[..., None], out, 0.0)


def reconstruct(objects: Mapping[str, ak.Array], decay: str, selection: Mapping | None = None) -> RecoEvents:
    """Cut flow and x_reco for one chunk of detector-level objects (``photon``, ``muon``, ``jet``)."""
    n_muons, n_light, _ = _check_decay(decay)
    selected = select_objects(objects, selection)
    counts = {name: ak.to_numpy(ak.num(selected[name], axis=1)).astype(np.int16) for name in COUNTS}
    steps = cut_flow_steps(decay, selection)
    passed = np.logical_and.accumulate(np.stack([s.passes(counts) for s in steps], axis=1), axis=1)
    n_extra_max = selection_config(selection)["n_extra_jets_max"]
    parts = [hard_slots(selected["photons"], 2), hard_slots(selected["bjets"], 1)]
    if n_muons:
        parts.append(hard_slots(selected["muons"], n_muons))
    parts.append(hard_slots(selected["light_jets"], n_light + n_extra_max))
    values = np.concatenate([v for v, _ in parts], axis=1)
    present = np.concatenate([m for _, m in parts], axis=1)
    n_extra = np.clip(counts["light_jets"] - n_light, 0, n_extra_max).astype(np.int8)
    return RecoEvents(counts, passed, values, to_four_momenta(values, present), present, n_extra)


@dataclass
class CutFlow:
    """Running event counts and weight sums per step of Table 6.1."""

    steps: list[Step]
    events: int = 0
    sum_weights: float = 0.0
    passed: list[int] = field(default_factory=list)
    passed_weights: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.passed = [0] * len(self.steps)
        self.passed_weights = [0.0] * len(self.steps)

    def add(self, reco: RecoEvents, weights: np.ndarray) -> None:
        self.events += len(weights)
        self.sum_weights += float(np.sum(weights))
        for k in range(len(self.steps)):
            self.passed[k] += int(reco.passed[:, k].sum())
            self.passed_weights[k] += float(np.sum(weights[reco.passed[:, k]]))

    def report(self, sigma_pb: float, branching_ratio: float) -> dict:
        """Table 6.1 rows: σ, σ × BR, then per cut the events, fraction and rate σ × BR × fraction [ab]."""
        sigma_ab = float(sigma_pb) * PB_TO_AB
        rows = [{"name": "sigma", "description": "sigma", "rate_ab": sigma_ab},
                {"name": "sigma_x_br", "description": "sigma x BR", "rate_ab": sigma_ab * branching_ratio}]
        for step, n, w in zip(self.steps, self.passed, self.passed_weights):
            fraction = w / self.sum_weights if self.sum_weights else 0.0
            rows.append({"name": step.name, "description": step.description, "events": n,
                         "sum_weights": w, "fraction": fraction,
                         "rate_ab": sigma_ab * branching_ratio * fraction})
        return {"events": self.events, "sum_weights": self.sum_weights, "sigma_pb": float(sigma_pb),
                "branching_ratio": float(branching_ratio), "steps": rows}
