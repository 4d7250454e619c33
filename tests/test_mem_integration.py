"""Single-pass factorised MEM integration (lhcflow.mem.integration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lhcflow.mem.closure import GaussianProposal, ToyProcess, cp_factors
from lhcflow.mem.integration import (MemIntegrand, MemResult, MemSettings, integrate_events, integrate_in_chunks,
                                     transfer_replica_assignment)


@pytest.fixture(scope="module")
def toy():
    return ToyProcess(smearing_width=0.3, acceptance=True)


@pytest.fixture(scope="module")
def reco(toy):
    return toy.sample(30, math.radians(40), torch.Generator().manual_seed(2))[1]


def _settings(**kw):
    base = {"batch_size": 200, "min_iterations": 2, "max_iterations": 4, "bootstrap_replicas": 10, "seed": 5}
    return MemSettings(**{**base, **kw})


# --------------------------------------------------------------------------- settings

def test_settings_from_dict():
    s = MemSettings.from_dict({"batch_size": 500, "alpha_grid_deg": [-90, 0, 45, 90]})
    assert s.batch_size == 500 and s.alpha_grid == pytest.approx(tuple(np.radians([-90, 0, 45, 90])))
    assert s.alpha_reference == pytest.approx(math.radians(45))
    assert MemSettings.from_dict(s.to_dict()) == s
    d = MemSettings()
    assert (d.batch_size, d.min_iterations, d.max_iterations, d.target_rel_error) == (10_000, 2, 15, 0.02)
    with pytest.raises(KeyError, match="batchsize"):
        MemSettings.from_dict({"batchsize": 3})
    with pytest.raises(KeyError):
        MemSettings.from_dict({"alpha_grid": [0.0], "alpha_grid_deg": [0.0]})
    with pytest.raises(ValueError):
        MemSettings(min_iterations=5, max_iterations=3)


# --------------------------------------------------------------------------- iterations and convergence

def test_perfect_proposal_stops_at_min_iterations():
    """Integrand ∝ q exactly: zero variance, every event stops after min_iterations."""
    width = torch.tensor([0.5, 0.5], dtype=torch.float64)

    def log_gauss(x, mean):
        return (-0.5 * ((x - mean) / width) ** 2 - torch.log(width) - 0.5 * math.log(2 * math.pi)).sum(-1)

    integrand = MemIntegrand(hard_terms=lambda x: torch.ones(len(x), 1, dtype=torch.float64),
                             f_terms=lambda a: torch.ones(len(a), 1, dtype=torch.float64),
                             transfer_log_prob=lambda rows, x: log_gauss(x, rows)[None],
                             sigma_fid=lambda a: torch.ones_like(a))
    proposal = GaussianProposal(width.numpy(), [0.0, 0.0])
    events = torch.randn(7, 2, dtype=torch.float64)
    res = integrate_events(integrand, proposal, events, events, _settings(min_iterations=3, max_iterations=6))
    assert np.all(res.iterations == 3) and np.all(res.n_samples == 600)
    np.testing.assert_allclose(res.log_likelihood([0.3]), 0.0, atol=1e-12)   # ∫ q dx = 1
    assert np.all(np.isnan(res.rel_error_history[:, 3:])) and np.all(res.rel_error_history[:, :3] < 1e-10)


def test_iterations_respect_target_and_limits(toy, reco):
    s = _settings(batch_size=150, min_iterations=2, max_iterations=6, target_rel_error=0.05)
    res = integrate_events(toy.integrand(), toy.proposal(1.6, 0.1), reco, reco, s)
    assert res.iterations.min() >= 2 and res.iterations.max() <= 6
    assert len(np.unique(res.iterations)) > 1                        # events converge at different times
    done = res.iterations < 6
    assert np.all(res.rel_error[done].max(1) <= 0.05)
    assert np.all(res.converged[done])
    # after stopping no further entries; before, the recorded history
    for e, n_it in enumerate(res.iterations):
        assert np.all(np.isfinite(res.rel_error_history[e, :n_it]))
        assert np.all(np.isnan(res.rel_error_history[e, n_it:]))
        assert res.rel_error_history[e, n_it - 1] == pytest.approx(res.rel_error[e].max())
    # the error of the combined result decreases roughly like 1/sqrt(iterations)
    slow = res.iterations == 6
    if slow.any():
        ratio = res.rel_error_history[slow, 5] / res.rel_error_history[slow, 1]
        assert np.median(ratio) == pytest.approx(math.sqrt(2 / 6), rel=0.35)


def test_factorisation_is_exact_in_alpha(toy, reco):
    res = integrate_events(toy.integrand(), toy.proposal(), reco[:5], reco[:5], _settings())
    alpha = np.array([0.123, -2.5, 1.0])
    j = res.terms * np.exp(res.log_scale)[:, None]
    a = torch.from_numpy(alpha)
    manual = np.log(j @ cp_factors(a).numpy().T) - np.log(toy.sigma_fid(a).numpy())
    np.testing.assert_allclose(res.log_likelihood(alpha), manual, rtol=1e-12)
    assert res.log_likelihood_replicas(alpha).shape == (5, 10, 3)


def test_nonfinite_samples_contribute_zero(toy, reco):
    """Transfer densities that are −inf/NaN for part of the samples: those count as zero integrand."""
    exact = toy.transfer_log_prob()

    def broken(rows, x):
        out = exact(rows, x).clone()
        out[:, x[:, 0] > rows[:, 0] + 0.2] = -math.inf
        out[:, x[:, 1] > rows[:, 1] + 0.5] = math.nan
        return out

    integrand = MemIntegrand(toy.hard_terms, cp_factors, broken, toy.sigma_fid, toy.acceptance)
    res = integrate_events(integrand, toy.proposal(), reco[:4], reco[:4], _settings())
    assert np.all(np.isfinite(res.terms)) and np.all(np.isfinite(res.log_likelihood([0.0, 1.0])))
    full = integrate_events(toy.integrand(), toy.proposal(), reco[:4], reco[:4], _settings())
    assert np.all(res.log_likelihood([0.0]) < full.log_likelihood([0.0]))


# --------------------------------------------------------------------------- bootstrap and transfer replicas

def test_bootstrap_error_matches_spread_of_reruns(toy, reco):
    """20 copies of 6 events integrated together are 20 independent reruns."""
    copies = 20
    events = reco[:6].repeat(copies, 1)
    s = _settings(batch_size=300, min_iterations=3, max_iterations=3, bootstrap_replicas=40)
    res = integrate_events(toy.integrand(), toy.proposal(1.5, 0.1), events, events, s)
    alpha = np.radians([-60.0, 0.0, 60.0, 120.0])
    log_p = res.log_likelihood(alpha).reshape(copies, 6, len(alpha))
    spread = log_p.std(axis=0, ddof=1)                                             # (6, A)
    boot = res.log_likelihood_replicas(alpha).std(axis=1, ddof=1).reshape(copies, 6, len(alpha)).mean(0)
    ratio = spread / boot
    assert np.median(ratio) == pytest.approx(1.0, abs=0.25)
    assert np.all((ratio > 0.4) & (ratio < 2.0))


def test_transfer_replicas_central_mean_and_assignment(toy, reco):
    assignment = transfer_replica_assignment(3, 10, seed=1)
    assert sorted(np.bincount(assignment, minlength=3)) == [3, 3, 4]
    np.testing.assert_array_equal(assignment, transfer_replica_assignment(3, 10, seed=1))

    exact = toy.transfer_log_prob()
    doubled = MemIntegrand(toy.hard_terms, cp_factors,
                           lambda rows, x: torch.cat([exact(rows, x), exact(rows, x) + math.log(2.0)]),
                           toy.sigma_fid, toy.acceptance)
    s = _settings(min_iterations=3, max_iterations=3, bootstrap_replicas=20, seed=8)
    one = integrate_events(toy.integrand(), toy.proposal(), reco[:5], reco[:5], s)
    two = integrate_events(doubled, toy.proposal(), reco[:5], reco[:5], s)
    # same samples: the central value uses the replica mean (1 + 2)/2
    np.testing.assert_allclose(two.log_likelihood([0.4]), one.log_likelihood([0.4]) + math.log(1.5), rtol=1e-10)
    b = transfer_replica_assignment(2, 20, seed=8)
    rep = two.log_likelihood_replicas([0.4])[:, :, 0] - two.log_likelihood([0.4])
    assert np.mean(rep[:, b == 1]) - np.mean(rep[:, b == 0]) == pytest.approx(math.log(2.0), abs=0.05)


def test_vegas_refinement_reduces_error_of_a_misplaced_proposal(toy, reco):
    kw = {"batch_size": 400, "min_iterations": 6, "max_iterations": 6, "bootstrap_replicas": 0}
    shifted = toy.proposal(2.5, 0.0)
    plain = integrate_events(toy.integrand(), shifted, reco[:12], reco[:12], _settings(**kw))
    refined = integrate_events(toy.integrand(), shifted, reco[:12], reco[:12], _settings(vegas=True, vegas_bins=16, **kw))
    assert np.median(refined.rel_error.max(1)) < np.median(plain.rel_error.max(1))
    alpha = np.radians([0.0, 90.0])
    exact = toy.reco_log_likelihood(reco[:12], alpha)
    assert np.abs(refined.log_likelihood(alpha) - exact).max() < 5 * refined.rel_error.max()


# --------------------------------------------------------------------------- persistence and chunks

def test_save_load_concatenate(tmp_path, toy, reco):
    res = integrate_events(toy.integrand(), toy.proposal(), reco[:4], reco[:4], _settings())
    res.save(tmp_path / "r.h5")
    back = MemResult.load(tmp_path / "r.h5", cp_factors, toy.sigma_fid)
    for name in ("terms", "terms_replicas", "log_scale", "iterations", "rel_error", "rel_error_history", "n_samples"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    np.testing.assert_array_equal(back.log_likelihood([0.5]), res.log_likelihood([0.5]))
    with pytest.raises(ValueError):
        MemResult.load(tmp_path / "r.h5").log_likelihood([0.5])
    both = MemResult.concatenate([res, back])
    assert len(both) == 8 and both.terms_replicas.shape == (8, 10, 5)
    res.save(tmp_path / "again.h5")
    assert (tmp_path / "r.h5").read_bytes() == (tmp_path / "again.h5").read_bytes()


def test_chunks_resume_identically(tmp_path, toy, reco):
    s = _settings(min_iterations=2, max_iterations=3)
    kw = {"chunk_size": 8, "checkpoint_dir": tmp_path / "ck", "fingerprint": "abc"}
    first = integrate_in_chunks(toy.integrand(), toy.proposal(), reco[:20], reco[:20], s, **kw)
    files = sorted((tmp_path / "ck").glob("chunk_*.h5"))
    assert [f.name for f in files] == ["chunk_0000.h5", "chunk_0001.h5", "chunk_0002.h5"]
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    (tmp_path / "ck" / "chunk_0001.h5").unlink()                       # an interrupted run
    second = integrate_in_chunks(toy.integrand(), toy.proposal(), reco[:20], reco[:20], s, **kw)
    np.testing.assert_array_equal(first.terms, second.terms)
    np.testing.assert_array_equal(first.terms_replicas, second.terms_replicas)
    assert (tmp_path / "ck" / "chunk_0000.h5").stat().st_mtime_ns == stamp["chunk_0000.h5"]   # reused
    # chunk c uses its own random stream
    for index, same in ((1, True), (0, False)):
        alone = integrate_events(toy.integrand(), toy.proposal(), reco[8:16], reco[8:16], s, chunk_index=index)
        assert np.array_equal(first.terms[8:16], alone.terms) == same
    # another fingerprint recomputes every chunk
    third = integrate_in_chunks(toy.integrand(), toy.proposal(), reco[:20], reco[:20], s, **{**kw, "fingerprint": "xyz"})
    assert (tmp_path / "ck" / "chunk_0000.h5").stat().st_mtime_ns != stamp["chunk_0000.h5"]
    np.testing.assert_array_equal(third.terms, first.terms)
    assert third.attrs["fingerprint"] == "xyz"


def test_eval_batches_and_progress_do_not_change_results(toy, reco):
    s = _settings()
    a = integrate_events(toy.integrand(), toy.proposal(), reco[:5], reco[:5], s)
    b = integrate_events(toy.integrand(), toy.proposal(), reco[:5], reco[:5], _settings(eval_batch_size=333),
                         progress=True)
    np.testing.assert_allclose(a.terms, b.terms, rtol=1e-12)
    np.testing.assert_array_equal(a.iterations, b.iterations)
