"""Dirac algebra for hand-written amplitudes: γ matrices, slashed momenta, helicity spinors.

Chiral (Weyl) basis as in Peskin & Schroeder: γ⁰ = [[0, 1], [1, 0]], γⁱ = [[0, σⁱ], [−σⁱ, 0]],
γ⁵ = diag(−1, −1, 1, 1), so P_L = (1 − γ⁵)/2 keeps the upper (left-handed) components.
Momenta are float tensors (..., 4) = (E, px, py, pz); matrices and spinors are complex128.

No HEP library on PyPI offers batched, differentiable torch Dirac algebra with helicity spinors, so
it is written here (≈ 100 lines); the completeness relations Σ u ū = p̸ + m and Σ v v̄ = p̸ − m are
tested in ``tests/test_thj_matrix_element.py``.
"""

from __future__ import annotations

import torch

CTYPE = torch.complex128
METRIC = (1.0, -1.0, -1.0, -1.0)


def _gammas() -> torch.Tensor:
    one = torch.eye(2, dtype=CTYPE)
    zero = torch.zeros(2, 2, dtype=CTYPE)
    sigma = [torch.tensor(m, dtype=CTYPE) for m in
             ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]])]
    g0 = torch.cat([torch.cat([zero, one], 1), torch.cat([one, zero], 1)], 0)
    gi = [torch.cat([torch.cat([zero, s], 1), torch.cat([-s, zero], 1)], 0) for s in sigma]
    return torch.stack([g0, *gi])


GAMMA = _gammas()                                                   # γ^μ, shape (4, 4, 4)
GAMMA_LOWER = GAMMA * torch.tensor(METRIC, dtype=CTYPE)[:, None, None]  # γ_μ
GAMMA5 = torch.diag(torch.tensor([-1, -1, 1, 1], dtype=CTYPE))
P_LEFT = (torch.eye(4, dtype=CTYPE) - GAMMA5) / 2
P_RIGHT = (torch.eye(4, dtype=CTYPE) + GAMMA5) / 2
IDENTITY = torch.eye(4, dtype=CTYPE)


def on(device: torch.device) -> dict[str, torch.Tensor]:
    """The constant matrices on ``device``."""
    return {"gamma": GAMMA.to(device), "gamma_lower": GAMMA_LOWER.to(device), "gamma5": GAMMA5.to(device),
            "pl": P_LEFT.to(device), "pr": P_RIGHT.to(device), "one": IDENTITY.to(device)}


def dot(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Minkowski product p·q over the last axis."""
    return p[..., 0] * q[..., 0] - (p[..., 1:] * q[..., 1:]).sum(-1)


def lower(p: torch.Tensor) -> torch.Tensor:
    """p_μ from p^μ."""
    return p * p.new_tensor(METRIC)


def slash(p: torch.Tensor) -> torch.Tensor:
    """p̸ = γ^μ p_μ, shape (..., 4, 4)."""
    return torch.einsum("...m,mab->...ab", lower(p).to(CTYPE), GAMMA.to(p.device))


def bar(m: torch.Tensor) -> torch.Tensor:
    """Dirac adjoint of a matrix, γ⁰ M† γ⁰."""
    g0 = GAMMA[0].to(m.device)
    return g0 @ m.conj().transpose(-1, -2) @ g0


def _two_spinors(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Helicity two-spinors χ₊(p̂), χ₋(p̂), each (..., 2), stable for p̂ along −z."""
    px, py, pz = p[..., 1], p[..., 2], p[..., 3]
    pabs = torch.sqrt(px**2 + py**2 + pz**2)
    a = pabs + pz
    along_minus_z = a <= 1e-12 * pabs.clamp(min=1e-300)
    norm = torch.sqrt(2 * pabs * torch.where(along_minus_z, torch.ones_like(a), a))
    a_c = (a / norm).to(CTYPE)
    b_c = torch.complex(px / norm, py / norm)  # (px + i py)/norm
    zero, one = torch.zeros_like(a_c), torch.ones_like(a_c)
    flip = along_minus_z[..., None]
    chi_plus = torch.where(flip, torch.stack([zero, one], -1), torch.stack([a_c, b_c], -1))
    chi_minus = torch.where(flip, torch.stack([-one, zero], -1), torch.stack([-b_c.conj(), a_c], -1))
    return chi_plus, chi_minus


def _sqrt_e_pm(p: torch.Tensor, mass: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(√(E − |p|), √(E + |p|)); the first from m²/(E + |p|) to avoid cancellation."""
    pabs = torch.linalg.vector_norm(p[..., 1:], dim=-1)
    plus = p[..., 0] + pabs
    minus = (mass**2 / plus) if mass > 0 else torch.zeros_like(plus)
    return torch.sqrt(minus), torch.sqrt(plus)


def u_spinors(p: torch.Tensor, mass: float) -> torch.Tensor:
    """u(p, λ) for helicities λ = (+, −): shape (..., 2, 4)."""
    chi = _two_spinors(p)
    sm, sp = (s.to(CTYPE)[..., None] for s in _sqrt_e_pm(p, mass))
    u_plus = torch.cat([sm * chi[0], sp * chi[0]], -1)
    u_minus = torch.cat([sp * chi[1], sm * chi[1]], -1)
    return torch.stack([u_plus, u_minus], -2)


def v_spinors(p: torch.Tensor, mass: float) -> torch.Tensor:
    """v(p, λ) for helicities λ = (+, −): shape (..., 2, 4)."""
    chi = _two_spinors(p)
    sm, sp = (s.to(CTYPE)[..., None] for s in _sqrt_e_pm(p, mass))
    v_plus = torch.cat([sp * chi[1], -sm * chi[1]], -1)
    v_minus = torch.cat([-sm * chi[0], sp * chi[0]], -1)
    return torch.stack([v_plus, v_minus], -2)


def adjoint(spinor: torch.Tensor) -> torch.Tensor:
    """ψ̄ = ψ† γ⁰ (row spinors), same shape."""
    return spinor.conj() @ GAMMA[0].to(spinor.device)
