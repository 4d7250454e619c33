"""Normalisation of the magic-transformation weights (thesis §4.2.1, Eq 4.7-4.9) with a perfect
generator: events drawn exactly from the density ``p_f ∝ w f p`` that the f-weighted loss of Eq 4.8
teaches, so that any deviation of the weighted multiplicity fractions from the truth ones is the
weights' fault. Weight sums are compared, never event counts (except after unweighting, where the
events carry unit weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_zjets_data import synthetic_zjets

from lhcflow.data.events import EventBatch, ObjectType, SampleInfo, read_events, read_info, write_events
from lhcflow.physics.kinematics import wrap_angle
from lhcflow.zjets import magic
from lhcflow.zjets.chain import (
    GeneratorChain,
    MagicSettings,
    ModelSettings,
    chain_data,
    fraction_errors,
    load_chain,
    load_mean_f,
)
from lhcflow.zjets.checks import default_checks
from lhcflow.zjets.preprocessing import MAX_JETS, ZJETS_SLOTS, ZJetsPreprocessing, n_dims
from lhcflow.zjets.stages import PreprocessSettings, preprocess_stage

MAGIC = {"enabled": True, "r_minus": 0.2, "r_plus": 1.5, "r_min": 0.4}
# |pull| bound: with the fractions' statistical error σ, a correct weighting exceeds 4σ in one of
# the three multiplicities with probability < 2e-4; the uncorrected f̄ weights miss by > 10σ here.
PULL = 4.0


def collinear_truth(n: int, seed: int) -> EventBatch:
    """Z+jets events whose j2 (j3) sits close to j1 (j2) in 60 % of the events, ΔR = 0.4 +
    Γ(2, 0.15), so that the magic transformation matters (⟨f⟩_2 ≈ 0.6, ⟨f⟩_3 ≈ 0.35); event
    weights uniform in [0.5, 1.5]; the jet separation cut ΔR_jj > R_min = 0.4 of the data applied."""
    rng = np.random.default_rng([seed, 99])  # not the stream of synthetic_zjets(seed)
    b = synthetic_zjets(n, seed)
    for ref, slot in ((2, 3), (3, 4)):
        near = (b.type[:, slot] == ObjectType.JET) & (rng.random(n) < 0.6)
        dr, angle = 0.4 + rng.gamma(2.0, 0.15, n), rng.uniform(0, 2 * np.pi, n)
        b.eta[near, slot] = b.eta[near, ref] + dr[near] * np.cos(angle[near])
        b.phi[near, slot] = wrap_angle(b.phi[near, ref] + dr[near] * np.sin(angle[near]))
    separated = np.ones(n, dtype=bool)
    for dr, mask in magic.jet_pair_delta_r(b):
        separated &= ~(mask & (dr < 0.4))
    return b.select(separated)


def truth_fractions(batch: EventBatch) -> np.ndarray:
    """Weighted fractions of 1, 2, 3 jets, counted directly."""
    n = batch.multiplicity(ObjectType.JET)
    return np.array([batch.weight[n == k].sum() for k in range(1, MAX_JETS + 1)]) / batch.weight.sum()


def p_f_sampler(truth: EventBatch, distortion: np.ndarray | None = None):
    """A perfect generator: ``draw(n_events, rng)`` takes multiplicities with the weighted truth
    fractions (as the chain draws them), then events resampled within each multiplicity with
    probability ∝ w f, the training density p_f of Eq 4.8; unit weights. ``distortion`` (one factor
    per truth event) turns it into an imperfect generator that samples ∝ w f · distortion."""
    jets = truth.multiplicity(ObjectType.JET)
    members = [np.flatnonzero(jets == n) for n in range(1, MAX_JETS + 1)]
    p = truth.weight * magic.training_weights(truth) * (1.0 if distortion is None else distortion)
    probs = [p[m] / p[m].sum() for m in members]
    fractions = truth_fractions(truth)

    def draw(n_events: int, rng: np.random.Generator) -> EventBatch:
        counts = rng.multinomial(n_events, fractions)
        idx = np.concatenate([rng.choice(m, k, p=q) for m, k, q in zip(members, counts, probs)])
        out = truth.select(idx)
        out.weight[:] = 1.0
        return out

    return draw


def draw_p_f(truth: EventBatch, n_events: int, rng: np.random.Generator) -> EventBatch:
    return p_f_sampler(truth)(n_events, rng)


def weighted_pulls(generated: EventBatch, truth: EventBatch) -> np.ndarray:
    """(F_gen − F_truth)/σ_gen of the weighted fractions. The perfect generator samples the truth
    set itself, so its expected fractions are exactly the truth ones and only σ_gen counts."""
    parts = fraction_errors(generated)
    f_gen = np.array([parts[n][0] for n in range(1, MAX_JETS + 1)])
    sigma = np.array([parts[n][1] for n in range(1, MAX_JETS + 1)])
    return (f_gen - truth_fractions(truth)) / sigma


@pytest.fixture(scope="module")
def truth() -> EventBatch:
    return collinear_truth(60_000, seed=0)


def test_perfect_generator_weighted_fractions_are_truth(truth):
    mean_f = magic.mean_training_weight(truth)
    generated = draw_p_f(truth, 40_000, np.random.default_rng(1))
    fbar = magic.inverse_weights(generated)
    generated.weight[:] = magic.generated_weights(generated, mean_f)
    jets = generated.multiplicity(ObjectType.JET)
    for n in (2, 3):
        w = generated.weight[jets == n]
        # E[⟨f⟩_n f̄] = 1 under p_f; σ of the mean = std/√N_n
        print(f"{n} jets: ⟨f⟩ = {mean_f[n]:.4f}, mean f̄ = {fbar[jets == n].mean():.4f} (1/⟨f⟩ = "
              f"{1 / mean_f[n]:.4f}), mean f̄·⟨f⟩ = {w.mean():.4f} ± {w.std() / np.sqrt(len(w)):.4f}")
        assert abs(w.mean() - 1) < PULL * w.std() / np.sqrt(len(w))
    pulls = weighted_pulls(generated, truth)
    old = generated.select(np.arange(len(generated)))
    old.weight[:] = fbar
    old_pulls = weighted_pulls(old, truth)
    print(f"truth fractions {truth_fractions(truth).round(4)}, pulls {pulls.round(2)}, "
          f"f̄ alone {old_pulls.round(1)}")
    assert np.all(np.abs(pulls) < PULL)
    assert np.any(np.abs(old_pulls) > 10 * PULL)  # the test is sensitive to the defect


def test_fraction_error_matches_replica_spread(truth):
    """The σ of the weighted fractions (linearised ratio) against the spread of 200 independent
    perfect-generator samples: their std has a relative error 1/√(2·199) = 5 %, so 20 % is 4σ."""
    mean_f = magic.mean_training_weight(truth)
    rng, draw = np.random.default_rng(2), p_f_sampler(truth)
    fractions, sigmas = [], []
    for _ in range(200):
        gen = draw(2000, rng)
        gen.weight[:] = magic.generated_weights(gen, mean_f)
        parts = fraction_errors(gen)
        fractions.append([parts[n][0] for n in (1, 2, 3)])
        sigmas.append([parts[n][1] for n in (1, 2, 3)])
    spread, predicted = np.std(fractions, axis=0, ddof=1), np.mean(sigmas, axis=0)
    print(f"replica spread {spread.round(5)}, predicted σ {predicted.round(5)}")
    np.testing.assert_allclose(predicted, spread, rtol=0.2)


class ResampledTruth(torch.nn.Module):
    """Stand-in for network ``net`` of the chain that samples p_f exactly: network 1 draws training
    events ∝ their training weight w·f within the multiplicity of its one-hot condition, networks
    2 and 3 return the next coordinates of those same events after checking that the chain
    conditioned them on the coordinates already generated."""

    def __init__(self, net: int, data, shared: dict):
        super().__init__()
        self.net, self.data, self.shared = net, data, shared

    def sample(self, c: torch.Tensor) -> torch.Tensor:
        c = c.double().numpy()
        lo, hi = (0, n_dims(1)) if self.net == 1 else (n_dims(self.net - 1), n_dims(self.net))
        if self.net == 1:
            n = int(np.argmax(c[0])) + 1
            assert np.all(c[:, n - 1] == 1)
            members = np.flatnonzero(self.data.n_jets == n)
            p = self.data.weight[members]
            self.shared["idx"] = self.shared["rng"].choice(members, len(c), p=p / p.sum())
        idx = self.shared["idx"]
        x = self.data.x[idx]
        np.testing.assert_allclose(c[:, :lo], x[:, :lo], rtol=1e-5, atol=1e-5)
        return torch.as_tensor(x[:, lo:hi])


def test_chain_sampling_path_with_exact_networks(truth):
    """GeneratorChain.sample with networks that sample p_f exactly: the closure ⟨⟨f⟩_n f̄⟩ of the
    weights before normalisation is 1 in every multiplicity, and the normalised weights give the
    chain's (here the truth) fractions."""
    pre = ZJetsPreprocessing().fit(truth)
    data = chain_data(truth, pre, MAGIC)  # preprocessed events with training weights w·f
    fractions = dict(zip((1, 2, 3), truth_fractions(truth)))
    mean_f = magic.mean_training_weight(truth, MAGIC["r_minus"], MAGIC["r_plus"])
    chain = GeneratorChain("inn", {"n_blocks": 1, "hidden": 4, "layers_per_block": 1, "bins": 4}, pre,
                           fractions, MAGIC, mean_f)
    shared = {"rng": np.random.default_rng(3)}
    chain.networks = {net: ResampledTruth(net, data, shared) for net in (1, 2, 3)}
    generated, closure = chain.sample_with_closure(40_000, np.random.default_rng(4))
    print("chain: closure " + ", ".join(f"{n}j {c.mean:.4f} ± {c.error:.4f}" for n, c in closure.items()))
    for c in closure.values():
        assert abs(c.mean - 1) < PULL * max(c.error, 1e-12)
    np.testing.assert_allclose(truth_fractions(generated), truth_fractions(truth), rtol=1e-12)


