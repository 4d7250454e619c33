"""Hard tHj events: factorised cross sections, the Eq 6.3 fit, unweighted events as LHE + HDF5.

Integration and unweighting use the importance-sampling chain (:mod:`lhcflow.nis`): VEGAS (or
MadNIS) on the 7-dimensional map of :mod:`lhcflow.thj.phase_space`, hit-or-miss with the replica
w_max (§2.2.5). Because dσ(α) = Σ f_i(α) g_i(x) (Eq 6.33), one weighted sample drawn from the
α-averaged cross section (g₁ + g₅/2 > 0) gives all five σ_i, hence σ(α) for every α and the
parameters of Eq 6.3 exactly: A = σ₁ + σ₃, B = −σ₃, C = σ₅, D = σ₂, E = σ₄.

Event samples:

* fixed α (test sets, thesis α ∈ {0°, 45°, 90°, 135°, 180°}): x ~ dσ(x|α)/σ(α);
* α uniform in [−π, π] (training sets): α is an eighth dimension and the integrand is
  dσ(x|α)/σ(α), normalised with the σ_i, so α stays uniform and x ~ p(x|α).

Each event stores the lab momenta of [parton 1 (+z), parton 2 (−z), t or t̄, H, light quark], α,
and the five g_i of dσ/d⁷x_hard (Eq 6.31 variables, pb/GeV⁷, both beam orderings and, for
``heavy = top_antitop``, t and t̄ summed), the density the MEM integral needs (Eq 6.30). The heavy
choice is the ``heavy`` attribute of the HDF5 file and a line of the LHE header.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import torch

from lhcflow.atomic import atomic_path
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.baselines import VegasIntegrator
from lhcflow.nis.lhe import LHEWriter, iter_chunks
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.physics.kinematics import mass, pt_eta_phi_mass
from lhcflow.physics.pdf import load_pythia_pdf
from lhcflow.seeds import derive_seed
from lhcflow.thj.cross_section import ThjCrossSection
from lhcflow.thj.files import HARD_FIELDS, HARD_FORMAT, HardEventError, open_hard_file
from lhcflow.thj.matrix_element import combine, cp_factors
from lhcflow.thj.phase_space import DIM, flip_beams

#: the nine angles of the thesis' fit of Eq 6.3 (§6.1), in degrees
FIT_ANGLES_DEG = (-180.0, -90.0, -45.0, 0.0, 22.5, 45.0, 90.0, 135.0, 180.0)
#: the test-set angles of §6.1, in degrees
TEST_ANGLES_DEG = (0.0, 45.0, 90.0, 135.0, 180.0)
CP_PARAMETERS = ("A", "B", "C", "D", "E")
HARD_SLOTS = ("parton1", "parton2", "top", "higgs", "quark")
DEFAULT_INTEGRATOR = {"method": "vegas", "config": {"iterations": 8, "samples_per_iteration": 20_000}}


# --------------------------------------------------------------------------------------------------
# Integrators
# --------------------------------------------------------------------------------------------------

def trained_integrator(integrand: MultiChannelIntegrand, spec: Mapping[str, Any] | None = None, *,
                       seed: int = 0, progress: bool = False):
    """A VEGAS or MadNIS integrator of the NIS chain, adapted/trained on ``integrand``."""
    spec = dict(DEFAULT_INTEGRATOR if spec is None else spec)
    method, config = spec.get("method", "vegas"), dict(spec.get("config") or {})
    device = spec.get("device")
    if method == "vegas":
        integ = VegasIntegrator(integrand, config, device, seed)
    elif method == "madnis":
        integ = MadnisIntegrator(integrand, config, device, seed)
    else:
        raise ValueError(f"thj integrator method must be 'vegas' or 'madnis', got {method!r}")
    integ.train(progress=progress)
    return integ


def averaged_integrand(xs: ThjCrossSection) -> MultiChannelIntegrand:
    """The α-averaged cross section (1/2π)∫dα dσ(α)/du = g₁ + g₅/2 ≥ 0 on [0, 1]⁷."""
    integrand = xs.integrand(0.0, name="thj_alpha_averaged")
    integrand.function = lambda u: (lambda g: (g[:, 0] + g[:, 4] / 2).clamp(min=0))(xs.factorized_integrand(u))
    return integrand


@dataclass
class FactorizedCrossSection:
    """σ_i = ∫ g_i (pb) with their covariance, from one weighted sample."""

    sigma: np.ndarray            # (5,)
    covariance: np.ndarray       # (5, 5)
    n_calls: int
    meta: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)   # heavy kind → its own FactorizedCrossSection (same sample)

    @classmethod
    def from_terms(cls, per_event: np.ndarray, n_calls: int, meta: dict | None = None) -> FactorizedCrossSection:
        """Mean and covariance of the mean of per-event estimates g_i/q, (n, 5)."""
        return cls(per_event.mean(0), np.cov(per_event, rowvar=False) / len(per_event), n_calls, dict(meta or {}))

    def at(self, alpha_rad: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """σ(α) and its error at angle(s) in radians (correlations between the σ_i included)."""
        f = cp_factors(torch.as_tensor(np.atleast_1d(alpha_rad), dtype=torch.float64)).numpy()
        value = f @ self.sigma
        error = np.sqrt(np.einsum("ai,ij,aj->a", f, self.covariance, f))
        return value, error

    def cp_parameters(self) -> dict[str, float]:
        """A–E of Eq 6.3, exact in terms of the σ_i."""
        s = self.sigma
        return dict(zip(CP_PARAMETERS, (s[0] + s[2], -s[2], s[4], s[1], s[3])))

    def to_dict(self) -> dict[str, Any]:
        return {"sigma_i_pb": self.sigma.tolist(), "covariance_pb2": self.covariance.tolist(),
                "n_calls": self.n_calls, "cp_parameters_pb": self.cp_parameters(), **self.meta}


def factorized_cross_sections(xs: ThjCrossSection, n_eval: int, integrator: Mapping | None = None, *,
                              seed: int = 0, batch_size: int = 50_000, progress: bool = False) -> FactorizedCrossSection:
    """σ_1…σ_5 from ``n_eval`` weighted events of an integrator adapted to the α-averaged σ.

    ``parts`` holds the σ_i of each heavy kind of ``xs`` (t, t̄) from the same events.
    """
    integ = trained_integrator(averaged_integrand(xs), integrator, seed=seed, progress=progress)
    sample = integ.sample_weighted(n_eval, seed=derive_seed(seed, "thj-sigma-eval"), batch_size=batch_size)
    parts = []
    for sl in iter_chunks(len(sample.weights), batch_size):
        g = xs.factorized_by_heavy(sample.x[sl])     # (n, K, 5)
        f = (g[:, :, 0] + g[:, :, 4] / 2).sum(1).clamp(min=0)
        ratio = torch.where(f > 0, sample.weights[sl] / f, torch.zeros_like(f))
        parts.append(g * ratio[:, None, None])     # g_i / q
    per_event = torch.cat(parts).cpu().numpy()
    n_calls = integ.n_calls_train + len(per_event)
    result = FactorizedCrossSection.from_terms(per_event.sum(1), n_calls, {"method": integ.method, "n_eval": len(per_event),
                                                                            "time_train_s": integ.time_train})
    result.parts = {kind: FactorizedCrossSection.from_terms(per_event[:, k], n_calls)
                    for k, kind in enumerate(xs.heavy_kinds)}
    return result


def fit_cp_parameters(alpha_rad: Sequence[float], values: Sequence[float],
                      errors: Sequence[float] | None = None) -> dict[str, Any]:
    """Weighted least-squares fit of Eq 6.3, O(α) = A + B(1 − cos α) + sin α (C sin α + D + E cos α)."""
    a = np.asarray(alpha_rad, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    sigma = np.ones_like(y) if errors is None else np.asarray(errors, dtype=np.float64)
    if len(a) < 5:
        raise ValueError("the Eq 6.3 fit needs at least five angles")
    design = np.stack([np.ones_like(a), 1 - np.cos(a), np.sin(a) ** 2, np.sin(a), np.sin(a) * np.cos(a)], 1)
    w = 1.0 / np.where(sigma > 0, sigma, 1.0)
    coef, *_ = np.linalg.lstsq(design * w[:, None], y * w, rcond=None)
    cov = np.linalg.pinv((design * w[:, None]).T @ (design * w[:, None]))
    residual = (design @ coef - y) * w
    ndf = max(len(y) - 5, 1)
    return {"parameters": dict(zip(CP_PARAMETERS, coef.tolist())),
            "errors": dict(zip(CP_PARAMETERS, np.sqrt(np.diag(cov)).tolist())),
            "chi2": float(residual @ residual), "ndf": len(y) - 5, "chi2_ndf": float(residual @ residual) / ndf}


def eq63(alpha_rad: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """Eq 6.3 evaluated with parameters ``p`` (A–E)."""
    a = np.asarray(alpha_rad, dtype=np.float64)
    return p["A"] + p["B"] * (1 - np.cos(a)) + np.sin(a) * (p["C"] * np.sin(a) + p["D"] + p["E"] * np.cos(a))


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------

@dataclass
class HardEvents:
    """Unweighted hard events; momenta (n, 5, 4) = [parton 1 (+z), parton 2 (−z), t/t̄, H, q′] in GeV."""

    momenta: np.ndarray
    pdg: np.ndarray          # (n, 5)
    alpha: np.ndarray        # (n,) radians
    g: np.ndarray            # (n, 5) factorised dσ/d⁷x_hard, pb/GeV⁷ (all subprocesses of attrs["heavy"])
    g_event: np.ndarray      # (n, 5) factorised dσ of the event's own subprocess (any normalisation):
                             #        reweights the event to another α, Σ f(α)g / Σ f(α_event)g
    weight: np.ndarray       # (n,) event weight in pb (σ/N, times w̃ for kept overweights)
    scale: np.ndarray        # (n,) μ_F in GeV
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.alpha)


def _colours(pdg: np.ndarray) -> np.ndarray:
    """Colour flow of q b → t H q′: the light line carries 501, the b → t line 502."""
    col = np.zeros(pdg.shape + (2,), dtype=np.int64)
    light_in = np.where(np.abs(pdg[:, 0]) == 5, 1, 0)        # index of the light incoming parton
    b_in = 1 - light_in
    rows = np.arange(len(pdg))
    for idx_in, idx_out, tag in ((light_in, np.full_like(light_in, 4), 501), (b_in, np.full_like(b_in, 2), 502)):
        quark = pdg[rows, idx_in] > 0
        col[rows, idx_in, np.where(quark, 0, 1)] = tag
        col[rows, idx_out, np.where(quark, 0, 1)] = tag
    return col


def _choose(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One category per row, with probabilities ∝ the (non-negative) row weights."""
    w = weights.clamp(min=0)
    w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))
    return torch.multinomial(w, 1, generator=generator)[:, 0]


