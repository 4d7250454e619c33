"""Hadronic p p → t H j (and t̄ H j) cross section with the CP phase factorised (thesis §6.1, Eq 6.33).

    dσ(α) = Σ_sub f_a(x₁, μ_F) f_b(x₂, μ_F) ⟨|M_sub|²⟩(α) / (2ŝ) dx₁ dx₂ dΦ₃   (Eq 2.8)

summed over the five-flavour-scheme subprocesses with diagonal CKM (massless b):

    t:  u b → t H d,  c b → t H s,  d̄ b → t H ū,  s̄ b → t H c̄
    t̄:  d b̄ → t̄ H u,  s b̄ → t̄ H c,  ū b̄ → t̄ H d̄,  c̄ b̄ → t̄ H s̄

and both beam orderings; ``heavy`` (:mod:`lhcflow.thj.heavy`) selects the t channels only (the
default, Eq 6.4) or t and t̄. Every quantity is returned as the five g_i of Eq 6.33, so one set of phase-
space points gives dσ for every α (:func:`lhcflow.thj.matrix_element.combine`).

PDFs: an LHAPDF6 grid shipped with the Pythia 8 wheel, by default NNPDF2.3 LO with α_s = 0.119
(the "LO-NNPDF, α_s = 0.119" of the thesis). Factorisation scale: ``ht2`` (default) is
μ_F = H_T/2 = Σ_{t,H,j} √(m² + p_T²)/2, MG5aMC's ``dynamical_scale_choice = 3``; ``fixed`` uses a
constant. Negative PDF values are set to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

import torch

from lhcflow.nis.drell_yan import GEV2_TO_PB
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.mappings import BoxMapping
from lhcflow.physics.pdf import PDFGrid, load_pythia_pdf
from lhcflow.thj import dirac
from lhcflow.thj.heavy import DEFAULT_HEAVY, kinds
from lhcflow.thj.matrix_element import ThjMatrixElement, ThjParameters, combine
from lhcflow.thj.phase_space import DIM, ThjPhaseSpace, bjorken_x, incoming, lab_density_factor, flip_beams

DEFAULT_PDF = "NNPDF23_lo_as_0119_qed"


@dataclass(frozen=True)
class Subprocess:
    """One partonic channel: incoming light parton, outgoing light parton, heavy line."""

    light_in: int
    light_out: int
    heavy: str

    @property
    def light(self) -> str:
        return "quark" if self.light_in > 0 else "antiquark"

    @property
    def b_id(self) -> int:
        return 5 if self.heavy == "top" else -5

    @property
    def top_id(self) -> int:
        return 6 if self.heavy == "top" else -6


SUBPROCESSES = (Subprocess(2, 1, "top"), Subprocess(4, 3, "top"), Subprocess(-1, -2, "top"),
                Subprocess(-3, -4, "top"), Subprocess(1, 2, "antitop"), Subprocess(3, 4, "antitop"),
                Subprocess(-2, -1, "antitop"), Subprocess(-4, -3, "antitop"))


def ht_half(final: torch.Tensor) -> torch.Tensor:
    """H_T/2 = Σ √(m² + p_T²)/2 of the final state (n, k, 4)."""
    mt2 = final[..., 0] ** 2 - final[..., 3] ** 2
    return torch.sqrt(mt2.clamp(min=0)).sum(-1) / 2


@dataclass
class ThjCrossSection:
    """The factorised hadronic integrand on the unit hypercube and the lab-frame density of x_hard."""

    params: ThjParameters = field(default_factory=ThjParameters)
    pdf_name: str = DEFAULT_PDF
    scale: str = "ht2"
    fixed_scale: float = 173.0
    sqrt_s: float = 13000.0
    heavy: str = DEFAULT_HEAVY
    device: str | torch.device | None = None

    def __post_init__(self):
        if self.scale not in ("ht2", "fixed"):
            raise ValueError(f"scale must be 'ht2' or 'fixed', got {self.scale!r}")
        self.heavy_kinds = kinds(self.heavy)
        self.device = torch.device(self.device or "cpu")
        self.me = ThjMatrixElement(self.params)
        self.pdf: PDFGrid = load_pythia_pdf(self.pdf_name, device=self.device)
        self.phase_space = ThjPhaseSpace(self.sqrt_s, self.params.mt, self.params.mh, self.params.mw)
        self.subprocesses = [s for s in SUBPROCESSES if s.heavy in self.heavy_kinds]
        # every incoming parton id once; columns of the light parton and of the b of each subprocess
        self.parton_ids = tuple(dict.fromkeys([s.light_in for s in self.subprocesses] +
                                              [s.b_id for s in self.subprocesses]))
        self._light_cols = [self.parton_ids.index(s.light_in) for s in self.subprocesses]
        self._b_cols = [self.parton_ids.index(s.b_id) for s in self.subprocesses]

    def mu_f2(self, final: torch.Tensor) -> torch.Tensor:
        if self.scale == "fixed":
            return torch.full(final.shape[:1], self.fixed_scale**2, dtype=torch.float64, device=final.device)
        return ht_half(final) ** 2

    def parton_densities(self, x: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """f(x, Q²) ≥ 0 of every id of :attr:`parton_ids`, (n, len(parton_ids)), in one interpolation."""
        return self.pdf.fxQ2(list(self.parton_ids), x, q2).clamp(min=0)

    def partonic(self, p1, p2, final, x1, x2, pdf1=None, pdf2=None) -> torch.Tensor:
        """Σ f_a(x₁) f_b(x₂) ⟨g_i⟩ / (2ŝ) per subprocess for light parton from beam 1: (n, n_sub, 5),
        GeV⁻²·pb.

        ``pdf1``, ``pdf2``: :meth:`parton_densities` at (x₁, μ_F²) and (x₂, μ_F²) if already evaluated.
        """
        if pdf1 is None or pdf2 is None:
            q2 = self.mu_f2(final)
            pdf1, pdf2 = self.parton_densities(x1, q2), self.parton_densities(x2, q2)
        f1, f2 = pdf1[:, self._light_cols], pdf2[:, self._b_cols]
        shat = dirac.dot(p1 + p2, p1 + p2)
        g: dict[tuple[str, str], torch.Tensor] = {}
        for heavy in dict.fromkeys(s.heavy for s in self.subprocesses):  # one heavy line for both light kinds
            lights = tuple(dict.fromkeys(s.light for s in self.subprocesses if s.heavy == heavy))
            values = self.me.factorized_lights(p1, p2, final[:, 0], final[:, 1], final[:, 2], lights, heavy)
            g.update({(light, heavy): v for light, v in zip(lights, values)})
        out = [(f1[:, i] * f2[:, i])[:, None] * g[(sub.light, sub.heavy)]
               for i, sub in enumerate(self.subprocesses)]
        return torch.stack(out, 1) / (2 * shat)[:, None, None] * GEV2_TO_PB

    # ------------------------------------------------------------------ unit hypercube
    def on_unit_cube(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Phase-space point of u (n, 7), light parton from beam 1, and per-subprocess g_i·w: (n, n_sub, 5).

        ``g`` includes the factor 2 of the mirrored beam ordering, so Σ_sub g integrates to σ_i.
        """
        point = self.phase_space.map(u.to(self.device))
        mom = point["momenta"]
        g = self.partonic(mom[:, 0], mom[:, 1], mom[:, 2:], point["x1"], point["x2"])
        point["g"] = 2 * point["weight"][:, None, None] * g
        return point

    def factorized_by_heavy(self, u: torch.Tensor) -> torch.Tensor:
        """g_i(u) summed over the subprocesses of each heavy kind of ``heavy_kinds``: (n, K, 5) in pb."""
        g = torch.nan_to_num(self.on_unit_cube(u)["g"], nan=0.0, posinf=0.0, neginf=0.0)
        return torch.stack([g[:, [i for i, s in enumerate(self.subprocesses) if s.heavy == kind]].sum(1)
                            for kind in self.heavy_kinds], 1)

    def factorized_integrand(self, u: torch.Tensor) -> torch.Tensor:
        """Σ_sub g_i(u) (n, 5) in pb: σ_i = ∫ du of it; σ(α) = Σ f_i(α) σ_i."""
        return self.factorized_by_heavy(u).sum(1)

    def integrand(self, alpha: float | None = None, *, alpha_normalization: torch.Tensor | None = None,
                  name: str = "thj") -> MultiChannelIntegrand:
        """A one-channel :class:`MultiChannelIntegrand` for the NIS integrators.

        Fixed α: f(u) = dσ(α)/du on [0, 1]⁷. ``alpha=None``: α is an 8th dimension, α = π(2u₇ − 1), and
        f(u, α) = dσ(u|α)/du / σ(α) with σ(α) = Σ f_i(α) σ_i from ``alpha_normalization`` (σ_i): the
        integral is 1 and unweighted events have α uniform and x ~ p(x|α) (thesis §6.1 training sets).
        """
        if alpha is None:
            if alpha_normalization is None:
                raise ValueError("alpha_normalization (the five σ_i) is needed when α is sampled")
            sigma_i = torch.as_tensor(alpha_normalization, dtype=torch.float64, device=self.device)

            def function(x: torch.Tensor) -> torch.Tensor:
                a = math.pi * (2 * x[:, DIM] - 1)
                return combine(self.factorized_integrand(x[:, :DIM]), a) / combine(sigma_i, a)

            dim, unit = DIM + 1, ""
        else:
            def function(x: torch.Tensor) -> torch.Tensor:
                return combine(self.factorized_integrand(x), alpha).clamp(min=0)

            dim, unit = DIM, "pb"
        return MultiChannelIntegrand(name=name, dim=dim, function=function, channels=[BoxMapping(0.0, 1.0, dim)],
                                     unit=unit, meta={"alpha": alpha})

    # ------------------------------------------------------------------ lab-frame density of x_hard
    def density(self, final: torch.Tensor) -> torch.Tensor:
        """g_i of dσ/d⁷x_hard (Eq 6.31 variables p⃗_t, p⃗_H, p_j^z) in pb/GeV⁷, both orderings, (n, 5).

        ``final`` (n, 3, 4) are the lab momenta of [t or t̄, H, light quark]; the heavy flavour of each
        event is not known from momenta alone, so for ``heavy = "top_antitop"`` the t and t̄
        contributions are summed, for ``"top"`` (the default) only t is.
        """
        final = final.to(self.device, torch.float64)
        x1, x2 = bjorken_x(final, self.sqrt_s)
        ok = (x1 > 0) & (x1 < 1) & (x2 > 0) & (x2 < 1)
        x1c, x2c = x1.clamp(1e-12, 1.0), x2.clamp(1e-12, 1.0)
        p1, p2 = incoming(x1c, x2c, self.sqrt_s)
        q2 = self.mu_f2(final)    # the same for the mirrored ordering (p_T and E unchanged)
        pdf1, pdf2 = self.parton_densities(x1c, q2), self.parton_densities(x2c, q2)
        forward = self.partonic(p1, p2, final, x1c, x2c, pdf1, pdf2).sum(1)
        mirrored = self.partonic(flip_beams(p2), flip_beams(p1), flip_beams(final), x2c, x1c,
                                 pdf2, pdf1).sum(1)
        total = (forward + mirrored) * lab_density_factor(final, self.sqrt_s)[:, None]
        return torch.where(ok[:, None], total, torch.zeros_like(total))


#: the ``thj.process`` keys that are :class:`~lhcflow.thj.matrix_element.ThjParameters`
PARAMETER_KEYS = ("mt", "mh", "mz", "alpha_inv", "gf", "w_width", "kappa_a", "kappa_b")


def cross_section_from_config(process: Mapping[str, Any], device: str | None = None) -> ThjCrossSection:
    """:class:`ThjCrossSection` from the ``thj.process`` config block."""
    params = ThjParameters(**{k: float(process[k]) for k in PARAMETER_KEYS if k in process})
    return ThjCrossSection(params=params, pdf_name=process.get("pdf", "NNPDF23_lo_as_0119_qed"),
                           scale=process.get("scale", "ht2"), fixed_scale=float(process.get("fixed_scale", 173.0)),
                           sqrt_s=float(process.get("sqrt_s", 13000.0)),
                           heavy=process.get("heavy", DEFAULT_HEAVY), device=device)
