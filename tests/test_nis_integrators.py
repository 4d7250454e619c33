"""Flat MC, VEGAS and MadNIS integrators, metrics, unweighting and LHE output on small toy integrands."""

from __future__ import annotations

import ast
import gzip
import inspect
import math
import tomllib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pylhe
import pytest
import torch
from packaging.requirements import Requirement

from lhcflow.nis.baselines import FlatIntegrator, VegasIntegrator
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.integrand import MultiChannelIntegrand, mapping_prior
from lhcflow.nis.lhe import write_lhe
from lhcflow.nis.madnis_wrapper import FiniteStepAdam, MadnisIntegrator, history_channel_stds
from lhcflow.nis.metrics import (
    effective_sample_size,
    relative_std,
    robust_w_max,
    summarize,
    unweighting_efficiency,
)
from lhcflow.nis.run import run_flat, run_integrator, run_madnis, run_vegas, training_calls
from lhcflow.nis.settings import DEFAULT_VEGAS_INIT
from lhcflow.nis.sampling import allocate
from lhcflow.nis.unweighting import unweight
from lhcflow.physics.pdf import load_pythia_pdf

MU, SIGMA = 0.5, 0.05
TINY_MADNIS = {"batch_size": 512, "units": 8, "layers": 2, "bins": 8, "lr": 3e-3, "cwnet_units": 8}


# --------------------------------------------------------------------------- toy integrands

class FlatMap:
    """Identity mapping of the unit hypercube, g = 1."""

    def __init__(self, dim: int):
        self.dim = dim

    def sample(self, r):
        return r.clone(), r.new_zeros(r.shape[0])

    def log_density(self, x):
        inside = ((x >= 0) & (x <= 1)).all(dim=1)
        return torch.where(inside, 0.0, -math.inf).to(x)


class CauchyMap:
    """Product of Cauchy distributions around MU truncated to [0, 1]: a 'Gaussian-ish' peak mapping."""

    def __init__(self, dim: int, gamma: float = 2 * SIGMA):
        self.dim, self.gamma = dim, gamma
        self.a0, self.a1 = math.atan(-MU / gamma), math.atan((1 - MU) / gamma)

    def sample(self, r):
        x = MU + self.gamma * torch.tan(self.a0 + (self.a1 - self.a0) * r)
        return x, self.log_density(x)

    def log_density(self, x):
        ld = -torch.log((self.a1 - self.a0) * self.gamma * (1 + ((x - MU) / self.gamma) ** 2)).sum(dim=1)
        inside = ((x >= 0) & (x <= 1)).all(dim=1)
        return torch.where(inside, ld, -math.inf)


def gauss2d(two_channels: bool = True) -> MultiChannelIntegrand:
    """Normalised 2D Gaussian peak in the unit square; exact integral from erf."""
    def f(x):
        return torch.exp(-(x - MU).square().sum(dim=1) / (2 * SIGMA**2)) / (2 * math.pi * SIGMA**2)

    channels = [FlatMap(2), CauchyMap(2)] if two_channels else [FlatMap(2)]
    return MultiChannelIntegrand(name="gauss2d", dim=2, function=f, channels=channels,
                                 prior=mapping_prior(channels) if two_channels else None,
                                 exact=math.erf(MU / (math.sqrt(2) * SIGMA)) ** 2)


def cubic1d() -> MultiChannelIntegrand:
    """f(x) = 4x³ on [0, 1]: I = 1, unweighted x has mean 4/5 and variance 2/75."""
    return MultiChannelIntegrand(name="cubic1d", dim=1, function=lambda x: 4 * x[:, 0] ** 3,
                                 channels=[FlatMap(1)], exact=1.0)


def constant2d() -> MultiChannelIntegrand:
    return MultiChannelIntegrand(name="const", dim=2, function=lambda x: torch.full((len(x),), 2.0, dtype=x.dtype),
                                 channels=[FlatMap(2)], exact=2.0)


