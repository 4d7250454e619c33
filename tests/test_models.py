"""Tests of the generative networks in lhcflow.models (INN, Bayesian INN, CFM)."""

from __future__ import annotations

import math

import pytest
import torch

from lhcflow.models import (
    BayesianLinear,
    ConditionalCFM,
    ConditionalGenerator,
    ConditionalINN,
    bayesian_mode,
    build_generator,
    kl_divergence,
    resample_weights,
    set_bayesian_mode,
    use_means,
)

F64 = torch.float64


def _perturb(model: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    """Give every weight (also the zero-initialised last layers) random non-zero values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "log_sigma2" in name:
                continue
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _inn(dims_in=3, dims_c=2, bayesian=False, scale=0.3, replica_seed=None, **kw) -> ConditionalINN:
    """A small perturbed INN; Bayesian ones with a weight replica drawn with ``replica_seed``."""
    torch.manual_seed(0)
    hyper = dict(n_blocks=4, hidden=16, layers_per_block=3, bins=8, tail_bound=3.0)
    hyper.update(kw)
    model = ConditionalINN(dims_in, dims_c, bayesian=bayesian, **hyper).to(F64)
    _perturb(model, scale)
    if bayesian and replica_seed is not None:
        torch.manual_seed(replica_seed)
        resample_weights(model)
    return model


def _grid(dims: int, lo: float, hi: float, n: int) -> tuple[torch.Tensor, float]:
    g = torch.linspace(lo, hi, n, dtype=F64)
    cell = float(g[1] - g[0]) ** dims
    if dims == 1:
        return g[:, None], cell
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([xx.ravel(), yy.ravel()], dim=1), cell


# ---------------------------------------------------------------- RQ spline


def _spline_case(dtype, n=4000, bins=8, bound=3.0, seed=2):
    """Points inside, outside, on the bounds and on knots, with random (wide-range) spline parameters."""
    from lhcflow.models.splines import _knots

    gen = torch.Generator().manual_seed(seed)
    w = 2 * torch.randn(n, 3, bins, generator=gen, dtype=dtype)
    h = 2 * torch.randn(n, 3, bins, generator=gen, dtype=dtype)
    d = 2 * torch.randn(n, 3, bins - 1, generator=gen, dtype=dtype)
    x = 1.5 * bound * torch.randn(n, 3, generator=gen, dtype=dtype)
    x[:10] = bound
    x[10:20] = -bound
    x[20:40] = _knots(w[20:40], -bound, bound, 1e-3)[..., 3]   # exactly on an inner knot
    return x, w, h, d


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("inner_derivatives", [False, True])
def test_rq_spline_equals_madnis(dtype, inverse, inner_derivatives):
    """The fused spline against madnis' independent unconstrained_rational_quadratic_spline: values,
    log-determinants and gradients (the derivatives are given as K + 1 or as the K − 1 inner ones with
    the boundary ones fixed to the tails' slope)."""
    from madnis.nn.splines import unconstrained_rational_quadratic_spline

    from lhcflow.models.splines import rq_spline

    bound = 3.0
    x, w, h, d = _spline_case(dtype, bound=bound)
    d_full = torch.nn.functional.pad(d, (1, 1))
    args = [t.clone().requires_grad_(True) for t in (x, w, h, d)]
    ours = rq_spline(args[0], args[1], args[2], args[3] if inner_derivatives else
                     torch.nn.functional.pad(args[3], (1, 1)),
                     inverse=inverse, left=-bound, right=bound, bottom=-bound, top=bound)
    ref_args = [t.clone().requires_grad_(True) for t in (x, w, h, d_full)]
    ref = unconstrained_rational_quadratic_spline(
        ref_args[0][..., None], ref_args[1][:, :, None], ref_args[2][:, :, None], ref_args[3][:, :, None],
        inverse=inverse, left=-bound, right=bound, bottom=-bound, top=bound)
    ref = [r[..., 0] for r in ref]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    if dtype == F64:  # in float32 the gradients at the interval's end points are rounding noise
        (ours[0].sum() + ours[1].sum()).backward()
        (ref[0].sum() + ref[1].sum()).backward()
        ref_grads = [g.grad for g in ref_args]
        ref_grads[3] = ref_grads[3][..., 1:-1]  # the padded boundary entries are constants
        for a, b in zip(args, ref_grads):
            torch.testing.assert_close(a.grad, b)


def test_rq_spline_inverse_and_logdet_against_autograd():
    """y(x(y)) = y; the closed-form log|dy/dx| equals the log of autograd's derivative of y; identity
    outside [−B, B]."""
    from lhcflow.models.splines import rq_spline

    bound = 3.0
    x, w, h, d = _spline_case(F64, bound=bound)
    kw = {"left": -bound, "right": bound, "bottom": -bound, "top": bound}
    x = x.requires_grad_(True)
    y, logdet = rq_spline(x, w, h, d, **kw)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(logdet, slope.log(), rtol=0, atol=1e-9)
    x = x.detach()
    x_back, logdet_inv = rq_spline(y.detach(), w, h, d, inverse=True, **kw)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-9)
    torch.testing.assert_close(logdet_inv, -logdet.detach(), rtol=0, atol=1e-8)
    outside = x.abs() > bound
    assert torch.equal(y[outside], x[outside]) and torch.all(logdet[outside] == 0)


# ---------------------------------------------------------------- INN


@pytest.mark.parametrize("bayesian", [False, True])
def test_inn_invertible(bayesian):
    model = _inn(bayesian=bayesian, replica_seed=3)
    z = torch.randn(64, 3, dtype=F64)
    c = torch.randn(64, 2, dtype=F64)
    x, logdet_inv = model.inverse(z, c)
    z_back, logdet = model(x, c)
    assert torch.allclose(z_back, z, atol=1e-5)
    assert torch.allclose(logdet, -logdet_inv, atol=1e-5)
    # sample -> log_prob consistency: log g(x) = log N(z) - log|dG^-1/dz|
    lp = model.log_prob(x, c)
    expected = -0.5 * (z**2).sum(1) - 1.5 * math.log(2 * math.pi) - logdet_inv
    assert torch.allclose(lp, expected, atol=1e-5)


@pytest.mark.parametrize("bayesian", [False, True])
def test_inn_logdet_matches_autograd_jacobian(bayesian):
    model = _inn(bayesian=bayesian, replica_seed=4)
    torch.manual_seed(5)
    x = 1.5 * torch.randn(4, 3, dtype=F64)
    c = torch.randn(4, 2, dtype=F64)
    _, logdet = model(x, c)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda xi: model(xi[None], c[i : i + 1])[0][0], x[i])
        assert abs(torch.linalg.slogdet(jac)[1].item() - logdet[i].item()) < 1e-8


