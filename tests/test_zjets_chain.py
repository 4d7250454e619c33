"""The Z+jets generator chain as stages: dimensions, training, sampling and evaluation."""

import json

import numpy as np
import pytest
from test_zjets_data import synthetic_zjets

from lhcflow.data.events import ObjectType, SampleInfo, read_events, write_events
from lhcflow.zjets import magic
from lhcflow.zjets.chain import chain_data, network_dims, network_inputs
from lhcflow.zjets.preprocessing import ZJETS_SLOTS, ZJetsPreprocessing, by_multiplicity, n_dims
from lhcflow.zjets.stages import (
    EvaluateSettings,
    PreprocessSettings,
    SampleSettings,
    TrainSettings,
    evaluate_stage,
    preprocess_stage,
    sample_stage,
    train_stage,
)

MAGIC = {"enabled": True, "r_minus": 0.2, "r_plus": 1.5, "r_min": 0.4}
TINY = {
    "inn": {"kind": "inn", "network": {"n_blocks": 2, "hidden": 16, "layers_per_block": 2, "bins": 6},
            "training": {"epochs": 2, "batch_size": 128}},
    "cfm": {"kind": "cfm", "network": {"hidden": 16, "layers": 2, "steps": 4},
            "training": {"epochs": 2, "batch_size": 128}},
}


def test_network_dimensions_chain_up():
    assert [network_dims(k) for k in (1, 2, 3)] == [(9, 3), (4, 11), (4, 13)]
    x = np.arange(3 * n_dims(3), dtype=float).reshape(3, -1)
    inputs, cond = network_inputs(x, np.array([2, 3, 3]), 2)
    np.testing.assert_array_equal(inputs, x[:, 9:13])
    np.testing.assert_array_equal(cond[:, :9], x[:, :9])
    np.testing.assert_array_equal(cond[:, 9:], [[1, 0], [0, 1], [0, 1]])


def test_chain_data_applies_magic_weights():
    """Training weights = event weight × Eq 4.7 on every jet pair, with ΔR computed here from
    η and the wrapped Δφ and f written out: 0 below R₋ = 0.2, (ΔR − 0.2)/1.3 up to R₊ = 1.5, 1 above."""
    batch = synthetic_zjets(600)
    pre = ZJetsPreprocessing().fit(batch)
    data = chain_data(batch, pre, MAGIC)
    net2 = data.for_network(2)
    assert set(np.unique(net2.group)) == {2, 3} and net2.x.shape[1] == 4
    for n in (1, 2, 3):
        sub = by_multiplicity(batch)[n]
        expected = sub.weight.astype(np.float64)
        for a in range(n):
            for b in range(a + 1, n):
                dphi = np.angle(np.exp(1j * (sub.phi[:, 2 + a] - sub.phi[:, 2 + b]).astype(np.float64)))
                dr = np.hypot(sub.eta[:, 2 + a].astype(np.float64) - sub.eta[:, 2 + b], dphi)
                expected = expected * np.clip((dr - 0.2) / 1.3, 0.0, 1.0)
        np.testing.assert_allclose(data.weight[data.n_jets == n], expected, rtol=1e-5, atol=1e-12)
    plain = chain_data(batch, pre, {"enabled": False}).weight
    event_weights = np.concatenate([by_multiplicity(batch)[n].weight for n in (1, 2, 3)])
    np.testing.assert_array_equal(plain, event_weights)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("zjets")
    info = SampleInfo(slots=list(ZJETS_SLOTS))
    paths = {}
    for i, split in enumerate(("train", "val", "test")):
        paths[split] = root / f"{split}.h5"
        write_events(paths[split], synthetic_zjets(1500, seed=i), info)
    paths["pre"] = root / "pre.json"
    preprocess_stage(PreprocessSettings.from_config({"magic": MAGIC}), train=paths["train"], out=paths["pre"])
    return root, paths


def train_chain(model, paths, nets, histories, checkpoints, train_fraction=1.0):
    """Train the three networks of ``model`` into ``nets`` (seeds 1, 2, 3); their results."""
    return [train_stage(TrainSettings.from_config({"model": model, "magic": MAGIC, "net": net, "seed": net,
                                                   "train_fraction": train_fraction}),
                        train=paths["train"], val=paths["val"], preprocessing=paths["pre"], out_model=out,
                        out_history=history, checkpoint=checkpoint, progress=False)
            for net, out, history, checkpoint in zip((1, 2, 3), nets, histories, checkpoints)]


