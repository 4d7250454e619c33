"""Tests of the transformer transfer networks (Transfermer / Transfusion, Sec. 6.5.2) and of the
bounded / periodic RQ splines they use."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from lhcflow.mem.heads import CFMHead, ObjectHead, SplineHead
from lhcflow.mem.splines import bounded_rq_spline, periodic_rq_spline
from lhcflow.mem.transfer import build_transformer
from lhcflow.mem.transformer import TransferTransformer
from lhcflow.models import standard_normal_log_prob
from lhcflow.physics.kinematics import wrap_angle

F64 = torch.float64
PI = math.pi
TINY = dict(attention_heads=2, encoder_layers=1, decoder_layers=2, embed_dim=16, feedforward_dim=32)
TINY_SPLINE = partial(SplineHead, layers=3, hidden=32, bins=8)
TINY_CFM = partial(CFMHead, layers=3, hidden=32, step=0.1)


def _model(slot_types, eta_max, n_hard=1, seed=0, head=TINY_SPLINE, **kw) -> TransferTransformer:
    torch.manual_seed(seed)
    return TransferTransformer(slot_types, eta_max, n_hard=n_hard, head=head, **TINY, **kw).to(F64)


def _perturb(model: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    """Random non-zero values also for the zero-initialised last layers (non-trivial splines)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "log_sigma2" not in name:
                p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _hard(n: int, n_hard: int, gen: torch.Generator) -> torch.Tensor:
    """Hard objects with pT ~ 50 GeV · e^N(0, 0.4), |η| < 1.5, φ uniform, m = 10 GeV · e^N(0, 0.3)."""
    pt = 50 * torch.exp(0.4 * torch.randn(n, n_hard, generator=gen, dtype=F64))
    eta = 3 * torch.rand(n, n_hard, generator=gen, dtype=F64) - 1.5
    phi = PI * (2 * torch.rand(n, n_hard, generator=gen, dtype=F64) - 1)
    mass = 10 * torch.exp(0.3 * torch.randn(n, n_hard, generator=gen, dtype=F64))
    return torch.stack([pt, eta, phi, mass], dim=-1)


SMEAR = 0.1


def _smear(x_hard: torch.Tensor, massive: list[bool], gen: torch.Generator):
    """Reco object i = hard object i smeared: log pT, η, φ (wrapped), log m (jets) + N(0, SMEAR²).

    Returns x_reco and the true log p(x_reco | x_hard) in (pT, η, φ[, m]); |η_hard| < 1.5 keeps
    the truncation at |η| < 2.4 below 1e-18, the wrapped normal of φ is exact to 1e-300.
    """
    n, s = x_hard.shape[0], len(massive)
    h = x_hard[:, :s]
    noise = SMEAR * torch.randn(n, s, 4, generator=gen, dtype=F64)
    massive_t = torch.tensor(massive)
    pt = h[..., 0] * noise[..., 0].exp()
    eta = h[..., 1] + noise[..., 1]
    phi = wrap_angle(h[..., 2] + noise[..., 2])
    mass = torch.where(massive_t, h[..., 3] * noise[..., 3].exp(), torch.zeros_like(pt))
    gauss = -0.5 * (noise / SMEAR).pow(2) - math.log(SMEAR) - 0.5 * math.log(2 * PI)
    true = gauss[..., 0] - pt.log() + gauss[..., 1] + gauss[..., 2]
    true = true + torch.where(massive_t, gauss[..., 3] - mass.clamp_min(1e-300).log(), torch.zeros_like(pt))
    return torch.stack([pt, eta, phi, mass], dim=-1), true.sum(dim=1)