def test_inn_rotations_orthogonal_and_seeded():
    model = ConditionalINN(5, 1, n_blocks=3, hidden=8, bins=4, seed_rotations=7).float()
    for rot in model.rotations():
        assert rot.dtype == F64
        assert torch.allclose(rot @ rot.T, torch.eye(5, dtype=F64), atol=1e-12)
    other = ConditionalINN(5, 1, n_blocks=3, hidden=8, bins=4, seed_rotations=7)
    assert all(torch.equal(a, b) for a, b in zip(model.rotations(), other.rotations()))
    assert not torch.equal(model.rotations()[0], model.rotations()[1])


def test_inn_starts_at_identity():
    model = ConditionalINN(3, 2, n_blocks=2, hidden=8, bins=6).to(F64)
    x = torch.randn(10, 3, dtype=F64)
    z, logdet = model(x, torch.randn(10, 2, dtype=F64))
    rot = model.rotations()[1] @ model.rotations()[0]
    assert torch.allclose(z, x @ rot.T, atol=1e-12)
    assert torch.allclose(logdet, torch.zeros(10, dtype=F64), atol=1e-12)


@pytest.mark.parametrize("dims_in,dims_c", [(1, 0), (1, 1), (2, 1)])
def test_inn_normalised(dims_in, dims_c):
    # moderate random weights: a clearly non-Gaussian but grid-resolvable density
    model = _inn(dims_in, dims_c, tail_bound=2.5, scale=0.3 if dims_in == 1 else 0.1)
    x, cell = _grid(dims_in, -9.0, 9.0, 3601 if dims_in == 1 else 241)
    c = torch.full((x.shape[0], dims_c), 0.7, dtype=F64)
    with torch.no_grad():
        density = model.log_prob(x, c).exp()
    gauss = torch.exp(-0.5 * (x**2).sum(1)) / (2 * math.pi) ** (dims_in / 2)
    assert (density - gauss).abs().max() > 0.02
    assert abs(density.sum().item() * cell - 1.0) < 1e-2


