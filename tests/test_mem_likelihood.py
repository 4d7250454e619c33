"""Likelihood scans, intervals, pulls (lhcflow.mem.likelihood) and the MEM figures (lhcflow.plots.mem)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lhcflow.mem import likelihood as lk
from lhcflow.mem.likelihood import (Estimate, bias, estimate_alpha, hard_log_likelihood, likelihood_band,
                                    neg2_log_likelihood, pull_summary, pulls, pulls_consistent, scan_grid,
                                    set_estimates, split_event_sets)
from lhcflow.physics.kinematics import wrap_angle


def test_neg2_log_likelihood_and_band():
    rng = np.random.default_rng(0)
    log_p = rng.normal(size=(5, 7))
    curve = neg2_log_likelihood(log_p)
    assert curve.shape == (7,) and curve.min() == 0.0
    np.testing.assert_allclose(curve, -2 * log_p.sum(0) - (-2 * log_p.sum(0)).min())
    # a constant offset per replica does not enter the band
    reps = np.repeat(log_p[:, None], 4, axis=1) + np.arange(4)[None, :, None]
    np.testing.assert_allclose(likelihood_band(reps), 0.0, atol=1e-12)
    noisy = reps + rng.normal(scale=0.01, size=reps.shape)
    band = likelihood_band(noisy)
    assert band.shape == (7,) and np.all(band[curve > 0] > 0)


@pytest.mark.parametrize("centre", [0.3, -1.2, math.radians(90)])
def test_estimate_on_parabola(centre):
    alpha = scan_grid()
    curve = (wrap_angle(alpha - centre) / 0.15) ** 2 + 3.0
    est = estimate_alpha(alpha, curve - curve.min())
    assert est.alpha_hat == pytest.approx(centre, abs=1e-6)
    assert est.sigma_minus == pytest.approx(0.15, rel=2e-3) and est.sigma_plus == pytest.approx(0.15, rel=2e-3)
    assert est.lower == pytest.approx(centre - est.sigma_minus) and not est.at_edge


def test_asymmetric_interval_and_parabola_refinement():
    alpha = scan_grid()
    centre = 0.4321                                   # between grid points
    d = alpha - centre
    curve = np.where(d < 0, (d / 0.1) ** 2, (d / 0.3) ** 2)
    est = estimate_alpha(alpha, curve)
    assert est.alpha_hat == pytest.approx(centre, abs=alpha[1] - alpha[0])   # kinked minimum: within a step
    assert est.sigma_minus == pytest.approx(0.1, abs=alpha[1] - alpha[0])
    assert est.sigma_plus == pytest.approx(0.3, abs=alpha[1] - alpha[0])
    assert est.upper == pytest.approx(centre + 0.3, abs=1e-3) and est.lower == pytest.approx(centre - 0.1, abs=1e-3)


def test_periodic_wrap_and_edges():
    alpha = scan_grid()
    curve = (wrap_angle(alpha - 3.05) / 0.2) ** 2         # minimum near +π, interval wraps past it
    est = estimate_alpha(alpha, curve)
    assert est.alpha_hat == pytest.approx(3.05, abs=1e-6)
    assert est.upper == pytest.approx(3.25, abs=1e-3) and est.sigma_plus == pytest.approx(0.2, rel=2e-3)
    flat = 0.4 * (1 - np.cos(alpha))                       # never reaches 1: whole range
    e = estimate_alpha(alpha, flat)
    assert e.lower_at_edge and e.upper_at_edge and e.sigma_plus == pytest.approx(math.pi)
    e2 = estimate_alpha(alpha, ((alpha + 3.0) / 0.5) ** 2, periodic=False)    # lower crossing beyond −π
    assert e2.lower_at_edge and not e2.upper_at_edge
    assert e2.lower == pytest.approx(-math.pi) and e2.upper == pytest.approx(-2.5, abs=1e-3)


def test_pull_sign_convention_and_wrapping():
    est = [Estimate(0.1, 0.1 - 0.2, 0.1 + 0.05, 0.2, 0.05),     # α̂ < α_true: upper error faces the truth
           Estimate(0.5, 0.5 - 0.2, 0.5 + 0.05, 0.2, 0.05),     # α̂ > α_true: lower error
           Estimate(-3.1, -3.2, -3.0, 0.1, 0.1)]                 # wraps around ±π
    p = pulls(est, 0.3)
    assert p[0] == pytest.approx(-0.2 / 0.05) and p[1] == pytest.approx(0.2 / 0.2)
    p3 = pulls(est[2:], 3.1)[0]
    assert p3 == pytest.approx((2 * math.pi - 6.2) / 0.1)
    assert bias(est[2], 3.1) == pytest.approx(2 * math.pi - 6.2)
    assert wrap_angle(math.pi) == pytest.approx(math.pi) and wrap_angle(-math.pi) == pytest.approx(math.pi)


def test_event_sets_and_pull_statistics():
    sets = split_event_sets(2000, 100, 20, seed=1)
    assert sets.disjoint and sets.indices.shape == (20, 100) and len(np.unique(sets.indices)) == 2000
    more = split_event_sets(500, 100, 20, seed=1)
    assert not more.disjoint and all(len(np.unique(row)) == 100 for row in more.indices)
    values = np.random.default_rng(3).normal(size=4000)
    s = pull_summary(np.append(values, np.inf))
    assert s["n"] == 4000 and s["n_nonfinite"] == 1
    assert s["mean_error"] == pytest.approx(s["width"] / math.sqrt(4000))
    assert pulls_consistent(s) and not pulls_consistent(pull_summary(values * 1.3 + 0.2))


def test_set_estimates_recover_truth_of_a_gaussian_location_model():
    """x ~ N(α_true, 1): the per-set MLE is the set mean, the ±1 interval its 1/√n error; pulls ~ N(0,1)."""
    rng = np.random.default_rng(5)
    alpha_true = 0.4
    x = rng.normal(alpha_true, 2.0, size=4000)
    alpha = scan_grid()
    log_p = -0.5 * ((x[:, None] - alpha[None]) / 2.0) ** 2
    ests = set_estimates(log_p, alpha, split_event_sets(4000, 100, 40, seed=0))
    assert ests[0].sigma_plus == pytest.approx(0.2, rel=1e-3)
    assert pulls_consistent(pull_summary(pulls(ests, alpha_true)))


def test_hard_log_likelihood_matches_the_closure_density():
    from lhcflow.mem.closure import ToyProcess, cp_factors

    toy = ToyProcess(acceptance=False)
    x = torch.randn(6, 2, dtype=torch.float64)
    alpha = np.array([0.0, 1.0])
    ll = hard_log_likelihood(toy.hard_terms(x), cp_factors, toy.sigma, alpha)
    for k, a in enumerate(alpha):
        np.testing.assert_allclose(ll[:, k], np.log(toy.dsigma(x, a).numpy() / toy.sigma(torch.tensor([a])).item()))


# --------------------------------------------------------------------------- figures

def _curves(alpha, centre):
    from lhcflow.plots.mem import LikelihoodCurve

    base = (wrap_angle(alpha - centre) / 0.3) ** 2
    return [LikelihoodCurve("hard truth", base, color="k", linestyle="--"),
            LikelihoodCurve("reco", base * 1.2, band=0.1 + 0 * base, color="C4")]


def test_mem_figures_are_written(tmp_path):
    from lhcflow.plots.mem import (ScanColumn, plot_calibration, plot_integration_diagnostics,
                                   plot_likelihood_comparison, plot_likelihood_scans, plot_pull_histograms)

    rng = np.random.default_rng(0)
    alpha = scan_grid(181)
    truths = np.radians([0.0, 45.0, 90.0])
    cols = [ScanColumn(a, small=_curves(alpha, a), large=_curves(alpha, a + 0.02),
                       pulls={"hard truth": rng.normal(size=50), "reco": rng.normal(0.2, 1.1, size=50)}) for a in truths]
    paths = {"scans": tmp_path / "scans.png", "cmp": tmp_path / "cmp.pdf", "pulls": tmp_path / "pulls.png",
             "cal": tmp_path / "cal.png", "diag": tmp_path / "diag.png"}
    plot_likelihood_scans(alpha, cols, paths["scans"])
    plot_likelihood_comparison(alpha, cols, paths["cmp"], reference="hard truth", title="400 events")
    plot_pull_histograms(cols, paths["pulls"])
    sets = [[Estimate(a + d, a + d - 0.2, a + d + 0.3, 0.2, 0.3) for d in rng.normal(0, 0.2, 20)] for a in truths]
    plot_calibration(truths, sets, [[Estimate(e.alpha_hat + 0.05, 0, 0, 0.25, 0.2) for e in s] for s in sets],
                     paths["cal"])
    hist = rng.uniform(0.005, 0.2, size=(40, 15))
    iters = rng.integers(2, 16, size=40)
    hist[np.arange(15)[None] >= iters[:, None]] = np.nan
    setups = {"cINN": SimpleNamespace(iterations=iters, rel_error_history=hist),
              "cINN + VEGAS": SimpleNamespace(iterations=np.minimum(iters, 6), rel_error_history=hist / 2)}
    plot_integration_diagnostics(setups, paths["diag"], max_iterations=15, target=0.02)
    for path in paths.values():
        assert path.stat().st_size > 1000


def test_mirror_sets_are_those_nearer_minus_alpha():
    """α̂ nearer −α_true than α_true (the CP mirror that only CP-odd information resolves); α = 0 and
    180° are their own mirrors, so no set is ever flagged there."""
    est = [lk.Estimate(np.radians(a), 0.0, 0.0, 0.1, 0.1) for a in (44.0, -46.0, 130.0, -179.0, 179.0)]
    assert lk.at_mirror(est, np.radians(45.0)).tolist() == [False, True, False, True, False]
    assert lk.at_mirror(est, np.radians(-45.0)).tolist() == [True, False, True, False, True]
    assert not lk.at_mirror(est, 0.0).any() and not lk.at_mirror(est, np.pi).any()


def test_mirror_minimum_of_an_even_likelihood_with_a_weak_odd_term():
    """Events (x, y) with p = N(y; 3 cos α, 1) · (1 + b sin α · x)/2 on x ∈ [−1, 1]: a strong CP-even and a
    weak CP-odd observable. 100-event sets at α = 45° measure |α| to ~3° but its sign only weakly, so some
    land at −45°; exactly those have pulls ≈ 90°/σ, far beyond any Gaussian tail, the rest are Gaussian."""
    rng = np.random.default_rng(5)
    b, alpha_true, n = 0.2, np.radians(45.0), 4000
    y = rng.normal(3 * np.cos(alpha_true), 1.0, n)
    x = rng.uniform(-1, 1, 4 * n)
    x = x[rng.uniform(0, 1 + b, len(x)) < 1 + b * np.sin(alpha_true) * x][:n]
    grid = scan_grid()
    log_p = (-0.5 * (y[:, None] - 3 * np.cos(grid)[None]) ** 2
             + np.log1p(b * np.sin(grid)[None] * x[:, None]))
    estimates = set_estimates(log_p, grid, split_event_sets(n, 100, 40, seed=1))
    mirror = lk.at_mirror(estimates, alpha_true)
    p = pulls(estimates, alpha_true)
    print(f"{mirror.sum()} of 40 sets at the mirror; |pull| there {np.round(np.abs(p[mirror]), 1)}, "
          f"width elsewhere {np.std(p[~mirror], ddof=1):.2f}")
    assert 0 < mirror.sum() < len(mirror) // 2
    assert np.all(np.abs(p[mirror]) > 5)
    assert abs(np.std(p[~mirror], ddof=1) - 1) < 4 / math.sqrt(2 * (len(p[~mirror]) - 1))