@pytest.mark.parametrize("name", ["inn", "cfm"])
def test_train_sample_evaluate(splits, name):
    root, paths = splits
    model = TINY[name]
    nets = [root / f"{name}_net{net}.pt" for net in (1, 2, 3)]
    histories = [root / f"{name}_history{net}.json" for net in (1, 2, 3)]
    for result in train_chain(model, paths, nets, histories, [root / "ckpt" / f"{name}{n}.ckpt" for n in (1, 2, 3)]):
        assert result.history["epoch"] == [1, 2] and np.isfinite(result.history["train_loss"]).all()
    generated = root / f"{name}_generated.h5"
    timing = sample_stage(SampleSettings.from_config({"model": model, "magic": MAGIC, "n_events": 3000, "seed": 11}),
                          preprocessing=paths["pre"], nets=nets, out_events=generated).summary
    events = read_events(generated)
    assert len(events) == timing["n_events"] == 3000
    # multiplicities follow the training fractions (multinomial draw: 4 sigma)
    fractions = json.loads(paths["pre"].read_text())["fractions"]
    for n, sub in by_multiplicity(events).items():
        p = fractions[str(n)]
        assert abs(len(sub) / 3000 - p) < 4 * np.sqrt(p * (1 - p) / 3000)
    # magic transformation: no event with a jet pair closer than R_min keeps a weight
    for dr, mask in magic.jet_pair_delta_r(events):
        assert np.all(events.weight[mask & (dr < 0.4)] == 0)
    metrics = evaluate_stage(EvaluateSettings(), train=paths["train"], generated=generated, truth=paths["test"],
                             histories=histories, out_dir=root / f"{name}_plots",
                             out_metrics=root / f"{name}_metrics.json").metrics
    assert "m_mu1mu2_1j" in metrics["bulk_deviation"]
    assert (root / f"{name}_plots" / "loss.png").stat().st_size > 0
    weights = metrics["multiplicity_weights"]["generated"]
    assert sum(weights[n]["weight"] for n in (1, 2, 3)) == pytest.approx(events.weight.sum())
    assert {n: weights[n]["mean_weight"] for n in (1, 2, 3)} == pytest.approx(timing["mean_weight"])
    assert set(metrics["checks"]["multiplicity_pulls"]) == {1, 2, 3}


def test_bayesian_bands_decomposition(splits, tmp_path):
    from lhcflow.zjets.stages import BandsSettings, bands_stage

    _, paths = splits
    model = {"kind": "binn", "network": {"n_blocks": 2, "hidden": 8, "layers_per_block": 2, "bins": 4,
                                         "init_log_sigma": -4.0}, "training": {"epochs": 1}}
    nets = [tmp_path / f"net{net}.pt" for net in (1, 2, 3)]
    train_chain(model, paths, nets, [tmp_path / f"h{n}.json" for n in (1, 2, 3)],
                [tmp_path / f"c{n}.ckpt" for n in (1, 2, 3)])
    settings = BandsSettings.from_config({"model": model, "magic": MAGIC, "n_replicas": 3, "n_events": 500, "seed": 5})
    result = bands_stage(settings, preprocessing=paths["pre"], nets=nets, train=paths["train"], truth=paths["test"],
                         out_dir=tmp_path / "bands", out_json=tmp_path / "bands.json")
    parts = result.observables["j1_pt_1j"]
    tot, stoch, pred = (np.array(parts[k]) for k in ("sigma_tot", "sigma_stoch", "sigma_pred"))
    assert np.all(pred <= tot + 1e-9)
    assert np.allclose(pred**2, np.clip(tot**2 - stoch**2, 0, None))
    assert tot.max() > 0  # replicas differ: the weight draws are not all identical
    assert (tmp_path / "bands" / "scaling_j1_pt_1j.png").exists()


def test_size_scan_trains_on_subsets(splits, tmp_path):
    from lhcflow.zjets.stages import SizeScanSettings, size_scan_stage

    _, paths = splits
    model = {"kind": "binn", "network": {"n_blocks": 2, "hidden": 8, "layers_per_block": 2, "bins": 4,
                                         "init_log_sigma": -4.0}, "training": {"epochs": 1}}
    nets, sizes = {}, {}
    for fraction in (0.3, 1.0):
        nets[fraction] = [tmp_path / f"f{fraction}_net{n}.pt" for n in (1, 2, 3)]
        results = train_chain(model, paths, nets[fraction], [tmp_path / f"f{fraction}_h{n}.json" for n in (1, 2, 3)],
                              [tmp_path / f"f{fraction}_{n}.ckpt" for n in (1, 2, 3)], train_fraction=fraction)
        sizes[fraction] = [r.n_train for r in results]
    assert all(0.2 < small / full < 0.4 for small, full in zip(sizes[0.3], sizes[1.0]))
    settings = SizeScanSettings.from_config({"model": model, "magic": MAGIC, "fractions": [0.3, 1.0], "n_replicas": 2,
                                             "n_events": 300, "seed": 3})
    result = size_scan_stage(settings, preprocessing=paths["pre"], nets=nets[0.3] + nets[1.0],
                             out_plot=tmp_path / "scan.png", out_json=tmp_path / "scan.json")
    assert set(result.observables["j1_pt_1j"]) == {"0.3", "1.0"} and (tmp_path / "scan.png").stat().st_size > 0