def test_streamed_sampling_normalises_and_unweights_like_the_whole_sample(truth, tmp_path):
    """GeneratorChain.sample_to_file, which writes blocks and normalises in a second pass over a
    scratch file, with the exact networks: the same events and weights as the in-memory path, weighted
    fractions equal to the chain's, closure 1; unweighted with one w_max the unit-weight event counts
    follow the truth fractions within their binomial errors, and no scratch file is left."""
    pre = ZJetsPreprocessing().fit(truth)
    data = chain_data(truth, pre, MAGIC)
    fractions = dict(zip((1, 2, 3), truth_fractions(truth)))
    chain = GeneratorChain("inn", {"n_blocks": 1, "hidden": 4, "layers_per_block": 1, "bins": 4}, pre,
                           fractions, MAGIC, magic.mean_training_weight(truth, MAGIC["r_minus"], MAGIC["r_plus"]))
    info = chain.sample_info(4, [])

    def exact_networks():
        shared = {"rng": np.random.default_rng(3)}
        chain.networks = {net: ResampledTruth(net, data, shared) for net in (1, 2, 3)}

    exact_networks()
    in_memory, closure = chain.sample_with_closure(30_000, np.random.default_rng(4), batch_size=7_000)
    exact_networks()
    path = tmp_path / "generated.h5"
    result = chain.sample_to_file(path, 30_000, np.random.default_rng(4), info, batch_size=7_000)
    streamed = read_events(path)
    assert result.n_written == len(streamed) == 30_000
    np.testing.assert_array_equal(streamed.pt, in_memory.pt)
    np.testing.assert_allclose(streamed.weight, in_memory.weight, rtol=1e-12)
    np.testing.assert_allclose(truth_fractions(streamed), truth_fractions(truth), rtol=1e-12)
    for n, c in result.closure.items():
        assert c.mean == pytest.approx(closure[n].mean, rel=1e-12)
        assert c.error == pytest.approx(closure[n].error, rel=1e-6)
        assert abs(c.mean - 1) < PULL * max(c.error, 1e-12)
    assert read_info(path).provenance["magic_closure"]["3"]["events"] == closure[3].events

    exact_networks()
    unweighted_path = tmp_path / "unweighted.h5"
    result = chain.sample_to_file(unweighted_path, 30_000, np.random.default_rng(4), info, batch_size=7_000,
                                  unweight_rng=np.random.default_rng(5))
    kept = read_events(unweighted_path)
    assert np.all(kept.weight == 1.0) and len(kept) == result.n_written < 30_000
    counts = np.array([np.sum(kept.multiplicity(ObjectType.JET) == n) for n in (1, 2, 3)])
    p = truth_fractions(truth)
    np.testing.assert_array_less(np.abs(counts / len(kept) - p), PULL * np.sqrt(p * (1 - p) / len(kept)))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["generated.h5", "unweighted.h5"]


