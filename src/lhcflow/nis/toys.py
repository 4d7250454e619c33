"""Toy integrands of thesis §5.2 with their analytic channel mappings.

* camel back, Eq 5.24: a 1D Gaussian mixture on the real line, two Cauchy channels (Eq 5.25),
  or one flat channel on the interval CAMEL_BOX (the "uniform" row of Tab 5.1);
* cut camel back, Eq 5.28: the same with the left peak cut at x < μ_1 + σ_1;
* crossed ring ("no parking"), Eq 5.29: a 2D Gaussian ring crossed by a Gaussian line, with ring
  (Eqs 5.33-5.35), line (Eqs 5.30-5.32) and flat (box) channel mappings, widths γ = √40 σ (Eq 5.36).

`toy_integrand(name, **params)` builds any of them as a `MultiChannelIntegrand`. Functions take
batched float64 tensors x of shape (n, dim) and return shape (n,).
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import torch

from .integrand import ChannelMapping, MultiChannelIntegrand, mapping_prior, uniform_prior
from .mappings import DTYPE, BoxMapping, CauchyMapping, RingMapping, RotatedCauchyMapping

# Eq 5.24 parameters, thesis line 1547: μ1 = 2, σ1 = 0.5, μ2 = 5, σ2 = 0.1, a1 = 0.35.
CAMEL_DEFAULTS: dict[str, float] = {"a1": 0.35, "mu1": 2.0, "sigma1": 0.5, "mu2": 5.0, "sigma2": 0.1}

# Eq 5.29 parameters, thesis line 1607: r0 = 1, σ0 = 0.05, μ1 = 0, σ1 = 3, μ2 = 0, σ2 = 0.05;
# line coordinates x̃_{1,2} = (x1 ∓ x2)/√2, i.e. the line runs along angle -π/4 (x2 = -x1).
# Eq 5.36: Breit-Wigner widths γ_{0,1,2} = √40 σ_{0,1,2}.
# The thesis does not give the rectangle of its flat mappings; the half-width 6 is the square
# [-6, 6]^2 of the naive flat integration in the public MadNIS crossed-ring example.
CROSSED_RING_DEFAULTS: dict[str, float] = {
    "r0": 1.0, "sigma0": 0.05, "mu1": 0.0, "sigma1": 3.0, "mu2": 0.0, "sigma2": 0.05,
    "line_angle": -math.pi / 4, "width_factor": math.sqrt(40.0), "box_half_width": 6.0,
}

# Channel setups of Tab 5.2 / Figs 5.7-5.8 (any "+"-, ","- or "_"-joined list of ring/line/flat also works).
CROSSED_RING_SETUPS: dict[str, tuple[str, ...]] = {
    "flat": ("flat",),
    "flat_flat": ("flat", "flat"),
    "flat_flat_flat": ("flat", "flat", "flat"),
    "ring_flat": ("ring", "flat"),
    "ring_line": ("ring", "line"),
    "ring_line_flat": ("ring", "line", "flat"),
}

CAMEL_CHANNELS = ("peak1", "peak2")
CAMEL_MAPPING_NAMES = (*CAMEL_CHANNELS, "flat")

# The "Uniform" row of Tab 5.1 is plain MC with x uniform on [0, 6] (the "naive integration" of
# experiments/toy/camel/train_camel.py in madgraph-ml/madnis-tf, which made the table): its closed-form
# error, 2.562 % (camel) and 3.436 % (cut camel with a1 = 1/2), matches 2.553 ± 0.017 and
# 3.412 ± 0.048, while two Cauchy channels with α_i = 1/2 give 5.62 % and 6.79 % (lhcflow.nis.variance).
CAMEL_BOX: tuple[float, float] = (0.0, 6.0)
PRIOR_NAMES = ("uniform", "optimal", "mapping", "mode")

_SQRT_2PI = math.sqrt(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# Gaussian helpers
# --------------------------------------------------------------------------------------------

def _normal_cdf(z: float) -> float:
    """Φ(z) via erfc, accurate in both tails."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _gaussian(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """Normalised 1D Gaussian density N(x; μ, σ)."""
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (_SQRT_2PI * sigma)


def _parse_channels(channels: str | Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """Channel names from "a+b", "a,b", "a_b" or a sequence; checks them against `allowed`."""
    names = tuple(re.split(r"[+,_\s]+", channels.strip())) if isinstance(channels, str) else tuple(channels)
    names = tuple(n.strip().lower() for n in names if n.strip())
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise ValueError(f"unknown channel(s) {bad or channels!r}; choose from {tuple(allowed)}")
    return names


def _channel_mapping_prior(mappings: Sequence[ChannelMapping]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`mapping_prior` (α_i = g_i / Σ_j g_j, Eqs 2.63, 5.27), falling back to 1/n_c where every g_i
    vanishes (e.g. outside the box of flat-only setups), so the weights always sum to one."""
    alpha = mapping_prior(mappings)
    n_channels = len(mappings)

    def prior(x: torch.Tensor) -> torch.Tensor:
        weights = alpha(x)
        undefined = torch.isnan(weights).any(dim=-1, keepdim=True)
        return torch.where(undefined, torch.full_like(weights, 1.0 / n_channels), weights)

    return prior


