"""pp → γ/Z/Z′ → e⁺e⁻ (thesis §5.2.3): matrix elements, channel mappings, priors, σ, kinematics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lhcflow.nis.drell_yan import (
    GEV2_TO_PB,
    N_C,
    DrellYan,
    ElectroweakParameters,
    drell_yan_integrand,
)
from lhcflow.physics.pdf import load_pythia_pdf
from lhcflow.physics.pdf_sets import DEFAULT_PDF_SET, PDF_SETS

# (Q, T3) of down-type quarks, up-type quarks, electron
D, U, E = (-1 / 3, -0.5), (2 / 3, 0.5), (-1.0, -0.5)
GL2 = torch.tensor([-1 / math.sqrt(3), 1 / math.sqrt(3)], dtype=torch.float64)  # 2-point Gauss-Legendre


@pytest.fixture(scope="module")
def pdf():
    return load_pythia_pdf()


@pytest.fixture(scope="module")
def integrand(pdf):
    return drell_yan_integrand(pdf=pdf, prior="mg5")


@pytest.fixture(scope="module")
def process(integrand) -> DrellYan:
    return integrand.meta["process"]


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return torch.from_numpy(nodes), torch.from_numpy(weights)


# --------------------------------------------------------------------------------------------------
# Electroweak scheme and matrix elements
# --------------------------------------------------------------------------------------------------

def test_gmu_scheme_reproduces_mg5_sm_defaults():
    assert ElectroweakParameters(mz=91.188).mw == pytest.approx(80.419, abs=1e-3)  # MG5 sm param_card
    ew = ElectroweakParameters()
    assert ew.mw == pytest.approx(80.4215, abs=1e-3)
    assert ew.sw2 == pytest.approx(0.22223, abs=1e-5)
    # G_μ relation G_F/√2 = πα / (2 M_W² s_W²)
    assert ew.gf / math.sqrt(2) == pytest.approx(math.pi * ew.alpha / (2 * ew.mw**2 * ew.sw2), rel=1e-12)


def test_photon_only_matches_textbook_qqbar_to_ll(process):
    """dσ̂/dcos θ = π α² Q_q² (1 + cos² θ) / (2 ŝ N_c) for q q̄ → γ* → e⁺e⁻."""
    alpha = process.ew.alpha
    s = _t(15.0**2, 50.0**2, 3000.0**2).repeat_interleave(5)
    c = _t(-1.0, -0.4, 0.0, 0.7, 1.0).repeat(3)
    me = process.matrix_element(s, c, ("photon",))
    for k, (q, _) in enumerate((D, U)):
        dsigma = me[:, k] / (32 * math.pi * s)  # dσ̂/dcos θ = ⟨|M|²⟩ / (32π ŝ) after the φ integral
        ref = math.pi * alpha**2 * q**2 * (1 + c**2) / (2 * s * N_C)
        torch.testing.assert_close(dsigma, ref, rtol=1e-12, atol=0.0)


def _partial_width(ew: ElectroweakParameters, q: float, t3: float, colours: int, mass: float) -> float:
    """Γ(V → f f̄) = N_c G_F M_Z² M (g_V² + g_A²) / (6√2 π), g_V = T₃ − 2Q s_W², g_A = T₃, for a
    vector boson of mass M with Z couplings (the PDG Z formula for M = M_Z)."""
    g_v, g_a = t3 - 2 * q * ew.sw2, t3
    return colours * ew.gf * ew.mz**2 * mass * (g_v**2 + g_a**2) / (6 * math.sqrt(2) * math.pi)


@pytest.mark.parametrize("boson", ["z", "zprime"])
def test_resonance_peak_cross_section_and_asymmetry(process, boson):
    """On the peak: σ̂ = 12π/M² · Γ_ee Γ_qq / (N_c² Γ²) (colour average of the spin-1 Breit-Wigner),
    A_FB = 3/4 · A_e A_q with A_f = 2 g_V g_A / (g_V² + g_A²). The Z′ is sequential (Z couplings)."""
    ew = process.ew
    mass, width = (ew.mz, ew.gz) if boson == "z" else (ew.mzp, ew.gzp)
    s = torch.full((2,), mass**2, dtype=torch.float64)
    me = process.matrix_element(s, GL2, (boson,))                # exact 2-point rule: |M|² is quadratic in c
    sigma = me.sum(0) / (32 * math.pi * mass**2)                  # ∫ dcos θ
    fwd = process.matrix_element(s, 0.5 + 0.5 * GL2, (boson,)).sum(0) * 0.5
    bwd = process.matrix_element(s, -0.5 + 0.5 * GL2, (boson,)).sum(0) * 0.5
    afb = (fwd - bwd) / (fwd + bwd)
    gamma_ee = _partial_width(ew, *E, colours=1, mass=mass)

    def asym(q, t3):
        g_v, g_a = t3 - 2 * q * ew.sw2, t3
        return 2 * g_v * g_a / (g_v**2 + g_a**2)

    for k, quark in enumerate((D, U)):
        gamma_qq = _partial_width(ew, *quark, colours=N_C, mass=mass)
        ref = 12 * math.pi / mass**2 * gamma_ee * gamma_qq / (N_C**2 * width**2)
        assert float(sigma[k]) == pytest.approx(ref, rel=1e-10)
        assert float(afb[k]) == pytest.approx(0.75 * asym(*E) * asym(*quark), rel=1e-10)
    if boson == "z":  # size check: σ̂(u ū → Z → e⁺e⁻) ≈ 0.8 nb on the peak
        assert float(sigma[1]) * GEV2_TO_PB == pytest.approx(800.0, rel=0.05)


def test_interference_signs_and_photon_limit(process):
    """γ–Z interference makes A_FB negative below and positive above the Z (as in e⁺e⁻ → μ⁺μ⁻);
    far below the Z the full |M|² is the photon's."""
    for sqrt_s, sign in ((70.0, -1), (120.0, 1)):
        s = torch.full((2,), sqrt_s**2, dtype=torch.float64)
        fwd = process.matrix_element(s, 0.5 + 0.5 * GL2).sum(0)
        bwd = process.matrix_element(s, -0.5 + 0.5 * GL2).sum(0)
        afb = (fwd - bwd) / (fwd + bwd)
        assert torch.all(sign * afb > 0.1), (sqrt_s, afb)
    low = _t(1.0, 1.0)
    photon = process.matrix_element(low, GL2, ("photon",))
    torch.testing.assert_close(process.matrix_element(low, GL2), photon, rtol=1e-3, atol=0.0)