def _spline_params(n: int, k: int, n_deriv: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    w, h = (torch.randn(n, k, generator=gen, dtype=F64) for _ in range(2))
    d = torch.randn(n, n_deriv, generator=gen, dtype=F64)
    return w, h, d


# ---------------------------------------------------------------------------- splines
def test_periodic_spline_is_a_circle_diffeomorphism():
    n, k = 400, 8
    w, h, d = _spline_params(n, k, k)
    shift = torch.linspace(-5, 5, n, dtype=F64)
    x = PI * (2 * torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(3)) - 1)
    y, logdet = periodic_rq_spline(x, w, h, d, shift)
    assert ((y >= -PI) & (y < PI)).all()
    back, logdet_inv = periodic_rq_spline(y, w, h, d, shift, inverse=True)
    assert wrap_angle(back - x).abs().max() < 1e-9
    assert torch.allclose(logdet_inv, -logdet, atol=1e-9)
    # log-det against a central finite difference (the difference unwrapped on the circle)
    eps = 1e-6
    y_up = periodic_rq_spline(x + eps, w, h, d, shift)[0]
    y_dn = periodic_rq_spline(x - eps, w, h, d, shift)[0]
    fd = wrap_angle(y_up - y_dn) / (2 * eps)
    assert torch.allclose(fd.log(), logdet, atol=1e-5)
    # a non-trivial map: not a rotation
    assert logdet.abs().max() > 0.3


@pytest.mark.parametrize("shift", [0.0, 1.3])
def test_periodic_spline_is_smooth_across_the_seam(shift):
    """Value and derivative continuous where the spline interval closes (u = ±π)."""
    n, k = 50, 8
    w, h, d = _spline_params(n, k, k, seed=4)
    s = torch.full((n,), shift, dtype=F64)
    eps = 1e-7
    seam = torch.full((n,), shift + PI, dtype=F64)
    y_lo, ld_lo = periodic_rq_spline(seam - eps, w, h, d, s)
    y_hi, ld_hi = periodic_rq_spline(seam + eps, w, h, d, s)
    assert wrap_angle(y_hi - y_lo).abs().max() < 1e-5
    assert torch.allclose(ld_lo, ld_hi, atol=1e-4)
    # the boundary derivatives really differ from 1, so the tie is what is being tested
    assert (ld_lo.abs() > 0.05).float().mean() > 0.5


