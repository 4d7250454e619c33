"""Z+jets phase-space preprocessing of thesis §4.2.1 (Eq 4.3-4.6), exactly invertible.

Each muon is ``(pT, η, φ)`` and each jet ``(pT, η, φ, m)`` (Eq 4.3; the muons are on
shell). Per object:

* ``p̃T = log(pT − pT,min)`` (Eq 4.4) with ``pT,min`` per object type: jets 20 GeV (the
  jet cut of Eq 4.2); muons 0 GeV, because the canonical muon selection has no hard pT
  cut (the smallest muon pT in the Pythia sample is ≈ 0.4 GeV) and 0 keeps the log finite
  for every muon. ``pT − pT,min`` is floored at ``pt_floor`` (1e-6 GeV) so an object at
  exactly the cut stays finite.
* η is kept as is.
* φ is taken relative to the leading muon (slot ``mu1``), wrapped to (−π, π], and mapped
  by ``arctanh(Δφ/π)`` (Eq 4.5); ``Δφ/π`` is clipped to ±(1 − ``dphi_clip``) to avoid ±∞.
  The leading muon's own φ is a pure symmetry angle (rotations about the beam axis) and is
  dropped: :meth:`ZJetsPreprocessing.inverse` draws it uniformly in (−π, π] and rotates the
  event back.
* jet mass: ``m̃ = log(m + m₀)`` with ``m₀ = 1 GeV`` (not specified in the thesis). Jet
  masses are ≈ lognormal around 6 GeV but a few single-particle jets have m ≈ 0; the
  offset keeps those finite without a spike at −∞. The inverse clips m ≥ 0.

Everything is then standardised, ``q̃ = (q − ⟨q⟩)/σ(q)`` (Eq 4.6), with weighted means
and standard deviations fitted on the training data. One set of statistics per feature
(``mu1_pt``, ``j2_m``, ...) is fitted over all events holding that object, so the first
``5 + 4k`` columns of the ``n``-jet representation equal the ``k``-jet representation
of the same objects — what the autoregressive chain of Fig 4.1 needs.

Column order for ``n`` jets (``n_dims = 5 + 4n`` = 9/13/17 for 1/2/3 jets; the thesis
counts 10/14/18 including the leading-muon φ)::

    mu1_pt mu1_eta | mu2_pt mu2_eta mu2_dphi | j1_pt j1_eta j1_dphi j1_m | j2_... | j3_...

Generated events: muon charges are not part of the network output. ``mu1`` gets +1 with
the (weighted) probability observed for the leading muon in the training data
(``p_mu1_positive``, ≈ 0.5) and ``mu2`` the opposite charge; muon masses are set to the
muon mass, jets have ``btag = 0``, every event has weight 1 and
``n_jets_all = n_jets``. Objects are written in the order produced (no re-sorting by pT).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from lhcflow.atomic import atomic_path
from lhcflow.data.events import EventBatch, ObjectType
from lhcflow.data.layouts import MUON_MASS_GEV
from lhcflow.physics.kinematics import wrap_angle

ZJETS_SLOTS = ["mu1", "mu2", "j1", "j2", "j3"]
MUON_SLOTS = (0, 1)
JET_SLOTS = (2, 3, 4)
MAX_JETS = len(JET_SLOTS)
STATE_VERSION = 1
log = logging.getLogger(__name__)


def n_dims(n_jets: int) -> int:
    """Network input dimension for ``n_jets`` jets: 2 muons × 3 + n_jets × 4 − 1 (leading-muon φ)."""
    _check_n_jets(n_jets)
    return 5 + 4 * n_jets


def feature_names(n_jets: int) -> list[str]:
    """Column names of :meth:`ZJetsPreprocessing.forward` for ``n_jets`` jets."""
    _check_n_jets(n_jets)
    names = ["mu1_pt", "mu1_eta", "mu2_pt", "mu2_eta", "mu2_dphi"]
    for k in range(1, n_jets + 1):
        names += [f"j{k}_pt", f"j{k}_eta", f"j{k}_dphi", f"j{k}_m"]
    return names


def by_multiplicity(batch: EventBatch) -> dict[int, EventBatch]:
    """Split by the number of *stored* jets into ``{1: ..., 2: ..., 3: ...}``.

    Events with more than three selected jets (``n_jets_all > 3``) keep their three stored
    jets and land in the 3-jet sample; events without a stored jet are dropped.
    """
    counts = batch.multiplicity(ObjectType.JET)
    return {n: batch.select(counts == n) for n in range(1, MAX_JETS + 1)}


class ZJetsPreprocessing:
    """Invertible map between canonical Z+jets events and standardised network inputs
    (Eq 4.3-4.6); see the module docstring for the conventions."""

    def __init__(self, pt_min_jet: float = 20.0, pt_min_muon: float = 0.0, jet_mass_offset: float = 1.0,
                 dphi_clip: float = 1e-6, pt_floor: float = 1e-6, muon_mass: float = MUON_MASS_GEV):
        self.pt_min_jet = float(pt_min_jet)
        self.pt_min_muon = float(pt_min_muon)
        self.jet_mass_offset = float(jet_mass_offset)
        self.dphi_clip = float(dphi_clip)
        self.pt_floor = float(pt_floor)
        self.muon_mass = float(muon_mass)
        self.mean: dict[str, float] = {}
        self.std: dict[str, float] = {}
        self.p_mu1_positive = 0.5

    # ------------------------------------------------------------------ state
    @property
    def fitted(self) -> bool:
        return all(name in self.mean for name in feature_names(MAX_JETS))

    def config(self) -> dict:
        return {"pt_min_jet": self.pt_min_jet, "pt_min_muon": self.pt_min_muon,
                "jet_mass_offset": self.jet_mass_offset, "dphi_clip": self.dphi_clip,
                "pt_floor": self.pt_floor, "muon_mass": self.muon_mass}

    def state_dict(self) -> dict:
        """JSON-able state: configuration and fitted statistics (no training data needed to sample)."""
        return {"version": STATE_VERSION, "config": self.config(), "mean": dict(self.mean), "std": dict(self.std),
                "p_mu1_positive": self.p_mu1_positive}

    @classmethod
    def from_state(cls, state: dict) -> ZJetsPreprocessing:
        if int(state.get("version", -1)) != STATE_VERSION:
            raise ValueError(f"unsupported preprocessing state version {state.get('version')}")
        pre = cls(**state["config"])
        pre.mean = {k: float(v) for k, v in state["mean"].items()}
        pre.std = {k: float(v) for k, v in state["std"].items()}
        pre.p_mu1_positive = float(state["p_mu1_positive"])
        return pre

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(self.state_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> ZJetsPreprocessing:
        return cls.from_state(json.loads(Path(path).read_text()))

    # ------------------------------------------------------------- transforms
    def _pt_min(self, slot: int) -> float:
        return self.pt_min_muon if slot in MUON_SLOTS else self.pt_min_jet

    def _raw(self, batch: EventBatch, n_jets: int) -> np.ndarray:
        """Eq 4.4-4.5 and the jet-mass map, before standardisation; float64 (n, n_dims)."""
        phi_lead = batch.phi[:, MUON_SLOTS[0]].astype(np.float64)
        cols = []
        for slot in (*MUON_SLOTS, *JET_SLOTS[:n_jets]):
            pt = batch.pt[:, slot].astype(np.float64)
            cols.append(np.log(np.maximum(pt - self._pt_min(slot), self.pt_floor)))
            cols.append(batch.eta[:, slot].astype(np.float64))
            if slot != MUON_SLOTS[0]:
                dphi = wrap_angle(batch.phi[:, slot].astype(np.float64) - phi_lead) / np.pi
                cols.append(np.arctanh(np.clip(dphi, -1.0 + self.dphi_clip, 1.0 - self.dphi_clip)))
            if slot in JET_SLOTS:
                cols.append(np.log(np.maximum(batch.mass[:, slot].astype(np.float64), 0.0) + self.jet_mass_offset))
        return np.stack(cols, axis=1) if cols else np.zeros((len(batch), 0))

    def fit(self, batch: EventBatch) -> ZJetsPreprocessing:
        """Weighted means and standard deviations (Eq 4.6) per feature, each over the
        training events that hold the object; also the leading-muon charge fraction."""
        counts = batch.multiplicity(ObjectType.JET)
        self._check_muons(batch)
        weight = batch.weight.astype(np.float64)
        sums: dict[str, list[np.ndarray]] = {}
        for n, sub in by_multiplicity(batch).items():
            if len(sub) == 0:
                continue
            self._check_layout(sub, n)
            raw = self._raw(sub, n)
            for i, name in enumerate(feature_names(n)):
                sums.setdefault(name, []).append(np.stack([raw[:, i], weight[counts == n]]))
        for name in feature_names(MAX_JETS):
            if name not in sums:
                raise ValueError(f"no training events hold the objects of feature {name!r}")
            x, w = np.concatenate(sums[name], axis=1)
            wsum = w.sum()
            if not wsum > 0:
                raise ValueError(f"non-positive total weight for feature {name!r}")
            mean = float((w * x).sum() / wsum)
            std = float(np.sqrt(max((w * (x - mean) ** 2).sum() / wsum, 0.0)))
            self.mean[name], self.std[name] = mean, (std if std > 1e-12 else 1.0)
        for slot in (*MUON_SLOTS, *JET_SLOTS):
            present = batch.type[:, slot] != ObjectType.NONE
            n_low = int((batch.pt[present, slot] - self._pt_min(slot) <= self.pt_floor).sum())
            if n_low:
                log.warning("%d %s objects at or below pT,min=%g GeV: log(pT - pT,min) floored, not invertible",
                            n_low, ZJETS_SLOTS[slot], self._pt_min(slot))
        positive = batch.charge[:, MUON_SLOTS[0]] > 0
        self.p_mu1_positive = float(np.clip(weight[positive].sum() / weight.sum(), 0.0, 1.0))
        return self

    def forward(self, batch: EventBatch, n_jets: int) -> np.ndarray:
        """Standardised network inputs (float64, shape ``(n, n_dims(n_jets))``) for events
        with exactly ``n_jets`` stored jets."""
        self._require_fitted()
        self._check_muons(batch)
        self._check_layout(batch, n_jets)
        names = feature_names(n_jets)
        mean = np.array([self.mean[k] for k in names])
        std = np.array([self.std[k] for k in names])
        return (self._raw(batch, n_jets) - mean) / std

    def inverse(self, x: np.ndarray, n_jets: int, rng: np.random.Generator | int | None = None,
                phi_lead: np.ndarray | None = None) -> EventBatch:
        """Canonical events from network outputs ``x`` of shape ``(n, n_dims(n_jets))``.

        The leading-muon φ is drawn uniformly in (−π, π] from ``rng`` unless ``phi_lead``
        is given; muon charges are drawn as described in the module docstring.
        """
        self._require_fitted()
        rng = np.random.default_rng(rng)
        x = np.asarray(x, dtype=np.float64)
        names = feature_names(n_jets)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"expected shape (n, {len(names)}) for {n_jets} jets, got {x.shape}")
        n = x.shape[0]
        raw = x * np.array([self.std[k] for k in names]) + np.array([self.mean[k] for k in names])
        if phi_lead is None:
            phi_lead = -rng.uniform(-np.pi, np.pi, size=n)  # uniform on (−π, π]
        phi_lead = wrap_angle(np.broadcast_to(np.asarray(phi_lead, dtype=np.float64), (n,)))
        out = EventBatch.empty(n, len(ZJETS_SLOTS))
        col = 0
        for slot in (*MUON_SLOTS, *JET_SLOTS[:n_jets]):
            out.pt[:, slot] = self._pt_min(slot) + np.exp(raw[:, col])
            out.eta[:, slot] = raw[:, col + 1]
            col += 2
            if slot == MUON_SLOTS[0]:
                out.phi[:, slot] = phi_lead
            else:
                out.phi[:, slot] = wrap_angle(phi_lead + np.pi * np.tanh(raw[:, col]))
                col += 1
            if slot in JET_SLOTS:
                out.mass[:, slot] = np.maximum(np.exp(raw[:, col]) - self.jet_mass_offset, 0.0)
                out.type[:, slot] = ObjectType.JET
                col += 1
            else:
                out.mass[:, slot] = self.muon_mass
                out.type[:, slot] = ObjectType.MUON
        sign = np.where(rng.random(n) < self.p_mu1_positive, 1, -1)
        out.charge[:, MUON_SLOTS[0]] = sign
        out.charge[:, MUON_SLOTS[1]] = -sign
        out.n_jets_all[:] = n_jets
        return out

    # ---------------------------------------------------------------- checks
    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("ZJetsPreprocessing is not fitted: call fit() or load a state")

    @staticmethod
    def _check_muons(batch: EventBatch) -> None:
        if batch.n_slots != len(ZJETS_SLOTS):
            raise ValueError(f"expected the Z+jets layout {ZJETS_SLOTS}, got {batch.n_slots} slots")
        if len(batch) and not np.all(batch.type[:, list(MUON_SLOTS)] == ObjectType.MUON):
            raise ValueError("Z+jets events need two muons in slots mu1, mu2")

    @staticmethod
    def _check_layout(batch: EventBatch, n_jets: int) -> None:
        _check_n_jets(n_jets)
        jets = batch.type[:, list(JET_SLOTS)]
        if len(batch) and not (np.all(jets[:, :n_jets] == ObjectType.JET)
                               and np.all(jets[:, n_jets:] == ObjectType.NONE)):
            raise ValueError(f"events must hold exactly {n_jets} stored jets in slots {ZJETS_SLOTS[2:2 + n_jets]}")


def _check_n_jets(n_jets: int) -> None:
    if n_jets not in range(1, MAX_JETS + 1):
        raise ValueError(f"n_jets must be 1..{MAX_JETS}, got {n_jets}")