def assert_compatible(result, n_sigma: float = 3.0):
    assert result.error > 0
    assert abs(result.integral - result.exact) < n_sigma * result.error, result


# --------------------------------------------------------------------------- integrals

def test_flat_and_vegas_agree_with_exact_two_channels():
    integrand = gauss2d()
    flat = run_flat(integrand, 20_000, seed=3)
    vegas = run_vegas(integrand, 20_000, {"iterations": 5, "samples_per_iteration": 10_000}, seed=3)
    for res in (flat, vegas):
        assert_compatible(res)
        assert res.n_calls_eval == 20_000
        assert 0 < res.unweighting_efficiency <= 1
    assert flat.n_calls_train == 0 and vegas.n_calls_train == 50_000
    assert sum(flat.channel_counts) == 20_000 and flat.channel_counts == [10_000, 10_000]
    assert len(vegas.variance_history) == 5
    assert vegas.rel_std < flat.rel_std


def test_vegas_and_madnis_beat_flat_on_peak():
    """Single flat channel, narrow peak: both adaptive methods reduce σ/I at equal evaluation calls."""
    integrand = gauss2d(two_channels=False)
    flat = run_flat(integrand, 10_000, seed=1)
    vegas = run_vegas(integrand, 10_000, {"iterations": 5, "samples_per_iteration": 10_000}, seed=1)
    madnis = run_madnis(integrand, 10_000, {**TINY_MADNIS, "steps": 150, "history_every": 50,
                                            "history_batches": 4, "history_batch_size": 500},
                        seed=1, progress=False)
    for res in (flat, vegas, madnis):
        assert_compatible(res)
    assert vegas.rel_std < 0.2 * flat.rel_std
    assert madnis.rel_std < 0.5 * flat.rel_std
    assert madnis.unweighting_efficiency > flat.unweighting_efficiency
    # training and monitoring calls are counted separately; Fig 5.10-style history
    assert madnis.n_calls_train == 150 * 512
    assert madnis.n_calls_monitor == 4 * 4 * 500
    assert [s for s, _ in madnis.variance_history] == [0, 50, 100, 150]
    assert madnis.variance_history[-1][1] < madnis.variance_history[0][1]
    assert len(madnis.loss_history) == 150
    assert madnis.time_train > 0 and madnis.time_eval > 0


def test_madnis_two_channels_cwnet_buffered_training():
    integrand = gauss2d()
    res = run_madnis(integrand, 10_000, {**TINY_MADNIS, "steps": 120, "replay_factor": 3, "buffer_batches": 4},
                     seed=2, progress=False)
    assert_compatible(res)
    assert res.n_calls_train == 40 * 512  # R = 3: one online step per three optimisation steps
    integ = res.integrator
    assert sum(1 for _ in integ.integrator.cwnet.parameters()) > 0
    alpha = integ.channel_weights(torch.rand(50, 2, dtype=torch.float64))
    assert torch.allclose(alpha.sum(dim=1), torch.ones(50, dtype=torch.float64))


def test_madnis_channel_weights_and_allocation_are_the_ones_madnis_samples_with():
    """α_iξ(x) (Eq 5.8) and N_i ∝ σ_i (Eq 2.55) are built from madnis' public pieces (channel-weight network,
    channel mask, integration history); madnis' own sampler, which computes both internally, is the reference."""
    integrand = drell_yan_integrand(prior="mg5")
    cfg = {**TINY_MADNIS, "batch_size": 256, "steps": 12, "channel_dropping_threshold": 0.2,
           "channel_dropping_interval": 4, "uniform_channel_ratio": 0.5, "eval_uniform_ratio": 0.0}
    integ = MadnisIntegrator(integrand, cfg, seed=6)
    integ.train(progress=False)
    assert int(integ.integrator.active_channels_mask.sum()) == 2  # Z' dropped: the mask enters α
    with torch.random.fork_rng():
        torch.manual_seed(1)
        batch = integ.integrator.sample(20_000, channel_weight_mode="variance")
    hit = batch.func_vals != 0
    torch.testing.assert_close(integ.channel_weights(batch.y[hit]), batch.alphas[hit], rtol=1e-12, atol=0)
    assert not torch.allclose(batch.alphas[hit], batch.alphas_prior[hit] / batch.alphas_prior[hit].sum(1, True))
    # madnis splits its 20 000 points ∝ its σ_i, rounded up; ours ∝ history_channel_stds, largest remainder
    madnis_counts = torch.bincount(batch.channels, minlength=3)
    ours = torch.as_tensor(integ.channel_allocation(20_000))
    assert (ours - madnis_counts).abs().max() <= 1 and ours[2] == 0, (ours, madnis_counts)
    sigma = history_channel_stds(integ.integrator)
    assert torch.isfinite(sigma[:2]).all() and (sigma[:2] > 0).all()