# --------------------------------------------------------------------------------------------------
# Channel mappings (Eqs 2.43–2.45, 5.41, 5.42)
# --------------------------------------------------------------------------------------------------

def _s_grid(process: DrellYan, n_log: int, n_peak: int) -> torch.Tensor:
    """ŝ knots: logarithmic plus dense tan-spaced knots across the Z and Z′ peaks."""
    ew = process.ew
    lo, hi = math.log10(process.s_min), math.log10(process.s_hadronic)
    parts = [torch.logspace(lo, hi, n_log, dtype=torch.float64)]
    for m, g in ((ew.mz, ew.gz), (ew.mzp, ew.gzp)):
        parts.append(m * m + m * g * torch.tan(torch.linspace(-1.565, 1.565, n_peak, dtype=torch.float64)))
    return torch.unique(torch.cat(parts).clamp(process.s_min, process.s_hadronic))


@pytest.mark.parametrize("name", ["photon", "z", "zprime"])
def test_invariant_density_is_normalised(process, name):
    inv = process.channel(name).invariant
    s = _s_grid(process, 20000, 4001)
    assert float(torch.trapezoid(torch.exp(inv.log_density(s)), s)) == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize("name", ["photon", "z", "zprime"])
def test_channel_density_is_normalised_over_x(process, name):
    """∫ g(x₁, x₂, cos θ, φ) = 1, integrated in independent variables: ŝ (trapezoid, peaks resolved),
    rapidity y with x₁,₂ = √τ e^{±y} (Gauss-Legendre; dx₁ dx₂ = dŝ/s dy), cos θ and φ (midpoints)."""
    s = _s_grid(process, 4000, 1001).clamp_max(process.s_hadronic * (1 - 1e-9))  # g₂ ~ 1/y_max at τ = 1
    gy, wy = _gauss_legendre(8)
    tau = s / process.s_hadronic
    y_max = -0.5 * torch.log(tau)
    y = y_max[:, None] * gy
    c, phi = _t(-0.5, 0.5), _t(-math.pi / 2, math.pi / 2)
    shape = (len(s), len(gy), 2, 2)
    x = torch.stack([(torch.sqrt(tau)[:, None] * torch.exp(y))[:, :, None, None].expand(shape),
                     (torch.sqrt(tau)[:, None] * torch.exp(-y))[:, :, None, None].expand(shape),
                     c[:, None].expand(shape), phi.expand(shape)], -1).reshape(-1, 4)
    g = torch.exp(process.channel(name).log_density(x)).reshape(shape).mean(dim=(2, 3)) * 4 * math.pi
    inner = (g * wy).sum(-1) * y_max / process.s_hadronic
    assert float(torch.trapezoid(inner, s)) == pytest.approx(1.0, abs=5e-4)


