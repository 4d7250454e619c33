"""Drell-Yan with a Z′: pp → γ*/Z*/Z′* → e⁺e⁻ at √s = 13 TeV (thesis §5.2.3, Eqs 5.37–5.42).

Physics (hand-written, leading order, massless fermions):

* Spin- and colour-averaged |M|² of q q̄ → e⁻ e⁺ with all three s-channel diagrams and their
  interference (Eq 5.40). With chiral couplings g^V_{fλ} (in units of e) and propagators
  P_V(ŝ) = 1/(ŝ − M_V² + i M_V Γ_V) (fixed width; P_γ = 1/ŝ), the helicity amplitudes give

      ⟨|M|²⟩ = e⁴ ŝ² / (4 N_c) · Σ_{λq, λe} |Σ_V g^V_{q λq} g^V_{e λe} P_V(ŝ)|² (1 ± cos θ)²,

  '+' for equal quark and electron helicities; θ is the e⁻ angle to the incoming quark in the
  partonic rest frame. For the photon alone this is e⁴ Q_q² (1 + cos² θ) / N_c.
* Electroweak scheme: MadGraph5's default ``sm`` model (G_μ scheme) with inputs
  α⁻¹ = 132.507, G_F = 1.16639·10⁻⁵ GeV⁻², and the thesis masses/widths of Eq 5.38
  (M_Z = 91.19, Γ_Z = 2.44, M_Z′ = 400, Γ_Z′ = 0.5 GeV). M_W and sin² θ_W are derived as in MG5:
  M_W² = M_Z²/2 + √(M_Z⁴/4 − πα M_Z²/(√2 G_F)) → M_W = 80.42 GeV, sin² θ_W = 1 − M_W²/M_Z² = 0.2222.
  Z couplings g_L = (T₃ − Q s_W²)/(s_W c_W), g_R = −Q s_W²/(s_W c_W); the Z′ is sequential
  (same couplings as the Z) unless ``zprime_couplings`` is given.
* Hadronic cross section (Eq 2.8): dσ = Σ_q [f_q(x₁) f_q̄(x₂) ⟨|M|²⟩(ŝ, c) + f_q̄(x₁) f_q(x₂) ⟨|M|²⟩(ŝ, −c)]
  / (2ŝ) · dΦ₂ dx₁ dx₂ with dΦ₂ = dcos θ dφ / (32π²), q ∈ {d, u, s, c} (no b), μ_F = M_Z,
  m_ee > 15 GeV (Eq 5.39), converted to pb. Negative PDF values (NNPDF3.1 LO has a few, e.g. the
  strange sea at large x) are set to zero so the integrand stays ≥ 0 (as Pythia does).

Integration variables: x = (x₁, x₂, cos θ, φ), with θ, φ the e⁻ direction in the partonic rest
frame measured from the +z beam (proton 1) axis, φ ∈ [−π, π]. Channel mappings (Eqs 5.41, 5.42):
y₁ → ŝ by a Breit-Wigner (Eq 2.43/2.44; Z, Z′ channels) or the massless ν = 2 map (Eq 2.45;
photon channel), then x₁ = τ^{y₂}, x₂ = τ^{1−y₂} (τ = ŝ/s), cos θ = 2y₃ − 1, φ = 2πy₄ − π with
density g₂ = −s / (4π log(x₁x₂)).

Channel weights: "flat" (1/n_c), "sherpa" (Eq 2.63 with β_i = 1/n_c) and "mg5" (Eq 2.56). For the
flavour-summed integrand the MG5 weight of diagram i is Σ_{q,orientation} L |M_{i,q}|² normalised
over the diagrams that have a channel (L: the PDF luminosity of each partonic channel).

PDF: the thesis uses NNPDF4.0 LO, which is not available offline; the default is the shipped set
closest to it in σ, NNPDF2.3 LO with α_s = 0.119 (σ(m_ee > 15 GeV) ≈ 4395 pb, 1 % above the
thesis's MG5 value 4349.7 ± 0.3 pb; the other shipped sets give 13–22 % more, see the README and
``benchmarks/bench_drell_yan_pdfs.py``). Only sets with a known LHAPDF id are accepted
(:mod:`lhcflow.physics.pdf_sets`), so the LHE files can name theirs. The PDF tables follow the
device of the x passed in (moved in place on first use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from lhcflow.nis.integrand import MultiChannelIntegrand, mapping_prior, uniform_prior
from lhcflow.physics.pdf import PDFGrid, load_pythia_pdf
from lhcflow.physics.pdf_sets import DEFAULT_PDF_SET

GEV2_TO_PB = 0.3893794e9  # (ħc)² in GeV² pb
N_C = 3
QUARKS = (1, 2, 3, 4)  # d u s c (no b, thesis §5.2.3)
DIAGRAMS = ("photon", "z", "zprime")
REFERENCE_PB = (4349.7, 0.32)  # MG5aMC with NNPDF4.0 LO, thesis §5.2.3

# Fermion types: 0 = down-type quark, 1 = up-type quark, 2 = charged lepton. (Q, T3)
_CHARGE_T3 = {"d": (-1.0 / 3.0, -0.5), "u": (2.0 / 3.0, 0.5), "e": (-1.0, -0.5)}
_TYPE_OF_QUARK = {1: 0, 2: 1, 3: 0, 4: 1}


# --------------------------------------------------------------------------------------------------
# Parameters and couplings
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElectroweakParameters:
    """Eq 5.38 masses/widths with the MG5 ``sm`` G_μ scheme (α⁻¹ = 132.507, G_F)."""

    mz: float = 91.19
    gz: float = 2.44
    mzp: float = 400.0
    gzp: float = 0.5
    alpha_inv: float = 132.507
    gf: float = 1.16639e-5

    @property
    def alpha(self) -> float:
        return 1.0 / self.alpha_inv

    @property
    def mw(self) -> float:
        """M_W from (α, G_F, M_Z), as MG5's sm model computes it."""
        mz2 = self.mz**2
        root = math.sqrt(mz2**2 / 4 - math.pi * self.alpha * mz2 / (math.sqrt(2) * self.gf))
        return math.sqrt(mz2 / 2 + root)

    @property
    def sw2(self) -> float:
        return 1.0 - self.mw**2 / self.mz**2

    @property
    def e2(self) -> float:
        return 4 * math.pi * self.alpha