def test_imperfect_generator_is_normalised_and_diagnosed(truth):
    """A generator that draws the collinear events (some ΔR_jj < 1) 2.5 times as often as p_f, like
    the validation run's INN and BINN in the 3-jet ΔR: with the ⟨f⟩_n f̄ weights alone its 3-jet
    weighted fraction is many σ off the truth (there: +12 %); normalised per multiplicity the weighted
    fractions are the chain's to rounding, and the closure ⟨⟨f⟩_n f̄⟩ equals its closed form
    ⟨f⟩_n Σ w d / Σ w f d (d the distortion) within its error."""
    dr_small = np.zeros(len(truth), dtype=bool)
    for dr, mask in magic.jet_pair_delta_r(truth):
        dr_small |= mask & (dr < 1.0)
    distortion = np.where(dr_small, 2.5, 1.0)
    generated = p_f_sampler(truth, distortion)(100_000, np.random.default_rng(11))
    mean_f = magic.mean_training_weight(truth)
    raw = magic.generated_weights(generated, mean_f)
    jets = generated.multiplicity(ObjectType.JET)
    generated.weight[:] = raw
    raw_pulls = weighted_pulls(generated, truth)
    fractions = dict(zip((1, 2, 3), truth_fractions(truth)))
    generated.weight[:], closure = magic.normalise_multiplicities(raw, jets, fractions)
    np.testing.assert_allclose(truth_fractions(generated), truth_fractions(truth), rtol=1e-12)

    truth_jets, f = truth.multiplicity(ObjectType.JET), magic.training_weights(truth)
    for n in (2, 3):
        m = truth_jets == n
        expected = mean_f[n] * np.sum(truth.weight[m] * distortion[m]) / np.sum(truth.weight[m] * f[m] * distortion[m])
        c = closure[n]
        print(f"{n} jets: closure {c.mean:.4f} ± {c.error:.4f}, closed form {expected:.4f}; "
              f"raw weighted-fraction pull {raw_pulls[n - 1]:.1f}")
        assert c.events == int((jets == n).sum())
        assert abs(c.mean - expected) < PULL * c.error
        assert expected - 1 > 2 * PULL * c.error  # the distortion is visible in the closure
    assert abs(raw_pulls[2]) > 2 * PULL          # and would have shifted the 3-jet fraction
    assert closure[1].mean == pytest.approx(1.0)  # one jet: f = 1, nothing to correct


