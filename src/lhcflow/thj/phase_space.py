"""Phase space of p p → t H j: a 7-dimensional map from the unit hypercube (thesis Eq 6.31).

Seven degrees of freedom remain after momentum conservation and the on-shell conditions of t, H
and the massless light quark. The map is built for the t-channel W topology (Fig 6.1), with the
light parton from beam 1 (+z) and the b from beam 2; the mirrored ordering is the same map
rotated by π about x (pp is symmetric), see :func:`flip_beams`.

    u₀ → τ = τ_min^(1−u₀)            (dτ = τ log(1/τ_min) du₀),   τ = ŝ/s,  τ_min = (m_t + m_H)²/s
    u₁ → x₁ = τ^u₁, x₂ = τ/x₁        (dx₁dx₂ = log(1/τ) dτ du₁)
    u₂ → s_tH ∈ [(m_t + m_H)², ŝ]    linear
    u₃ → t₁ = (p₁ − k_j)²             M_W² − t₁ = M_W² R^u₃: the W propagator 1/(M_W² − t₁)
    u₄ → φ_j                          flat
    u₅, u₆ → cos θ*, φ*               the top direction in the tH rest frame, flat

with dΦ₃ = dΦ₂(ŝ; s_tH, 0) ds_tH/(2π) dΦ₂(s_tH; m_t², m_H²) and dΦ₂ = |p|/(16π²√s) dΩ.
The weight returned is the Jacobian of (x₁, x₂, Φ₃) with respect to u, in GeV² (dΦ₃ has dimension
GeV²); the hadronic cross section is then ∫ du w(u) Σ f f ⟨|M|²⟩ / (2ŝ).

:func:`lab_density_factor` gives the alternative measure d³p_t d³p_H dp_j^z (the seven variables of
Eq 6.31) for densities of x_hard in the lab frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lhcflow.thj import dirac

DIM = 7


def kallen(a: torch.Tensor, b: float, c: float) -> torch.Tensor:
    """Källén function λ(a, b, c)."""
    return a**2 + b**2 + c**2 - 2 * a * b - 2 * a * c - 2 * b * c


def boost_z(p: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Boost four-momenta (n, ..., 4) along z with velocity β (n,)."""
    shape = (-1,) + (1,) * (p.dim() - 2)
    beta = beta.reshape(shape)
    gamma = 1.0 / torch.sqrt(1.0 - beta**2)
    e, pz = p[..., 0], p[..., 3]
    return torch.stack([gamma * (e + beta * pz), p[..., 1], p[..., 2], gamma * (pz + beta * e)], -1)


