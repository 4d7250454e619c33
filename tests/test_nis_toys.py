"""Physics checks of the toy integrands and channel mappings of thesis §5.2 (Eqs 5.24-5.36)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import roots_legendre

from lhcflow.nis.mappings import (BoxMapping, CauchyMapping, RingMapping, RotatedCauchyMapping,
                                  sample_mapping, uniform_points)
from lhcflow.nis.toys import (CAMEL_DEFAULTS, CROSSED_RING_DEFAULTS, CROSSED_RING_SETUPS, camel_exact,
                              crossed_ring_exact, line_density, ring_density, toy_integrand)

N_MC = 200_000
SQRT40 = math.sqrt(40.0)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _at(function, *coordinates: float) -> float:
    """A batched function evaluated at one point (for scipy quadrature)."""
    return function(torch.tensor([coordinates], dtype=torch.float64)).item()


MAPPINGS = {
    "cauchy_1d_camel_peak1": CauchyMapping([2.0], [math.sqrt(2.0) * 0.5]),
    "cauchy_1d_truncated": CauchyMapping([1.0], [0.3], lower=[0.5], upper=[3.0]),
    "cauchy_2d_product": CauchyMapping([0.0, 1.0], [SQRT40 * 3.0, SQRT40 * 0.05]),
    "line_eq_5_30": RotatedCauchyMapping([0.0, 0.0], [SQRT40 * 3.0, SQRT40 * 0.05]),
    "ring_eq_5_34": RingMapping(1.0, SQRT40 * 0.05),
    "box_square": BoxMapping.square(6.0),
    "box_1d": BoxMapping(-1.0, 3.0),
}


# ------------------------------------------------------------------------------------------
# mappings: Jacobians, inverses, boundaries, normalisation
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MAPPINGS)
def test_log_density_is_minus_log_jacobian(name: str) -> None:
    """g(G(r)) = 1/|det ∂G/∂r| (Eq 2.49) via autograd; log_density and inverse agree with sample."""
    mapping = MAPPINGS[name]
    r = 0.02 + 0.96 * uniform_points(64, mapping.dim, _generator(1))
    r.requires_grad_(True)
    x, log_g = mapping.sample(r)
    jacobian = torch.stack([torch.autograd.grad(x[:, k].sum(), r, retain_graph=True)[0]
                            for k in range(x.shape[1])], dim=1)  # (n, D, dim): row k = ∂x_k/∂r
    log_det = torch.linalg.slogdet(jacobian)[1]
    x, log_g = x.detach(), log_g.detach()
    torch.testing.assert_close(log_g, -log_det.detach(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(mapping.log_density(x), log_g, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(mapping.inverse(x), r.detach(), rtol=0, atol=1e-9)
    assert x.dtype == torch.float64 and log_g.dtype == torch.float64


@pytest.mark.parametrize("name", MAPPINGS)
def test_boundaries_stay_finite(name: str) -> None:
    """r exactly 0 or 1 (tan at ±π/2) gives finite x and log g, never NaN."""
    mapping = MAPPINGS[name]
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)] * mapping.dim)
    x, log_g = mapping.sample(corners.reshape(-1, mapping.dim))
    assert torch.isfinite(x).all() and torch.isfinite(log_g).all()
    assert not torch.isnan(mapping.log_density(x)).any()


def test_ring_radius_range() -> None:
    """Eq 5.34 with π C_0 = arctan(r_0/γ_0), ω_0 = (1 + 2C_0)/2 maps z_1 ∈ [0, 1] onto r ∈ [0, ∞)."""
    ring = MAPPINGS["ring_eq_5_34"]
    z = torch.tensor([[0.0, 0.3], [1.0, 0.3], [0.5, 0.0]], dtype=torch.float64)
    radius = torch.linalg.vector_norm(ring.sample(z)[0], dim=-1)
    assert radius[0] < 1e-12 and radius[1] > 1e14
    expected_mid = 1.0 + ring.gamma0 * math.tan(math.pi * (ring.omega0 / 2 - ring.c0))
    assert radius[2].item() == pytest.approx(expected_mid, rel=1e-12)


ONE_D_SUPPORT = {"cauchy_1d_camel_peak1": (-np.inf, 2.0, np.inf), "cauchy_1d_truncated": (0.5, 1.0, 3.0),
                 "box_1d": (-1.0, 1.0, 3.0)}


@pytest.mark.parametrize("name", ONE_D_SUPPORT)
def test_1d_density_normalised(name: str) -> None:
    """∫ g dx = 1 over the image of the map (scipy quadrature); g = 0 outside it."""
    mapping = MAPPINGS[name]
    lo, mid, hi = ONE_D_SUPPORT[name]
    total = sum(quad(lambda x: math.exp(_at(mapping.log_density, x)), a, b, limit=400, epsabs=1e-13)[0]
                for a, b in ((lo, mid), (mid, hi)))
    assert total == pytest.approx(1.0, abs=1e-9)
    if np.isfinite(lo):
        outside = torch.tensor([[lo - 1e-9], [hi + 1e-9]], dtype=torch.float64)
        assert torch.isneginf(mapping.log_density(outside)).all()


def test_ring_density_normalised_radially() -> None:
    """2π ∫_0^∞ r g_ring(r, θ) dr = 1 for any θ: checks the 1/r Jacobian and the ω_0, C_0 normalisation."""
    ring = MAPPINGS["ring_eq_5_34"]
    for theta in (0.0, 1.0, 2.5):
        def radial(rad: float) -> float:
            log_g = _at(ring.log_density, rad * math.cos(theta), rad * math.sin(theta))
            return 2.0 * math.pi * rad * math.exp(log_g)
        total = quad(radial, 0.0, 1.0, limit=200)[0] + quad(radial, 1.0, np.inf, limit=200)[0]
        assert total == pytest.approx(1.0, abs=1e-7)


def _rotated_quadrature(density, scale_along: float, scale_across: float, rotate: bool = True,
                        n_nodes: int = 600) -> float:
    """∫ density d^2x by Gauss-Legendre in s = arctan(y / scale) on the axes of Eq 5.30,
    x_{1,2} = (y_2 ± y_1)/√2 (unit Jacobian), or on the x axes when rotate=False."""
    nodes, weights = roots_legendre(n_nodes)  # asymptotic formulas for large n: no BLAS eigensolver
    s = torch.tensor(nodes * math.pi / 2, dtype=torch.float64)
    w = torch.tensor(weights * math.pi / 2, dtype=torch.float64)
    y1, y2 = scale_along * torch.tan(s), scale_across * torch.tan(s)
    dy1, dy2 = w * scale_along / torch.cos(s) ** 2, w * scale_across / torch.cos(s) ** 2
    grid1, grid2 = torch.meshgrid(y1, y2, indexing="ij")
    if rotate:
        x = torch.stack([(grid2 + grid1) / math.sqrt(2.0), (grid2 - grid1) / math.sqrt(2.0)], dim=-1)
    else:
        x = torch.stack([grid1, grid2], dim=-1)
    return (density(x.reshape(-1, 2)) * torch.outer(dy1, dy2).reshape(-1)).sum().item()


@pytest.mark.parametrize("name", ["line_eq_5_30", "cauchy_2d_product", "box_square"])
def test_2d_density_normalised(name: str) -> None:
    """∫ g d^2x = 1 by quadrature (independent of the mapping's own sampler)."""
    mapping = MAPPINGS[name]
    density = lambda x: mapping.log_density(x).exp()  # noqa: E731
    if name == "cauchy_2d_product":  # axis-aligned, centred at (0, 1)
        total = _rotated_quadrature(lambda x: density(x + torch.tensor([0.0, 1.0], dtype=torch.float64)),
                                    20.0, 0.5, rotate=False)
        assert total == pytest.approx(1.0, abs=1e-6)
    elif name == "line_eq_5_30":
        assert _rotated_quadrature(density, 20.0, 0.5) == pytest.approx(1.0, abs=1e-6)
    else:  # the box edges do not sit on quadrature nodes: integrate the indicator on a fine midpoint grid
        edges = torch.linspace(-7.0, 7.0, 1401, dtype=torch.float64)
        mids = 0.5 * (edges[1:] + edges[:-1])
        grid = torch.stack(torch.meshgrid(mids, mids, indexing="ij"), dim=-1).reshape(-1, 2)
        assert (density(grid).sum() * 0.01**2).item() == pytest.approx(1.0, abs=1e-12)


def test_line_mapping_follows_the_line_of_eq_5_29() -> None:
    """Eq 5.30: samples concentrate around x_2 = -x_1, where f_line is large (x̃_2 = (x_1+x_2)/√2 ≈ 0)."""
    line = MAPPINGS["line_eq_5_30"]
    x, _ = sample_mapping(line, 10_000, _generator(2))
    across = (x[:, 0] + x[:, 1]) / math.sqrt(2.0)
    along = (x[:, 0] - x[:, 1]) / math.sqrt(2.0)
    # median |Cauchy| = γ: γ_2 = √40·0.05 across, γ_1 = √40·3 along the line (Eq 5.36)
    assert across.abs().median().item() == pytest.approx(SQRT40 * 0.05, rel=0.05)
    assert along.abs().median().item() == pytest.approx(SQRT40 * 3.0, rel=0.05)
    on_line = torch.tensor([[2.0, -2.0]], dtype=torch.float64)
    off_line = torch.tensor([[2.0, 2.0]], dtype=torch.float64)
    assert line_density(on_line) > 1e6 * line_density(off_line)


def test_sample_mapping_uses_generator() -> None:
    x1, _ = sample_mapping(MAPPINGS["ring_eq_5_34"], 100, _generator(5))
    x2, _ = sample_mapping(MAPPINGS["ring_eq_5_34"], 100, _generator(5))
    assert torch.equal(x1, x2) and x1.dtype == torch.float64


# ------------------------------------------------------------------------------------------
# integrands: parameters, normalisation, exact integrals
# ------------------------------------------------------------------------------------------

def test_thesis_parameters() -> None:
    assert CAMEL_DEFAULTS == {"a1": 0.35, "mu1": 2.0, "sigma1": 0.5, "mu2": 5.0, "sigma2": 0.1}
    assert (CROSSED_RING_DEFAULTS["r0"], CROSSED_RING_DEFAULTS["sigma0"]) == (1.0, 0.05)
    assert (CROSSED_RING_DEFAULTS["sigma1"], CROSSED_RING_DEFAULTS["sigma2"]) == (3.0, 0.05)
    camel = toy_integrand("camel")
    assert [c.gamma[0] for c in camel.channels] == pytest.approx([math.sqrt(2) * 0.5, math.sqrt(2) * 0.1])
    ring_line = toy_integrand("crossed_ring", channels="ring_line")
    ring, line = ring_line.channels
    assert ring.gamma0 == pytest.approx(SQRT40 * 0.05)
    assert line.cauchy.gamma == pytest.approx((SQRT40 * 3.0, SQRT40 * 0.05))
    assert toy_integrand("cut_camel").meta["params"]["cut"] == pytest.approx(2.5)


def test_exact_integrals_by_quadrature() -> None:
    """camel/cut camel (erf) and crossed ring (plane: 1; square: scipy) against independent quadrature."""
    for name, cut in (("camel", None), ("cut_camel", 2.5)):
        integrand = toy_integrand(name)
        lo = -np.inf if cut is None else cut
        total = sum(quad(lambda x: _at(integrand.function, x), a, b, limit=400)[0]
                    for a, b in ((lo, 4.0), (4.0, np.inf)))
        assert integrand.exact == pytest.approx(camel_exact(cut=cut), rel=1e-14)
        assert total == pytest.approx(integrand.exact, rel=1e-8)
    assert camel_exact(cut=2.5) == pytest.approx(0.35 * 0.5 * math.erfc(1 / math.sqrt(2)) + 0.65, rel=1e-12)
    # a flat channel restricts f to its box [0, 6] (the "Uniform" row of Tab 5.1)
    for name, params, lo in (("camel", {}, 0.0), ("cut_camel", {"a1": 0.5}, 2.5)):
        boxed = toy_integrand(name, channels="flat", **params)
        inside = sum(quad(lambda x: _at(boxed.function, x), a, b, limit=400, points=[5.0])[0]
                     for a, b in ((lo, 4.0), (4.0, 6.0)))
        outside = [quad(lambda x: _at(boxed.function, x), a, b)[0] for a, b in ((-9.0, lo), (6.0, 9.0))]
        assert boxed.exact == pytest.approx(inside, rel=1e-9) and outside == [0.0, 0.0]
        assert boxed.meta["support"] == (lo, 6.0)
    below_zero = 0.35 * 0.5 * math.erfc(4 / math.sqrt(2))  # peak 1 beyond 4σ_1; peak 2 is 10σ_2 inside
    assert 1.0 - toy_integrand("camel", channels="flat").exact == pytest.approx(below_zero, rel=1e-6)
    # f_ring and f_line are unit-normalised (Eq 5.29): radial and rotated-axis quadrature
    ring_total = quad(lambda r: 2 * math.pi * r * _at(ring_density, r, 0.0),
                      0.0, 3.0, points=[1.0], limit=200)[0]
    assert ring_total == pytest.approx(1.0, rel=1e-9)
    assert _rotated_quadrature(line_density, 5.0, 0.1) == pytest.approx(1.0, abs=1e-9)
    assert toy_integrand("crossed_ring", channels="ring_line").exact == 1.0
    # the square [-L, L]^2 removes a small part of the σ_1 = 3 line only
    boxed = toy_integrand("crossed_ring", channels="ring_flat")
    assert boxed.exact == pytest.approx(crossed_ring_exact(box_half_width=6.0))
    line_inside = 2.0 * boxed.exact - 1.0  # exact = (1 + line mass in the square)/2
    # thin-line limit σ_2 -> 0: the line x_2 = -x_1 leaves the square at |x̃_1| = √2 L = 2√2 σ_1
    thin_line = math.erf(2.0)  # = 2Φ(2√2) - 1
    assert line_inside == pytest.approx(thin_line, abs=5e-4) and line_inside < thin_line
    assert crossed_ring_exact(box_half_width=60.0) == pytest.approx(1.0, abs=1e-12)


def _channel_estimates(integrand, n: int, seed: int) -> tuple[float, float]:
    """Σ_i <α_i f / g_i>_{x~g_i} (Eq 2.50 / 5.26) and its MC error."""
    generator = _generator(seed)
    total, variance = 0.0, 0.0
    for index, channel in enumerate(integrand.channels):
        x, log_g = sample_mapping(channel, n, generator)
        weights = integrand.channel_weights(x)[:, index] * integrand.function(x) * torch.exp(-log_g)
        assert torch.isfinite(weights).all()
        total += weights.mean().item()
        variance += weights.var().item() / n
    return total, math.sqrt(variance)


SINGLE_CHANNEL_CASES = [("camel", "peak1"), ("camel", "peak2"), ("camel", "flat"), ("cut_camel", "peak1"),
                        ("cut_camel", "peak2"), ("cut_camel", "flat"),
                        ("crossed_ring", "ring"), ("crossed_ring", "line"), ("crossed_ring", "flat")]


@pytest.mark.parametrize("name,channel", SINGLE_CHANNEL_CASES)
def test_plain_mc_through_each_mapping_matches_exact(name: str, channel: str) -> None:
    """<f/g>_{x~g} with 200k points through one mapping agrees with `exact` within 3σ."""
    integrand = toy_integrand(name, channels=channel, prior="uniform")
    estimate, error = _channel_estimates(integrand, N_MC, seed=11)
    assert abs(estimate - integrand.exact) < 3.0 * error, (estimate, integrand.exact, error)
    assert error < 0.05 * integrand.exact


MULTI_CHANNEL_CASES = ([(name, "peak1+peak2", prior) for name in ("camel", "cut_camel")
                        for prior in ("uniform", "optimal")]
                       + [("crossed_ring", setup, prior) for setup in (*CROSSED_RING_SETUPS, "ring+line+line")
                          for prior in ("uniform", "mapping", "mode")])


@pytest.mark.parametrize("name,setup,prior", MULTI_CHANNEL_CASES)
def test_multichannel_estimator_reproduces_integral(name: str, setup: str, prior: str) -> None:
    integrand = toy_integrand(name, channels=setup, prior=prior)
    estimate, error = _channel_estimates(integrand, N_MC // 2, seed=23)
    assert abs(estimate - integrand.exact) < 3.0 * error, (estimate, integrand.exact, error)


@pytest.mark.parametrize("name,setup,prior", MULTI_CHANNEL_CASES)
def test_channel_weights_sum_to_one(name: str, setup: str, prior: str) -> None:
    integrand = toy_integrand(name, channels=setup, prior=prior)
    generator = _generator(3)
    points = [sample_mapping(c, 500, generator)[0] for c in integrand.channels]
    # far points, mostly outside the flat channels' square
    points.append(20.0 * torch.randn(500, integrand.dim, generator=generator, dtype=torch.float64))
    points.append(torch.zeros(1, integrand.dim, dtype=torch.float64))  # the ring mapping's pole
    alpha = integrand.channel_weights(torch.cat(points))
    assert alpha.shape[1] == integrand.n_channels
    assert torch.isfinite(alpha).all() and (alpha >= 0).all()
    ones = torch.ones(alpha.shape[0], dtype=torch.float64)
    torch.testing.assert_close(alpha.sum(dim=-1), ones, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,a1,thesis_percent", [("camel", 0.35, 0.769), ("cut_camel", 0.5, 1.031)])
def test_table_5_1_optimal_prior_error(name: str, a1: float, thesis_percent: float) -> None:
    """Tab 5.1: with α_opt (Eq 5.27) and 10^4 events split evenly over the two channels the relative
    error is 0.769 % (camel) and 1.031 % (cut camel, made with peak ratio a1 = 1/2, see
    lhcflow.nis.variance); constant α = 0.5 is clearly worse."""
    def relative_error(prior: str) -> float:
        integrand = toy_integrand(name, prior=prior, a1=a1)
        _, error = _channel_estimates(integrand, N_MC, seed=31)
        per_channel_events = 5_000
        return 100.0 * error * math.sqrt(N_MC / per_channel_events) / integrand.exact

    optimal = relative_error("optimal")
    assert optimal == pytest.approx(thesis_percent, rel=0.04)
    assert relative_error("uniform") > 2.0 * optimal


def test_analytic_ring_and_line_channels_beat_flat() -> None:
    """Ordering of Tab 5.2 already present for the fixed mappings: ring+line < ring+flat < flat."""
    errors = {}
    for setup in ("flat", "ring_flat", "ring_line"):
        integrand = toy_integrand("crossed_ring", channels=setup, prior="mapping")
        errors[setup] = _channel_estimates(integrand, 50_000, seed=41)[1]
    assert errors["ring_line"] < 0.9 * errors["ring_flat"] < 0.9 * errors["flat"]


# ------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------

def test_registry_names_and_options() -> None:
    three = toy_integrand("no-parking", mappings="ring+line+line")
    assert three.meta["channel_names"] == ("ring", "line", "line")
    assert toy_integrand("crossed_ring", channels=["ring", "flat"]).n_channels == 2
    assert toy_integrand("gaussian_mixture", prior="uniform").meta["prior"] == "uniform"
    assert toy_integrand("camel", mu2=4.0).channels[1].mu == (4.0,)
    flat = toy_integrand("camel", channels="flat", box=(-1.0, 7.0)).channels[0]
    assert isinstance(flat, BoxMapping) and flat.volume == 8.0
    assert toy_integrand("crossed_ring", channels="flat").meta["domain"] == "[-6.0, 6.0]^2"
    assert toy_integrand("crossed_ring", channels="ring_line").meta["domain"] == "plane"
    assert toy_integrand("camel", **CAMEL_DEFAULTS).exact == 1.0
    assert toy_integrand("crossed_ring", **CROSSED_RING_DEFAULTS).exact == 1.0
    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    assert toy_integrand("crossed_ring").function(x).dtype == torch.float64
    for bad in ({"name": "banana"}, {"name": "camel", "prior": "vegas"},
                {"name": "crossed_ring", "channels": "ring+donut"},
                {"name": "camel", "channels": "a", "mappings": "b"},
                {"name": "camel", "channels": "flat", "box": (6.0, 0.0)}):
        with pytest.raises(ValueError):
            toy_integrand(**bad)