@pytest.mark.parametrize("name", ["photon", "z", "zprime"])
def test_channel_log_density_is_the_inverse_jacobian(process, name):
    channel = process.channel(name)
    gen = torch.Generator().manual_seed(5)
    r = 0.02 + 0.96 * torch.rand(300, 4, generator=gen, dtype=torch.float64)
    x, log_g = channel.sample(r)
    torch.testing.assert_close(channel.log_density(x), log_g, rtol=1e-9, atol=1e-9)
    h = 1e-6
    cols = []
    for d in range(4):
        e = torch.zeros(4, dtype=torch.float64)
        e[d] = h
        cols.append((channel.sample(r + e)[0] - channel.sample(r - e)[0]) / (2 * h))
    jac = torch.stack(cols, dim=-1)  # ∂x_i/∂r_d
    log_det = torch.linalg.slogdet(jac)[1]
    torch.testing.assert_close(-log_det, log_g, rtol=0.0, atol=1e-5)
    # the image stays inside the physical domain
    s = x[:, 0] * x[:, 1] * process.s_hadronic
    assert torch.all(s >= process.s_min * (1 - 1e-12)) and torch.all(x[:, :2] <= 1)


def test_log_density_outside_domain_is_minus_inf(process):
    x = torch.tensor([[1.2, 0.1, 0.0, 0.0],       # x1 > 1
                      [1e-5, 1e-5, 0.0, 0.0],     # m_ee < 15 GeV
                      [0.1, 0.1, 1.5, 0.0],       # |cos θ| > 1
                      [0.1, 0.1, 0.0, 4.0]],      # |φ| > π
                     dtype=torch.float64)
    for name in ("photon", "z", "zprime"):
        assert torch.all(process.channel(name).log_density(x) == -math.inf)
    assert torch.all(process.differential_cross_section(x[:3]) == 0)


# --------------------------------------------------------------------------------------------------
# Channel-weight priors
# --------------------------------------------------------------------------------------------------

def _at_mass(m: float, n: int = 8) -> torch.Tensor:
    tau = m**2 / 13000.0**2
    y = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    c = torch.linspace(-0.9, 0.9, n, dtype=torch.float64)
    root = math.sqrt(tau)
    return torch.stack([root * torch.exp(y), root * torch.exp(-y), c, torch.zeros_like(c)], -1)


@pytest.mark.parametrize("prior", ["mg5", "sherpa", "flat"])
def test_priors_are_partitions_of_unity(pdf, prior):
    integ = drell_yan_integrand(pdf=pdf, prior=prior)
    x = torch.cat([_at_mass(m) for m in (20.0, 91.19, 250.0, 400.0, 2000.0)])
    a = integ.channel_weights(x)
    assert a.shape == (len(x), 3) and torch.all(a >= 0)
    torch.testing.assert_close(a.sum(-1), torch.ones(len(x), dtype=torch.float64))
    if prior != "flat":  # each resonance channel owns its peak, the photon the low masses
        assert torch.all(a[:8, 0] > 0.9) and torch.all(a[8:16, 1] > 0.9) and torch.all(a[24:32, 2] > 0.9)
    with pytest.raises(ValueError):
        drell_yan_integrand(pdf=pdf, prior="nonsense")