def test_inn_sample_shapes_and_dtype():
    model = _inn()
    c = torch.randn(7, 2, dtype=F64)
    with torch.no_grad():
        x = model.sample(c)
    assert x.shape == (7, 3) and x.dtype == F64
    assert torch.isfinite(model.log_prob(x, c)).all()
    assert model.kl().item() == 0.0


# ---------------------------------------------------------------- Bayesian layers


def test_bayesian_kl_positive_and_vanishes_at_prior():
    torch.manual_seed(0)
    layer = BayesianLinear(6, 4, prior_sigma=0.5, init_log_sigma=-9.0)
    kl0 = layer.kl().item()
    assert kl0 > 0
    mu0 = layer.weight_mu.detach().clone()
    ls0 = layer.weight_log_sigma2.detach().clone()
    target = math.log(0.5**2)
    values = []
    for lam in [0.0, 0.5, 0.9, 1.0]:
        with torch.no_grad():
            layer.weight_mu.copy_((1 - lam) * mu0)
            layer.weight_log_sigma2.copy_((1 - lam) * ls0 + lam * target)
        values.append(layer.kl().item())
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[0] == pytest.approx(kl0)
    assert abs(values[-1]) < 1e-10


def test_bayesian_modes():
    model = _inn(bayesian=True)
    x = torch.randn(16, 3, dtype=F64)
    c = torch.randn(16, 2, dtype=F64)
    set_bayesian_mode(model, "sample")
    assert not torch.allclose(model.log_prob(x, c), model.log_prob(x, c))
    use_means(model)
    assert torch.equal(model.log_prob(x, c), model.log_prob(x, c))
    resample_weights(model)
    a = model.log_prob(x, c)
    assert torch.equal(a, model.log_prob(x, c))
    with bayesian_mode(model, "map"):
        m = model.log_prob(x, c)
    assert torch.equal(a, model.log_prob(x, c))  # fixed draw restored after the context
    assert not torch.allclose(a, m)


def test_resample_weights_reproducible():
    model = _inn(bayesian=True)
    x = torch.randn(16, 3, dtype=F64)
    c = torch.randn(16, 2, dtype=F64)
    replicas = []
    for seed in (11, 11, 12):
        torch.manual_seed(seed)
        resample_weights(model)
        replicas.append(model.log_prob(x, c))
    assert torch.equal(replicas[0], replicas[1])
    assert not torch.allclose(replicas[0], replicas[2])


def test_bayesian_kl_sum_and_gradient():
    model = _inn(bayesian=True)
    layers = [m for m in model.modules() if isinstance(m, BayesianLinear)]
    assert len(layers) == 4 * 3
    kl = model.kl()
    assert torch.allclose(kl, sum(layer.kl() for layer in layers))
    assert torch.equal(kl, kl_divergence(model)) and kl.item() > 0
    kl.backward()
    assert layers[0].weight_log_sigma2.grad is not None