def _check_prior(prior: str, allowed: Sequence[str]) -> str:
    prior = prior.lower()
    if prior not in allowed:
        raise ValueError(f"unknown prior {prior!r}; choose from {tuple(allowed)}")
    return prior


# --------------------------------------------------------------------------------------------
# Camel back, Eqs 5.24-5.28
# --------------------------------------------------------------------------------------------

def gaussian_mixture(x: torch.Tensor, a1: float = 0.35, mu1: float = 2.0, sigma1: float = 0.5,
                     mu2: float = 5.0, sigma2: float = 0.1, cut: float | None = None) -> torch.Tensor:
    """Camel back f_GM, Eq 5.24, for x of shape (n, 1); with `cut`, zero for x < cut (Eq 5.28)."""
    x1 = x.to(DTYPE)[:, 0]
    f = a1 * _gaussian(x1, mu1, sigma1) + (1.0 - a1) * _gaussian(x1, mu2, sigma2)
    if cut is not None:
        f = torch.where(x1 >= cut, f, torch.zeros_like(f))
    return f


def camel_exact(a1: float = 0.35, mu1: float = 2.0, sigma1: float = 0.5, mu2: float = 5.0,
                sigma2: float = 0.1, cut: float | None = None, upper: float | None = None) -> float:
    """∫ f_GM dx over cut ≤ x ≤ upper (either bound may be None, i.e. infinite):
    Σ_j a_j [Φ((upper - μ_j)/σ_j) - Φ((cut - μ_j)/σ_j)]; exactly 1 without bounds."""
    if cut is None and upper is None:
        return 1.0

    def mass(mu: float, sigma: float) -> float:
        above_cut = 1.0 if cut is None else _normal_cdf((mu - cut) / sigma)
        above_upper = 0.0 if upper is None else _normal_cdf((mu - upper) / sigma)
        return above_cut - above_upper

    return a1 * mass(mu1, sigma1) + (1.0 - a1) * mass(mu2, sigma2)


def camel_mappings(mu1: float = 2.0, sigma1: float = 0.5, mu2: float = 5.0, sigma2: float = 0.1,
                   channels: str | Sequence[str] = CAMEL_CHANNELS,
                   box: Sequence[float] = CAMEL_BOX) -> list[ChannelMapping]:
    """The Cauchy channels of Eq 5.25, x = μ_i + √2 σ_i tan[π(y - 1/2)], for the chosen peaks;
    "flat" is x uniform on the interval `box`."""
    peaks = {"peak1": (mu1, sigma1), "peak2": (mu2, sigma2)}
    return [BoxMapping(box[0], box[1]) if c == "flat"
            else CauchyMapping([peaks[c][0]], [math.sqrt(2.0) * peaks[c][1]])
            for c in _parse_channels(channels, CAMEL_MAPPING_NAMES)]