def test_two_channel_setup_keeps_the_zprime_in_the_integrand(pdf, integrand):
    two = drell_yan_integrand(pdf=pdf, channels=("photon", "z"))
    assert two.n_channels == 2 and two.meta["channel_names"] == ("photon", "z")
    x = torch.cat([_at_mass(m) for m in (50.0, 400.0)])
    torch.testing.assert_close(two.function(x), integrand.function(x))
    torch.testing.assert_close(two.channel_weights(x).sum(-1), torch.ones(len(x), dtype=torch.float64))
    # Γ_Z′ scan (Eq 5.43): on the Z′ peak the rate grows like 1/Γ_Z′²
    narrow = drell_yan_integrand(pdf=pdf, zprime_width=0.05)
    ratio = narrow.function(_at_mass(400.0)) / integrand.function(_at_mass(400.0))
    assert torch.all((ratio > 90) & (ratio < 101))


# --------------------------------------------------------------------------------------------------
# Hadronic cross section
# --------------------------------------------------------------------------------------------------

def _multichannel_mc(integ, n: int, seed: int) -> tuple[float, float]:
    """Σ_i ⟨α_i f / g_i⟩_{g_i} with n/n_c points per channel (Eq 2.50); returns (σ, MC error)."""
    gen = torch.Generator().manual_seed(seed)
    total, var = 0.0, 0.0
    for i, channel in enumerate(integ.channels):
        r = torch.rand(n // integ.n_channels, 4, generator=gen, dtype=torch.float64)
        x, log_g = channel.sample(r)
        w = integ.function(x) * integ.channel_weights(x)[:, i] * torch.exp(-log_g)
        total += float(w.mean())
        var += float(w.var()) / len(w)
    return total, math.sqrt(var)


def _sigma_hat(s: torch.Tensor, quark: tuple[float, float], ew: ElectroweakParameters) -> torch.Tensor:
    """Textbook σ̂(q q̄ → γ*/Z*/Z′* → e⁺e⁻) in GeV⁻², angles integrated, in vector/axial couplings:

        4πα²/(3 N_c ŝ) [Q_q² Q_e² + 2 Q_q Q_e v_q v_e Re χ + (v_q² + a_q²)(v_e² + a_e²) |χ|²],
        χ = κ ŝ Σ_{V = Z, Z′} 1/(ŝ − M_V² + i M_V Γ_V),  κ = 1/(4 s_W² c_W²),  v = T₃ − 2Q s_W², a = T₃,

    the sequential Z′ sharing the Z couplings (independent of the module's helicity amplitudes)."""
    (q, t3), (qe, t3e) = quark, E
    kappa = 1 / (4 * ew.sw2 * (1 - ew.sw2))
    vq, aq, ve, ae = t3 - 2 * q * ew.sw2, t3, t3e - 2 * qe * ew.sw2, t3e
    chi = sum(kappa * s / (s - m * m + 1j * m * g) for m, g in ((ew.mz, ew.gz), (ew.mzp, ew.gzp)))
    bracket = q**2 * qe**2 + 2 * q * qe * vq * ve * chi.real + (vq**2 + aq**2) * (ve**2 + ae**2) * chi.abs() ** 2
    return 4 * math.pi * ew.alpha**2 / (3 * N_C * s) * bracket


def _composite(a: float, b: float, n_sub: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite n-point Gauss-Legendre nodes and weights on [a, b] with n_sub panels."""
    x, w = _gauss_legendre(n)
    edges = torch.linspace(a, b, n_sub + 1, dtype=torch.float64)
    lo, hi = edges[:-1, None], edges[1:, None]
    return (0.5 * (lo + hi) + 0.5 * (hi - lo) * x).reshape(-1), (0.5 * (hi - lo) * w).reshape(-1)


def _hadronic_quadrature(pdf, ew: ElectroweakParameters, n_sub: int = 8, sqrt_s: float = 13000.0,
                         m_min: float = 15.0) -> float:
    """σ = Σ_q ∫dτ ∫dy [f_q(x₁) f_q̄(x₂) + f_q̄(x₁) f_q(x₂)] σ̂_q(τ s), x₁,₂ = √τ e^{±y}, μ_F = M_Z, in pb.

    ŝ: Gauss-Legendre in log ŝ off the peaks and in arctan((ŝ − M²)/MΓ) within ±20 Γ_Z and
    ±100 Γ_Z′ (n_sub panels of 32 points each); y: 4·n_sub/8 panels of 16 points. Negative PDF
    values are set to 0, as in the integrand. Converged to < 1e-5 (relative) at n_sub = 8."""
    s_had = sqrt_s**2
    windows = [(ew.mz, ew.gz, 20), (ew.mzp, ew.gzp, 100)]
    edges = [m_min**2] + [(m + sign * k * g) ** 2 for m, g, k in windows for sign in (-1, 1)] + [s_had]
    nodes, weights = [], []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        if i % 2:  # resonance window: ŝ = M² + MΓ tan t
            m, g, _ = windows[i // 2]
            t, w = _composite(math.atan((a - m * m) / (m * g)), math.atan((b - m * m) / (m * g)), n_sub, 32)
            nodes.append(m * m + m * g * torch.tan(t))
            weights.append(w * m * g / torch.cos(t) ** 2)
        else:
            u, w = _composite(math.log(a), math.log(b), n_sub, 32)
            nodes.append(torch.exp(u))
            weights.append(w * torch.exp(u))
    s, ws = torch.cat(nodes), torch.cat(weights)
    tau = s / s_had
    y_max = -0.5 * torch.log(tau)
    u, wu = _composite(-1.0, 1.0, max(n_sub // 2, 1), 16)
    y = y_max[:, None] * u
    x1, x2 = torch.sqrt(tau)[:, None] * torch.exp(y), torch.sqrt(tau)[:, None] * torch.exp(-y)
    pids = [1, 2, 3, 4, -1, -2, -3, -4]
    xx = torch.cat([x1.reshape(-1), x2.reshape(-1)])
    f = (pdf.xfxQ2(pids, xx, ew.mz**2).clamp_min(0.0) / xx[:, None]).reshape(2, *x1.shape, 8)
    total = 0.0
    for k, quark in enumerate((D, U, D, U)):  # d u s c
        lumi = f[0, ..., k] * f[1, ..., k + 4] + f[0, ..., k + 4] * f[1, ..., k]
        total += float(((lumi * wu).sum(-1) * y_max * _sigma_hat(s, quark, ew) * ws).sum()) / s_had
    return total * GEV2_TO_PB


THESIS_PB = 4349.7  # MG5aMC with NNPDF4.0 LO, ± 0.32 pb (thesis §5.2.3)


def test_hadronic_cross_section_mc_vs_independent_quadrature(integrand, process, pdf):
    """σ(pp → e⁺e⁻, m_ee > 15 GeV) at 13 TeV: the multi-channel MC of the 4D integrand (MG5 prior,
    200k points; Sherpa prior, 90k) against an independent quadrature of the textbook σ̂ ⊗ PDFs.

    Measured with NNPDF2.3 LO (α_s = 0.119): quadrature 4395.47 pb (n_sub = 8 and 16 differ by
    4e-7), MC 4389 ± 7 pb (MG5 prior) and 4411 ± 10 pb (Sherpa prior) for these seeds. Tolerance:
    4 σ_MC plus the quadrature's convergence error (its change when the panels are doubled)."""
    ew = process.ew
    quad = _hadronic_quadrature(pdf, ew)
    quad_error = abs(_hadronic_quadrature(pdf, ew, n_sub=16) - quad)
    sigma, err = _multichannel_mc(integrand, 200_000, seed=2024)
    sherpa, err_sherpa = _multichannel_mc(drell_yan_integrand(pdf=pdf, prior="sherpa"), 90_000, seed=7)
    print(f"\nsigma(pp -> e+e-, m_ee > 15 GeV) = {sigma:.1f} +- {err:.1f} pb (MG5 prior, 200k points); "
          f"Sherpa prior {sherpa:.1f} +- {err_sherpa:.1f} pb; quadrature {quad:.2f} +- {quad_error:.2f} pb")
    assert err / sigma < 0.005 and quad_error / quad < 1e-4
    assert abs(sigma - quad) < 4 * err + quad_error
    assert abs(sherpa - quad) < 4 * err_sherpa + quad_error


def test_default_pdf_set_is_the_shipped_set_closest_to_the_thesis(pdf, process):
    """The default set gives the σ closest to the thesis's MG5 value among the accepted sets.

    The electroweak inputs are MG5's sm model (G_μ scheme) and the Z′ is sequential with M = 400,
    Γ = 0.5 GeV, as in the MadNIS code, so what remains is the PDF: the thesis used NNPDF4.0 LO,
    which is not shipped. About 60 % of σ comes from 15 < m_ee < 60 GeV (q q̄ at x ~ 10⁻³), where LO
    fits differ a lot: the accepted sets span +1.1 % (NNPDF2.3 LO, α_s = 0.119) to +22 % (README
    table). The bound 2 % is that measured PDF difference of the default with margin; the
    quadrature (1e-5) and the thesis's MG5 error (7e-5) are negligible against it, and the next
    set (+13 %) is far outside, so a change of the default set or of the physics fails here."""
    assert pdf.set_name == DEFAULT_PDF_SET
    sigma = {name: _hadronic_quadrature(load_pythia_pdf(name), process.ew) for name in PDF_SETS}
    print("\n" + "\n".join(f"{name:30s} {value:9.2f} pb  {value / THESIS_PB - 1:+.2%}" for name, value in sigma.items()))
    assert min(sigma, key=lambda name: abs(sigma[name] - THESIS_PB)) == DEFAULT_PDF_SET
    assert abs(sigma[DEFAULT_PDF_SET] / THESIS_PB - 1) < 0.02


# --------------------------------------------------------------------------------------------------
# Kinematics and flavours for event output
# --------------------------------------------------------------------------------------------------

def test_momenta_are_physical(integrand, process):
    gen = torch.Generator().manual_seed(9)
    x, _ = integrand.channels[1].sample(torch.rand(500, 4, generator=gen, dtype=torch.float64))
    p = process.momenta(x)
    assert p.shape == (500, 4, 4)
    half = 6500.0
    zero = torch.zeros_like(x[:, 0])
    torch.testing.assert_close(p[:, 0], torch.stack([x[:, 0] * half, zero, zero, x[:, 0] * half], -1))
    torch.testing.assert_close(p[:, 1, 3], -x[:, 1] * half)
    torch.testing.assert_close(p[:, 0] + p[:, 1], p[:, 2] + p[:, 3], rtol=1e-10, atol=1e-8)

    def mass2(v):
        return v[..., 0] ** 2 - (v[..., 1:] ** 2).sum(-1)

    scale = (p[:, 2:, 0] ** 2).amax(-1)
    assert torch.all(mass2(p[:, 2:]).abs() < 1e-10 * scale[:, None])
    s = x[:, 0] * x[:, 1] * 13000.0**2
    torch.testing.assert_close(mass2(p[:, 2] + p[:, 3]), s, rtol=1e-10, atol=1e-6)
    # back in the partonic rest frame the e⁻ has polar angle θ and azimuth φ
    y = 0.5 * torch.log(x[:, 0] / x[:, 1])
    e, pz = p[:, 2, 0], p[:, 2, 3]
    pz_cm = pz * torch.cosh(y) - e * torch.sinh(y)
    torch.testing.assert_close(pz_cm / (0.5 * torch.sqrt(s)), x[:, 2], rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(torch.atan2(p[:, 2, 2], p[:, 2, 1]), x[:, 3], rtol=1e-10, atol=1e-10)


def test_sample_flavours_follows_the_partonic_contributions(process):
    x = _at_mass(91.19, n=8)[5:6].repeat(40_000, 1)  # one asymmetric point, x1 > x2
    parts = process.contributions(x[:1])[0]          # (flavour d u s c, orientation)
    prob = (parts / parts.sum()).flatten()
    ids = process.sample_flavours(x, torch.Generator().manual_seed(1))
    assert ids.shape == (40_000, 2) and torch.all(ids[:, 0] == -ids[:, 1])
    assert set(ids[:, 0].abs().unique().tolist()) <= {1, 2, 3, 4}
    for k, (q, orient) in enumerate([(q, o) for q in (1, 2, 3, 4) for o in (0, 1)]):
        first = q if orient == 0 else -q
        freq = float((ids[:, 0] == first).double().mean())
        sd = math.sqrt(float(prob[k]) * (1 - float(prob[k])) / len(x))
        assert abs(freq - float(prob[k])) < 5 * sd + 1e-4
    # valence dominance: at x1 > x2 the quark comes more often from beam 1 for u and d
    assert prob[2] > prob[3] and prob[0] > prob[1]