# ---------------------------------------------------------------- CFM


def _cfm(dims_in, dims_c, seed=0, **kw) -> ConditionalCFM:
    torch.manual_seed(seed)
    hyper = dict(hidden=32, layers=3, time_embedding=2, steps=20)
    hyper.update(kw)
    return ConditionalCFM(dims_in, dims_c, **hyper).to(F64)


@pytest.mark.parametrize("dims_in", [1, 2])
def test_cfm_log_prob_normalised(dims_in):
    model = _cfm(dims_in, 1)
    _perturb(model, scale=0.2)
    x, cell = _grid(dims_in, -8.0, 8.0, 401 if dims_in == 1 else 65)
    c = torch.full((x.shape[0], 1), -0.4, dtype=F64)
    total = model.log_prob(x, c).exp().sum().item() * cell
    assert abs(total - 1.0) < 1e-2


def test_cfm_log_prob_chunking_and_sample_consistency():
    model = _cfm(2, 1, chunk_size=7)
    c = torch.randn(20, 1, dtype=F64)
    x = model.sample(c)
    lp_small = model.log_prob(x, c)
    model.chunk_size = 1000
    assert torch.allclose(lp_small, model.log_prob(x, c), atol=1e-12)
    assert x.shape == (20, 2) and torch.isfinite(lp_small).all()
    assert model.kl().item() == 0.0


def test_cfm_learns_gaussian():
    model = ConditionalCFM(1, 0, hidden=32, layers=3, time_embedding=2, steps=20)
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 400)
    for _ in range(400):
        x = 2.0 + 0.5 * torch.randn(512, 1)
        loss = model.loss(x, torch.zeros(512, 0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    samples = model.sample(torch.zeros(4000, 0))
    assert abs(samples.mean().item() - 2.0) < 0.2
    assert abs(samples.std().item() - 0.5) < 0.05


def test_inn_learns_gaussian():
    torch.manual_seed(0)
    model = ConditionalINN(1, 0, n_blocks=2, hidden=16, bins=8, tail_bound=5.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model.loss(2.0 + 0.5 * torch.randn(512, 1), torch.zeros(512, 0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        samples = model.sample(torch.zeros(4000, 0))
    assert abs(samples.mean().item() - 2.0) < 0.2
    assert abs(samples.std().item() - 0.5) < 0.05


# ---------------------------------------------------------------- interface


@pytest.mark.parametrize("kind", ["inn", "binn", "cfm"])
def test_weighted_loss_equal_weights(kind):
    hyper = {"hidden": 16, "layers": 3} if kind == "cfm" else {"n_blocks": 2, "hidden": 16, "bins": 6}
    model = build_generator(kind, 3, 2, **hyper).to(F64)
    _perturb(model)
    if kind == "binn":
        use_means(model)
    x = torch.randn(32, 3, dtype=F64)
    c = torch.randn(32, 2, dtype=F64)
    torch.manual_seed(9)
    plain = model.loss(x, c)
    torch.manual_seed(9)
    weighted = model.loss(x, c, weight=torch.full((32,), 3.7, dtype=F64))
    assert torch.allclose(plain, weighted, atol=1e-12)
    # unequal weights: batch-normalised weighted mean (Eq. 4.8)
    if kind != "cfm":
        w = torch.rand(32, dtype=F64)
        nll = -model.log_prob(x, c)
        assert torch.allclose(model.loss(x, c, weight=w), (w * nll).sum() / w.sum())


@pytest.mark.parametrize("kind", ["inn", "binn", "cfm"])
def test_build_generator_protocol(kind):
    model = build_generator(kind, 2, 1, hidden=8)
    assert isinstance(model, ConditionalGenerator) and isinstance(model, torch.nn.Module)
    assert (model.dims_in, model.dims_c) == (2, 1)
    assert getattr(model, "bayesian", False) == (kind == "binn")
    with pytest.raises(ValueError):
        build_generator("gan", 2, 1)
