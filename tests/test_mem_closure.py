"""Closure of the MEM machinery on the analytic toy (lhcflow.mem.closure)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lhcflow.mem.closure import GaussianSum, ToyProcess, cp_factors, integrate_toy, run_closure, set_pulls
from lhcflow.mem.integration import MemSettings, integrate_events
from lhcflow.mem.likelihood import pull_summary, pulls_consistent, scan_grid


@pytest.fixture(scope="module")
def toy():
    return ToyProcess(smearing_width=0.3, acceptance=True)


@pytest.fixture(scope="module")
def grid2d():
    xs = torch.linspace(-6.5, 6.5, 521, dtype=torch.float64)
    return torch.cartesian_prod(xs, xs), (xs[1] - xs[0]).item() ** 2


# --------------------------------------------------------------------------- (i) analytic pieces

def test_gaussian_sum_algebra_by_quadrature(grid2d):
    x, dv = grid2d
    p = GaussianSum.bump(1.3, (0.2, -0.4), (0.7, 1.1))
    q = GaussianSum.bump(0.8, (-0.5, 0.3), (0.9, 0.6))
    assert torch.allclose((p * q)(x), p(x) * q(x), rtol=1e-10, atol=1e-300)
    assert (p + q.scaled(-0.5)).integral() == pytest.approx(((p(x) - 0.5 * q(x)).sum() * dv).item(), rel=1e-6)
    # convolution with N(0, S²) evaluated at one reco point by quadrature over x
    y = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    s = np.array([0.3, 0.5])
    kernel = torch.exp(-0.5 * (((y - x) / torch.from_numpy(s)) ** 2).sum(1)) / (2 * math.pi * s.prod())
    assert p.convolved(s ** 2)(y).item() == pytest.approx((p(x) * kernel).sum().item() * dv, rel=1e-7)


@pytest.mark.parametrize("alpha", [0.0, 0.8, -2.0, math.pi / 2])
def test_cross_sections_and_reco_normalisation(toy, grid2d, alpha):
    x, dv = grid2d
    a = torch.tensor([alpha], dtype=torch.float64)
    dsigma = toy.dsigma(x, alpha)
    assert dsigma.min() >= 0
    # dσ is the modulus squared of the amplitude a + cos α b + sin α d + i sin α c (Eq 6.3 structure)
    amp = toy.amplitudes
    direct = (amp["a"](x) + math.cos(alpha) * amp["b"](x) + math.sin(alpha) * amp["d"](x)) ** 2 \
        + (math.sin(alpha) * amp["c"](x)) ** 2
    assert torch.allclose(dsigma, direct, rtol=1e-9, atol=1e-12 * direct.max().item())
    assert toy.sigma(a).item() == pytest.approx(dsigma.sum().item() * dv, rel=1e-8)
    assert toy.sigma_fid(a).item() == pytest.approx((dsigma * toy.acceptance(x)).sum().item() * dv, rel=1e-8)
    assert toy.sigma_fid(a).item() < toy.sigma(a).item()
    # p(x_reco|α) integrates to one over the reco space
    assert np.exp(toy.reco_log_likelihood(x, [alpha])).sum() * dv == pytest.approx(1.0, abs=1e-8)


def test_event_sampling_follows_the_analytic_reco_density(toy, grid2d):
    x, dv = grid2d
    alpha = math.radians(45)
    _, reco = toy.sample(20_000, alpha, torch.Generator().manual_seed(4))
    density = torch.from_numpy(np.exp(toy.reco_log_likelihood(x, [alpha]))[:, 0])
    for observable in (lambda v: v[:, 0], lambda v: v[:, 1], lambda v: (v[:, 0] > 0.5).double()):
        expected = (observable(x) * density).sum().item() * dv
        sample = observable(reco)
        assert abs(sample.mean().item() - expected) < 4 * sample.std().item() / math.sqrt(len(sample))


# --------------------------------------------------------------------------- (ii) MEM integral per event

@pytest.mark.parametrize("setup", [{}, {"vegas": True, "vegas_bins": 16}, {"transfer_replicas": 3}])
def test_mem_integral_agrees_with_analytic_likelihood(toy, setup):
    setup = dict(setup)
    n_transfer = setup.pop("transfer_replicas", 1)
    _, reco = toy.sample(40, math.radians(30), torch.Generator().manual_seed(7))
    settings = MemSettings(batch_size=400, min_iterations=4, max_iterations=4, bootstrap_replicas=40, seed=3, **setup)
    integrand = toy.integrand(1.0, n_transfer, 0.0)   # zero jitter: every replica is the exact transfer
    res = integrate_events(integrand, toy.proposal(1.3, 0.05), reco, reco, settings)
    alphas = np.radians([-120.0, -30.0, 0.0, 45.0, 90.0, 170.0])
    mem, exact = res.log_likelihood(alphas), toy.reco_log_likelihood(reco, alphas)
    boot = res.log_likelihood_replicas(alphas).std(axis=1, ddof=1)
    z = (mem - exact) / boot
    assert np.all(np.isfinite(z))
    assert np.all(boot < 0.1)
    assert abs(z.mean()) < 0.5                    # unbiased within the (correlated) bootstrap errors
    assert 0.6 < z.std() < 1.5                     # bootstrap errors have the right size
    assert np.mean(np.abs(z) > 3.5) < 0.03


# --------------------------------------------------------------------------- (iii) pulls

@pytest.fixture(scope="module")
def pull_events(toy):
    alpha_true = math.radians(90)
    _, reco = toy.sample(4000, alpha_true, torch.Generator().manual_seed(5))
    return alpha_true, reco


def _mem_pull_summary(toy, reco, alpha_true, transfer_width_factor):
    settings = MemSettings(batch_size=256, min_iterations=2, max_iterations=2, bootstrap_replicas=0, seed=1)
    cfg = {"transfer_width_factor": transfer_width_factor, "transfer_replicas": 1, "transfer_replica_jitter": 0.0,
           "proposal_width_factor": 1.3, "proposal_shift": 0.05, "chunk_size": 4000}
    res = integrate_toy(toy, reco, settings, cfg)
    alpha = scan_grid(361)
    return pull_summary(set_pulls(res.log_likelihood(alpha), alpha, 100, alpha_true))


def test_mem_pulls_are_calibrated(toy, pull_events):
    alpha_true, reco = pull_events
    summary = _mem_pull_summary(toy, reco, alpha_true, 1.0)
    assert summary["n"] == 40
    assert pulls_consistent(summary, 3.0), summary


def test_wrong_transfer_width_is_detected_by_the_pull_check(toy, pull_events):
    alpha_true, reco = pull_events
    summary = _mem_pull_summary(toy, reco, alpha_true, 3.0)
    assert not pulls_consistent(summary, 3.0), summary


# --------------------------------------------------------------------------- driver

def test_run_closure_writes_metrics_and_figures(tmp_path):
    cfg = {"alpha_true_deg": [45.0, 90.0], "scan_events": 60, "events_per_set": 20, "n_sets": 4,
           "figure_format": "pdf",
           "mem": {"batch_size": 128, "max_iterations": 3, "bootstrap_replicas": 8, "alpha_grid_deg": [-90, 0, 90]}}
    metrics = run_closure(cfg, tmp_path, seed=2)
    for name in ("closure.json", "closure_likelihood.pdf", "closure_pulls.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    stored = json.loads((tmp_path / "closure.json").read_text())
    entry = stored["alpha_true"]["45"]
    assert set(entry["pulls"]) == {"MEM", "analytic reco", "hard truth"}
    assert entry["pulls"]["MEM"]["n"] == 4
    assert 2 <= entry["median_iterations"] <= 3
    assert entry["scan"]["max_abs_diff_1sigma"] >= 0 and metrics["runtime_s"] > 0
    with pytest.raises(KeyError):
        run_closure({"n_set": 3}, tmp_path)


def test_cp_factors_match_the_tHj_convention():
    from lhcflow.thj.matrix_element import cp_factors as thj_factors

    a = torch.linspace(-3, 3, 7, dtype=torch.float64)
    assert torch.allclose(cp_factors(a), thj_factors(a))