def test_normalisation_refuses_an_empty_multiplicity():
    with pytest.raises(ValueError, match="3-jet event has weight 0.*retrain"):
        magic.normalise_multiplicities(np.array([1.0, 0.0, 0.0]), np.array([1, 3, 3]), {1: 0.5, 2: 0.3, 3: 0.2})
    with pytest.raises(ValueError, match="4-jet events.*no fraction"):
        magic.normalise_multiplicities(np.array([1.0, 1.0]), np.array([1, 4]), {1: 0.5, 2: 0.3, 3: 0.2})


def test_unweighting_keeps_the_multiplicity_fractions(truth):
    """Rejection with one w_max over all multiplicities gives unit-weight events distributed as
    the truth: the n-jet counts are multinomial with the truth fractions, σ = √(F(1−F)/N_kept)."""
    generated = draw_p_f(truth, 200_000, np.random.default_rng(5))
    generated.weight[:] = magic.generated_weights(generated, magic.mean_training_weight(truth))
    keep = magic.unweight(generated.weight, rng=6)
    kept = generated.multiplicity(ObjectType.JET)[keep]
    f = truth_fractions(truth)
    counted = np.array([(kept == n).mean() for n in (1, 2, 3)])
    pulls = (counted - f) / np.sqrt(f * (1 - f) / keep.sum())
    print(f"unweighted: {keep.sum()} of {len(keep)} kept, fractions {counted.round(4)} "
          f"vs truth {f.round(4)}, pulls {pulls.round(2)}")
    assert np.all(np.abs(pulls) < PULL)


