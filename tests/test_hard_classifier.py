"""Acceptance ε(x_hard) and multiplicity p(n|x_hard) classifiers against analytic truths (§6.4.2, §6.5.2)."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
from scipy.stats import norm

from lhcflow.classifier.features import FeatureScaler
from lhcflow.classifier.hard import hard_features
from lhcflow.classifier.stages import (
    HardEvaluateSettings,
    HardTrainSettings,
    evaluate_hard_stage,
    train_hard_stage,
)
from lhcflow.classifier.train import load_classifier, predict
from lhcflow.config import ConfigError, validate_config
from lhcflow.data.hard import build_hard_dataset, read_hard_dataset
from lhcflow.data.ingest import IngestError
from lhcflow.generation.ntuple import NtupleWriter, make_chunk

N = 30_000
RESOLUTION = 0.2
JET_PT_CUT = 30.0
SELECTION = {"muons": {"min": 2, "max": 2, "keep": 2, "opposite_charge": True},
             "jets": {"min": 1, "keep": 3, "pt_min_gev": JET_PT_CUT}}
NETWORK = {"hidden": 64, "layers": 3, "dropout": 0.0}
TRAINING = {"epochs": 8, "batch_size": 512, "lr": 2e-3, "lr_patience": 2}


def _objects(pt, eta, phi, **extra):
    counts = np.full(len(pt), pt.shape[1]) if pt.ndim == 2 else None
    fields = {"pt": pt, "eta": eta, "phi": phi, **extra}
    return ak.unflatten(ak.zip({k: np.ravel(v) for k, v in fields.items()}), counts)


def toy_ntuple(path, seed=0):
    """Hard μ⁻μ⁺ + parton; reco muons = hard muons, reco jet = parton pT smeared by 20 %, plus a
    100 GeV jet with probability p₂(η_parton) = (1 + tanh η)/2. A jet passes if pT > 30 GeV, so
    with Φ₁ = Φ((pT − 30)/(0.2 pT)): ε(x) = 1 − (1 − p₂)(1 − Φ₁) and p(n = 2 | x, accepted) = p₂Φ₁/ε."""
    rng = np.random.default_rng(seed)
    pt_parton = rng.uniform(10, 80, N)
    eta_parton = rng.uniform(-2, 2, N)
    mu_pt = rng.uniform(25, 60, (N, 2))
    mu_eta, phi = rng.uniform(-2, 2, (N, 2)), rng.uniform(-np.pi, np.pi, (N, 3))
    hard = _objects(np.c_[mu_pt, pt_parton], np.c_[mu_eta, eta_parton], phi,
                    mass=np.tile([0.1057, 0.1057, 0.0], (N, 1)), pdgId=np.tile([13, -13, 21], (N, 1)))
    muons = _objects(mu_pt, mu_eta, phi[:, :2], mass=np.full((N, 2), 0.1057), charge=np.tile([-1, 1], (N, 1)))
    jet_pt = pt_parton * (1 + RESOLUTION * rng.normal(size=N))
    second = rng.random(N) < 0.5 * (1 + np.tanh(eta_parton))
    n_jets = 1 + second
    jets = ak.unflatten(ak.zip({
        "pt": _jets_pt(jet_pt, n_jets),
        "eta": np.repeat(eta_parton, n_jets), "phi": np.repeat(phi[:, 2], n_jets),
        "mass": np.full(n_jets.sum(), 5.0), "btag": np.zeros(n_jets.sum(), bool)}), n_jets)
    electrons = ak.unflatten(ak.zip({k: np.zeros(0) for k in ("pt", "eta", "phi", "mass", "charge")}), np.zeros(N, int))
    with NtupleWriter(path) as writer:
        writer.write(make_chunk(muons, electrons, jets, np.ones(N), hard))
    return pt_parton, eta_parton


def true_probabilities(ds):
    """(ε(x), p(n = 2 | x, accepted)) of :func:`toy_ntuple` from the hard parton's pT and η."""
    pt, eta = ds.hard[:, 2, 0].astype(np.float64), ds.hard[:, 2, 1].astype(np.float64)
    phi1, p2 = norm.cdf((pt - JET_PT_CUT) / (RESOLUTION * pt)), 0.5 * (1 + np.tanh(eta))
    eps = 1 - (1 - p2) * (1 - phi1)
    return eps, p2 * phi1 / eps