def test_madnis_is_used_in_its_tested_version_range_through_its_public_api():
    """pyproject.toml's madnis range holds the installed (tested) version, and lhcflow touches no private
    attribute of madnis' classes (those may change in any release)."""
    import madnis.integrator
    import madnis.nn

    deps = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    (spec,) = [r.specifier for r in map(Requirement, deps["dependencies"]) if r.name == "madnis"]
    assert spec.contains(version("madnis")) and spec.contains("1.0.0") and not spec.contains("1.1.0"), spec
    private = {"_size", "_store_index"}  # the Buffer's fill state, public as Buffer.size / Buffer.store_index
    for module in (madnis.integrator, madnis.nn):
        for cls in [getattr(module, n) for n in module.__all__ if inspect.isclass(getattr(module, n))]:
            private |= {n for k in cls.__mro__ if k.__module__.startswith("madnis") for n in vars(k)
                        if n.startswith("_") and not n.startswith("__")}
    assert {"_get_alphas", "_get_channel_contributions"} <= private
    used = {}
    for path in (Path(__file__).resolve().parents[1] / "src" / "lhcflow").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.attr] if isinstance(node, ast.Attribute) else \
                [a.name for a in node.names] if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("madnis") \
                else []
            used.update({n: path.name for n in names if n in private})
    assert not used, f"private madnis attributes used: {used}"


def test_madnis_vegas_init_and_channel_dropping():
    integrand = gauss2d()
    cfg = {**TINY_MADNIS, "steps": 30, "cwnet": False, "vegas_init": {"iterations": 3, "bins": 16,
           "samples_per_channel": 2000}, "channel_dropping_threshold": 0.5, "channel_dropping_interval": 10}
    res = run_madnis(integrand, 5_000, cfg, seed=4, progress=False)
    assert res.n_calls_train == 3 * 2 * 2000 + 30 * 512
    assert res.n_calls_train == training_calls("madnis", cfg, 2)
    # the flat channel carries < 50% of the integral and is dropped; the rest stays unbiased
    assert res.extra["dropped_channels"] == 1
    assert res.channel_counts[0] == 0
    assert_compatible(res, 4.0)


def test_empty_vegas_init_block_runs_the_initialisation_with_its_defaults():
    """``vegas_init: {}`` (every key left at its default) initialises with VEGAS; only ``null`` skips it.
    The block used to be read as false, so the flow started untrained from the identity."""
    integrand = gauss2d()
    cfg = {**TINY_MADNIS, "steps": 5, "cwnet": False, "vegas_init": {}}
    res = run_madnis(integrand, 2_000, cfg, seed=4, progress=False)
    vegas_calls = DEFAULT_VEGAS_INIT["iterations"] * 2 * DEFAULT_VEGAS_INIT["samples_per_channel"]
    assert res.n_calls_train == vegas_calls + 5 * 512
    off = run_madnis(integrand, 2_000, {**cfg, "vegas_init": None}, seed=4, progress=False)
    assert off.n_calls_train == 5 * 512