def z_couplings(sw2: float) -> dict[str, tuple[float, float]]:
    """(g_L, g_R) of the Z to d, u, e in units of e: (T₃ − Q s_W², −Q s_W²)/(s_W c_W)."""
    norm = 1.0 / math.sqrt(sw2 * (1.0 - sw2))
    return {f: ((t3 - q * sw2) * norm, -q * sw2 * norm) for f, (q, t3) in _CHARGE_T3.items()}


def coupling_table(ew: ElectroweakParameters,
                   zprime_couplings: Mapping[str, tuple[float, float]] | None = None) -> list:
    """Nested list [diagram][fermion type d/u/e][helicity L/R] of couplings in units of e."""
    photon = {f: (q, q) for f, (q, _) in _CHARGE_T3.items()}
    z = z_couplings(ew.sw2)
    zp = dict(z) if zprime_couplings is None else dict(zprime_couplings)
    return [[list(v[f]) for f in ("d", "u", "e")] for v in (photon, z, zp)]


# --------------------------------------------------------------------------------------------------
# Invariant-mass mappings (Eqs 2.43–2.45)
# --------------------------------------------------------------------------------------------------

@dataclass
class BreitWignerInvariant:
    """ŝ = MΓ tan(y_min + (y_max − y_min) z) + M² on [s_min, s_max] (Eqs 2.43, 2.44)."""

    mass: float
    width: float
    s_min: float
    s_max: float

    def _limits(self) -> tuple[float, float]:
        mg = self.mass * self.width
        return (math.atan((self.s_min - self.mass**2) / mg), math.atan((self.s_max - self.mass**2) / mg))

    def sample(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y1, y2 = self._limits()
        mg = self.mass * self.width
        s = (mg * torch.tan(y1 + (y2 - y1) * z) + self.mass**2).clamp(self.s_min, self.s_max)
        return s, self.log_density(s)

    def log_density(self, s: torch.Tensor) -> torch.Tensor:
        y1, y2 = self._limits()
        mg = self.mass * self.width
        return math.log(mg / (y2 - y1)) - torch.log((s - self.mass**2) ** 2 + mg**2)


@dataclass
class MasslessInvariant:
    """ŝ = [z s_max^{1−ν} + (1 − z) s_min^{1−ν}]^{1/(1−ν)}, g ∝ ŝ^{−ν} (Eq 2.45, ν ≠ 1)."""

    s_min: float
    s_max: float
    nu: float = 2.0

    def sample(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = 1.0 - self.nu
        s = (z * self.s_max**a + (1 - z) * self.s_min**a) ** (1.0 / a)
        s = s.clamp(self.s_min, self.s_max)
        return s, self.log_density(s)

    def log_density(self, s: torch.Tensor) -> torch.Tensor:
        a = 1.0 - self.nu
        return math.log(a / (self.s_max**a - self.s_min**a)) - self.nu * torch.log(s)


# --------------------------------------------------------------------------------------------------
# Channel mapping on (x1, x2, cos θ, φ)
# --------------------------------------------------------------------------------------------------

@dataclass
class DrellYanChannel:
    """ChannelMapping r ∈ [0,1]⁴ → (x₁, x₂, cos θ, φ): G₁ (invariant map) then G₂ (Eq 5.42)."""

    invariant: BreitWignerInvariant | MasslessInvariant
    s_hadronic: float
    name: str = ""
    dim: int = 4

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, log_g1 = self.invariant.sample(r[:, 0])
        log_tau = torch.log(s / self.s_hadronic)
        x1 = torch.exp(r[:, 1] * log_tau)
        x2 = torch.exp((1 - r[:, 1]) * log_tau)
        cos_theta = 2 * r[:, 2] - 1
        phi = 2 * math.pi * r[:, 3] - math.pi
        x = torch.stack([x1, x2, cos_theta, phi], dim=-1)
        return x, log_g1 + self._log_g2(log_tau)

    def _log_g2(self, log_tau: torch.Tensor) -> torch.Tensor:
        return math.log(self.s_hadronic / (4 * math.pi)) - torch.log(-log_tau)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2, c, phi = x.unbind(-1)
        inside = (x1 > 0) & (x1 <= 1) & (x2 > 0) & (x2 <= 1) & (c.abs() <= 1) & (phi.abs() <= math.pi)
        log_tau = torch.log(x1.clamp_min(1e-300)) + torch.log(x2.clamp_min(1e-300))
        s = torch.exp(log_tau) * self.s_hadronic
        inside = inside & (s >= self.invariant.s_min * (1 - 1e-12)) & (s <= self.invariant.s_max)
        s = s.clamp(self.invariant.s_min, self.invariant.s_max)
        log_g = self.invariant.log_density(s) + self._log_g2(log_tau.clamp_max(0.0))
        return torch.where(inside, log_g, torch.full_like(log_g, -math.inf))


# --------------------------------------------------------------------------------------------------
# The process
# --------------------------------------------------------------------------------------------------

@dataclass
class DrellYan:
    """pp → γ/Z/Z′ → e⁺e⁻: matrix elements, PDFs, the differential cross section in pb, and kinematics."""

    pdf: PDFGrid
    ew: ElectroweakParameters = field(default_factory=ElectroweakParameters)
    sqrt_s: float = 13000.0
    m_min: float = 15.0
    mu_f: float | None = None  # None: μ_F = M_Z
    zprime_couplings: Mapping[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        self.s_hadronic = self.sqrt_s**2
        self.s_min = self.m_min**2
        self.mu_f2 = (self.mu_f if self.mu_f is not None else self.ew.mz) ** 2
        self.lhapdf_id = self.pdf.lhapdf_id  # a set without a known id fails here, not in the LHE writer
        self._couplings = coupling_table(self.ew, self.zprime_couplings)
        # PDG ids evaluated per beam: quarks then antiquarks
        self._pids = list(QUARKS) + [-q for q in QUARKS]
        self._lumi_cache: tuple | None = None

    # -- matrix elements --------------------------------------------------------------------------------

    def _propagators(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of P_V(ŝ), shape (n, 3) for (γ, Z, Z′)."""
        ew = self.ew
        re, im = [1.0 / s], [torch.zeros_like(s)]
        for m, g in ((ew.mz, ew.gz), (ew.mzp, ew.gzp)):
            d = s - m * m
            den = d * d + (m * g) ** 2
            re.append(d / den)
            im.append(-m * g / den)
        return torch.stack(re, -1), torch.stack(im, -1)

    def helicity_sums(self, s: torch.Tensor,
                      diagrams: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_{λq=λe}|A|², Σ_{λq≠λe}|A|²), each (n, 2) for down/up-type quarks; A = Σ_V g g P_V.

        ``diagrams`` restricts the sum to a subset of ("photon", "z", "zprime") (single-diagram |M_i|²).
        """
        re, im = self._propagators(s)
        if diagrams is not None:
            keep = torch.tensor([d in diagrams for d in DIAGRAMS], dtype=s.dtype, device=s.device)
            re, im = re * keep, im * keep
        c = torch.as_tensor(self._couplings, dtype=s.dtype, device=s.device)  # (V, f, λ)
        cc = (c[:, :2, :, None] * c[:, None, None, 2, :]).reshape(3, 8)  # (V, [t, λq, λe])
        a2 = ((re @ cc) ** 2 + (im @ cc) ** 2).reshape(-1, 2, 2, 2)
        same = a2[:, :, 0, 0] + a2[:, :, 1, 1]
        opposite = a2[:, :, 0, 1] + a2[:, :, 1, 0]
        return same, opposite

    def matrix_element(self, s: torch.Tensor, cos_theta: torch.Tensor,
                       diagrams: Sequence[str] | None = None) -> torch.Tensor:
        """Spin/colour-averaged ⟨|M|²⟩ (Eq 5.40) for down/up-type q q̄ → e⁻e⁺, shape (n, 2).

        θ is the e⁻ angle to the incoming quark in the partonic rest frame.
        """
        return self._angular(s, *self.helicity_sums(s, diagrams), cos_theta)

    def _angular(self, s: torch.Tensor, same: torch.Tensor, opposite: torch.Tensor,
                 cos_theta: torch.Tensor) -> torch.Tensor:
        c = cos_theta.unsqueeze(-1)
        pref = (self.ew.e2**2 / (4 * N_C)) * (s * s).unsqueeze(-1)
        return pref * (same * (1 + c) ** 2 + opposite * (1 - c) ** 2)

    # -- PDFs ------------------------------------------------------------------------------------------

    def _pdf_on(self, device: torch.device) -> PDFGrid:
        if self.pdf.device != device:
            self.pdf.to(device)
        return self.pdf

    def luminosities(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """(n, 4, 2): [f_q(x₁) f_q̄(x₂), f_q̄(x₁) f_q(x₂)] for q = d u s c, negative f set to 0."""
        pdf = self._pdf_on(x1.device)
        n = x1.shape[0]
        xx = torch.cat([x1, x2]).clamp(1e-300, 1.0)
        f = (pdf.xfxQ2(self._pids, xx, self.mu_f2).clamp_min(0.0) / xx.unsqueeze(-1))
        f1, f2 = f[:n], f[n:]
        nq = len(QUARKS)
        q1, qb1, q2, qb2 = f1[:, :nq], f1[:, nq:], f2[:, :nq], f2[:, nq:]
        return torch.stack([q1 * qb2, qb1 * q2], dim=-1)

    # -- cross section ---------------------------------------------------------------------------------

    def _kinematics(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x1, x2, c, phi = x.unbind(-1)
        s = x1 * x2 * self.s_hadronic
        inside = (x1 > 0) & (x1 <= 1) & (x2 > 0) & (x2 <= 1) & (c.abs() <= 1) & (s >= self.s_min)
        return x1, x2, c, s, inside

    def _luminosities_cached(self, x: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Luminosities of the last x seen (the MG5 prior and the integrand are evaluated on the same x)."""
        key = (id(x), x._version, x.data_ptr(), tuple(x.shape))
        if self._lumi_cache is not None and self._lumi_cache[0] == key and self._lumi_cache[1] is x:
            return self._lumi_cache[2]
        lumi = self.luminosities(x1, x2)
        self._lumi_cache = (key, x, lumi)
        return lumi

    def contributions(self, x: torch.Tensor, diagrams: Sequence[str] | None = None) -> torch.Tensor:
        """(n, 4, 2) parts of dσ/dx [pb] per quark flavour (d u s c) and orientation (quark from beam 1/2)."""
        return self._contributions(x, [diagrams])[0]

    def _contributions(self, x: torch.Tensor,
                       diagram_sets: Sequence[Sequence[str] | None]) -> list[torch.Tensor]:
        x1, x2, c, s, inside = self._kinematics(x)
        lumi = self._luminosities_cached(x, x1, x2)
        flux_ps = torch.where(inside, GEV2_TO_PB / (2 * s * 32 * math.pi**2), torch.zeros_like(s))
        weight = lumi * flux_ps[:, None, None]
        types = torch.tensor([_TYPE_OF_QUARK[q] for q in QUARKS], device=x.device)
        out = []
        for diagrams in diagram_sets:
            same, opposite = self.helicity_sums(s, diagrams)
            me_fwd = self._angular(s, same, opposite, c)   # quark along +z: θ_q = θ
            me_bwd = self._angular(s, same, opposite, -c)  # quark along −z: θ_q = π − θ
            me = torch.stack([me_fwd.index_select(1, types), me_bwd.index_select(1, types)], dim=-1)
            out.append(torch.where(inside[:, None, None], weight * me, torch.zeros_like(me)))
        return out

    def differential_cross_section(self, x: torch.Tensor) -> torch.Tensor:
        """dσ/(dx₁ dx₂ dcos θ dφ) in pb, zero outside the phase space and the m_ee cut."""
        return self.contributions(x).sum(dim=(1, 2))

    def diagram_weights(self, x: torch.Tensor, diagrams: Sequence[str]) -> torch.Tensor:
        """MG5-like channel weights (Eq 2.56) for the listed diagrams, shape (n, len(diagrams)).

        α_i = Σ_q L_q |M_{i,q}|² / Σ_j Σ_q L_q |M_{j,q}|², i.e. Eq 2.56 applied to the flavour-summed
        integrand (PDF luminosities L weight the single-diagram |M_i|² of each partonic channel).
        """
        parts = torch.stack([p.sum(dim=(1, 2)) for p in self._contributions(x, [(d,) for d in diagrams])], -1)
        total = parts.sum(-1, keepdim=True)
        uniform = torch.full_like(parts, 1.0 / len(diagrams))
        return torch.where(total > 0, parts / total.clamp_min(1e-300), uniform)

    # -- events ----------------------------------------------------------------------------------------

    def momenta(self, x: torch.Tensor) -> torch.Tensor:
        """Lab-frame four-momenta (E, px, py, pz), shape (n, 4, 4): parton 1 (+z), parton 2 (−z), e⁻, e⁺."""
        x1, x2, c, phi = x.unbind(-1)
        half = 0.5 * self.sqrt_s
        zero = torch.zeros_like(x1)
        p1 = torch.stack([x1 * half, zero, zero, x1 * half], -1)
        p2 = torch.stack([x2 * half, zero, zero, -x2 * half], -1)
        e = 0.5 * torch.sqrt(x1 * x2) * self.sqrt_s  # e± energy in the partonic rest frame
        sin = torch.sqrt((1 - c * c).clamp_min(0.0))
        px, py, pz = e * sin * torch.cos(phi), e * sin * torch.sin(phi), e * c
        y = 0.5 * torch.log(x1 / x2)
        ch, sh = torch.cosh(y), torch.sinh(y)
        em = torch.stack([e * ch + pz * sh, px, py, pz * ch + e * sh], -1)
        ep = torch.stack([e * ch - pz * sh, -px, -py, -pz * ch + e * sh], -1)
        return torch.stack([p1, p2, em, ep], dim=1)

    def sample_flavours(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """PDG ids (n, 2) of (parton 1, parton 2), drawn ∝ each flavour/orientation's share of dσ/dx."""
        w = self.contributions(x).reshape(x.shape[0], -1)  # index = 2 * flavour + orientation
        w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))
        k = torch.multinomial(w, 1, generator=generator).squeeze(-1)
        q = torch.tensor(QUARKS, device=x.device)[k // 2]
        sign = 1 - 2 * (k % 2)  # orientation 0: quark from beam 1
        return torch.stack([sign * q, -sign * q], dim=-1)

    # -- channels --------------------------------------------------------------------------------------

    def channel(self, name: str, nu: float = 2.0) -> DrellYanChannel:
        """The Eq 5.41/5.42 mapping for the 'photon', 'z' or 'zprime' propagator."""
        ew, lo, hi = self.ew, self.s_min, self.s_hadronic
        if name == "photon":
            inv: BreitWignerInvariant | MasslessInvariant = MasslessInvariant(lo, hi, nu)
        elif name == "z":
            inv = BreitWignerInvariant(ew.mz, ew.gz, lo, hi)
        elif name == "zprime":
            inv = BreitWignerInvariant(ew.mzp, ew.gzp, lo, hi)
        else:
            raise ValueError(f"unknown channel {name!r}; expected one of {DIAGRAMS}")
        return DrellYanChannel(inv, hi, name=name)


def drell_yan_integrand(pdf: PDFGrid | str = DEFAULT_PDF_SET,
                        channels: Sequence[str] = DIAGRAMS,
                        prior: str | None = "mg5",
                        zprime_width: float = 0.5,
                        zprime_mass: float = 400.0,
                        zprime_couplings: Mapping[str, tuple[float, float]] | None = None,
                        sqrt_s: float = 13000.0,
                        m_min: float = 15.0,
                        mu_f: float | None = None,
                        ew: ElectroweakParameters | None = None,
                        device: torch.device | str | None = None) -> MultiChannelIntegrand:
    """The §5.2.3 integrand σ = ∫ d⁴x dσ/dx [pb] with one channel per listed propagator.

    ``pdf``: a :class:`PDFGrid` or a Pythia-shipped set name of :data:`~lhcflow.physics.pdf_sets.PDF_SETS`
    (default NNPDF2.3 LO, α_s = 0.119); a set without a known LHAPDF id raises ``UnknownPDFSetError``.
    ``channels``: the thesis's three-channel setup is ("photon", "z", "zprime"); its two-channel
    setup of Fig 5.10 (right) keeps the photon and Z channels and drops the Z′ mapping (the Z′
    diagram stays in the integrand). ``prior``: "mg5" (Eq 2.56, single-diagram |M_i|²), "sherpa"
    (Eq 2.63, β_i = 1/n_c), "flat" / None (α_i = 1/n_c). The width scan of Eq 5.43 sets ``zprime_width``.
    The process object (momenta, sample_flavours, ...) is in ``meta["process"]``.
    """
    if isinstance(pdf, str):
        pdf = load_pythia_pdf(pdf, device=device)
    elif device is not None:
        pdf.to(device)
    base = ew if ew is not None else ElectroweakParameters()
    ew = ElectroweakParameters(mz=base.mz, gz=base.gz, mzp=zprime_mass, gzp=zprime_width,
                               alpha_inv=base.alpha_inv, gf=base.gf)
    process = DrellYan(pdf, ew, sqrt_s=sqrt_s, m_min=m_min, mu_f=mu_f, zprime_couplings=zprime_couplings)
    names = tuple(channels)
    maps = [process.channel(n) for n in names]
    weights: Callable[[torch.Tensor], torch.Tensor] | None
    if prior == "mg5":
        def weights(x: torch.Tensor) -> torch.Tensor:
            return process.diagram_weights(x, names)
    elif prior == "sherpa":
        weights = mapping_prior(maps)
    elif prior in ("flat", "uniform", None):
        weights = uniform_prior(len(maps))
    else:
        raise ValueError(f"unknown prior {prior!r}; expected 'mg5', 'sherpa' or 'flat'")
    return MultiChannelIntegrand(
        name="drell_yan_zprime", dim=4, function=process.differential_cross_section, channels=maps,
        prior=weights, exact=None, unit="pb",
        meta={"process": process, "channel_names": names, "prior": prior or "flat",
              "reference_pb": REFERENCE_PB, "pdf": pdf.set_name,
              "momenta": process.momenta, "sample_flavours": process.sample_flavours,
              "variables": ("x1", "x2", "cos_theta", "phi")},
    )