def generate_hard_events(xs: ThjCrossSection, n_events: int, alpha: float | None,
                         sigma_i: FactorizedCrossSection | None = None, integrator: Mapping | None = None, *,
                         seed: int = 0, batch_size: int = 50_000, max_calls: int | None = None,
                         progress: bool = False) -> tuple[HardEvents, dict[str, Any]]:
    """``n_events`` unweighted events at fixed ``alpha`` (radians) or, for ``None``, with α uniform.

    Returns the events and the unweighting statistics (ε, w_max, overweights, integrand calls).
    """
    if alpha is None:
        if sigma_i is None:
            raise ValueError("an α-uniform sample needs the factorised cross sections σ_i")
        integrand = xs.integrand(None, alpha_normalization=torch.as_tensor(sigma_i.sigma))
    else:
        integrand = xs.integrand(float(alpha))
    integ = trained_integrator(integrand, integrator, seed=seed, progress=progress)
    unw = integ.sample_unweighted(n_events, seed=derive_seed(seed, "thj-unweight"), batch_size=batch_size,
                                  max_calls=max_calls)
    u = unw.x.to(torch.float64)
    n = len(u)
    alphas = (math.pi * (2 * u[:, DIM] - 1)) if alpha is None else torch.full((n,), float(alpha), dtype=torch.float64)
    point = xs.on_unit_cube(u[:, :DIM])
    gen = torch.Generator().manual_seed(derive_seed(seed, "thj-flavour"))
    per_sub = (point["g"].cpu() * cp_factors(alphas)[:, None, :]).sum(-1)      # (n, n_sub)
    choice = _choose(per_sub, gen)
    subs = [xs.subprocesses[i] for i in choice.tolist()]
    pdg = np.array([[s.light_in, s.b_id, s.top_id, 25, s.light_out] for s in subs], dtype=np.int64).reshape(n, 5)
    momenta = point["momenta"].cpu()
    flip = torch.rand(n, generator=gen, dtype=torch.float64) < 0.5          # light parton from beam 2
    flipped = flip_beams(momenta)[:, [1, 0, 2, 3, 4]]
    momenta = torch.where(flip[:, None, None], flipped, momenta)
    pdg[flip.numpy()] = pdg[flip.numpy()][:, [1, 0, 2, 3, 4]]
    density = torch.cat([xs.density(momenta[sl, 2:]) for sl in iter_chunks(n, batch_size)]).cpu()
    # σ of the sample: σ(α), or for α uniform the α-averaged σ₁ + σ₅/2 (the integrand is normalised)
    sigma = unw.cross_section if alpha is not None else float(sigma_i.sigma[0] + sigma_i.sigma[4] / 2)
    events = HardEvents(
            momenta=momenta.numpy(), pdg=pdg, alpha=alphas.numpy(), g=density.numpy(),
            g_event=point["g"].cpu()[torch.arange(n), choice].numpy(),
            weight=unw.weights.cpu().numpy() * sigma / max(n, 1),
            scale=torch.sqrt(xs.mu_f2(momenta[:, 2:])).numpy(),
            attrs={"sigma_pb": sigma, "sigma_i_pb": (list(map(float, sigma_i.sigma)) if sigma_i is not None else []),
                   "sigma_error_pb": unw.cross_section_error if alpha is not None else 0.0,
                   "alpha_rad": float("nan") if alpha is None else float(alpha),
                   "alpha_sampling": "uniform" if alpha is None else "fixed",
                   "sqrt_s_gev": xs.sqrt_s, "pdf": xs.pdf_name, "integrator": integ.method,
                   "scale": xs.scale, "seed": int(seed),
                   "mt_gev": xs.params.mt, "mh_gev": xs.params.mh, "heavy": xs.heavy})
    stats = {"n_events": n, "n_requested": int(n_events), "unweighting_efficiency": unw.efficiency,
             "w_max": unw.w_max, "n_overweight": unw.n_overweight, "n_calls_eval": unw.n_weighted,
             "n_calls_train": integ.n_calls_train, "time_train_s": integ.time_train,
             "integral": unw.cross_section, "integral_error": unw.cross_section_error, "method": integ.method}
    return events, stats


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------

