"""Leading-order |M|² of q b → t H q′ (and the t̄ processes) with a CP-violating top Yukawa.

Thesis §6.1, Eq 6.2: L = −(y_t/√2) [a cos α t̄t + i b sin α t̄γ⁵t] H with a = 1, b = 2/3.
Two diagrams contribute for a massless b quark (Fig 6.1): the Higgs radiated from the top (A) and
from the t-channel W (B). In unitary gauge, with the light-quark current L^μ (q·L = 0 for massless
quarks, so the q^μ q^ν term of the first W propagator drops), the amplitude is

    M = C ū(t) O_μ u(b) L^μ,          C = (−i g/√2)² (−i) D_W(q₁),  q₁ = p_q − p_q′,
    O_μ = (m_t/v) Γ(α) (p̸* + m_t) γ_μ P_L / (s* − m_t²)                                    (A)
        + g M_W D_W(q₂) γ^ρ P_L (g_ρμ − q₂ρ q₂μ / M_W²),  q₂ = p_t − p_b,                  (B)

with Γ(α) = a cos α + i b sin α γ⁵, p* = p_t + p_H, s* = p*², D_W(q) = 1/(q² − M_W² + i M_W Γ_W).
For the t̄ processes the heavy line reads v̄(b̄) Ō_μ v(t̄) with p̸* → −p̸* in the top propagator.
Colour gives a factor 1 after averaging (two colour-singlet lines), spins 1/4.

Since Γ is linear in (cos α, sin α), |M|² = Σ_i f_i(α) g_i(x) exactly (Eq 6.33) with
f = (1, sin α, cos α, sin α cos α, sin² α): :meth:`ThjMatrixElement.factorized` returns the g_i.

Two independent evaluations are provided: explicit helicity amplitudes (:meth:`factorized`) and
numerical Dirac traces of the same diagrams (:meth:`squared_traces`); the tests require agreement
to 1e-10. Electroweak inputs follow MG5aMC's default ``sm`` model (G_μ scheme, M_Z = 91.188,
α⁻¹ = 132.507, m_t = 173, m_H = 125, Γ_W = 2.0476 GeV, the fixed width also in the t channel as
MG5 does); M_W and v are derived from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lhcflow.nis.drell_yan import ElectroweakParameters
from lhcflow.thj import dirac

#: light-line kinds: the incoming light parton is a quark (q → q′ W) or an antiquark (q̄ → q̄′ W)
LIGHT_KINDS = ("quark", "antiquark")
#: heavy-line kinds: b → t or b̄ → t̄
HEAVY_KINDS = ("top", "antitop")


@dataclass(frozen=True)
class ThjParameters:
    """Couplings and masses of Eq 6.2 (a, b) and the MG5 ``sm`` G_μ-scheme inputs."""

    mt: float = 173.0
    mh: float = 125.0
    mz: float = 91.188
    alpha_inv: float = 132.507
    gf: float = 1.16639e-5
    w_width: float = 2.0476
    kappa_a: float = 1.0
    kappa_b: float = 2.0 / 3.0

    @property
    def electroweak(self) -> ElectroweakParameters:
        return ElectroweakParameters(mz=self.mz, alpha_inv=self.alpha_inv, gf=self.gf)

    @property
    def mw(self) -> float:
        return self.electroweak.mw

    @property
    def g(self) -> float:
        """SU(2) coupling g = e / s_W."""
        ew = self.electroweak
        return math.sqrt(ew.e2 / ew.sw2)

    @property
    def vev(self) -> float:
        """v = 2 M_W / g (≈ 246.2 GeV)."""
        return 2 * self.mw / self.g


def cp_factors(alpha: torch.Tensor | float) -> torch.Tensor:
    """f_i(α) of Eq 6.33: (1, sin α, cos α, sin α cos α, sin² α), shape (..., 5)."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    s, c = torch.sin(alpha), torch.cos(alpha)
    return torch.stack([torch.ones_like(s), s, c, s * c, s * s], -1)


