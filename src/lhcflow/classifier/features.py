"""Classifier input features (thesis §4.4, Eq 4.17) and their standardisation.

Z+jets inputs, Eq 4.17, for every stored object ``i`` (slot order ``mu1 mu2 j1 j2 j3``):

* ``log pT_i`` (``pT`` itself with ``log_scale=False``) and ``η_i``;
* ``Δφ_{1,i}``: azimuthal distance to the leading muon, wrapped to (−π, π]; none for the
  leading muon (azimuthal symmetry);
* jet masses ``log(1 + M_i)`` (``M_i`` with ``log_scale=False``); none for muons (on shell);
* ``M_μμ`` of the two leading muons [GeV];
* ``1/ΔR_{jj}`` for every jet pair with the cutoff ``ΔR → max(ΔR, dr_cutoff)``, i.e.
  ``1/ΔR`` saturates at ``1/dr_cutoff``. The inverse stretches the critical small-ΔR region
  near the jet-algorithm cut (ΔR > 0.4), the cutoff keeps generated events with ΔR → 0 finite;
* the one-hot stored-jet multiplicity ``n_jets_1 … n_jets_K``.

Entries of empty slots (and of pairs involving one) are set to ``missing`` (default 0).
:class:`FeatureScaler` standardises with weighted statistics fitted on training data;
it ignores NaN entries when fitting and maps them to 0 (the standardised mean) when
transforming, so the recommended recipe is::

    x, names = zjets_features(train, missing=np.nan)
    scaler = FeatureScaler.fit(x, train.weight, names)
    x = scaler.transform(x)          # no NaN, padded entries are 0
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lhcflow.atomic import atomic_path
from lhcflow.data.events import EventBatch, ObjectType
from lhcflow.physics.observables import Observable, pair_delta_r, pair_mass, slot_present, slot_type
from lhcflow.physics.kinematics import wrap_angle
from lhcflow.zjets.preprocessing import ZJETS_SLOTS

DR_CUTOFF = 0.2  # the lower magic-transformation cutoff R_- of §4.2 (not given for the classifier)
SCALER_VERSION = 1


def zjets_features(batch: EventBatch, dr_cutoff: float = DR_CUTOFF, slots: Sequence[str] = ZJETS_SLOTS,
                   log_scale: bool = True, missing: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """The Eq 4.17 inputs of a Z+jets batch as an ``(n, d)`` float64 array and column names."""
    if len(slots) != batch.n_slots:
        raise ValueError(f"{len(slots)} slot labels for a batch with {batch.n_slots} slots")
    kinds = [slot_type(s) for s in slots]
    leptons = [k for k, t in enumerate(kinds) if t in (ObjectType.MUON, ObjectType.ELECTRON)]
    jets = [k for k, t in enumerate(kinds) if t == ObjectType.JET]
    cols: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    names: list[str] = []

    def add(name: str, values: np.ndarray, mask: np.ndarray) -> None:
        names.append(name)
        cols.append(np.asarray(values, dtype=np.float64))
        valid.append(mask)

    lead = leptons[0] if leptons else 0
    phi_lead = batch.phi[:, lead].astype(np.float64)
    for k, label in enumerate(slots):
        present = slot_present(batch, k)
        pt = batch.pt[:, k].astype(np.float64)
        add(f"{label}_pt", np.log(np.maximum(pt, 1e-6)) if log_scale else pt, present)
        add(f"{label}_eta", batch.eta[:, k], present)
        if k != lead:
            add(f"{label}_dphi", wrap_angle(batch.phi[:, k].astype(np.float64) - phi_lead), present)
        if kinds[k] == ObjectType.JET:
            m = np.maximum(batch.mass[:, k].astype(np.float64), 0.0)
            add(f"{label}_m", np.log1p(m) if log_scale else m, present)
    if len(leptons) >= 2:
        i, j = leptons[:2]
        add(f"m_{slots[i]}{slots[j]}", *pair_mass(batch, i, j))
    for a in range(len(jets)):
        for b in range(a + 1, len(jets)):
            dr, mask = pair_delta_r(batch, jets[a], jets[b])
            add(f"inv_dR_{slots[jets[a]]}{slots[jets[b]]}", 1.0 / np.maximum(dr, dr_cutoff), mask)
    n_jets = batch.multiplicity(ObjectType.JET)
    always = np.ones(len(batch), dtype=bool)
    for n in range(1, len(jets) + 1):
        add(f"n_jets_{n}", (n_jets == n).astype(np.float64), always)
    x = np.stack(cols, axis=1) if cols else np.zeros((len(batch), 0))
    x[~np.stack(valid, axis=1)] = missing
    return x, names


def observable_features(batch: EventBatch, observables: Sequence[Observable],
                        missing: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """Columns of per-event observable values (e.g. hard-level kinematics for the acceptance
    classifier, §6.4.2); events where an observable is undefined get ``missing``."""
    cols = []
    for obs in observables:
        values, mask = obs(batch)
        cols.append(np.where(mask, np.asarray(values, dtype=np.float64), missing))
    x = np.stack(cols, axis=1) if cols else np.zeros((len(batch), 0))
    return x, [obs.name for obs in observables]


class FeatureScaler:
    """Per-column ``(x − mean)/std`` with weighted statistics; NaN = missing (→ 0)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], names: Sequence[str] | None = None):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.names = list(names) if names is not None else [f"x{i}" for i in range(len(self.mean))]
        if not (len(self.mean) == len(self.std) == len(self.names)):
            raise ValueError("mean, std and names must have the same length")

    @classmethod
    def fit(cls, x: np.ndarray, weight: np.ndarray | None = None,
            names: Sequence[str] | None = None) -> FeatureScaler:
        x = np.asarray(x, dtype=np.float64)
        w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64)
        ok = np.isfinite(x)
        ww = np.where(ok, w[:, None], 0.0)
        xx = np.where(ok, x, 0.0)
        norm = np.maximum(ww.sum(axis=0), 1e-300)
        mean = (ww * xx).sum(axis=0) / norm
        var = (ww * (xx - mean) ** 2).sum(axis=0) / norm
        std = np.sqrt(var)
        std = np.where(std > 1e-12, std, 1.0)  # constant columns pass through centred
        return cls(mean, std, names)

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} features, got {x.shape[1]}")
        z = (x - self.mean) / self.std
        return np.where(np.isnan(z), 0.0, z).astype(np.float32)

    def state_dict(self) -> dict:
        return {"version": SCALER_VERSION, "names": self.names, "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> FeatureScaler:
        if int(state.get("version", -1)) != SCALER_VERSION:
            raise ValueError(f"unsupported feature-scaler state version {state.get('version')}")
        return cls(state["mean"], state["std"], state["names"])

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(self.state_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> FeatureScaler:
        return cls.from_state(json.loads(Path(path).read_text()))