STATUSES = np.array([-1, -1, 1, 1, 1], dtype=np.int64)


def write_hard_events(events: HardEvents, lhe_path: str | os.PathLike | None, h5_path: str | os.PathLike, *,
                      chunk_size: int = 10_000) -> None:
    """Write ``hard.h5`` (all fields) and, if ``lhe_path`` is given, the LHE file Pythia showers.

    Every LHE event carries ``#lhcflow alpha=<rad> index=<i> g=<g1,…,g5>`` (the factorised dσ/d⁷x_hard
    in pb/GeV⁷, Eq 6.33), so showered events pair with the HDF5 rows and the LHE file alone suffices
    to reweight in α. The ``<init>`` block names the PDF set (``attrs["pdf"]``: LHAPDF id, α_s(M_Z))
    and the integrator (``attrs["integrator"]``) of the sample. Both files appear atomically.
    """
    n = len(events)
    sigma = float(events.attrs.get("sigma_pb", float(np.sum(events.weight))))
    if lhe_path is not None:
        missing = [key for key in ("pdf", "integrator") if key not in events.attrs]
        if missing:
            raise HardEventError(f"{lhe_path}: hard events lack attrs {missing} (the PDF set and integrator "
                                 "of the sample, set by generate_hard_events); the LHE <init> block needs them")
        info = {k: v for k, v in events.attrs.items() if not isinstance(v, (list, dict))}
        header = {"lhcflow_thj": "pp > t h j (and t~ h j if heavy = top_antitop), 5-flavour scheme, CP-violating "
                  "top Yukawa (thesis Eq 6.2)\n"
                  + "\n".join(f"{k} = {v}" for k, v in info.items())}
        colours = _colours(events.pdg)
        with LHEWriter(lhe_path, cross_section=sigma, cross_section_error=float(events.attrs.get("sigma_error_pb", 0.0)),
                       event_weight=sigma / max(n, 1), beam_energies=(events.attrs.get("sqrt_s_gev", 13000.0) / 2,) * 2,
                       header=header, pdf=load_pythia_pdf(events.attrs["pdf"]),
                       integrator=events.attrs["integrator"],
                       scale=float(np.median(events.scale)) if n else 173.0) as lhe:
            for sl in iter_chunks(n, chunk_size):
                index = np.arange(n)[sl]
                lhe.write(events.momenta[sl], events.pdg[sl], STATUSES, weights=events.weight[sl],
                          scales=events.scale[sl], colours=colours[sl],
                          comments=[f"lhcflow alpha={a:.12e} index={i} g=" + ",".join(f"{x:.10e}" for x in g)
                                    for a, i, g in zip(events.alpha[sl], index, events.g[sl])])
    with atomic_path(Path(h5_path)) as tmp, h5py.File(tmp, "w") as f:
        for name in HARD_FIELDS:
            f.create_dataset(name, data=getattr(events, name), compression="gzip", compression_opts=4,
                             track_times=False)
        f["momenta"].attrs["slots"] = list(HARD_SLOTS)
        f["momenta"].attrs["components"] = ["E", "px", "py", "pz"]
        f["g"].attrs["meaning"] = "dsigma/d7x_hard = sum_i f_i(alpha) g_i, f = (1, sin, cos, sin cos, sin^2), pb/GeV^7"
        f["g_event"].attrs["meaning"] = "g_i of the event's own subprocess: reweighting factor to alpha"
        for key, value in events.attrs.items():
            f.attrs[key] = value