def combine(g: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Σ_i f_i(α) g_i: |M|² (or dσ) at CP phase α from the factorised g, shape (..., 5)."""
    f = cp_factors(alpha).to(g.device)
    return (g * f).sum(-1)


_EYE2 = torch.eye(2, dtype=dirac.CTYPE)


def _left(spinors: torch.Tensor) -> torch.Tensor:
    """Left-handed (upper) Weyl components of chiral-basis Dirac spinors (..., 4) -> (..., 2)."""
    return spinors[..., :2]


def _right(spinors: torch.Tensor) -> torch.Tensor:
    return spinors[..., 2:]


def _sigma(v: torch.Tensor) -> torch.Tensor:
    """V_μ σ̄^μ = V⁰ + V⃗·σ⃗ of real four-vectors (n, 4) as (n, 2, 2) complex."""
    v0, v1, v2, v3 = v.unbind(-1)
    return torch.stack([torch.stack([torch.complex(v0 + v3, torch.zeros_like(v0)), torch.complex(v1, -v2)], -1),
                        torch.stack([torch.complex(v1, v2), torch.complex(v0 - v3, torch.zeros_like(v0))], -1)], -2)


def _sigma_bar(v: torch.Tensor) -> torch.Tensor:
    """V_μ σ^μ = V⁰ − V⃗·σ⃗ (the upper-right block of V̸), (n, 2, 2) complex."""
    return _sigma(v * v.new_tensor([1.0, -1.0, -1.0, -1.0]))


def _matvec(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (m * v[:, None, :]).sum(-1)


def _vecmat(v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (v[:, :, None] * m).sum(-2)


def _dot(rows: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Σ_a rows[n, λ, a] v[n, a] -> (n, λ) (no conjugation)."""
    return (rows * v[:, None, :]).sum(-1)


class ThjMatrixElement:
    """Spin- and colour-averaged |M|² of the tHj processes as batched, differentiable torch code.

    Momenta are (n, 4) float64 tensors (E, px, py, pz) with p_light + p_b = p_t + p_H + p_light′.
    ``light`` is "quark" or "antiquark" (the incoming light parton), ``heavy`` "top" or "antitop".
    """

    def __init__(self, params: ThjParameters | None = None):
        self.params = params or ThjParameters()
        p = self.params
        self.mt, self.mw = p.mt, p.mw
        self.yukawa = p.mt / p.vev            # m_t / v = y_t / √2
        self.hww = p.g * p.mw                 # g M_W
        self.wff = p.g / math.sqrt(2.0)       # |−i g/√2|

    # ------------------------------------------------------------------ building blocks
    def _w_propagator(self, q: torch.Tensor) -> torch.Tensor:
        mw = self.mw
        return 1.0 / torch.complex(dirac.dot(q, q) - mw**2, torch.full_like(q[..., 0], mw * self.params.w_width))

    def _operators(self, p_b, p_t, p_h, heavy: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """O_μ split as (A_even, A_odd, B), each (n, 4[μ lower], 4, 4): O = a cos α A_even + i b sin α A_odd + B.

        Built as matrices for the trace evaluation; the helicity amplitudes contract spinors first.
        """
        m = dirac.on(p_t.device)
        sign = 1.0 if heavy == "top" else -1.0
        p_star = p_t + p_h
        s_star = dirac.dot(p_star, p_star)
        numerator = sign * dirac.slash(p_star) + self.mt * m["one"]
        scale = (self.yukawa / (s_star - self.mt**2)).to(dirac.CTYPE)[:, None, None, None]
        vertex = m["gamma_lower"] @ m["pl"]                                  # γ_μ P_L, (4, 4, 4)
        if heavy == "top":     # ū(t) Γ S(p*) γ_μ P_L u(b)
            a_even = scale * (numerator[:, None] @ vertex)
            a_odd = scale * (m["gamma5"] @ numerator[:, None] @ vertex)
        else:                  # v̄(b̄) γ_μ P_L S(−p*) Γ v(t̄)
            a_even = scale * (vertex @ numerator[:, None])
            a_odd = scale * (vertex @ numerator[:, None] @ m["gamma5"])
        q2 = p_t - p_b
        q2_lower = dirac.lower(q2).to(dirac.CTYPE)
        q2_slash_pl = dirac.slash(q2) @ m["pl"]                              # q̸₂ P_L
        longitudinal = q2_lower[:, :, None, None] * q2_slash_pl[:, None] / self.mw**2
        b = (self.hww * self._w_propagator(q2))[:, None, None, None] * (vertex - longitudinal)
        return a_even, a_odd, b

    def _prefactor(self, q1: torch.Tensor) -> torch.Tensor:
        """|C|² × spin average 1/4 (colour average × colour sum = 1)."""
        return self.wff**4 * self._w_propagator(q1).abs() ** 2 / 4.0

    def _check(self, light: str, heavy: str) -> None:
        if light not in LIGHT_KINDS or heavy not in HEAVY_KINDS:
            raise ValueError(f"unknown process kind light={light!r}, heavy={heavy!r}; "
                             f"choose light from {LIGHT_KINDS} and heavy from {HEAVY_KINDS}")

    # ------------------------------------------------------------------ helicity amplitudes
    def _light_current(self, spinor_light, spinor_out, light: str) -> tuple[torch.Tensor, tuple]:
        """The light current L^μ = a† σ̄^μ c of the one non-vanishing helicity pair as the 2×2 matrix
        L_μ σ̄^μ (n, 2, 2), and the Weyl spinors (a, c) to contract other vectors with it. ``spinor_*``
        are the left-handed parts √(2E) χ₋(p̂) of u(p, −), equal to those of v(p, +) for massless p."""
        if light == "quark":    # ū(q′) γ^μ P_L u(q): λ = − for both
            a, c = spinor_out, spinor_light
        else:                   # v̄(q̄) γ^μ P_L v(q̄′): λ = + for both
            a, c = spinor_light, spinor_out
        # Fierz: Σ_i (a†σ^i c) σ^i = 2 c a† − (a†c) 1, so L_μ σ̄^μ = L⁰ + L⃗·σ⃗ = 2 (a†c) 1 − 2 c a†
        a_dag_c = (a.conj() * c).sum(-1)
        matrix = 2 * a_dag_c[:, None, None] * _EYE2.to(c.device) - 2 * c[:, :, None] * a.conj()[:, None, :]
        return matrix, (a, c)

    def _amplitudes(self, p_light, p_b, p_t, p_h, p_out, lights: tuple[str, ...], heavy: str) -> list[list]:
        """Helicity amplitudes h_μ L^μ of the three pieces of O (A_even, A_odd, B), each (n, 2) over the
        top helicity, for each light-line kind of ``lights`` (the heavy line is shared): the only non-zero
        ones, since the massless b (b̄) and light partons couple through P_L and have one helicity with a
        left-handed part (u: λ = −, v: λ = +).

        Two-component form of the chiral basis: ψ = (ψ_L, ψ_R), ψ̄ γ^μ P_L χ = ψ_L† σ̄^μ χ_L,
        V̸ = [[0, V̄], [V, 0]] with V = V_μ σ̄^μ = V⁰ + V⃗·σ⃗ and V̄ = V_μ σ^μ = V⁰ − V⃗·σ⃗ (2×2), so that
        ū(t) Γ (±p̸* + m) γ_μ P_L u(b) L^μ etc. become products of 2×2 matrices and Weyl spinors. The
        same diagrams as :meth:`_operators`, evaluated independently of it.
        """
        q2 = p_t - p_b
        p_star = p_t + p_h
        s_star = dirac.dot(p_star, p_star)
        scale = (self.yukawa / (s_star - self.mt**2)).to(dirac.CTYPE)[:, None]
        w_prop = (self.hww * self._w_propagator(q2))[:, None]
        sigma_q2, sigma_bar_star = _sigma(q2), _sigma_bar(p_star)
        if heavy == "top":      # ū(t) … u(b): rows of the top, u(b) with λ = −
            spinors = dirac.u_spinors(p_t, self.mt)
            t_left, t_right = _left(spinors).conj(), _right(spinors).conj()       # (n, 2[λ], 2) rows
            w = _left(dirac.u_spinors(p_b, 0.0))[:, 1]
            t_q2_w = _dot(t_left, _matvec(sigma_q2, w))                           # ū(t) q̸₂ P_L u(b)
        else:                   # v̄(b̄) … v(t̄): v(b̄) with λ = +, columns of the antitop
            spinors = dirac.v_spinors(p_t, self.mt)
            t_left, t_right = _left(spinors), _right(spinors)                      # (n, 2[λ], 2) columns
            w = _left(dirac.v_spinors(p_b, 0.0))[:, 0].conj()
            t_q2_w = _dot(t_left, _vecmat(w, sigma_q2))
        light_spinors = [_left(dirac.u_spinors(p, 0.0))[:, 1] for p in (p_light, p_out)]
        out = []
        for light in lights:
            current, (a, c) = self._light_current(*light_spinors, light)
            q2_l = (a.conj()[:, :, None] * sigma_q2 * c[:, None, :]).sum((-1, -2))   # q₂·L = a† (q₂)σ̄ c
            longitudinal = t_q2_w * q2_l[:, None] / self.mw**2
            if heavy == "top":
                y = _matvec(current, w)                                           # L σ̄ u_L(b)
                ty, tz = _dot(t_left, y), _dot(t_right, _matvec(sigma_bar_star, y))
                out.append([scale * (tz + self.mt * ty), scale * (self.mt * ty - tz),
                            w_prop * (ty - longitudinal)])
            else:
                y = _vecmat(w, current)                                           # u_L(b̄)† L σ̄
                ty, tz = _dot(t_left, y), _dot(t_right, _vecmat(y, sigma_bar_star))
                out.append([scale * (self.mt * ty - tz), -scale * (tz + self.mt * ty),
                            w_prop * (ty - longitudinal)])
        return out

    def factorized(self, p_light, p_b, p_t, p_h, p_out, light: str = "quark", heavy: str = "top") -> torch.Tensor:
        """g_i(x) of Eq 6.33 from helicity amplitudes: ⟨|M|²⟩(α) = Σ_i f_i(α) g_i, shape (n, 5)."""
        return self.factorized_lights(p_light, p_b, p_t, p_h, p_out, (light,), heavy)[0]

    def factorized_lights(self, p_light, p_b, p_t, p_h, p_out, lights: tuple[str, ...],
                          heavy: str = "top") -> list[torch.Tensor]:
        """:meth:`factorized` for several light-line kinds at the same momenta (one heavy line)."""
        for light in lights:
            self._check(light, heavy)
        pref = self._prefactor(p_light - p_out)[:, None]

        def re_sum(x, y):
            return (x * y.conj()).real.sum(-1)

        out = []
        for amps in self._amplitudes(p_light, p_b, p_t, p_h, p_out, tuple(lights), heavy):
            m1 = self.params.kappa_a * amps[0]
            m2 = 1j * self.params.kappa_b * amps[1]
            m3 = amps[2]
            g = torch.stack([re_sum(m3, m3) + re_sum(m1, m1), 2 * re_sum(m2, m3), 2 * re_sum(m1, m3),
                             2 * re_sum(m1, m2), re_sum(m2, m2) - re_sum(m1, m1)], -1)
            out.append(pref * g)
        return out

    def squared(self, p_light, p_b, p_t, p_h, p_out, alpha, light: str = "quark", heavy: str = "top"):
        """⟨|M|²⟩ at CP phase α (scalar or (n,)) from the helicity amplitudes."""
        return combine(self.factorized(p_light, p_b, p_t, p_h, p_out, light, heavy), alpha)

    # ------------------------------------------------------------------ Dirac traces (cross-check)
    def squared_traces(self, p_light, p_b, p_t, p_h, p_out, alpha, light: str = "quark", heavy: str = "top"):
        """⟨|M|²⟩ at α by spin sums as traces: Σ_μν Tr[Π_heavy O_μ Π_b Ō_ν] Tr[Π_out γ^μ P_L Π_in P_R γ^ν]."""
        self._check(light, heavy)
        m = dirac.on(p_t.device)
        alpha = torch.as_tensor(alpha, dtype=torch.float64, device=p_t.device).expand(len(p_t))
        a_even, a_odd, b = self._operators(p_b, p_t, p_h, heavy)
        cos = torch.cos(alpha).to(dirac.CTYPE)[:, None, None, None]
        sin = torch.sin(alpha).to(dirac.CTYPE)[:, None, None, None]
        op = self.params.kappa_a * cos * a_even + 1j * self.params.kappa_b * sin * a_odd + b
        op_bar = dirac.bar(op)
        mass = self.mt * m["one"]
        if heavy == "top":
            first, second = dirac.slash(p_t) + mass, dirac.slash(p_b)        # Σ u ū(t), Σ u ū(b)
        else:
            first, second = dirac.slash(p_b), dirac.slash(p_t) - mass        # Σ v v̄(b̄), Σ v v̄(t̄)
        heavy_tensor = torch.einsum("nab,nmbc,ncd,nkda->nmk", first, op, second, op_bar)
        if light == "quark":
            l_first, l_second = dirac.slash(p_out), dirac.slash(p_light)
        else:
            l_first, l_second = dirac.slash(p_light), dirac.slash(p_out)
        light_tensor = torch.einsum("nab,mbc,cd,nde,ef,kfa->nmk", l_first, m["gamma"], m["pl"], l_second,
                                    m["pr"], m["gamma"])
        total = torch.einsum("nmk,nmk->n", heavy_tensor, light_tensor)
        return self._prefactor(p_light - p_out) * total.real