def camel_integrand(a1: float = 0.35, mu1: float = 2.0, sigma1: float = 0.5, mu2: float = 5.0,
                    sigma2: float = 0.1, prior: str = "optimal",
                    channels: str | Sequence[str] = CAMEL_CHANNELS,
                    cut: float | None = None, box: Sequence[float] = CAMEL_BOX) -> MultiChannelIntegrand:
    """Camel back (Eq 5.24; with `cut`, Eq 5.28) with its Cauchy channels (Eq 5.25) and/or a flat one.

    prior: "uniform" (α_i = 1/n_c) or "optimal"/"mapping", α_i = g_i / Σ_j g_j (Eq 5.27).
    channels: any of "peak1", "peak2" (Eq 5.25) and "flat" (x uniform on `box`, default [0, 6]).
    With a flat channel the integrand is restricted to `box`, so that every channel covers its
    support and `exact` is the mass inside the box (1 - 1.1·10^-5 for the default camel).
    """
    prior = _check_prior(prior, ("uniform", "optimal", "mapping"))
    params = {"a1": a1, "mu1": mu1, "sigma1": sigma1, "mu2": mu2, "sigma2": sigma2}
    names = _parse_channels(channels, CAMEL_MAPPING_NAMES)
    box = (float(box[0]), float(box[1]))
    if not box[0] < box[1]:
        raise ValueError(f"camel box {box} needs lower < upper")
    mappings = camel_mappings(mu1, sigma1, mu2, sigma2, names, box)
    lower, upper = cut, None
    if "flat" in names:
        lower, upper = box[0] if cut is None else max(cut, box[0]), box[1]

    def function(x: torch.Tensor) -> torch.Tensor:
        f = gaussian_mixture(x, **params, cut=lower)
        if upper is not None:
            f = torch.where(x.to(DTYPE)[:, 0] <= upper, f, torch.zeros_like(f))
        return f

    support = (-math.inf if lower is None else lower, math.inf if upper is None else upper)
    # quadrature breakpoints (lhcflow.nis.variance): peak centres, ±3σ, ±10σ and the cut
    peaks = ((mu1, sigma1), (mu2, sigma2))
    breakpoints = tuple(sorted({m + k * s for m, s in peaks for k in (-10, -3, 0, 3, 10)}
                               | ({cut} if cut is not None else set())))
    return MultiChannelIntegrand(
        name="camel" if cut is None else "cut_camel",
        dim=1,
        function=function,
        channels=mappings,
        prior=uniform_prior(len(mappings)) if prior == "uniform" else _channel_mapping_prior(mappings),
        exact=camel_exact(**params, cut=lower, upper=upper),
        meta={"params": {**params, "cut": cut}, "channel_names": names, "prior": prior,
              "domain": "real line" if support == (-math.inf, math.inf) else
              f"{support[0]:g} <= x" + ("" if upper is None else f" <= {upper:g}"),
              "support": support, "breakpoints": breakpoints, "equations": "5.24-5.28"},
    )


def cut_camel_integrand(cut: float | None = None, **kwargs) -> MultiChannelIntegrand:
    """Camel back cut at x < cut (Eq 5.28); the default cut is μ_1 + σ_1 = 2.5."""
    params = {**CAMEL_DEFAULTS, **{k: v for k, v in kwargs.items() if k in CAMEL_DEFAULTS}}
    if cut is None:
        cut = params["mu1"] + params["sigma1"]
    return camel_integrand(**kwargs, cut=cut)


# --------------------------------------------------------------------------------------------
# Crossed ring, Eqs 5.29-5.36
# --------------------------------------------------------------------------------------------

