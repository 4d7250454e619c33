"""Z+jets preprocessing (Eq 4.3-4.6), magic transformation (Eq 4.7-4.9), precision metrics
and generator plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lhcflow.data.events import EventBatch, ObjectType, read_events
from lhcflow.data.layouts import MUON_MASS_GEV
from lhcflow.physics.kinematics import wrap_angle
from lhcflow.physics.metrics import (
    batch_histograms,
    bulk_deviation,
    deviation_table,
    relative_deviation_percent,
    zjets_benchmark_observables,
)
from lhcflow.physics.observables import control_observables, exclusive_jets
from lhcflow.plots.generator import plot_benchmark, plot_delta_eta_phi, plot_truth_generated, replica_band
from lhcflow.zjets import (
    ZJETS_SLOTS,
    ZJetsPreprocessing,
    by_multiplicity,
    inverse_smoothing_weight,
    inverse_weights,
    n_dims,
    smoothing_weight,
    training_weights,
    unweight,
    unweighting_efficiency,
)
from lhcflow.zjets.preprocessing import feature_names

REAL_TRAIN = Path(__file__).resolve().parents[1] / "results" / "default" / "data" / "zjets_pythia" / "train.h5"


def synthetic_zjets(n: int = 3000, seed: int = 0) -> EventBatch:
    """Z+{1,2,3} jet events with plausible kinematics and non-uniform weights."""
    rng = np.random.default_rng(seed)
    b = EventBatch.empty(n, len(ZJETS_SLOTS))
    n_jets = rng.choice([1, 2, 3], size=n, p=[0.6, 0.25, 0.15])
    b.type[:, :2] = ObjectType.MUON
    mu_pt = np.sort(5.0 + rng.exponential(30.0, size=(n, 2)), axis=1)[:, ::-1]
    b.pt[:, :2] = mu_pt
    b.eta[:, :2] = rng.normal(0, 2, size=(n, 2))
    phi1 = rng.uniform(-np.pi, np.pi, n)
    b.phi[:, 0] = phi1
    b.phi[:, 1] = wrap_angle(phi1 + np.pi + rng.normal(0, 0.5, n))
    b.mass[:, :2] = 0.10566
    sign = rng.choice([-1, 1], size=n)
    b.charge[:, 0], b.charge[:, 1] = sign, -sign
    jet_pt = np.sort(20.0 + rng.exponential(25.0, size=(n, 3)), axis=1)[:, ::-1]
    for k in range(3):
        has = n_jets > k
        slot = 2 + k
        b.type[has, slot] = ObjectType.JET
        b.pt[has, slot] = jet_pt[has, k]
        b.eta[has, slot] = rng.normal(0, 2, has.sum())
        b.phi[has, slot] = rng.uniform(-np.pi, np.pi, has.sum())
        b.mass[has, slot] = np.exp(rng.normal(1.8, 0.4, has.sum()))
    b.mass[0, 2] = 0.0  # a massless jet
    b.n_jets_all[:] = n_jets
    b.n_jets_all[n_jets == 3] += rng.integers(0, 3, (n_jets == 3).sum()).astype(np.int16)
    b.weight[:] = rng.uniform(0.5, 1.5, n)
    return b


@pytest.fixture(scope="module")
def batch() -> EventBatch:
    return synthetic_zjets()


def samples() -> list[EventBatch]:
    out = [synthetic_zjets()]
    if REAL_TRAIN.is_file():
        out.append(read_events(REAL_TRAIN))
    return out


# ------------------------------------------------------------------ preprocessing
def test_dimensions():
    assert [n_dims(n) for n in (1, 2, 3)] == [9, 13, 17]
    assert [len(feature_names(n)) for n in (1, 2, 3)] == [9, 13, 17]
    with pytest.raises(ValueError):
        n_dims(0)


def test_by_multiplicity(batch):
    split = by_multiplicity(batch)
    assert sorted(split) == [1, 2, 3]
    assert sum(len(s) for s in split.values()) == len(batch)
    for n, sub in split.items():
        assert np.all(sub.multiplicity(ObjectType.JET) == n)
    assert np.any(split[3].n_jets_all > 3)


@pytest.mark.parametrize("sample", range(len(samples())))
def test_round_trips(sample):
    b = samples()[sample]
    pre = ZJetsPreprocessing().fit(b)
    rng = np.random.default_rng(1)
    for n, sub in by_multiplicity(b).items():
        x = pre.forward(sub, n)
        assert x.shape == (len(sub), n_dims(n)) and np.all(np.isfinite(x))
        # forward -> inverse -> forward, with the leading-muon phi restored
        back = pre.inverse(x, n, phi_lead=sub.phi[:, 0])
        np.testing.assert_allclose(pre.forward(back, n), x, atol=1e-5)
        # with a random global rotation: float32 storage of phi limits arctanh(dphi/pi)
        # near |dphi| = pi, so the dphi columns are compared as pi*tanh (i.e. dphi)
        gen = pre.inverse(x, n, rng=rng)
        x2 = pre.forward(gen, n)
        is_dphi = np.array([name.endswith("_dphi") for name in feature_names(n)])
        np.testing.assert_allclose(x2[:, ~is_dphi], x[:, ~is_dphi], atol=1e-5)
        std = np.array([pre.std[k] for k in feature_names(n)])[is_dphi]
        mean = np.array([pre.mean[k] for k in feature_names(n)])[is_dphi]
        np.testing.assert_allclose(np.pi * np.tanh(x2[:, is_dphi] * std + mean),
                                   np.pi * np.tanh(x[:, is_dphi] * std + mean), atol=1e-5)
        # event -> forward -> inverse -> event
        for field in ("pt", "eta", "mass"):
            np.testing.assert_allclose(getattr(back, field), getattr(sub, field), rtol=1e-4, atol=1e-5)
        dphi = wrap_angle(back.phi.astype(np.float64) - sub.phi)
        assert np.abs(dphi).max() < 1e-4
        # with a resampled rotation, the phi differences to the leading muon survive
        rel_gen = wrap_angle(gen.phi[:, 1:].astype(np.float64) - gen.phi[:, :1])
        rel_sub = wrap_angle(sub.phi[:, 1:].astype(np.float64) - sub.phi[:, :1])
        present = sub.type[:, 1:] != ObjectType.NONE
        assert np.abs(wrap_angle(rel_gen - rel_sub))[present].max() < 1e-4
        np.testing.assert_array_equal(back.type, sub.type)


def test_standardisation_and_state(batch):
    pre = ZJetsPreprocessing().fit(batch)
    cols: dict[str, list] = {}
    for n, sub in by_multiplicity(batch).items():
        x = pre.forward(sub, n)
        for i, name in enumerate(feature_names(n)):
            cols.setdefault(name, []).append((x[:, i], sub.weight))
    for name, parts in cols.items():
        x = np.concatenate([p[0] for p in parts])
        w = np.concatenate([p[1] for p in parts])
        mean = np.average(x, weights=w)
        assert abs(mean) < 1e-9, name
        assert abs(np.sqrt(np.average((x - mean) ** 2, weights=w)) - 1) < 1e-9, name
    state = json.loads(json.dumps(pre.state_dict()))
    pre2 = ZJetsPreprocessing.from_state(state)
    sub = by_multiplicity(batch)[2]
    np.testing.assert_array_equal(pre2.forward(sub, 2), pre.forward(sub, 2))
    assert 0.3 < pre.p_mu1_positive < 0.7


def test_prefix_consistency(batch):
    """The first 5+4k columns do not depend on the later jets (shared statistics)."""
    pre = ZJetsPreprocessing().fit(batch)
    three = by_multiplicity(batch)[3]
    one = three.select(np.arange(len(three)))  # integer index: a copy
    one.type[:, 3:] = ObjectType.NONE
    np.testing.assert_allclose(pre.forward(one, 1), pre.forward(three, 3)[:, :9])


def test_generated_events_valid(batch):
    pre = ZJetsPreprocessing().fit(batch)
    x = np.random.default_rng(2).normal(size=(500, 17)) * 1.5
    gen = pre.inverse(x, 3, rng=3)
    assert np.all(gen.pt[:, 2:] > 20.0) and np.all(gen.pt[:, :2] > 0)
    assert np.all(gen.mass[:, 2:] >= 0) and np.all(gen.mass[:, :2] == np.float32(MUON_MASS_GEV))
    assert np.all((gen.phi > -np.pi - 1e-6) & (gen.phi <= np.pi + 1e-6))
    assert np.all(gen.charge[:, 0] == -gen.charge[:, 1]) and set(np.unique(gen.charge[:, 0])) == {-1, 1}
    assert np.all(gen.weight == 1) and np.all(gen.n_jets_all == 3)
    assert np.all(gen.type[:, :2] == ObjectType.MUON) and np.all(gen.type[:, 2:] == ObjectType.JET)
    with pytest.raises(ValueError):
        pre.forward(by_multiplicity(batch)[2], 3)
    with pytest.raises(RuntimeError):
        ZJetsPreprocessing().forward(batch, 1)


# ----------------------------------------------------------------- magic (Eq 4.7-4.9)
def test_smoothing_weights():
    dr = np.linspace(0.0, 6.0, 6001)
    f, fbar = smoothing_weight(dr), inverse_smoothing_weight(dr, r_min=0.4)
    above = dr >= 0.4
    np.testing.assert_allclose((f * fbar)[above], 1.0, rtol=1e-12)
    assert np.all(fbar[~above] == 0)
    assert np.all(f[dr < 0.2] == 0) and np.all(f[dr > 1.5] == 1)
    np.testing.assert_allclose(smoothing_weight(np.array([0.85])), 0.5)


def _event(jets: list[tuple[float, float]]) -> EventBatch:
    b = EventBatch.empty(1, len(ZJETS_SLOTS))
    b.type[0, :2] = ObjectType.MUON
    b.pt[0, :2] = (50.0, 40.0)
    for k, (eta, phi) in enumerate(jets):
        b.type[0, 2 + k] = ObjectType.JET
        b.pt[0, 2 + k], b.eta[0, 2 + k], b.phi[0, 2 + k], b.mass[0, 2 + k] = 40.0 - k, eta, phi, 5.0
    return b


def test_event_weights():
    one = _event([(0.0, 0.0)])
    two = _event([(0.0, 0.0), (0.6, 0.0)])
    three = _event([(0.0, 0.0), (0.6, 0.0), (3.0, 0.0)])
    close = _event([(0.0, 0.0), (0.3, 0.0)])
    b = EventBatch.concatenate([one, two, three, close])
    f = smoothing_weight
    np.testing.assert_allclose(training_weights(b), [1.0, f(0.6), f(0.6) * f(2.4) * f(3.0), f(0.3)], rtol=1e-6)
    np.testing.assert_allclose(inverse_weights(b), [1.0, 1 / f(0.6), 1 / f(0.6), 0.0], rtol=1e-6)
    np.testing.assert_allclose((training_weights(b) * inverse_weights(b))[:3], 1.0, rtol=1e-6)


def test_magic_closure():
    """Draw ΔR from p; an ideal network learns p_f = p·f/⟨f⟩ and generates as many events as the
    truth (resampling ∝ f); the weights ⟨f⟩ f̄ reproduce p above R_min in shape and normalisation."""
    rng = np.random.default_rng(5)
    n = 600_000
    # collinear peak just above R_min on a broad back-to-back bulk
    dr = np.concatenate([0.4 + rng.gamma(2.0, 0.12, n // 3), rng.normal(3.0, 0.6, 2 * n // 3)])
    dr = dr[dr > 0.4]
    f = smoothing_weight(dr)
    mean_f = f.mean()
    learned = rng.choice(dr, len(dr), p=f / f.sum())  # ideal network: normalised density p·f/⟨f⟩
    # an ideal generator also populates 0.2 < ΔR < 0.4 (smooth interpolation); f̄ removes it
    spill = rng.uniform(0.2, 0.4, 2000)
    gen = np.concatenate([learned, spill])
    w = mean_f * inverse_smoothing_weight(gen)
    assert np.all(w[gen < 0.4] == 0)
    # normalisation: Σw estimates the number of truth events, σ = √N std(w) (spill: weight 0)
    print(f"⟨f⟩ = {mean_f:.4f}, Σw/N = {w.sum() / len(dr):.4f}, "
          f"mean f̄ = {w[gen >= 0.4].mean() / mean_f:.4f}")
    assert abs(w.sum() - len(dr)) < 4 * np.sqrt(len(gen)) * w.std()
    edges = np.linspace(0.4, 5.0, 47)
    h_truth, _ = np.histogram(dr, edges)
    h_gen, _ = np.histogram(gen, edges, weights=w)
    h_smooth, _ = np.histogram(learned, edges)
    assert bulk_deviation(h_gen, h_truth) < 0.03
    assert bulk_deviation(h_smooth, h_truth) > 0.1  # the smoothing really changed the shape


def test_unweight():
    rng = np.random.default_rng(6)
    w = rng.uniform(0, 4, 200_000)
    keep = unweight(w, rng=7)
    assert keep.dtype == bool and keep.shape == w.shape
    eff = unweighting_efficiency(w)
    assert abs(keep.mean() - eff) < 0.01 and abs(eff - 0.5) < 0.01
    # the unweighted sample follows the weighted distribution
    edges = np.linspace(0, 4, 9)
    assert bulk_deviation(np.histogram(w[keep], edges)[0], np.histogram(w, edges, weights=w)[0]) < 0.02
    assert not unweight(np.zeros(10)).any()
    with pytest.raises(ValueError):
        unweight(np.array([1.0, -1.0]))


# ----------------------------------------------------------------- metrics and plots
def test_bulk_deviation():
    ref = np.full(10, 100.0)
    assert bulk_deviation(ref, ref) == 0.0
    assert bulk_deviation(2 * ref, ref) == pytest.approx(0.0)
    a = ref.copy()
    a[0] *= 1.1
    assert bulk_deviation(a, ref) == pytest.approx(18 / 1010)
    # bins below 1 % of the reference are ignored
    ref2 = np.append(ref, 1.0)
    a2 = np.append(ref, 5.0)
    assert bulk_deviation(a2, ref2) == pytest.approx(4 / 1005)
    np.testing.assert_allclose(relative_deviation_percent(a, ref)[1:], 100 * 10 / 1010)


def test_exclusive_and_table(batch):
    obs = {o.name: o for o in control_observables(ZJETS_SLOTS)}
    ex = exclusive_jets(obs["j1_pt"], 2)
    assert ex.name == "j1_pt_2j"
    _, mask = ex(batch)
    assert np.array_equal(mask, batch.multiplicity(ObjectType.JET) == 2)
    other = synthetic_zjets(3000, seed=11)
    # "generated": the truth events with the 2-jet weights doubled, a wrong multiplicity
    # normalisation: invisible in the unit-area exclusive distributions, visible in inclusive H_T
    generated = batch.select(np.arange(len(batch)))
    generated.weight[batch.multiplicity(ObjectType.JET) == 2] *= 2
    table = deviation_table(other, generated, batch)
    assert set(table) == {o.name for o in zjets_benchmark_observables()}
    for name, row in table.items():
        assert 0 < row["train"] < 1, name
        if name != "ht":
            assert row["generated"] == pytest.approx(0.0, abs=1e-12), name
    print(f"H_T bulk deviation with doubled 2-jet weights: {table['ht']['generated']:.3f}")
    assert table["ht"]["generated"] > 0.05


def test_plots(batch, tmp_path):
    obs = zjets_benchmark_observables()[0]
    train = synthetic_zjets(2000, seed=12)
    h = [batch_histograms(b, [obs])[obs.name] for b in (train, batch, synthetic_zjets(2000, seed=13))]
    replicas = [batch_histograms(synthetic_zjets(800, seed=s), [obs])[obs.name] for s in range(20, 24)]
    band = replica_band(replicas)
    path = tmp_path / "fig44.png"
    plot_truth_generated(h[0], h[1], h[2], obs, path, band=band)
    assert path.stat().st_size > 0
    written = plot_benchmark(train, batch, synthetic_zjets(2000, seed=14), tmp_path / "bench", fmt="pdf")
    assert written and all(p.stat().st_size > 0 for p in written)
    path2 = tmp_path / "fig42.png"
    plot_delta_eta_phi(batch, train, path2)
    assert path2.stat().st_size > 0