def test_bounded_spline_maps_interval_onto_itself():
    n, k = 400, 8
    w, h, d = _spline_params(n, k, k + 1, seed=5)
    x = 2 * torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(6)) - 1
    y, logdet = bounded_rq_spline(x, w, h, d)
    assert ((y > -1) & (y < 1)).all()
    back, logdet_inv = bounded_rq_spline(y, w, h, d, inverse=True)
    assert torch.allclose(back, x, atol=1e-9)
    assert torch.allclose(logdet_inv, -logdet, atol=1e-9)
    eps = 1e-6
    fd = (bounded_rq_spline(x + eps, w, h, d)[0] - bounded_rq_spline(x - eps, w, h, d)[0]) / (2 * eps)
    inner = x.abs() < 1 - 2 * eps
    assert torch.allclose(fd.log()[inner], logdet[inner], atol=1e-5)
    ends = torch.tensor([-1.0, 1.0], dtype=F64).repeat(n // 2)
    assert torch.allclose(bounded_rq_spline(ends, w, h, d)[0], ends, atol=1e-12)
    # other interval: [-2.4, 2.4]
    y2, _ = bounded_rq_spline(2.4 * x, w, h, d, -2.4, 2.4)
    assert torch.allclose(y2, 2.4 * y, atol=1e-9)


# ---------------------------------------------------------------------------- densities
def test_untrained_density_is_the_preprocessing_density():
    """Zero-initialised last layers: identity splines, so p is log-normal in pT − pT_min (Eq 4.4) × uniform ×
    uniform (× log-normal mass) with the fitted means / stds -- checks all Jacobians analytically."""
    gen = torch.Generator().manual_seed(0)
    model = _model(["photon", "jet"], [2.4, 4.7], n_hard=2, pt_min=[20.0, 25.0])
    x_hard = _hard(500, 2, gen)
    x_reco, _ = _smear(x_hard, [False, True], gen)
    selected = (x_reco[..., 0] > torch.tensor([20.0, 25.0], dtype=F64)).all(1)  # the reco pT cuts
    x_hard, x_reco = x_hard[selected], x_reco[selected]
    with pytest.raises(ValueError, match="outside the selection"):
        model.fit_preprocessing(x_hard, x_reco * torch.tensor([0.5, 1, 1, 1], dtype=F64))
    model.fit_preprocessing(x_hard, x_reco)
    mean, std = model.reco_mean, model.reco_std
    assert torch.allclose(mean[:, 0], (x_reco[..., 0] - torch.tensor([20.0, 25.0], dtype=F64)).log().mean(0))
    terms = model.log_prob_terms(x_reco, x_hard)

    def lognormal(v, mu, sigma):
        z = (v.log() - mu) / sigma
        return -0.5 * z**2 - 0.5 * math.log(2 * PI) - sigma.log() - v.log()

    photon = lognormal(x_reco[:, 0, 0] - 20.0, mean[0, 0], std[0, 0]) - math.log(2 * 2.4) - math.log(2 * PI)
    jet = (lognormal(x_reco[:, 1, 0] - 25.0, mean[1, 0], std[1, 0]) - math.log(2 * 4.7) - math.log(2 * PI)
           + lognormal(x_reco[:, 1, 3], mean[1, 3], std[1, 3]))
    assert torch.allclose(terms[:, 0], photon, atol=1e-10)
    assert torch.allclose(terms[:, 1], jet, atol=1e-10)
    assert torch.allclose(model.log_prob(x_reco, x_hard), photon + jet, atol=1e-10)


def _proposal(n: int, model: TransferTransformer, massive: bool, gen: torch.Generator):
    """Broad proposal q over one object above its pT threshold: log(pT − pT_min), log m ~ N(mean, (2 std)²),
    η, φ uniform. Returns x (n, 1, 4) and log q in (pT, η, φ[, m])."""
    mean, std, eta_max = model.reco_mean[0], model.reco_std[0], float(model.eta_max[0])
    z = torch.randn(n, 2, generator=gen, dtype=F64)
    log_dpt = mean[0] + 2 * std[0] * z[:, 0]
    eta = eta_max * (2 * torch.rand(n, generator=gen, dtype=F64) - 1)
    phi = PI * (2 * torch.rand(n, generator=gen, dtype=F64) - 1)
    log_q = (-0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * PI) - (2 * std[0]).log() - log_dpt
             - math.log(2 * eta_max) - math.log(2 * PI))
    if massive:
        log_m = mean[3] + 2 * std[3] * z[:, 1]
        log_q = log_q - 0.5 * z[:, 1] ** 2 - 0.5 * math.log(2 * PI) - (2 * std[3]).log() - log_m
        mass = log_m.exp()
    else:
        mass = torch.zeros_like(eta)
    return torch.stack([model.pt_min[0] + log_dpt.exp(), eta, phi, mass], dim=-1)[:, None], log_q


PT_MIN = 10.0  # reco pT threshold of the one-object models (Eq 4.4: log(pT − pT_min))