def boost(p: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Boost p (n, 4) from the rest frame of ``frame`` (n, 4) into the frame where it has that momentum."""
    m = torch.sqrt(dirac.dot(frame, frame))
    beta = frame[:, 1:] / frame[:, :1]
    gamma = frame[:, 0] / m
    bp = (beta * p[:, 1:]).sum(-1)
    b2 = (beta**2).sum(-1)
    coef = torch.where(b2 > 0, (gamma - 1) / b2.clamp(min=1e-300), torch.zeros_like(b2))
    e = gamma * (p[:, 0] + bp)
    vec = p[:, 1:] + (coef * bp + gamma * p[:, 0])[:, None] * beta
    return torch.cat([e[:, None], vec], -1)


def flip_beams(momenta: torch.Tensor) -> torch.Tensor:
    """Rotate by π about the x axis, (p_y, p_z) → (−p_y, −p_z): exchanges the beams' roles.

    A proper rotation, so ⟨|M|²⟩ is unchanged (a reflection z → −z would flip the sign of the
    ε-tensor terms that the CP-odd coupling and the chiral W couplings produce).
    """
    return momenta * momenta.new_tensor([1.0, 1.0, -1.0, -1.0])


@dataclass
class ThjPhaseSpace:
    """Unit hypercube → (x₁, x₂, lab momenta of [q, b, t, H, q′]) with the Jacobian weight."""

    sqrt_s: float = 13000.0
    mt: float = 173.0
    mh: float = 125.0
    mw: float = 80.419

    @property
    def s(self) -> float:
        return self.sqrt_s**2

    def map(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """u (n, 7) → dict with x1, x2, shat, momenta (n, 5, 4) lab frame, weight (n,) in GeV²."""
        u = u.to(torch.float64)
        mt, mh, mw2 = self.mt, self.mh, self.mw**2
        s_min = (mt + mh) ** 2
        tau_min = s_min / self.s
        log_inv_tau_min = -math.log(tau_min)
        tau = torch.exp(-(1 - u[:, 0]) * log_inv_tau_min)
        x1 = tau ** u[:, 1]
        x2 = tau / x1
        weight = tau * log_inv_tau_min * (-torch.log(tau))
        shat = tau * self.s
        rs = torch.sqrt(shat)

        s_th = s_min + (shat - s_min) * u[:, 2]
        weight = weight * (shat - s_min) / (2 * math.pi)

        e_beam = rs / 2
        e_j = (shat - s_th) / (2 * rs)
        ratio = (mw2 + 4 * e_beam * e_j) / mw2
        t1 = mw2 * (1 - ratio ** u[:, 3])
        cos_j = (1 + t1 / (2 * e_beam * e_j)).clamp(-1.0, 1.0)
        weight = weight * (mw2 - t1) * torch.log(ratio) / (2 * e_beam * e_j)
        phi_j = 2 * math.pi * u[:, 4]
        weight = weight * e_j / (16 * math.pi**2 * rs) * 2 * math.pi

        sin_j = torch.sqrt((1 - cos_j**2).clamp(min=0))
        k_j = torch.stack([e_j, e_j * sin_j * torch.cos(phi_j), e_j * sin_j * torch.sin(phi_j), e_j * cos_j], -1)
        q_th = torch.stack([rs, torch.zeros_like(rs), torch.zeros_like(rs), torch.zeros_like(rs)], -1) - k_j

        p_star = torch.sqrt(kallen(s_th, mt**2, mh**2).clamp(min=0)) / (2 * torch.sqrt(s_th))
        cos_t = 2 * u[:, 5] - 1
        phi_t = 2 * math.pi * u[:, 6]
        sin_t = torch.sqrt((1 - cos_t**2).clamp(min=0))
        direction = torch.stack([sin_t * torch.cos(phi_t), sin_t * torch.sin(phi_t), cos_t], -1)
        e_t = torch.sqrt(p_star**2 + mt**2)
        e_h = torch.sqrt(p_star**2 + mh**2)
        k_t_rest = torch.cat([e_t[:, None], p_star[:, None] * direction], -1)
        k_h_rest = torch.cat([e_h[:, None], -p_star[:, None] * direction], -1)
        weight = weight * p_star / (16 * math.pi**2 * torch.sqrt(s_th)) * 4 * math.pi
        k_t, k_h = boost(k_t_rest, q_th), boost(k_h_rest, q_th)

        zero = torch.zeros_like(rs)
        p1 = torch.stack([e_beam, zero, zero, e_beam], -1)
        p2 = torch.stack([e_beam, zero, zero, -e_beam], -1)
        cms = torch.stack([p1, p2, k_t, k_h, k_j], 1)
        beta = (x1 - x2) / (x1 + x2)
        return {"x1": x1, "x2": x2, "shat": shat, "momenta": boost_z(cms, beta), "weight": weight}


def bjorken_x(momenta: torch.Tensor, sqrt_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x₁, x₂ of the beams from the final state [t, H, q′] (…, 3, 4) in the lab frame."""
    total = momenta.sum(-2)
    return (total[..., 0] + total[..., 3]) / sqrt_s, (total[..., 0] - total[..., 3]) / sqrt_s


def incoming(x1: torch.Tensor, x2: torch.Tensor, sqrt_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Massless incoming partons along ±z carrying x₁, x₂ of the beam energies."""
    e1, e2 = x1 * sqrt_s / 2, x2 * sqrt_s / 2
    zero = torch.zeros_like(e1)
    return torch.stack([e1, zero, zero, e1], -1), torch.stack([e2, zero, zero, -e2], -1)


def lab_density_factor(final: torch.Tensor, sqrt_s: float) -> torch.Tensor:
    """dx₁dx₂dΦ₃ / (d³p_t d³p_H dp_j^z) = (2π)⁻⁵ / (8 E_t E_H E_j) · 2/s, from final (n, 3, 4)."""
    e = final[..., 0]
    return (2 * math.pi) ** -5 / (8 * e[..., 0] * e[..., 1] * e[..., 2]) * 2 / sqrt_s**2
