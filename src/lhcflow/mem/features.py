"""Network inputs of the ML-MEM (thesis §6.3): hard features of Eq 6.31, reco features, standardisation.

* hard: x_hard = (p⃗_t, p⃗_H, p_j^z), seven numbers (Eq 6.31). The light-quark transverse momentum follows
  from p_T conservation and the energies from the on-shell conditions (m_t, m_H, m_j = 0), so the map
  between the seven features and the three lab four-momenta is one-to-one; ``ThjCrossSection.density``
  gives dσ/d⁷x_hard in exactly these variables, so integrals over them need no further Jacobian.
* reco: the four-momenta (E, p⃗) of the required objects of Eq 6.8 (photons, b-jet, muon, light jets), with
  the energies of photons and muons dropped (massless): 5·4 − 3 = 17 numbers for the leptonic and
  6·4 − 2 = 22 for the hadronic decay. Extra jets (zero-padded four-momenta) condition the sampling
  network only. The flat transfer networks see them through :class:`SelectionMap`, which sends the
  reco cuts (pT > pT_min, |η| < η_max of Table 6.1) to infinity as Eq 4.4 does for the jet pT, so that
  no probability falls outside the selection; densities stay in the (E, p⃗) features via its Jacobian.
* per-object (pT, η, φ, m) of both levels for the transformer networks (Eq 6.40-6.42) come from
  :func:`lhcflow.physics.kinematics.to_ptetaphim`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

HARD_FEATURES = ("p_t_x", "p_t_y", "p_t_z", "p_H_x", "p_H_y", "p_H_z", "p_j_z")
MASSLESS_SLOTS = ("a", "mu")  # slot-label prefixes of photons and muons (energy dropped)


def hard_features(momenta: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(n, 3, 4) lab momenta (E, px, py, pz) of [t, H, light quark] -> (n, 7) features of Eq 6.31."""
    return momenta[:, [0, 0, 0, 1, 1, 1, 2], [1, 2, 3, 1, 2, 3, 3]]


def hard_momenta(features: torch.Tensor, mt: float, mh: float) -> torch.Tensor:
    """Inverse of :func:`hard_features`: (n, 7) -> (n, 3, 4), light quark massless (differentiable)."""
    pt, ph = features[:, 0:3], features[:, 3:6]
    pj = torch.cat([-(pt[:, :2] + ph[:, :2]), features[:, 6:7]], dim=1)
    energies = [torch.sqrt((p * p).sum(1, keepdim=True) + m * m) for p, m in ((pt, mt), (ph, mh), (pj, 0.0))]
    return torch.stack([torch.cat([e, p], 1) for e, p in zip(energies, (pt, ph, pj))], 1)


