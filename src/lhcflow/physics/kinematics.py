"""Four-momentum coordinates: (E, px, py, pz) ↔ (pT, η, φ, m) (thesis Eqs 2.15-2.20), azimuths and ΔR.

The one place where lhcflow converts momenta. Every function takes numpy arrays, awkward arrays
(elementwise, through numpy's ufuncs) or torch tensors (dispatched on the type, differentiable) and
keeps the input's dtype; (…, 4) arrays hold (E, px, py, pz) or (pT, η, φ, m) in their last axis.

Conventions, the same for every caller:

* pT = sqrt(px² + py²); η = asinh(pz/pT) (Eq 2.18); φ = atan2(py, px) in (−π, π];
  m = sqrt(max(E² − p², 0)) (Eq 2.16): a spacelike rounding residue gives m = 0.
* pT = 0 (momentum along the beam, or zero): η = ±∞ with the sign of pz (θ = 0 or π), η = 0 for
  pz = 0; φ = 0. These are ``vector``'s η and atan2(0, +0).
* Angles wrap to (−π, π] (the φ of the canonical event format, docs/event_format.md), by
  :func:`wrap_angle`, which returns angles already inside unchanged (bit for bit).
* The inverse is ``vector``'s (numpy only): px = pT cos φ, py = pT sin φ, pz = pT sinh η (Eq 2.20,
  whose sin and cos are swapped in the thesis), E = sqrt(m² + p²). pT = 0 with |η| = ∞ has no
  inverse (pz = 0·∞ is NaN): (pT, η, φ, m) cannot hold a momentum along the beam.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import vector

PTETAPHIM = ("pt", "eta", "phi", "mass")  # the canonical event format's field names, in (…, 4) order


def _is_torch(x) -> bool:
    torch = sys.modules.get("torch")  # a tensor cannot exist unless torch was imported
    return torch is not None and isinstance(x, torch.Tensor)


def _where(condition, a, b):
    if _is_torch(condition):
        return sys.modules["torch"].where(condition, a, b)
    return np.where(condition, a, b)


def pt(px, py):
    """Transverse momentum, Eq 2.15: numpy's hypot; for tensors sqrt(px² + py²), the MEM networks'
    form (the two differ in the last bit of one value in six)."""
    return sys.modules["torch"].sqrt(px * px + py * py) if _is_torch(px) else np.hypot(px, py)


def _eta(pt, pz):
    if _is_torch(pz):
        torch = sys.modules["torch"]
        beam = torch.where(pz == 0, torch.zeros_like(pz), torch.full_like(pz, math.inf).copysign(pz))
        return torch.where(pt == 0, beam, torch.asinh(pz / pt))
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    return np.where(pt == 0, np.where(pz == 0, 0.0, np.copysign(np.inf, pz)), eta)


def _phi(pt, px, py):
    torch = sys.modules["torch"] if _is_torch(px) else None
    phi = torch.atan2(py, px) if torch else np.arctan2(py, px)
    # atan2(−0, x < 0) = −π: the one value outside (−π, π]; pT = 0 has φ = 0 whatever the signs of zero
    return _where(pt == 0, 0.0, _where(phi == -math.pi, math.pi, phi))


def eta(px, py, pz):
    """Pseudorapidity, Eq 2.18 (±∞ along the beam, 0 for p = 0)."""
    return _eta(pt(px, py), pz)


def phi(px, py):
    """Azimuth in (−π, π] (0 for pT = 0)."""
    return _phi(pt(px, py), px, py)


def mass(e, px, py, pz):
    """Invariant mass, Eq 2.16; m² < 0 (rounding of a light or massless object) gives 0."""
    m2 = e * e - px * px - py * py - pz * pz
    return sys.modules["torch"].sqrt(m2.clamp_min(0.0)) if _is_torch(m2) else np.sqrt(np.maximum(m2, 0.0))


def pt_eta_phi_mass(e, px, py, pz) -> dict:
    """{"pt", "eta", "phi", "mass"} of four-momentum components (any shape, awkward arrays included)."""
    transverse = pt(px, py)
    return {"pt": transverse, "eta": _eta(transverse, pz), "phi": _phi(transverse, px, py),
            "mass": mass(e, px, py, pz)}


def to_ptetaphim(momenta):
    """(…, 4) (E, px, py, pz) -> (…, 4) (pT, η, φ, m)."""
    kin = pt_eta_phi_mass(*(momenta[..., k] for k in range(4)))
    columns = [kin[name] for name in PTETAPHIM]
    return sys.modules["torch"].stack(columns, -1) if _is_torch(momenta) else np.stack(columns, -1)


def to_four_momenta(ptetaphim: np.ndarray) -> np.ndarray:
    """(…, 4) (pT, η, φ, m) -> (…, 4) (E, px, py, pz), through ``vector`` (Eq 2.20)."""
    ptetaphim = np.asarray(ptetaphim)
    p = vector.array({name: ptetaphim[..., k] for k, name in enumerate(PTETAPHIM)})
    return np.stack([p.E, p.px, p.py, p.pz], axis=-1)


def wrap_angle(a):
    """Angles mapped to (−π, π]; angles inside are returned unchanged."""
    if isinstance(a, (int, float, list, tuple)):
        a = np.asarray(a, dtype=np.float64)
    ceil = sys.modules["torch"].ceil if _is_torch(a) else np.ceil
    return a - 2.0 * math.pi * ceil((a - math.pi) / (2.0 * math.pi))


def delta_phi(phi1, phi2):
    """φ₁ − φ₂ wrapped to (−π, π]."""
    return wrap_angle(phi1 - phi2)


def delta_r(eta1, phi1, eta2, phi2):
    """Angular distance ΔR = sqrt(Δη² + Δφ²) (thesis Eq 2.71)."""
    d_eta, d_phi = eta1 - eta2, delta_phi(phi1, phi2)
    return sys.modules["torch"].hypot(d_eta, d_phi) if _is_torch(d_eta) else np.hypot(d_eta, d_phi)