def _jets_pt(jet_pt, n_jets):
    """Leading jet = smeared parton; the second jet has pT 100 GeV (always passes the cut)."""
    out = np.repeat(jet_pt, n_jets)
    starts = np.r_[0, np.cumsum(n_jets)[:-1]]
    second = starts[n_jets == 2] + 1
    out[second] = 100.0
    return out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hard")
    toy_ntuple(tmp / "toy.root")
    summary = build_hard_dataset({"files": [str(tmp / "toy.root")], "layout": "lhcflow"}, SELECTION,
                                 {"seed": 5}, tmp / "hard.h5", n_slots=3, sample_name="toy", progress=False)
    return tmp, summary


def test_dataset_labels(toy):
    tmp, summary = toy
    ds = read_hard_dataset(tmp / "hard.h5")
    assert len(ds) == N and ds.hard.shape == (N, 3, 4) and ds.present.all()
    expected = true_probabilities(ds)[0].mean()
    assert summary["acceptance"] == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / N))
    assert set(np.unique(ds.n_jets[ds.accepted])) <= {1, 2}
    assert abs(np.bincount(ds.split, minlength=3)[0] / N - 0.45) < 0.02


def _learned(tmp, task, name):
    train_hard_stage(HardTrainSettings(task=task, seed=3), dataset=tmp / "hard.h5", out_model=tmp / f"{name}.pt",
                     out_history=tmp / f"{name}.json", progress=False)
    model, extra = load_classifier(tmp / f"{name}.pt")
    test = read_hard_dataset(tmp / "hard.h5").of_split("test")
    return test, predict(model, FeatureScaler.from_state(extra["scaler"]).transform(hard_features(test)[0]))


def test_acceptance_closure(toy):
    """The unbalanced classifier output is the acceptance probability: median |ε_learned − ε_true| < 0.03."""
    tmp, _ = toy
    task = {"kind": "acceptance", "network": NETWORK, "training": TRAINING}
    test, eps = _learned(tmp, task, "acc")
    truth = true_probabilities(test)[0]
    deviation = np.abs(eps - truth)
    print(f"acceptance: median |Δε| = {np.median(deviation):.4f}, 90 % quantile {np.quantile(deviation, 0.9):.4f}")
    assert np.median(deviation) < 0.03
    assert np.quantile(deviation, 0.9) < 0.08


def test_multiplicity_closure_and_plots(toy):
    tmp, _ = toy
    task = {"kind": "multiplicity", "n_min": 1, "n_max": 2, "network": NETWORK, "training": TRAINING,
            "slot_labels": ["\\mu^-", "\\mu^+", "j"]}
    test, P = _learned(tmp, task, "mult")
    truth = true_probabilities(test.select(test.accepted))[1]
    deviation = np.abs(P[test.accepted, 1] - truth)
    print(f"multiplicity: median |Δp(2)| = {np.median(deviation):.4f}")
    assert P.shape[1] == 2 and np.median(deviation) < 0.04
    metrics = evaluate_hard_stage(HardEvaluateSettings(slot_labels=task["slot_labels"]), dataset=tmp / "hard.h5",
                                  model=tmp / "mult.pt", out_dir=tmp / "plots").metrics
    assert metrics["fractions_learned"] == pytest.approx(metrics["fractions_true"], abs=0.03)
    assert metrics["observables"]["eta_2"]["chi2_ndf"] < 3
    json.dumps(metrics)
    assert (tmp / "plots" / "eta_2.png").stat().st_size > 1000


def test_sample_without_hard_record_is_rejected(tmp_path):
    source = {"files": ["x.root"], "layout": "nanoaod"}
    with pytest.raises(IngestError, match="hard"):
        build_hard_dataset(source, SELECTION, {}, tmp_path / "h.h5", n_slots=3, sample_name="nano", progress=False)
    assert not (tmp_path / "h.h5").exists()


def test_config_reference_errors():
    base = {"samples": {"zjets_pythia": {"kind": "pythia", "n_events": 10}}}
    with pytest.raises(ConfigError, match=r"hard_classifiers.acc.sample: unknown sample 'zjets_pytia' \(did you mean 'zjets_pythia'"):
        validate_config({**base, "hard_classifiers": {"acc": {"kind": "acceptance", "sample": "zjets_pytia"}}})
    with pytest.raises(ConfigError, match="hard_classifiers.m: n_min = 2 is above n_max = 1"):
        validate_config({**base, "hard_classifiers": {"m": {"kind": "multiplicity", "sample": "zjets_pythia",
                                                             "n_min": 2, "n_max": 1}}})