def read_hard_events(path: str | os.PathLike) -> HardEvents:
    """Read every field of ``hard.h5``; NaN/inf in the kinematics or weights raise :class:`HardEventError`."""
    with open_hard_file(path) as f:
        data = {name: f.read(name) for name in HARD_FIELDS}
        attrs = f.attrs
    n = len(data["alpha"])
    for name in ("momenta", "alpha", "g", "g_event", "weight"):
        bad = ~np.isfinite(data[name]).reshape(n, -1).all(1) if n else np.zeros(0, bool)
        if bad.any():
            raise HARD_FORMAT.fail(path, f"field {name!r} has NaN/inf at event {int(np.flatnonzero(bad)[0])}")
    return HardEvents(**data, attrs=attrs)


def read_hard_samples(paths: Sequence[str | os.PathLike]) -> HardEvents:
    """Concatenate hard-event shards of one sample (weights rescaled so they sum to σ of the sample)."""
    parts = [read_hard_events(p) for p in paths]
    n_total = sum(len(p) for p in parts)
    fields = {name: np.concatenate([getattr(p, name) for p in parts]) for name in HARD_FIELDS}
    fields["weight"] = np.concatenate([p.weight * len(p) / n_total for p in parts])
    return HardEvents(**fields, attrs=dict(parts[0].attrs))