@dataclass(frozen=True)
class RecoLayout:
    """Which x_reco slots enter the transfer networks and which of their components (thesis §6.3)."""

    slots: tuple[str, ...]      # all slot labels of the paired file (attribute ``x_reco_slots``)
    n_required: int             # leading slots present in every accepted event

    @classmethod
    def from_slots(cls, slots: Sequence[str], decay: str) -> "RecoLayout":
        n_required = {"leptonic": 5, "hadronic": 6}.get(decay)
        if n_required is None:
            raise ValueError(f"unknown top decay {decay!r} (expected 'leptonic' or 'hadronic')")
        if len(slots) < n_required:
            raise ValueError(f"x_reco has {len(slots)} slots, the {decay} decay needs {n_required}")
        return cls(tuple(slots), n_required)

    @property
    def required(self) -> tuple[str, ...]:
        return self.slots[: self.n_required]

    @property
    def extra(self) -> tuple[str, ...]:
        return self.slots[self.n_required:]

    def columns(self) -> list[tuple[int, int]]:
        """(slot, component) pairs of the reco features: E dropped for photons and muons."""
        cols = []
        for i, label in enumerate(self.required):
            first = 1 if label.startswith(MASSLESS_SLOTS) else 0
            cols += [(i, k) for k in range(first, 4)]
        return cols

    def names(self) -> list[str]:
        return [f"{self.slots[i]}_{('E', 'px', 'py', 'pz')[k]}" for i, k in self.columns()]

    def slot_types(self) -> list[str]:
        """Object type per slot for the transformer networks (photon, muon, bjet, jet)."""
        kinds = (("mu", "muon"), ("a", "photon"), ("b", "bjet"), ("j", "jet"))
        return [next(kind for prefix, kind in kinds if s.startswith(prefix)) for s in self.slots]

    def selection_bounds(self, selection: Mapping | None) -> tuple[list[float], list[float]]:
        """(pT_min, |η|_max) per slot from a paired file's reco selection (Table 6.1, ``thj.reco``)."""
        from lhcflow.thj.reco import selection_config

        s = selection_config(selection)
        keys = {"photon": "photon", "muon": "muon", "bjet": "jet", "jet": "jet"}
        kinds = [keys[kind] for kind in self.slot_types()]
        return [float(s[f"{k}_pt_min_gev"]) for k in kinds], [float(s[f"{k}_abs_eta_max"]) for k in kinds]

    def reco_features(self, x_reco: np.ndarray) -> np.ndarray:
        """(n, S, 4) (E, px, py, pz) -> (n, 17 | 22) transfer-network features."""
        slot, comp = np.array(self.columns()).T
        return np.asarray(x_reco)[:, slot, comp]

    def extra_jets(self, x_reco: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(n, 4·n_extra) zero-padded four-momenta of the extra jets (sampling-network condition)."""
        extra = np.asarray(x_reco)[:, self.n_required:] * np.asarray(present)[:, self.n_required:, None]
        return extra.reshape(len(extra), -1)


class Standardizer(torch.nn.Module):
    """Feature-wise (x − mean)/std with the log-Jacobian of the map (thesis §6.3 preprocessing)."""

    def __init__(self, dims: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dims, dtype=torch.float64))
        self.register_buffer("std", torch.ones(dims, dtype=torch.float64))

    def fit(self, x: np.ndarray, weight: np.ndarray | None = None) -> "Standardizer":
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"expected (n, {len(self.mean)}) features, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or inf")
        mean = np.average(x, axis=0, weights=weight)
        std = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weight))
        self.mean.copy_(torch.from_numpy(mean))
        self.std.copy_(torch.from_numpy(np.where(std > 1e-12, std, 1.0)))
        return self

    def _apply(self, fn, recurse=True):  # statistics stay float64 whatever dtype the network uses
        out = super()._apply(fn, recurse)
        for name in ("mean", "std"):
            self._buffers[name] = self._buffers[name].to(torch.float64)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.to(torch.float64) - self.mean) / self.std).to(x.dtype)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return (z.to(torch.float64) * self.std + self.mean).to(z.dtype)

    def log_det(self) -> torch.Tensor:
        """log |dz/dx| = −Σ log std: add to a density in z to get one in x."""
        return -torch.log(self.std).sum()


def _log_cosh(x: torch.Tensor) -> torch.Tensor:
    a = x.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - np.log(2.0)


class SelectionMap(torch.nn.Module):
    """Per required reco object, (E,) px, py, pz -> log(pT − pT_min), atanh(η/η_max), φ (, log m): the
    selection boundary of Table 6.1 maps to infinity (Eq 4.4 for pT), so a density on ℝ^d pulled back
    through :meth:`inverse` vanishes outside the cuts. Massless objects (E dropped) skip log m.

    ``forward`` returns the mapped features and log|∂y/∂x| per event (float64), from
    d⁴p = pT² cosh η (m/E) dpT dη dφ dm, dpT = (pT − pT_min) du, dη = η_max (1 − (η/η_max)²) dv, dm = m dw.
    """

    def __init__(self, layout: RecoLayout, pt_min: Sequence[float], eta_max: Sequence[float]):
        super().__init__()
        n = layout.n_required
        if len(pt_min) < n or len(eta_max) < n:
            raise ValueError(f"selection bounds for {len(pt_min)}/{len(eta_max)} slots, the layout needs {n}")
        if any(float(e) <= 0 for e in eta_max[:n]) or any(float(p) < 0 for p in pt_min[:n]):
            raise ValueError(f"selection bounds must have eta_max > 0 and pt_min >= 0, got {pt_min}, {eta_max}")
        self.massive = [not label.startswith(MASSLESS_SLOTS) for label in layout.required]
        self.offsets = list(np.cumsum([0] + [4 if m else 3 for m in self.massive])[:-1])
        self.slots = list(layout.required)
        self.register_buffer("pt_min", torch.tensor([float(p) for p in pt_min[:n]], dtype=torch.float64))
        self.register_buffer("eta_max", torch.tensor([float(e) for e in eta_max[:n]], dtype=torch.float64))

    def _apply(self, fn, recurse=True):  # bounds stay float64 whatever dtype the network uses
        out = super()._apply(fn, recurse)
        for name in ("pt_min", "eta_max"):
            self._buffers[name] = self._buffers[name].to(torch.float64)
        return out

    def _objects(self):
        return enumerate(zip(self.offsets, self.massive))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(n, d) reco features -> mapped features, log|∂y/∂x| (float64) and the (n,) mask of rows with
        every object inside the selection (massive ones with m > 0); rows outside get finite placeholders."""
        x = x.to(torch.float64)
        columns, log_det = [], x.new_zeros(len(x))
        inside = torch.ones(len(x), dtype=torch.bool, device=x.device)
        tiny = torch.finfo(x.dtype).tiny
        for i, (o, massive) in self._objects():
            first = o + int(massive)
            px, py, pz = x[:, first], x[:, first + 1], x[:, first + 2]
            pt = torch.sqrt(px * px + py * py)
            eta = torch.asinh(pz / pt.clamp_min(tiny))
            delta, r = pt - self.pt_min[i], eta / self.eta_max[i]
            inside &= (delta > 0) & (r.abs() < 1)
            log_delta, r = torch.log(delta.clamp_min(tiny)), r.clamp(-1 + 1e-16, 1 - 1e-16)
            columns += [log_delta, torch.atanh(r), torch.atan2(py, px)]
            log_jac = 2 * torch.log(pt.clamp_min(tiny)) + _log_cosh(eta) + log_delta \
                + torch.log(self.eta_max[i]) + torch.log1p(-r * r)  # log|∂x/∂y| of this object
            if massive:
                e = x[:, o]
                m = torch.sqrt((e * e - pt * pt - pz * pz).clamp_min(0))
                inside &= m > 0
                log_m = torch.log(m.clamp_min(tiny))
                columns.append(log_m)
                log_jac = log_jac + 2 * log_m - torch.log(e.clamp_min(tiny))
            log_det = log_det - log_jac
        return torch.stack(columns, 1), log_det, inside

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Mapped features -> (n, d) reco features (float64), always inside the selection."""
        y = y.to(torch.float64)
        columns = []
        for i, (o, massive) in self._objects():
            pt = self.pt_min[i] + torch.exp(y[:, o])
            eta, phi = self.eta_max[i] * torch.tanh(y[:, o + 1]), y[:, o + 2]
            pz = pt * torch.sinh(eta)
            if massive:
                columns.append(torch.sqrt(pt * pt + pz * pz + torch.exp(2 * y[:, o + 3])))
            columns += [pt * torch.cos(phi), pt * torch.sin(phi), pz]
        return torch.stack(columns, 1)