def test_default_checks_test_weighted_fractions(truth):
    """The metrics check passes the perfect generator with normalised weights and fails it with
    the f̄ weights alone; truth and training samples are independent draws."""
    test = collinear_truth(30_000, seed=1)
    generated = draw_p_f(truth, 30_000, np.random.default_rng(7))
    fbar = magic.inverse_weights(generated)
    generated.weight[:] = magic.generated_weights(generated, magic.mean_training_weight(truth))
    history = [{"train_loss": [2.0, 1.0]}]
    good = default_checks(generated, test, history, truth)
    generated.weight[:] = fbar
    bad = default_checks(generated, test, history, truth)
    print(f"pulls with ⟨f⟩_n: {good['multiplicity_pulls']}, f̄ alone: {bad['multiplicity_pulls']}")
    assert good["multiplicities_within_4sigma"] and not bad["multiplicities_within_4sigma"]
    assert good["weight_below_rmin"] == 0.0


def test_old_files_are_refused(tmp_path, truth):
    """Preprocessing or chain metadata without ⟨f⟩_n, or a generated file whose provenance lacks it,
    fail loudly instead of giving mis-normalised weights."""
    path = tmp_path / "train.h5"
    write_events(path, truth.select(slice(0, 3000)), SampleInfo(slots=list(ZJETS_SLOTS)))
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    preprocess_stage(PreprocessSettings(), train=path, out=old)
    state = preprocess_stage(PreprocessSettings.from_config({"magic": MAGIC}), train=path, out=new).state
    stored = load_mean_f(new, MAGIC)
    assert set(stored) == {1, 2, 3} and stored[1] == 1.0 and 0 < stored[3] < stored[2] < 1
    assert load_mean_f(old, {"enabled": False}) is None
    with pytest.raises(ValueError, match=r"old\.json.*magic\.mean_f.*zjets_preprocess"):
        load_mean_f(old, MAGIC)
    with pytest.raises(ValueError, match=r"fitted for \(R_-, R_\+\) = \(0\.2, 1\.5\)"):
        load_mean_f(new, {**MAGIC, "r_plus": 1.2})
    model = ModelSettings.from_config({"kind": "inn", "network": {"n_blocks": 1, "hidden": 4, "layers_per_block": 1,
                                                                  "bins": 4}})
    with pytest.raises(ValueError, match="magic.mean_f"):
        load_chain(model, MagicSettings.from_config(MAGIC), old, [])
    chain = load_chain(model, MagicSettings.from_config(MAGIC), new, [])
    meta = json.loads(json.dumps(chain.metadata()))
    assert GeneratorChain.from_metadata(meta).mean_f == chain.mean_f == stored
    del meta["magic_mean_f"]
    with pytest.raises(ValueError, match="magic_mean_f"):
        GeneratorChain.from_metadata(meta)
    assert state["magic"]["mean_f"] == stored
    info = chain.sample_info(0, [])
    with pytest.raises(ValueError, match=r"gen\.h5.*magic_closure.*zjets_sample"):
        magic.require_normalised_weights("gen.h5", json.loads(json.dumps(info.provenance)))
    info.provenance["magic_closure"] = {3: {"events": 1, "mean": 1.0, "error": 0.1}}
    magic.require_normalised_weights("gen.h5", json.loads(json.dumps(info.provenance)))
    info.provenance.pop("magic_mean_f")
    with pytest.raises(ValueError, match=r"gen\.h5.*magic_mean_f"):
        magic.require_normalised_weights("gen.h5", info.provenance)
    generated = tmp_path / "old_generated.h5"
    write_events(generated, read_events(path), info)
    from lhcflow.classifier.stages import TrainSettings, train_stage
    from lhcflow.zjets.stages import EvaluateSettings, evaluate_stage
    with pytest.raises(ValueError, match="old_generated.h5"):
        evaluate_stage(EvaluateSettings(), train=path, generated=generated, truth=path, histories=[],
                       out_dir=tmp_path / "plots", out_metrics=tmp_path / "m.json")
    with pytest.raises(ValueError, match="old_generated.h5"):
        train_stage(TrainSettings(dr_cutoff=0.2, seed=0), truth=path, generated=generated, out_model=tmp_path / "c.pt",
                    out_history=tmp_path / "h.json")
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "c.pt").exists()