def test_one_dimensional_integral_all_methods():
    integrand = cubic1d()
    for method, cfg in [("flat", None), ("vegas", {"iterations": 4, "samples_per_iteration": 4000}),
                        ("madnis", {**TINY_MADNIS, "steps": 60, "cwnet": False})]:
        res = run_integrator(method, integrand, 8_000, cfg, seed=5, **({"progress": False} if method == "madnis" else {}))
        assert res.method == method
        assert_compatible(res)


def test_seeds_make_runs_reproducible():
    integrand = gauss2d()
    a = run_vegas(integrand, 5_000, {"iterations": 2, "samples_per_iteration": 4000}, seed=9)
    b = run_vegas(integrand, 5_000, {"iterations": 2, "samples_per_iteration": 4000}, seed=9)
    c = run_vegas(integrand, 5_000, {"iterations": 2, "samples_per_iteration": 4000}, seed=10)
    assert a.integral == b.integral and a.error == b.error
    assert a.integral != c.integral


# --------------------------------------------------------------------------- metrics and unweighting

def test_constant_integrand_has_unit_efficiency():
    res = run_flat(constant2d(), 5_000, seed=0)
    assert res.integral == pytest.approx(2.0)
    assert res.rel_std == pytest.approx(0.0, abs=1e-12)
    assert res.unweighting_efficiency == pytest.approx(1.0)
    w = torch.full((100,), 3.0, dtype=torch.float64)
    assert unweighting_efficiency(w) == pytest.approx(1.0)
    assert effective_sample_size(w) == pytest.approx(100.0)
    assert relative_std(w) == 0.0