def null_auc_sigma(w_a: np.ndarray, w_b: np.ndarray) -> float:
    """Standard deviation of the AUC of a fixed score on two samples of one distribution
    (Mann-Whitney: √((n_a + n_b + 1)/(12 n_a n_b))), with Kish effective sizes (Σw)²/Σw²."""
    n_a, n_b = (w.sum() ** 2 / (w**2).sum() for w in (w_a, w_b))
    return float(np.sqrt((n_a + n_b + 1) / (12 * n_a * n_b)))


def test_classifier_stages_on_generated_events(tmp_path):
    """Truth against a perfect generator (events drawn from the training density p_f, see
    test_zjets_magic) whose file carries the normalised magic weights ⟨f⟩_n f̄: the held-out AUC
    is 0.5 within 4σ of its null spread; with f̄ alone the classifier sees the wrong multiplicity
    fractions. The reweighted file holds the held-out generated events with weights multiplied in."""
    from test_zjets_magic import collinear_truth, draw_p_f, truth_fractions

    from lhcflow.classifier.metric import held_out, holdout_mask
    from lhcflow.classifier.stages import (
        EvaluateSettings,
        ReweightSettings,
        TrainSettings,
        evaluate_stage,
        reweight_stage,
        train_stage,
    )
    from lhcflow.classifier.weights import auc

    train, test = collinear_truth(60_000, seed=0), collinear_truth(8000, seed=1)
    info = SampleInfo(slots=list(ZJETS_SLOTS))
    write_events(tmp_path / "truth.h5", test, info)
    mean_f = magic.mean_training_weight(train)
    generated = draw_p_f(train, 8000, np.random.default_rng(5))
    fbar = magic.inverse_weights(generated)
    cfg = {"dr_cutoff": 0.2, "network": {"hidden": 16, "layers": 2}, "training": {"epochs": 3, "batch_size": 256}}
    result = {}
    normalised, closure = magic.normalise_multiplicities(
        magic.generated_weights(generated, mean_f), generated.multiplicity(ObjectType.JET),
        dict(zip((1, 2, 3), truth_fractions(train))))
    for name, w in (("normalised", normalised), ("fbar", fbar)):
        generated.weight[:] = w
        gen_info = SampleInfo(slots=list(ZJETS_SLOTS), provenance={
            "magic": MAGIC, "magic_mean_f": mean_f, "magic_closure": {n: c.to_dict() for n, c in closure.items()}})
        write_events(tmp_path / f"{name}.h5", generated, gen_info)
        train_stage(TrainSettings.from_config({**cfg, "seed": 5}), truth=tmp_path / "truth.h5",
                    generated=tmp_path / f"{name}.h5", out_model=tmp_path / f"{name}.pt",
                    out_history=tmp_path / f"{name}_h.json", progress=False)
        s = held_out(tmp_path / "truth.h5", tmp_path / f"{name}.h5", tmp_path / f"{name}.pt", 5)
        score = auc(s["D_truth"], s["D_generated"], s["truth"].weight, s["generated"].weight)
        result[name] = (score, null_auc_sigma(s["truth"].weight, s["generated"].weight))
    print("held-out AUC and its null σ: " + str(result))
    score, sigma = result["normalised"]
    assert abs(score - 0.5) < 4 * sigma
    assert result["fbar"][0] - 0.5 > 4 * result["fbar"][1]
    metrics = evaluate_stage(EvaluateSettings(seed=5), truth=tmp_path / "truth.h5", generated=tmp_path / "normalised.h5",
                             model=tmp_path / "normalised.pt", out_dir=tmp_path / "plots",
                             out_metrics=tmp_path / "m.json").metrics
    assert metrics["auc"] == pytest.approx(score) and abs(metrics["weights_generated"]["median"] - 1) < 0.2
    assert (tmp_path / "plots" / "roc.png").exists() and (tmp_path / "plots" / "reweighted_ht.png").exists()
    n = reweight_stage(ReweightSettings(seed=5), truth=tmp_path / "truth.h5", generated=tmp_path / "normalised.h5",
                       model=tmp_path / "normalised.pt", out=tmp_path / "rw.h5").n_events
    assert n == holdout_mask(len(generated), 6).sum() == len(read_events(tmp_path / "rw.h5"))