def test_inclusive_ht_follows_the_weights(truth):
    """The inclusive H_T (all multiplicities in one histogram, Fig 4.4 lower right) of the perfect
    generator matches the truth density in every bin: χ² with the generated sample's binomial-like
    error σ_b² = Σ w²(δ_b − F_b)²/S² (the truth set is the fixed reference it resamples); the 4σ
    bound on χ² is ndf + 4√(2 ndf). With f̄ alone the multiplicity mix, and so H_T, is wrong."""
    from lhcflow.physics.metrics import zjets_benchmark_observables

    ht = next(o for o in zjets_benchmark_observables() if o.name == "ht")
    edges = np.linspace(20.0, 300.0, 29)

    def density(batch):
        values, mask = ht(batch)
        b = np.digitize(np.asarray(values)[mask], edges) - 1
        w = batch.weight[mask]
        inside = (b >= 0) & (b < len(edges) - 1)
        onehot = np.eye(len(edges) - 1)[b[inside]]
        frac = (w[inside, None] * onehot).sum(0) / w.sum()
        var = ((w[inside, None] ** 2) * (onehot - frac) ** 2).sum(0) / w.sum() ** 2
        return frac, var

    generated = draw_p_f(truth, 40_000, np.random.default_rng(8))
    fbar = magic.inverse_weights(generated)
    ref, _ = density(truth)
    chi2 = {}
    for name, w in (("normalised", magic.generated_weights(generated, magic.mean_training_weight(truth))),
                    ("fbar", fbar)):
        generated.weight[:] = w
        frac, var = density(generated)
        chi2[name] = float(np.sum((frac - ref) ** 2 / var))
    ndf = len(edges) - 1
    bound = ndf + 4 * np.sqrt(2 * ndf)
    print(f"H_T χ² over {ndf} bins: {chi2} (bound {bound:.1f})")
    assert chi2["normalised"] < bound < chi2["fbar"]