def test_replica_w_max_is_robust_to_outliers():
    """Median of the replica maxima (thesis §2.2.5, line 539) ignores a single huge weight."""
    w = torch.ones(1000, dtype=torch.float64)
    w[17] = 1e6
    assert robust_w_max(w, n_replicas=201, replica_size=100, seed=0) == 1.0
    # with N = all events (madnis convention) the outlier is in ~63% of the replicas: w_max = max
    assert robust_w_max(w, n_replicas=201, seed=0) == 1e6
    # a smooth weight distribution: ε between 0 and 1
    w2 = torch.rand(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 4
    assert 0 < unweighting_efficiency(w2) <= 1


def test_hit_or_miss_counts_overweights_and_is_seeded():
    gen = torch.Generator().manual_seed(1)
    w = torch.rand(50_000, generator=gen, dtype=torch.float64) * 2.0
    res = unweight(w, w_max=1.5, seed=7)
    # accepted with probability min(w/w_max, 1)
    expected = torch.clamp(w / 1.5, max=1).sum().item()
    assert abs(res.n_accepted - expected) < 5 * math.sqrt(expected)
    assert res.n_overweight == int((w > 1.5).sum())
    assert torch.all(res.weights[w[res.accepted] > 1.5] > 1)
    assert torch.all(res.weights[w[res.accepted] <= 1.5] == 1)
    assert res.weights.sum().item() * 1.5 == pytest.approx(w.sum().item(), rel=0.02)  # Eq 2.66 unbiased
    again = unweight(w, w_max=1.5, seed=7)
    assert torch.equal(res.accepted, again.accepted)
    capped = unweight(w, w_max=1.5, seed=7, mode="cap")
    assert torch.all(capped.weights == 1) and capped.n_overweight == res.n_overweight


def test_unweighted_events_follow_the_integrand():
    integrand = cubic1d()
    for integ in (FlatIntegrator(integrand, seed=0), VegasIntegrator(integrand, {"iterations": 3,
                                                                                  "samples_per_iteration": 4000}, seed=0)):
        if isinstance(integ, VegasIntegrator):
            integ.train()
        events = integ.sample_unweighted(4000, seed=11, batch_size=20_000)
        assert len(events.x) == 4000 and events.x.shape == (4000, 1)
        assert 0 < events.efficiency <= 1
        if isinstance(integ, FlatIntegrator):   # f = 4x³: ε = ⟨f⟩/max f = 1/4, also when n < kept events
            assert events.efficiency == pytest.approx(0.25, abs=0.02)
        x = events.x[:, 0]
        w = events.weights
        mean = (w * x).sum() / w.sum()
        assert abs(mean.item() - 0.8) < 4 * math.sqrt(2 / 75 / 4000)
        assert events.cross_section == pytest.approx(1.0, abs=4 * events.cross_section_error)


def test_allocation_and_summary():
    assert allocate(10, None, 3) == [4, 3, 3]
    assert allocate(100, torch.tensor([1.0, 3.0]), 2) == [25, 75]
    assert allocate(100, torch.tensor([1.0, 3.0]), 2, uniform_ratio=1.0) == [50, 50]
    assert allocate(9, torch.tensor([1.0, 1.0, 1.0]), 3, active=torch.tensor([True, False, True])) == [5, 0, 4]
    runs = [run_flat(gauss2d(), 2_000, seed=s) for s in range(3)]
    summary = summarize(runs)
    assert summary["integral"]["n"] == 3
    assert summary["integral"]["std"] > 0
    assert summary["n_calls_eval"]["mean"] == 2_000
    assert summarize([r.to_dict() for r in runs])["rel_std"] == summary["rel_std"]


# --------------------------------------------------------------------------- MadNIS persistence

def test_madnis_save_load_reproduces_samples(tmp_path):
    integrand = gauss2d()
    integ = MadnisIntegrator(integrand, {**TINY_MADNIS, "steps": 20}, seed=0)
    integ.train(progress=False)
    path = integ.save(tmp_path / "madnis.pt")
    loaded = MadnisIntegrator.load(path, integrand)
    a = integ.sample_weighted(3000, seed=5)
    b = loaded.sample_weighted(3000, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights) and torch.equal(a.channels, b.channels)
    assert a.channel_counts == b.channel_counts
    assert loaded.integrator.step == 20 and loaded.loss_history == integ.loss_history
    # x is in physical space: the Cauchy channel's points come from its mapping
    assert torch.all((a.x >= 0) & (a.x <= 1))
    u1 = integ.sample_unweighted(200, seed=3, batch_size=2000)
    u2 = loaded.sample_unweighted(200, seed=3, batch_size=2000)
    assert torch.equal(u1.x, u2.x)
    # a reloaded integrator keeps training
    loaded.train(steps=5, progress=False)
    assert loaded.integrator.step == 25


class _Killed(Exception):
    """Stands in for the SIGTERM of a batch system's time limit, raised right after a checkpoint."""


def _kill_after_checkpoint(monkeypatch, n: int) -> None:
    save = MadnisIntegrator._save_checkpoint
    written = []

    def save_then_die(self, path, key):
        save(self, path, key)
        written.append(self.integrator.step)
        if len(written) == n:
            raise _Killed

    monkeypatch.setattr(MadnisIntegrator, "_save_checkpoint", save_then_die)


@pytest.mark.parametrize("extra", [{"replay_factor": 3, "buffer_batches": 4, "history_every": 4},
                                   {"cwnet": False, "channel_dropping_threshold": 0.5,
                                    "channel_dropping_interval": 4,
                                    "vegas_init": {"iterations": 2, "bins": 8, "samples_per_channel": 500}}],
                         ids=["buffered", "vegas-init-dropping"])
def test_madnis_killed_training_resumes_to_the_uninterrupted_state(tmp_path, monkeypatch, extra):
    integrand = gauss2d()
    cfg = {**TINY_MADNIS, "batch_size": 256, "epochs": 4, "batches_per_epoch": 4, **extra}
    whole = MadnisIntegrator(integrand, cfg, seed=7)
    whole.train(progress=False, checkpoint=tmp_path / "whole.ckpt")
    plain = MadnisIntegrator(integrand, cfg, seed=7)
    plain.train(progress=False)  # checkpointing itself changes nothing
    assert plain.loss_history == whole.loss_history and plain.n_calls_train == whole.n_calls_train

    with monkeypatch.context() as m:
        _kill_after_checkpoint(m, 2)
        killed = MadnisIntegrator(integrand, cfg, seed=7)
        with pytest.raises(_Killed):
            killed.train(progress=False, checkpoint=tmp_path / "run.ckpt")
    assert killed.integrator.step == 8
    rerun = MadnisIntegrator(integrand, cfg, seed=7)
    rerun.train(progress=False, checkpoint=tmp_path / "run.ckpt")

    assert rerun.integrator.step == whole.integrator.step == 16
    assert rerun.loss_history == whole.loss_history
    assert [s for s, _ in rerun.loss_history] == list(range(1, 17))
    assert rerun.variance_history == whole.variance_history
    assert rerun.n_calls_train == whole.n_calls_train and rerun.n_calls_monitor == whole.n_calls_monitor
    assert torch.equal(rerun.integrator.active_channels_mask, whole.integrator.active_channels_mask)
    for (name, a), (_, b) in zip(whole.integrator.state_dict().items(), rerun.integrator.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=name)  # NaN: channel not seen
    a, b = whole.sample_weighted(2000, seed=3), rerun.sample_weighted(2000, seed=3)
    assert torch.equal(a.weights, b.weights) and a.channel_counts == b.channel_counts


def test_madnis_checkpoint_of_another_training_is_not_resumed(tmp_path, monkeypatch):
    integrand = gauss2d()
    cfg = {**TINY_MADNIS, "batch_size": 256, "epochs": 3, "batches_per_epoch": 2}
    with monkeypatch.context() as m:
        _kill_after_checkpoint(m, 1)
        with pytest.raises(_Killed):
            MadnisIntegrator(integrand, cfg, seed=7).train(progress=False, checkpoint=tmp_path / "run.ckpt")
    for changed, seed in (({**cfg, "lr": 1e-3}, 7), (cfg, 8)):  # another learning rate, then another seed
        rerun = MadnisIntegrator(integrand, changed, seed=seed)
        rerun.train(progress=False, checkpoint=tmp_path / "run.ckpt")
        fresh = MadnisIntegrator(integrand, changed, seed=seed)
        fresh.train(progress=False)
        assert rerun.loss_history == fresh.loss_history  # started over, as without a checkpoint
        assert [s for s, _ in rerun.loss_history] == list(range(1, 7))
    # the overwritten checkpoint now belongs to the last training (seed 8), which a rerun resumes at its end
    resumed = MadnisIntegrator(integrand, cfg, seed=8)
    resumed.train(progress=False, checkpoint=tmp_path / "run.ckpt")
    assert resumed.loss_history == rerun.loss_history and resumed.integrator.step == 6


# --------------------------------------------------------------------------- LHE output

def _drell_yan_events(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(0.01, 0.1, n), rng.uniform(0.01, 0.1, n)
    e_beam = 6500.0
    p = np.zeros((n, 4, 4))
    p[:, 0] = np.stack([x1 * e_beam, 0 * x1, 0 * x1, x1 * e_beam], 1)
    p[:, 1] = np.stack([x2 * e_beam, 0 * x2, 0 * x2, -x2 * e_beam], 1)
    # massless leptons back to back in the partonic frame, then boosted along z
    shat = 4 * x1 * x2 * e_beam**2
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    sin = np.sqrt(1 - cos**2)
    k = np.sqrt(shat) / 2
    beta = (x1 - x2) / (x1 + x2)
    gamma = 1 / np.sqrt(1 - beta**2)
    for sign, j in ((1, 2), (-1, 3)):
        px, py, pz = sign * k * sin * np.cos(phi), sign * k * sin * np.sin(phi), sign * k * cos
        p[:, j] = np.stack([gamma * (k + beta * pz), px, py, gamma * (pz + beta * k)], 1)
    return p


@pytest.mark.parametrize("name", ["events.lhe", "events.lhe.gz"])
def test_lhe_round_trip(tmp_path, name):
    from lhcflow.generation.pythia import count_lhe_events, read_lhe_header

    n = 25
    p = _drell_yan_events(n)
    path = tmp_path / name
    write_lhe(path, p, [2, -2, 11, -11], [-1, -1, 1, 1], cross_section=4349.7, cross_section_error=0.32,
              pdf=load_pythia_pdf(), integrator="madnis", process="p p > e+ e-", chunk_size=7)
    assert sorted(f.name for f in tmp_path.iterdir()) == [name]  # temp file renamed away
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            assert fh.readline().startswith('<LesHouchesEvents version="3.0">')
    assert count_lhe_events(path) == n
    reader = getattr(pylhe, "LHEFile", None)
    if hasattr(pylhe, "read_num_events"):
        assert pylhe.read_num_events(str(path)) == n
    else:
        assert reader.count_events(path) == n
    lhe = reader.fromfile(path)
    assert lhe.init.procInfo[0].xSection == pytest.approx(4349.7)
    assert lhe.init.procInfo[0].error == pytest.approx(0.32)
    assert (lhe.init.initInfo.beamA, lhe.init.initInfo.energyA) == (2212, 6500.0)
    events = list(lhe.events)
    assert len(events) == n
    for i, ev in enumerate(events):
        assert ev.eventinfo.weight == pytest.approx(4349.7 / n)
        assert ev.eventinfo.scale == pytest.approx(91.188)
        assert [q.id for q in ev.particles] == [2, -2, 11, -11]
        assert [q.status for q in ev.particles] == [-1, -1, 1, 1]
        assert (ev.particles[0].color1, ev.particles[0].color2) == (501, 0)
        assert (ev.particles[1].color1, ev.particles[1].color2) == (0, 501)
        assert all(q.spin == 9 for q in ev.particles)
        got = np.array([[q.e, q.px, q.py, q.pz] for q in ev.particles])
        np.testing.assert_allclose(got, p[i], rtol=1e-9, atol=1e-9)
    header = read_lhe_header(path)
    assert header.beam_ids == (2212, 2212) and header.weight_strategy == 3
    assert header.proc_lines == ["generate p p > e+ e-"]


def test_lhe_failure_leaves_no_file(tmp_path):
    p = _drell_yan_events(3)
    with pytest.raises(ValueError, match="colour"):
        write_lhe(tmp_path / "bad.lhe", p, [21, 21, 11, -11], [-1, -1, 1, 1], cross_section=1.0,
                  pdf=load_pythia_pdf(), integrator="madnis")
    assert list(Path(tmp_path).iterdir()) == []


def test_finite_step_adam_skips_a_step_with_a_non_finite_gradient_and_otherwise_is_adam():
    """madnis skips NaN losses only; an infinite gradient must leave the weights as they were (else the
    flow's weights turn NaN for good), and a finite one must give torch's Adam step exactly."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    ours, reference = FiniteStepAdam([a], lr=1e-2), torch.optim.Adam([b], lr=1e-2)
    for step in range(4):
        grad = torch.randn(5, dtype=torch.float64)
        a.grad, b.grad = grad.clone(), grad.clone()
        if step == 2:
            a.grad[3] = float("inf")
            before = a.detach().clone()
            ours.step()
            assert torch.equal(a.detach(), before) and ours.skipped == 1
            continue
        ours.step()
        reference.step()
        assert torch.equal(a.detach(), b.detach())
    assert torch.isfinite(a).all()


def test_madnis_trains_with_the_finite_step_optimizer():
    from lhcflow.nis.toys import camel_integrand

    integ = MadnisIntegrator(camel_integrand(prior="uniform"), {"preset": "table_a3", "epochs": 1,
                                                                "batches_per_epoch": 2, "batch_size": 64})
    assert isinstance(integ.integrator.optimizer, FiniteStepAdam)
    integ.integrator.optimizer.skipped = 3  # as after three skipped steps
    resumed = MadnisIntegrator(camel_integrand(prior="uniform"), integ.config)
    resumed._restore(integ.state())
    assert resumed.integrator.optimizer.skipped == 3  # a resumed training reports the skips of all of it