def test_bayesian_pull_for_binn_generator(splits, tmp_path):
    from lhcflow.classifier.stages import EvaluateSettings, TrainSettings, evaluate_stage, train_stage
    from lhcflow.zjets.chain import MagicSettings, ModelSettings, load_chain

    _, paths = splits
    model = {"kind": "binn", "network": {"n_blocks": 2, "hidden": 8, "layers_per_block": 2, "bins": 4,
                                         "init_log_sigma": -4.0}, "training": {"epochs": 1}}
    nets = [tmp_path / f"net{n}.pt" for n in (1, 2, 3)]
    train_chain(model, paths, nets, [tmp_path / f"h{n}.json" for n in (1, 2, 3)],
                [tmp_path / f"c{n}.ckpt" for n in (1, 2, 3)])
    chain = load_chain(ModelSettings.from_config(model), MagicSettings.from_config(MAGIC), paths["pre"], nets)
    truth = read_events(paths["test"])
    log_p = chain.log_prob(truth)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(chain.log_prob(truth), log_p)  # posterior means: deterministic
    cfg = {"dr_cutoff": 0.2, "network": {"hidden": 8, "layers": 2}, "training": {"epochs": 1}}
    train_stage(TrainSettings.from_config({**cfg, "seed": 3}), truth=paths["test"], generated=paths["train"],
                out_model=tmp_path / "c.pt", out_history=tmp_path / "h.json", progress=False)
    settings = EvaluateSettings.from_config({"seed": 3, "generator": model, "magic": MAGIC, "n_replicas": 3})
    metrics = evaluate_stage(settings, truth=paths["test"], generated=paths["train"], model=tmp_path / "c.pt",
                             out_dir=tmp_path / "plots", out_metrics=tmp_path / "m.json", preprocessing=paths["pre"],
                             nets=nets).metrics
    assert metrics["bayesian"]["n_events"] > 0 and np.isfinite(metrics["bayesian"]["pull_median"])
    assert (tmp_path / "plots" / "bayesian_pull.png").stat().st_size > 0


def test_classifier_reweighting_brings_a_distorted_generator_to_the_floor(tmp_path):
    """Thesis §4.4: w = D/(1 − D) learned on truth vs generated corrects the generated distribution.
    A "generator" whose leading-jet p_T spectrum is tilted by ±45 % (an independent truth sample resampled
    with a known tilt) is off by > 3× the Train/Truth floor before and within 1.5× of it after reweighting."""
    from test_zjets_magic import collinear_truth

    from lhcflow.classifier.stages import EvaluateSettings, TrainSettings, evaluate_stage, train_stage

    train, truth, pool = (collinear_truth(n, seed=s) for n, s in ((40_000, 10), (30_000, 11), (90_000, 12)))
    pt = pool.pt[:, 2]
    tilt = 1.0 + 0.45 * np.tanh((pt - np.median(pt)) / np.std(pt))
    rng = np.random.default_rng(13)
    generated = pool.select(np.flatnonzero(rng.random(len(pool)) < tilt / tilt.max()))
    info = SampleInfo(slots=list(ZJETS_SLOTS))
    for name, batch in (("train", train), ("truth", truth), ("generated", generated)):
        write_events(tmp_path / f"{name}.h5", batch, info)
    cfg = {"dr_cutoff": 0.2, "network": {"hidden": 32, "layers": 3}, "training": {"epochs": 8, "batch_size": 512}}
    train_stage(TrainSettings.from_config({**cfg, "seed": 7}), truth=tmp_path / "truth.h5",
                generated=tmp_path / "generated.h5", out_model=tmp_path / "c.pt", out_history=tmp_path / "h.json",
                progress=False)
    metrics = evaluate_stage(EvaluateSettings(seed=7), truth=tmp_path / "truth.h5", generated=tmp_path / "generated.h5",
                             model=tmp_path / "c.pt", out_dir=tmp_path / "plots", out_metrics=tmp_path / "m.json",
                             train=tmp_path / "train.h5").metrics
    dev = metrics["bulk_deviation"]["j1_pt_1j"]
    print("j1 pT (Z+1j) bulk deviations:", dev)
    assert dev["generated"] > 3 * dev["train"]
    assert dev["reweighted"] < 1.5 * dev["train"]
