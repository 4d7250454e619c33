"""Observables of canonical events, computed with scikit-hep ``vector``.

Each :class:`Observable` maps an :class:`~lhcflow.data.events.EventBatch` to per-event
values and a mask of the events where it is defined (e.g. ΔR_j1j2 needs two jets), and
carries the axis label, unit and default binning used by every plot in lhcflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import vector

from lhcflow.data.events import EventBatch, ObjectType


@dataclass(frozen=True)
class Observable:
    name: str
    label: str
    unit: str
    bins: int
    low: float
    high: float
    compute: Callable[[EventBatch], tuple[np.ndarray, np.ndarray]]
    log_y: bool = False

    @property
    def axis_label(self) -> str:
        return f"{self.label} [{self.unit}]" if self.unit else self.label

    def __call__(self, batch: EventBatch) -> tuple[np.ndarray, np.ndarray]:
        """Per-event values and the boolean mask of events where they are defined."""
        return self.compute(batch)


def momenta(batch: EventBatch, slot: int):
    """Four-momenta of one object slot as a ``vector`` array (empty slots are zero vectors).

    Computed in float64: invariant masses of light pairs cancel catastrophically in float32.
    """
    return vector.array({f: getattr(batch, f)[:, slot].astype(np.float64) for f in ("pt", "eta", "phi", "mass")})


def slot_present(batch: EventBatch, slot: int) -> np.ndarray:
    return batch.type[:, slot] != ObjectType.NONE


def pair_mass(batch: EventBatch, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Invariant mass of slots i and j."""
    return (momenta(batch, i) + momenta(batch, j)).mass, slot_present(batch, i) & slot_present(batch, j)


def pair_delta_r(batch: EventBatch, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """ΔR = sqrt(Δη² + Δφ²) of slots i and j."""
    return momenta(batch, i).deltaR(momenta(batch, j)), slot_present(batch, i) & slot_present(batch, j)


def scalar_ht(batch: EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """H_T: scalar sum of the stored jet transverse momenta."""
    jets = batch.type == ObjectType.JET
    return np.where(jets, batch.pt, 0.0).sum(axis=1), jets.any(axis=1)


_KINEMATICS = {
    ObjectType.MUON: ("\\mu", 150.0),
    ObjectType.ELECTRON: ("e", 150.0),
    ObjectType.PHOTON: ("\\gamma", 150.0),
    ObjectType.JET: ("j", 300.0),
}
_PREFIX = {"mu": ObjectType.MUON, "e": ObjectType.ELECTRON, "a": ObjectType.PHOTON, "j": ObjectType.JET}


def slot_type(slot_label: str) -> ObjectType:
    """Object type of a slot label such as ``mu1`` or ``j3``."""
    return _PREFIX[slot_label.rstrip("0123456789")]


def control_observables(slots: list[str]) -> list[Observable]:
    """The control-plot set for a slot layout: pT, η, φ per slot, pair masses of leptons,
    ΔR between jets, H_T and the jet multiplicity."""
    obs: list[Observable] = []
    for k, label in enumerate(slots):
        kind = slot_type(label)
        symbol, pt_max = _KINEMATICS[kind]
        sub = f"{symbol}_{label.lstrip('muaje')}"
        obs += [
            Observable(f"{label}_pt", f"$p_{{T,{sub}}}$", "GeV", 50, 0.0, pt_max, _slot_field("pt", k), log_y=True),
            Observable(f"{label}_eta", f"$\\eta_{{{sub}}}$", "", 50, -5.0, 5.0, _slot_field("eta", k)),
            Observable(f"{label}_phi", f"$\\phi_{{{sub}}}$", "", 40, -np.pi, np.pi, _slot_field("phi", k)),
        ]
    leptons = [k for k, s in enumerate(slots) if slot_type(s) in (ObjectType.MUON, ObjectType.ELECTRON)]
    jets = [k for k, s in enumerate(slots) if slot_type(s) == ObjectType.JET]
    if len(leptons) >= 2:
        i, j = leptons[:2]
        ll = "\\mu\\mu" if slot_type(slots[i]) == ObjectType.MUON else "ee"
        obs.append(Observable(f"m_{slots[i]}{slots[j]}", f"$M_{{{ll}}}$", "GeV", 50, 50.0, 150.0,
                              lambda b, i=i, j=j: pair_mass(b, i, j), log_y=True))
    for a in range(len(jets)):
        for b in range(a + 1, len(jets)):
            i, j = jets[a], jets[b]
            obs.append(Observable(f"dR_{slots[i]}{slots[j]}", f"$\\Delta R_{{{slots[i]}{slots[j]}}}$", "", 40, 0.0, 8.0,
                                  lambda bt, i=i, j=j: pair_delta_r(bt, i, j)))
    if jets:
        obs.append(Observable("ht", "$H_T$", "GeV", 50, 0.0, 800.0, scalar_ht, log_y=True))
    obs.append(Observable("n_jets", "$n_\\mathrm{jets}$ (before truncation)", "", 9, -0.5, 8.5,
                          lambda b: (b.n_jets_all.astype(float), np.ones(len(b), bool)), log_y=True))
    return obs


def _slot_field(field: str, slot: int) -> Callable[[EventBatch], tuple[np.ndarray, np.ndarray]]:
    return lambda b: (getattr(b, field)[:, slot].astype(float), slot_present(b, slot))


def exclusive_jets(observable: Observable, n_jets: int) -> Observable:
    """``observable`` restricted to events with exactly ``n_jets`` *stored* jets (the
    exclusive Z+n-jet samples of thesis Fig 4.4; with three stored slots, "3 jets" also
    holds the events with more selected jets). Named ``<name>_<n>j``."""

    def compute(batch: EventBatch) -> tuple[np.ndarray, np.ndarray]:
        values, mask = observable(batch)
        return values, mask & (batch.multiplicity(ObjectType.JET) == n_jets)

    return Observable(f"{observable.name}_{n_jets}j", observable.label, observable.unit, observable.bins,
                      observable.low, observable.high, compute, observable.log_y)