def _one_object_model(slot: str, trained: bool) -> tuple[TransferTransformer, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    massive = slot == "jet"
    model = _model([slot], [4.7 if massive else 2.4], n_hard=1, seed=2, pt_min=[PT_MIN])
    x_hard = _hard(256, 1, gen)
    x_reco, _ = _smear(x_hard, [massive], gen)
    selected = x_reco[:, 0, 0] > PT_MIN  # the events a reco selection keeps
    x_hard, x_reco = x_hard[selected], x_reco[selected]
    model.fit_preprocessing(x_hard, x_reco)
    if trained:
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(15):
            opt.zero_grad()
            model.loss(x_reco, x_hard).backward()
            opt.step()
    else:
        _perturb(model, 0.15)
    return model, x_hard[:2]


@pytest.mark.parametrize("trained", [False, True], ids=["perturbed", "trained"])
@pytest.mark.parametrize("slot", ["photon", "jet"])
def test_single_object_density_is_normalised(slot, trained):
    model, x_hard = _one_object_model(slot, trained)
    gen = torch.Generator().manual_seed(12)
    n = 20000
    for i in range(x_hard.shape[0]):
        x, log_q = _proposal(n, model, slot == "jet", gen)
        with torch.no_grad():
            log_p = model.log_prob(x, x_hard[i : i + 1].expand(n, -1, -1))
        ratio = (log_p - log_q).exp()
        integral, err = ratio.mean().item(), (ratio.std() / math.sqrt(n)).item()
        assert err < 0.05, (integral, err)
        assert abs(integral - 1) < 5 * err + 1e-3, (integral, err)


def test_samples_have_the_reported_density():
    """P(x ∈ A) from model samples equals ∫_A p from importance sampling with log_prob."""
    model, x_hard = _one_object_model("jet", trained=False)
    gen = torch.Generator().manual_seed(13)
    n = 20000
    cond = x_hard[:1].expand(n, -1, -1)
    torch.manual_seed(14)
    samples, present = model.sample(cond)
    assert present.all()
    assert (samples[:, 0, 1].abs() < 4.7).all()
    assert ((samples[:, 0, 2] >= -PI) & (samples[:, 0, 2] < PI)).all()
    assert (samples[:, 0, 0] > PT_MIN).all() and (samples[:, 0, 3] > 0).all()
    x, log_q = _proposal(n, model, True, gen)
    with torch.no_grad():
        ratio = (model.log_prob(x, cond) - log_q).exp()
    med_pt, med_m = samples[:, 0, 0].median(), samples[:, 0, 3].median()
    regions = [
        lambda v: v[:, 0, 0] > med_pt,
        lambda v: v[:, 0, 1] > 0.5,
        lambda v: (v[:, 0, 2] > 0) & (v[:, 0, 2] < 2.0),
        lambda v: v[:, 0, 3] < med_m * 0.7,
        lambda v: (v[:, 0, 0] < med_pt) & (v[:, 0, 1] < 0),
    ]
    for region in regions:
        frac = region(samples).to(F64)
        weighted = ratio * region(x).to(F64)
        diff = frac.mean() - weighted.mean()
        sigma = math.sqrt(frac.var() / n + weighted.var() / n)
        assert abs(diff) < 5 * sigma, (frac.mean(), weighted.mean(), sigma)


def test_autoregressive_causality():
    gen = torch.Generator().manual_seed(20)
    slots = ["photon", "photon", "bjet", "jet"]
    model = _model(slots, [2.4, 2.4, 2.4, 4.7], n_hard=3)
    x_hard = _hard(64, 3, gen)
    x_reco, _ = _smear(torch.cat([x_hard, x_hard[:, :1]], dim=1), [False, False, True, True], gen)
    model.fit_preprocessing(x_hard, x_reco)
    _perturb(model, 0.2)
    terms = model.log_prob_terms(x_reco, x_hard)
    changed = x_reco.clone()
    changed[:, 2, 0] *= 1.3
    changed[:, 2, 2] = wrap_angle(changed[:, 2, 2] + 0.5)
    terms_changed = model.log_prob_terms(changed, x_hard)
    assert torch.allclose(terms_changed[:, :2], terms[:, :2], atol=1e-10)
    assert (terms_changed[:, 2] - terms[:, 2]).abs().min() > 1e-6
    assert (terms_changed[:, 3] - terms[:, 3]).abs().min() > 1e-6  # object 3 is conditioned on 2
    # every object is conditioned on every hard object (cross-attention)
    hard_changed = x_hard.clone()
    hard_changed[:, 2, 0] *= 1.5
    terms_hard = model.log_prob_terms(x_reco, hard_changed)
    assert ((terms_hard - terms).abs().min(dim=0).values > 1e-8).all()
    assert torch.allclose(terms.sum(1), model.log_prob(x_reco, x_hard))
    # events are independent: an outlier (log pT far outside the spline interval) in the batch
    # changes nothing for the others
    outlier = x_reco[:1].clone()
    outlier[:, :, 0] *= 1e4
    batch = model.log_prob_terms(torch.cat([x_reco, outlier]), torch.cat([x_hard, x_hard[:1]]))
    assert torch.allclose(batch[:-1], terms, atol=1e-10)


def test_training_on_gaussian_smearing_approaches_true_nll():
    """Short training on a toy smearing of the hard momenta: the NLL drops toward the known true
    NLL and never below it; samples respect the acceptance."""
    gen = torch.Generator().manual_seed(30)
    massive = [False, True]
    model = _model(["photon", "jet"], [2.4, 4.7], n_hard=2, seed=3)
    x_hard = _hard(4096, 2, gen)
    x_reco, _ = _smear(x_hard, massive, gen)
    test_hard = _hard(2000, 2, gen)
    test_reco, true_log_p = _smear(test_hard, massive, gen)
    model.fit_preprocessing(x_hard, x_reco)
    true_nll = -true_log_p.mean().item()

    def test_nll() -> float:
        with torch.no_grad():
            return -model.log_prob(test_reco, test_hard).mean().item()

    start = test_nll()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(31)
    for _ in range(250):
        idx = torch.randint(0, x_hard.shape[0], (256,))
        opt.zero_grad()
        model.loss(x_reco[idx], x_hard[idx]).backward()
        opt.step()
    end = test_nll()
    assert start - true_nll > 5
    assert end - true_nll < 0.15 * (start - true_nll), (start, end, true_nll)
    assert end > true_nll - 0.2, (end, true_nll)
    samples, present = model.sample(test_hard[:500])
    assert samples.shape == (500, 2, 4) and present.all()
    assert (samples[:, 0, 1].abs() < 2.4).all() and (samples[:, 1, 1].abs() < 4.7).all()
    assert ((samples[..., 2] >= -PI) & (samples[..., 2] < PI)).all()
    assert (samples[:, 0, 3] == 0).all() and (samples[:, 1, 3] > 0).all()
    # the trained samples follow the hard objects
    assert (samples[:, :, 0] / test_hard[:500, :, 0]).log().abs().median() < 0.3


# ---------------------------------------------------------------------------- variable jets
def _variable_setup(variable_jets: bool = True):
    gen = torch.Generator().manual_seed(40)
    slots = ["photon", "bjet", "jet", "jet", "jet"]
    model = _model(slots, [2.4, 2.4, 4.7, 4.7, 4.7], n_hard=3, n_required=2,
                   variable_jets=variable_jets, n_extra_max=2 if variable_jets else None)
    x_hard = _hard(90, 3, gen)
    full, _ = _smear(torch.cat([x_hard, x_hard[:, :2]], dim=1), [False, True, True, True, True], gen)
    n_extra = torch.arange(90) % 3
    present = torch.ones(90, 5, dtype=torch.bool)
    present[:, 2] = n_extra >= 1
    present[:, 3] = n_extra >= 2
    present[:, 4] = False  # beyond n_extra_max
    x_reco = full * present[..., None]
    model.fit_preprocessing(x_hard, x_reco, present)
    _perturb(model, 0.2)
    return model, x_hard, x_reco, present, n_extra, full


def test_variable_jets_absent_slots_and_multiplicity():
    model, x_hard, x_reco, present, n_extra, full = _variable_setup()
    terms = model.log_prob_terms(x_reco, x_hard, present)
    assert (terms[~present] == 0).all() and (terms[present] != 0).all()
    # contents of absent slots are irrelevant
    garbage = torch.where(present[..., None], x_reco, full * 1.7)
    assert torch.allclose(model.log_prob(garbage, x_hard, present), terms.sum(1), atol=1e-10)
    # log p(n | x_hard) is added
    mult = torch.log_softmax(torch.randn(90, 3, dtype=F64), dim=1)
    with_mult = model.log_prob(x_reco, x_hard, present, multiplicity_log_prob=mult)
    assert torch.allclose(with_mult - terms.sum(1), mult[torch.arange(90), n_extra], atol=1e-10)
    # the multiplicity enters the hard embedding: the required objects' densities depend on it
    fewer = present.clone()
    fewer[:, 2:] = False
    terms_fewer = model.log_prob_terms(x_reco, x_hard, fewer)
    has_extra = n_extra > 0
    assert ((terms_fewer[has_extra, :2] - terms[has_extra, :2]).abs() > 1e-8).all()
    assert torch.allclose(terms_fewer[~has_extra], terms[~has_extra])
    # extra jets must fill a prefix of the extra slots; required slots must be present
    holes = present.clone()
    holes[:, 2], holes[:, 3] = False, True
    with pytest.raises(ValueError, match="prefix"):
        model.log_prob(x_reco, x_hard, holes)
    missing = present.clone()
    missing[0, 1] = False
    with pytest.raises(ValueError, match="required"):
        model.log_prob(x_reco, x_hard, missing)


def test_variable_jets_sampling_fills_n_extra_slots():
    model, x_hard, _, _, n_extra, _ = _variable_setup()
    samples, present = model.sample(x_hard, n_extra)
    assert samples.shape == (90, 5, 4)
    assert torch.equal(present.sum(1), 2 + n_extra)
    assert torch.equal(present[:, 2], n_extra >= 1) and not present[:, 4].any()
    assert (samples[~present] == 0).all()
    assert (samples[present][:, 0] > 0).all()
    assert torch.isfinite(model.log_prob(samples, x_hard, present)).all()
    with pytest.raises(ValueError, match="n_extra"):
        model.sample(x_hard)
    with pytest.raises(ValueError, match="n_extra"):
        model.sample(x_hard, torch.full((90,), 3))


def test_fixed_multiplicity_ignores_extra_slots():
    model, x_hard, x_reco, present, _, full = _variable_setup(variable_jets=False)
    terms = model.log_prob_terms(x_reco, x_hard, present)
    assert (terms[:, 2:] == 0).all()
    changed = x_reco.clone()
    changed[:, 2:] = full[:, 2:] * 3
    assert torch.allclose(model.log_prob(changed, x_hard), terms.sum(1), atol=1e-10)
    samples, sampled_present = model.sample(x_hard)
    assert sampled_present[:, :2].all() and not sampled_present[:, 2:].any()
    with pytest.raises(ValueError):
        model.log_prob(x_reco, x_hard, multiplicity_log_prob=torch.zeros(90, 3, dtype=F64))


# ---------------------------------------------------------------------------- Transfusion
def test_transfusion_density_sampling_and_training():
    gen = torch.Generator().manual_seed(50)
    massive = [False, True]
    model = _model(["photon", "jet"], [2.4, 4.7], n_hard=2, head=TINY_CFM, seed=5)
    assert model.head.onshell.dims_in == 3 and model.head.jet.dims_in == 4 and model.head.jet.steps == 10
    x_hard = _hard(2048, 2, gen)
    x_reco, true_log_p = _smear(x_hard, massive, gen)
    model.fit_preprocessing(x_hard[:-200], x_reco[:-200])
    log_p = model.log_prob(x_reco[:64], x_hard[:64])
    assert log_p.shape == (64,) and torch.isfinite(log_p).all()
    terms = model.log_prob_terms(x_reco[:64], x_hard[:64])
    assert torch.allclose(terms.sum(1), log_p)

    def fixed_loss() -> float:
        torch.manual_seed(51)
        with torch.no_grad():
            return model.loss(x_reco[:1024], x_hard[:1024]).item()

    start = fixed_loss()
    nll_start = -model.log_prob(x_reco[-200:], x_hard[-200:]).mean()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(52)
    for _ in range(60):
        idx = torch.randint(0, x_hard.shape[0] - 200, (256,))
        opt.zero_grad()
        model.loss(x_reco[idx], x_hard[idx]).backward()
        opt.step()
    assert fixed_loss() < 0.6 * start
    nll_end = -model.log_prob(x_reco[-200:], x_hard[-200:]).mean()
    assert nll_end < nll_start - 3
    samples, present = model.sample(x_hard[:100])
    assert samples.shape == (100, 2, 4) and present.all()
    assert (samples[:, 0, 1].abs() < 2.4).all() and (samples[:, 1, 1].abs() < 4.7).all()
    assert ((samples[..., 2] >= -PI) & (samples[..., 2] < PI)).all()
    assert (samples[:, 0, 3] == 0).all() and (samples[:, 1, 3] > 0).all()
    assert torch.isfinite(model.log_prob(samples, x_hard[:100])).all()


# ---------------------------------------------------------------------------- a head of one's own
class GaussianHead(ObjectHead):
    """A user's head: x = (std. log(pT − pT_min), atanh(η / η_max), φ[, std. log m]); the non-angular
    components Gaussian with means linear in c and learned widths, φ uniform."""

    def __init__(self, dims_c: int, width: float = 1.0):
        super().__init__()
        self.mean = torch.nn.Linear(dims_c, 3)
        self.log_sigma = torch.nn.Parameter(torch.full((3,), math.log(width)))

    def to_coordinates(self, raw, mean, std, eta_max, massive):
        u = raw[..., 1] / eta_max
        x = torch.stack([(raw[..., 0] - mean[..., 0]) / std[..., 0], torch.atanh(u), raw[..., 2],
                         (raw[..., 3] - mean[..., 3]) / std[..., 3]], dim=-1)
        log_jac = -std[..., 0].log() - raw[..., 0] - eta_max.log() - torch.log1p(-u * u)
        return x, log_jac + massive * (-std[..., 3].log() - raw[..., 3])

    def from_coordinates(self, x, mean, std, eta_max):
        parts = [x[..., 0] * std[..., 0] + mean[..., 0], torch.tanh(x[..., 1]) * eta_max, x[..., 2]]
        if x.shape[-1] == 4:
            parts.append(x[..., 3] * std[..., 3] + mean[..., 3])
        return torch.stack(parts, dim=-1)

    def _gaussian(self, x: torch.Tensor) -> list[int]:
        return [0, 1, 3] if x.shape[-1] == 4 else [0, 1]

    def log_prob(self, x, c):
        k = self._gaussian(x)
        sigma = self.log_sigma[: len(k)]
        z = (x[:, k] - self.mean(c)[:, : len(k)]) / sigma.exp()
        return standard_normal_log_prob(z) - sigma.sum() - math.log(2 * PI)

    def sample(self, c, massive):
        n, k = c.shape[0], 3 if massive else 2
        g = self.mean(c)[:, :k] + self.log_sigma[:k].exp() * torch.randn(n, k, dtype=c.dtype)
        phi = PI * (2 * torch.rand(n, dtype=c.dtype) - 1)
        return torch.stack([g[:, 0], g[:, 1], phi, *([g[:, 2]] if massive else [])], dim=1)


@pytest.mark.parametrize("slot", ["photon", "jet"])
def test_a_custom_head_gives_a_normalised_density_and_its_samples(slot):
    """The composition (zuko's univariate= pattern): a head written outside lhcflow, with its own setting,
    gives a p(x_reco | x_hard) in (pT, η, φ[, m]) that integrates to 1 (importance sampling with a proposal
    that knows nothing of the head), and the transformer's samples from it have that density."""
    massive = slot == "jet"
    gen = torch.Generator().manual_seed(70)
    model = _model([slot], [4.7 if massive else 2.4], n_hard=1, seed=7, pt_min=[PT_MIN],
                   head=partial(GaussianHead, width=0.6))
    assert isinstance(model.head, GaussianHead)
    assert torch.allclose(model.head.log_sigma.exp(), torch.tensor(0.6, dtype=F64))
    x_hard = _hard(256, 1, gen)
    x_reco, _ = _smear(x_hard, [massive], gen)
    selected = x_reco[:, 0, 0] > PT_MIN
    model.fit_preprocessing(x_hard[selected], x_reco[selected])
    _perturb(model, 0.15)
    n = 20000
    for i in range(2):
        cond = x_hard[i : i + 1].expand(n, -1, -1)
        x, log_q = _proposal(n, model, massive, gen)
        with torch.no_grad():
            ratio = (model.log_prob(x, cond) - log_q).exp()
        integral, err = ratio.mean().item(), (ratio.std() / math.sqrt(n)).item()
        assert err < 0.05, (integral, err)
        assert abs(integral - 1) < 5 * err + 1e-3, (integral, err)
        # P(x ∈ A) from the transformer's samples equals ∫_A p
        torch.manual_seed(71 + i)
        samples, present = model.sample(cond)
        assert present.all() and (samples[:, 0, 0] > PT_MIN).all()
        assert (samples[:, 0, 1].abs() < model.eta_max[0]).all()
        med = samples[:, 0, 0].median()
        for region in (lambda v: v[:, 0, 0] > med, lambda v: v[:, 0, 1] > 0.3, lambda v: v[:, 0, 2] > 1.0):
            frac, weighted = region(samples).to(F64), ratio * region(x).to(F64)
            sigma = math.sqrt(frac.var() / n + weighted.var() / n)
            assert abs(frac.mean() - weighted.mean()) < 5 * sigma, (frac.mean(), weighted.mean(), sigma)


# ---------------------------------------------------------------------------- API
def test_dtype_bayesian_and_validation():
    gen = torch.Generator().manual_seed(60)
    model = TransferTransformer(["photon", "jet"], [2.4, 4.7], n_hard=2, head=TINY_SPLINE, **TINY)
    x_hard = _hard(32, 2, gen)
    x_reco, _ = _smear(x_hard, [False, True], gen)
    model.fit_preprocessing(x_hard, x_reco)
    assert model.log_prob(x_reco, x_hard).dtype == torch.float32
    assert model.kl().item() == 0
    bayes = TransferTransformer(["photon", "jet"], [2.4, 4.7], n_hard=2,
                                head=partial(TINY_SPLINE, bayesian=True), **TINY).to(F64)
    bayes.fit_preprocessing(x_hard, x_reco)
    assert bayes.kl().item() > 0
    loss = bayes.loss(x_reco.float(), x_hard.float(), weight=torch.ones(32))
    assert loss.dtype == F64 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="embed_dim"):
        TransferTransformer(["photon"] * 12, [2.4] * 12, **TINY)
    with pytest.raises(ValueError, match="divisible"):
        TransferTransformer(["photon"], [2.4], **{**TINY, "attention_heads": 3})
    with pytest.raises(ValueError, match="slot types"):
        TransferTransformer(["electron"], [2.4], **TINY)
    with pytest.raises(ValueError, match="eta_max"):
        TransferTransformer(["photon", "jet"], [2.4], **TINY)
    with pytest.raises(ValueError, match="kind"):
        build_transformer("gan", {}, ["photon"], [2.4], [0.0], 1, False)
    with pytest.raises(ValueError, match="bayesian"):
        build_transformer("transfusion", {"bayesian": True}, ["photon"], [2.4], [0.0], 1, False)
    with pytest.raises(ValueError, match="x_hard"):
        model.log_prob(x_reco, x_hard[:, :1])