def hard_observables(events: HardEvents) -> dict[str, np.ndarray]:
    """pT, η of t, H and the light quark, m_tH and |Δη(t, j)| (Fig 6.3 analogues)."""
    p = np.moveaxis(np.asarray(events.momenta), -1, 0)  # (E, px, py, pz), each (n, 5)
    out = {}
    for slot, name in ((2, "t"), (3, "H"), (4, "j")):
        kin = pt_eta_phi_mass(*p[..., slot])
        out[f"pt_{name}"], out[f"eta_{name}"] = kin["pt"], kin["eta"]
    out["m_tH"] = mass(*(p[..., 2] + p[..., 3]))
    out["deta_tj"] = np.abs(out["eta_t"] - out["eta_j"])
    return out


def reweighting_terms(g_event: np.ndarray, alpha: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """(N, 5) per-event terms r_i with Σ_i f_i(α) r_i = dσ(x, s | α)/dσ(x, s | α_event) × σ(α_event)/σ_sample.

    For fixed-α samples the last factor is 1; an α-uniform sample's events have generation density
    dσ(x|α_e)/σ(α_e) · 1/2π, so σ(α_e) comes from the σ_i (attribute ``sigma_i_pb``). Then
    Σ weight × Σ_i f_i(α) r_i × (cut) is the (fiducial) σ(α) (Eq 6.33).
    """
    g = torch.as_tensor(g_event, dtype=torch.float64)
    a = torch.as_tensor(alpha, dtype=torch.float64)
    terms = (g / combine(g, a)[:, None]).numpy()
    if attrs.get("alpha_sampling") == "uniform":
        sigma_i = np.asarray(attrs["sigma_i_pb"], dtype=np.float64)
        terms = terms * (cp_factors(a).numpy() @ sigma_i / float(attrs["sigma_pb"]))[:, None]
    return terms


def reweighting_factors(events: HardEvents, alpha_rad: float) -> np.ndarray:
    """Per-event factors that turn the sample into one at ``alpha_rad`` (see :func:`reweighting_terms`)."""
    terms = reweighting_terms(events.g_event, events.alpha, events.attrs)
    return terms @ cp_factors(float(alpha_rad)).numpy()