def ring_normalisation(r0: float = 1.0, sigma0: float = 0.05) -> float:
    """N_2 of Eq 5.29: 1 / (2π ∫_0^∞ r exp[-(r-r0)^2/(2σ0^2)] dr)
    = 1 / (2π [σ0^2 exp(-r0^2/(2σ0^2)) + √(2π) r0 σ0 Φ(r0/σ0)])."""
    radial = (sigma0**2 * math.exp(-0.5 * (r0 / sigma0) ** 2)
              + _SQRT_2PI * r0 * sigma0 * _normal_cdf(r0 / sigma0))
    return 1.0 / (2.0 * math.pi * radial)


def _line_axes(angle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Unit vectors u (along the line) and v (across it); angle -π/4 gives x̃_{1,2} = (x1 ∓ x2)/√2."""
    c, s = math.cos(angle), math.sin(angle)
    return (c, s), (-s, c)


def ring_density(x: torch.Tensor, r0: float = 1.0, sigma0: float = 0.05) -> torch.Tensor:
    """f_ring of Eq 5.29, normalised to one over the plane."""
    radius = torch.linalg.vector_norm(x.to(DTYPE), dim=-1)
    return ring_normalisation(r0, sigma0) * torch.exp(-0.5 * ((radius - r0) / sigma0) ** 2)


def line_density(x: torch.Tensor, mu1: float = 0.0, sigma1: float = 3.0, mu2: float = 0.0,
                 sigma2: float = 0.05, angle: float = -math.pi / 4) -> torch.Tensor:
    """f_line of Eq 5.29 with N_1 = 1/(2π σ1 σ2): Gaussians in x̃1 = x·u and x̃2 = x·v."""
    x = x.to(DTYPE)
    (uc, us), (vc, vs) = _line_axes(angle)
    along = uc * x[:, 0] + us * x[:, 1]
    across = vc * x[:, 0] + vs * x[:, 1]
    return _gaussian(along, mu1, sigma1) * _gaussian(across, mu2, sigma2)


def crossed_ring_function(r0: float = 1.0, sigma0: float = 0.05, mu1: float = 0.0, sigma1: float = 3.0,
                          mu2: float = 0.0, sigma2: float = 0.05, line_angle: float = -math.pi / 4,
                          box_half_width: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """f_no-parking = (f_ring + f_line)/2, Eq 5.29; zero outside [-L, L]^2 when box_half_width = L is set."""

    def function(x: torch.Tensor) -> torch.Tensor:
        x = x.to(DTYPE)
        f = 0.5 * (ring_density(x, r0, sigma0) + line_density(x, mu1, sigma1, mu2, sigma2, line_angle))
        if box_half_width is not None:
            f = torch.where((x.abs() <= box_half_width).all(dim=-1), f, torch.zeros_like(f))
        return f

    return function


def _ring_mass_in_square(r0: float, sigma0: float, half_width: float) -> float:
    """∫ f_ring over [-L, L]^2: analytic radial integral up to R(θ) = L / cos θ, 1D quadrature in θ."""
    from scipy.integrate import quad

    norm = ring_normalisation(r0, sigma0)

    def radial(radius_max: float) -> float:  # N_2 ∫_0^R r exp[-(r - r0)^2 / (2σ0^2)] dr
        z_max = (radius_max - r0) / sigma0
        gaussian_part = sigma0**2 * (math.exp(-0.5 * (r0 / sigma0) ** 2) - math.exp(-0.5 * z_max**2))
        linear_part = _SQRT_2PI * r0 * sigma0 * (_normal_cdf(z_max) - _normal_cdf(-r0 / sigma0))
        return norm * (gaussian_part + linear_part)

    # eight octants of the square are images of θ ∈ [0, π/4]
    value, _ = quad(lambda theta: radial(half_width / math.cos(theta)), 0.0, math.pi / 4,
                    epsabs=1e-14, epsrel=1e-13)
    return 8.0 * value


def _line_mass_in_square(mu1: float, sigma1: float, mu2: float, sigma2: float, angle: float,
                         half_width: float) -> float:
    """∫ f_line over [-L, L]^2: the square cuts an x̃1 interval (analytic Φ) per x̃2; quadrature in x̃2."""
    from scipy.integrate import quad

    (uc, us), (vc, vs) = _line_axes(angle)

    def along_interval(across: float) -> tuple[float, float]:
        # x = x̃1 u + x̃2 v; each |x_j| ≤ L bounds x̃1 when u_j ≠ 0
        lo, hi = -math.inf, math.inf
        for u_j, v_j in ((uc, vc), (us, vs)):
            if abs(u_j) < 1e-15:
                if abs(across * v_j) > half_width:
                    return 0.0, 0.0
                continue
            a, b = (-half_width - across * v_j) / u_j, (half_width - across * v_j) / u_j
            lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
        return lo, hi

    def integrand(t: float) -> float:  # t = (x̃2 - μ2)/σ2
        lo, hi = along_interval(mu2 + sigma2 * t)
        if hi <= lo:
            return 0.0
        mass = _normal_cdf((hi - mu1) / sigma1) - _normal_cdf((lo - mu1) / sigma1)
        return math.exp(-0.5 * t * t) / _SQRT_2PI * mass

    value, _ = quad(integrand, -12.0, 12.0, epsabs=1e-14, epsrel=1e-12, limit=200)
    return value


def crossed_ring_exact(r0: float = 1.0, sigma0: float = 0.05, mu1: float = 0.0, sigma1: float = 3.0,
                       mu2: float = 0.0, sigma2: float = 0.05, line_angle: float = -math.pi / 4,
                       box_half_width: float | None = None) -> float:
    """∫ f_no-parking: 1 on the plane; on [-L, L]^2 half the ring and line masses inside the square,
    evaluated with deterministic scipy quadrature (relative accuracy ~1e-12) at construction time."""
    if box_half_width is None:
        return 1.0
    ring = _ring_mass_in_square(r0, sigma0, box_half_width)
    line = _line_mass_in_square(mu1, sigma1, mu2, sigma2, line_angle, box_half_width)
    return 0.5 * (ring + line)


def crossed_ring_mapping(kind: str, r0: float = 1.0, sigma0: float = 0.05, mu1: float = 0.0,
                         sigma1: float = 3.0, mu2: float = 0.0, sigma2: float = 0.05,
                         line_angle: float = -math.pi / 4, width_factor: float = math.sqrt(40.0),
                         box_half_width: float = 6.0) -> ChannelMapping:
    """One analytic crossed-ring channel: "ring" (Eqs 5.33-5.35), "line" (Eqs 5.30-5.32), "flat" (box)."""
    if kind == "ring":
        return RingMapping(r0, width_factor * sigma0)
    if kind == "line":
        return RotatedCauchyMapping((mu1, mu2), (width_factor * sigma1, width_factor * sigma2), line_angle)
    if kind == "flat":
        return BoxMapping.square(box_half_width, dim=2)
    raise ValueError(f"unknown crossed-ring mapping {kind!r}; choose ring, line or flat")


def _mode_templates(names: Sequence[str]) -> list[str]:
    """Shape each channel is encouraged to take in the "mode" prior (Fig 5.7): ring/line channels
    keep their own shape; flat channels are ring-shaped, except the last channel, which takes the line."""
    if all(n != "flat" for n in names):
        return list(names)
    return [n if n != "flat" else ("line" if i == len(names) - 1 and len(names) > 1 else "ring")
            for i, n in enumerate(names)]


def crossed_ring_integrand(channels: str | Sequence[str] = "ring_line", prior: str = "uniform",
                           r0: float = 1.0, sigma0: float = 0.05, mu1: float = 0.0, sigma1: float = 3.0,
                           mu2: float = 0.0, sigma2: float = 0.05, line_angle: float = -math.pi / 4,
                           width_factor: float = math.sqrt(40.0), box_half_width: float = 6.0,
                           truncate_to_box: bool | None = None) -> MultiChannelIntegrand:
    """Crossed ring of Eq 5.29 with the channel setup `channels` (a key of CROSSED_RING_SETUPS or a
    list of "ring"/"line"/"flat").

    prior: "uniform" (α_i = 1/n_c), "optimal"/"mapping" (α_i = g_i / Σ_j g_j, Eq 2.63), or "mode"
    (α_i ∝ ring or line template density per channel, the mode-specific prior of Fig 5.7).

    Flat channels only cover the square [-L, L]^2, L = box_half_width. When a setup contains one,
    the integrand is restricted to that square (truncate_to_box=None chooses this automatically), so
    that every channel covers the whole support and `exact` = ∫_square f < 1; otherwise exact = 1.
    """
    prior = _check_prior(prior, PRIOR_NAMES)
    names = CROSSED_RING_SETUPS.get(channels) if isinstance(channels, str) else None
    names = names or _parse_channels(channels, ("ring", "line", "flat"))
    shape = {"r0": r0, "sigma0": sigma0, "mu1": mu1, "sigma1": sigma1, "mu2": mu2, "sigma2": sigma2,
             "line_angle": line_angle}
    map_params = {**shape, "width_factor": width_factor, "box_half_width": box_half_width}
    mappings = [crossed_ring_mapping(n, **map_params) for n in names]
    if truncate_to_box is None:
        truncate_to_box = "flat" in names
    domain_half_width = box_half_width if truncate_to_box else None

    if prior == "uniform":
        alpha = uniform_prior(len(mappings))
    elif prior == "mode":
        templates = [crossed_ring_mapping(n, **map_params) for n in _mode_templates(names)]
        alpha = _channel_mapping_prior(templates)
    else:
        alpha = _channel_mapping_prior(mappings)

    return MultiChannelIntegrand(
        name="crossed_ring",
        dim=2,
        function=crossed_ring_function(**shape, box_half_width=domain_half_width),
        channels=mappings,
        prior=alpha,
        exact=crossed_ring_exact(**shape, box_half_width=domain_half_width),
        meta={"params": map_params, "channel_names": tuple(names), "prior": prior,
              "gamma": {"gamma0": width_factor * sigma0, "gamma1": width_factor * sigma1,
                        "gamma2": width_factor * sigma2},
              "domain": "plane" if domain_half_width is None else f"[-{box_half_width}, {box_half_width}]^2",
              "equations": "5.29-5.36"},
    )


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., MultiChannelIntegrand]] = {
    "camel": camel_integrand,
    "camel_back": camel_integrand,
    "gaussian_mixture": camel_integrand,
    "cut_camel": cut_camel_integrand,
    "cut_camel_back": cut_camel_integrand,
    "crossed_ring": crossed_ring_integrand,
    "no_parking": crossed_ring_integrand,
}

TOY_NAMES = ("camel", "cut_camel", "crossed_ring")


def toy_integrand(name: str, **params) -> MultiChannelIntegrand:
    """Build a toy integrand by name ("camel", "cut_camel", "crossed_ring"; aliases "camel_back",
    "gaussian_mixture", "cut_camel_back", "no_parking").

    `channels=` (alias `mappings=`) selects the channel setup, `prior=` the channel weights
    ("uniform" | "optimal"/"mapping" | "mode" for the crossed ring); remaining keywords override
    the thesis parameters (CAMEL_DEFAULTS, CROSSED_RING_DEFAULTS).
    """
    key = name.lower().replace("-", "_")
    if key not in _BUILDERS:
        raise ValueError(f"unknown toy integrand {name!r}; choose from {sorted(_BUILDERS)}")
    if "mappings" in params:
        if "channels" in params:
            raise ValueError("give either channels= or mappings=, not both")
        params["channels"] = params.pop("mappings")
    return _BUILDERS[key](**params)
