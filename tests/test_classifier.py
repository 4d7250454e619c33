"""Classifier library (thesis §3.1.3, §4.4, §6.4.2): closure of the learned density ratio
w = D/(1−D) (Eq 4.16), ROC/AUC, multiclass training, Eq 4.17 features, Eq 4.18 and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lhcflow.classifier import (
    Classifier,
    ClassifierConfig,
    FeatureScaler,
    auc,
    balance_weights,
    calibration_curve,
    classifier_weights,
    density_mean_std,
    load_classifier,
    mixed_pull,
    observable_features,
    predict,
    predict_replicas,
    relative_error_profile,
    roc_curve,
    save_classifier,
    train_classifier,
    train_multiclass,
    zjets_features,
)
from lhcflow.classifier import plots
from lhcflow.data.events import EventBatch, ObjectType
from lhcflow.physics.observables import control_observables

SHIFT = np.array([0.5, 0.0])
SMALL = dict(hidden=64, layers=3, dropout=0.0, batch_size=1024, lr_patience=2, seed=0)
CLOSURE = dict(SMALL, batch_size=512, lr_patience=3, val_fraction=0.25, epochs=20)
# median |w/w_true − 1| for |x_i| < 1.5, 40k events/class: measured 0.019-0.027 over seeds
CLOSURE_TOL = 0.05


@pytest.fixture(scope="module")
def shifted():
    """x_b ~ N(0, 1), x_a ~ N(SHIFT, 1) in 2D: p_a/p_b = exp(x·SHIFT − |SHIFT|²/2)."""
    rng = np.random.default_rng(1)
    n = 40_000
    x_b = rng.normal(size=(n, 2))
    x_a = rng.normal(size=(n, 2)) + SHIFT
    model, history = train_classifier(x_a, x_b, cfg=ClassifierConfig(**CLOSURE), progress=False)
    test_a = rng.normal(size=(20_000, 2)) + SHIFT
    test_b = rng.normal(size=(20_000, 2))
    return model, history, test_a, test_b


def true_ratio(x: np.ndarray) -> np.ndarray:
    return np.exp(x @ SHIFT - SHIFT @ SHIFT / 2)


def test_closure_known_density_ratio(shifted):
    model, history, _, test_b = shifted
    w = classifier_weights(predict(model, test_b))
    dev = np.abs(w / true_ratio(test_b) - 1)
    bulk = np.abs(test_b).max(axis=1) < 1.5
    median = float(np.median(dev[bulk]))
    print(f"closure: median |w/w_true - 1| (bulk) = {median:.4f}, all = {np.median(dev):.4f}, "
          f"best epoch {history.best_epoch}")
    assert median < CLOSURE_TOL
    assert len(history.epoch) == CLOSURE["epochs"] and np.isfinite(history.val_loss).all()


def test_reweighting_closes_observable(shifted):
    """Generated × w reproduces the truth-reweighted mean of x_1 (the reweighting of Fig 4.9)."""
    model, _, _, test_b = shifted
    w = classifier_weights(predict(model, test_b))
    exact = np.average(test_b[:, 0], weights=true_ratio(test_b))
    learned = np.average(test_b[:, 0], weights=w)
    print(f"<x_1> reweighted: learned {learned:.4f}, exact weights {exact:.4f}, unweighted {test_b[:, 0].mean():.4f}")
    assert learned == pytest.approx(exact, abs=0.04)


def test_calibration_of_closure_classifier(shifted):
    model, _, test_a, test_b = shifted
    D = predict(model, np.concatenate([test_a, test_b]))
    labels = np.r_[np.ones(len(test_a)), np.zeros(len(test_b))]
    mean_D, frac, total = calibration_curve(D, labels, bins=10)
    ok = total > 500
    assert np.nanmax(np.abs(mean_D[ok] - frac[ok])) < 0.04


def test_truth_vs_truth():
    """Two halves of one distribution: AUC ≈ 0.5, weights peaked at 1 (measured over 5 seeds:
    |AUC − 0.5| ≤ 0.006, |median w − 1| ≤ 0.014)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100_000, 2))
    cfg = ClassifierConfig(**dict(SMALL, epochs=5, lr_patience=1, batch_size=512, val_fraction=0.25))
    model, _ = train_classifier(x[:40_000], x[40_000:80_000], cfg=cfg, progress=False)
    test = x[80_000:]
    D_a, D_b = predict(model, test[:10_000]), predict(model, test[10_000:])
    score = auc(D_a, D_b)
    w = classifier_weights(np.r_[D_a, D_b])
    print(f"truth vs truth: AUC = {score:.4f}, median w = {np.median(w):.4f}")
    assert abs(score - 0.5) < 0.03
    assert abs(np.median(w) - 1) < 0.03
    assert np.quantile(np.abs(w - 1), 0.9) < 0.1


def test_roc_auc_known_cases():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.6, 1.0, 500), rng.uniform(0.0, 0.4, 700)
    assert auc(a, b) == pytest.approx(1.0)
    assert auc(b, a) == pytest.approx(0.0)
    same = rng.uniform(size=1000)
    assert auc(same, same) == pytest.approx(0.5)
    assert abs(auc(rng.uniform(size=20_000), rng.uniform(size=20_000)) - 0.5) < 0.01
    fpr, tpr, thr = roc_curve(a, b)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1) and np.isinf(thr[0])
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # integer weights equal duplicated events, ties included
    sa, sb = np.round(rng.uniform(size=300), 1), np.round(rng.uniform(size=400) * 0.8, 1)
    ka, kb = rng.integers(0, 4, 300), rng.integers(0, 4, 400)
    weighted = auc(sa, sb, ka.astype(float), kb.astype(float))
    assert weighted == pytest.approx(auc(np.repeat(sa, ka), np.repeat(sb, kb)), abs=1e-12)
    # Gaussian shift: AUC = Φ(Δ/√2)
    g_a, g_b = rng.normal(1.0, 1.0, 50_000), rng.normal(0.0, 1.0, 50_000)
    assert auc(g_a, g_b) == pytest.approx(0.7602, abs=0.005)


def test_weight_helpers():
    assert classifier_weights(np.array([0.5, 0.75, 0.0, 1.0]))[:2] == pytest.approx([1.0, 3.0])
    assert np.isfinite(classifier_weights(np.array([0.0, 1.0]))).all()
    assert classifier_weights(np.array([0.999]), w_max=10.0)[0] == 10.0
    w_a, w_b = balance_weights(np.ones(10), np.full(30, 2.0))
    assert w_a.sum() == pytest.approx(w_b.sum()) and (w_a.sum() + w_b.sum()) == pytest.approx(40)


def test_bayesian_pull_definitions():
    w, mu, sigma = np.array([1.0, 0.5, 2.0]), np.array([2.0, 2.0, 1.0]), np.array([0.5, 0.5, 0.25])
    assert mixed_pull(w, mu, sigma) == pytest.approx([0.0, 2.0, -4.0])  # μ(1 − w)/σ, Eq 4.18
    # replicas p_k = e^c k, k = 1..K (discrete uniform): μ = e^c (K+1)/2, σ = e^c √(K(K+1)/12)
    K, c = 20, np.array([-700.0, -30.0, 0.0, 700.0])
    m, s = density_mean_std(c[None, :] + np.log(np.arange(1, K + 1))[:, None])
    assert m == pytest.approx(np.exp(c) * (K + 1) / 2, rel=1e-12)
    assert s == pytest.approx(np.exp(c) * np.sqrt(K * (K + 1) / 12), rel=1e-12)
    rng = np.random.default_rng(4)
    w = rng.lognormal(0, 0.3, 5000)
    rel = 0.05 + 0.2 * np.abs(np.log(w)) + rng.normal(0, 0.01, 5000)
    prof = relative_error_profile(w, np.ones(5000), rel)
    assert prof["spearman"] > 0.8
    assert prof["counts"].sum() == (w < 3).sum()


def test_multiclass_three_gaussians(tmp_path):
    rng = np.random.default_rng(5)
    centres = np.array([[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]])
    labels = rng.integers(0, 3, 15_000)
    x = centres[labels] + rng.normal(size=(15_000, 2))
    model, _ = train_multiclass(x[:12_000], labels[:12_000], 3, cfg=ClassifierConfig(epochs=5, **SMALL),
                                progress=False)
    P = predict(model, x[12_000:])
    assert P.shape == (3000, 3) and np.allclose(P.sum(1), 1, atol=1e-5)
    accuracy = (P.argmax(1) == labels[12_000:]).mean()
    print(f"3-class accuracy = {accuracy:.3f} (chance 0.33)")
    assert accuracy > 0.8
    plots.plot_class_probabilities(x[12_000:, 0], P, labels[12_000:], tmp_path / "mult.png",
                                   np.linspace(-4, 4, 17), "$x_1$")
    assert (tmp_path / "mult.png").stat().st_size > 0


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    rng = np.random.default_rng(6)
    x_a, x_b = rng.normal(0.3, 1, (3000, 3)), rng.normal(0, 1, (3000, 3))
    cfg = dict(SMALL, dropout=0.1, batch_size=256)
    ckpt = tmp_path / "c.pt"
    train_classifier(x_a, x_b, cfg=ClassifierConfig(epochs=2, **cfg), checkpoint=ckpt, progress=False)
    resumed, h1 = train_classifier(x_a, x_b, cfg=ClassifierConfig(epochs=4, **cfg), checkpoint=ckpt,
                                   progress=False)
    direct, h2 = train_classifier(x_a, x_b, cfg=ClassifierConfig(epochs=4, **cfg), progress=False)
    assert h1.val_loss == pytest.approx(h2.val_loss, rel=1e-6) and h1.epoch == [1, 2, 3, 4]
    test = rng.normal(size=(100, 3))
    assert np.allclose(predict(resumed, test), predict(direct, test), atol=1e-6)
    save_classifier(tmp_path / "m.pt", direct, {"note": 1})
    loaded, extra = load_classifier(tmp_path / "m.pt")
    assert extra == {"note": 1} and np.allclose(predict(loaded, test), predict(direct, test))


def test_bayesian_classifier():
    rng = np.random.default_rng(7)
    x_a, x_b = rng.normal(0.5, 1, (4000, 2)), rng.normal(0, 1, (4000, 2))
    model, _ = train_classifier(x_a, x_b, cfg=ClassifierConfig(epochs=3, bayesian=True, **SMALL), progress=False)
    assert isinstance(model, Classifier) and float(model.kl().detach()) > 0
    reps = predict_replicas(model, x_b[:200], 5)
    assert reps.shape == (5, 200) and reps.std(0).mean() > 0
    assert auc(predict(model, x_a), predict(model, x_b)) > 0.55


def synthetic_zjets(n: int = 400, seed: int = 0) -> EventBatch:
    rng = np.random.default_rng(seed)
    b = EventBatch.empty(n, 5)
    n_jets = rng.choice([1, 2, 3], size=n)
    b.type[:, :2] = ObjectType.MUON
    b.pt[:, :2] = np.sort(5 + rng.exponential(30, (n, 2)), axis=1)[:, ::-1]
    b.eta[:, :2] = rng.normal(0, 2, (n, 2))
    b.phi[:, 0] = rng.uniform(-np.pi, np.pi, n)
    b.phi[:, 1] = np.angle(np.exp(1j * (b.phi[:, 0] + np.pi + rng.normal(0, 0.5, n))))
    b.mass[:, :2] = 0.10566
    for k in range(3):
        has = n_jets > k
        b.type[has, 2 + k] = ObjectType.JET
        b.pt[has, 2 + k] = 20 + rng.exponential(25, has.sum())
        b.eta[has, 2 + k] = rng.normal(0, 2, has.sum())
        b.phi[has, 2 + k] = rng.uniform(-np.pi, np.pi, has.sum())
        b.mass[has, 2 + k] = np.exp(rng.normal(1.8, 0.4, has.sum()))
    b.n_jets_all[:] = n_jets
    # event 0: three jets, j1 and j2 almost collinear (ΔR = 0.05 < cutoff)
    b.type[0, 2:] = ObjectType.JET
    b.pt[0, 2:] = [50, 40, 30]
    b.eta[0, 2:] = [0.3, 0.35, -1.0]
    b.phi[0, 2:] = [1.0, 1.0, -2.0]
    b.mass[0, 2:] = [5, 5, 5]
    return b


def test_zjets_features():
    batch = synthetic_zjets()
    x, names = zjets_features(batch, dr_cutoff=0.2)
    assert x.shape == (len(batch), 24) and len(names) == 24 and len(set(names)) == 24
    assert names[:6] == ["mu1_pt", "mu1_eta", "mu2_pt", "mu2_eta", "mu2_dphi", "j1_pt"]
    assert "mu1_dphi" not in names and "mu1_m" not in names and "mu2_m" not in names
    assert {"m_mu1mu2", "inv_dR_j1j2", "inv_dR_j1j3", "inv_dR_j2j3", "j3_m", "n_jets_3"} <= set(names)
    assert np.isfinite(x).all()
    col = {n: i for i, n in enumerate(names)}
    assert x[0, col["inv_dR_j1j2"]] == pytest.approx(1 / 0.2)  # ΔR = 0.05 capped at the cutoff
    assert x[:, col["inv_dR_j1j2"]].max() <= 1 / 0.2 + 1e-9
    n_jets = batch.multiplicity(ObjectType.JET)
    one_hot = x[:, [col[f"n_jets_{k}"] for k in (1, 2, 3)]]
    assert np.array_equal(one_hot.argmax(1) + 1, n_jets) and np.all(one_hot.sum(1) == 1)
    assert np.all(x[n_jets < 3][:, [col["j3_pt"], col["j3_m"], col["inv_dR_j2j3"]]] == 0)
    assert np.all(np.abs(x[:, col["mu2_dphi"]]) <= np.pi)
    assert 60 < np.median(x[:, col["m_mu1mu2"]]) < 1e4
    # standardisation fitted with padded entries as missing, which become exactly 0
    raw, _ = zjets_features(batch, missing=np.nan)
    scaler = FeatureScaler.fit(raw, batch.weight, names)
    z = scaler.transform(raw)
    assert np.isfinite(z).all() and np.all(z[n_jets < 3][:, col["j3_pt"]] == 0)
    present = n_jets == 3
    assert z[present, col["j3_pt"]].mean() == pytest.approx(0, abs=1e-5)
    assert z[present, col["j3_pt"]].std() == pytest.approx(1, abs=1e-3)
    again = FeatureScaler.from_state(json.loads(json.dumps(scaler.state_dict())))
    assert np.array_equal(again.transform(raw), z)
    obs_x, obs_names = observable_features(batch, control_observables(["mu1", "mu2", "j1", "j2", "j3"])[:4])
    assert obs_x.shape == (len(batch), 4) and obs_names[0] == "mu1_pt" and np.isfinite(obs_x).all()


def test_plots_written(tmp_path, shifted):
    model, _, test_a, test_b = shifted
    D_a, D_b = predict(model, test_a), predict(model, test_b)
    w_a, w_b = classifier_weights(D_a), classifier_weights(D_b)
    plots.plot_roc({"closure": (D_a, D_b), "weighted": (D_a, D_b, w_a, None)}, tmp_path / "roc.png")
    plots.plot_weight_distribution(w_a, w_b, tmp_path / "w_lin.png")
    plots.plot_weight_distribution(w_a, w_b, tmp_path / "w_log.pdf", log_x=True)
    plots.plot_calibration(np.r_[D_a, D_b], np.r_[np.ones_like(D_a), np.zeros_like(D_b)], tmp_path / "cal.png")
    truth, gen = synthetic_zjets(500, 1), synthetic_zjets(500, 2)
    rng = np.random.default_rng(8)
    w_t, w_g = rng.lognormal(0, 0.7, 500), rng.lognormal(0, 0.7, 500)
    obs = next(o for o in control_observables(["mu1", "mu2", "j1", "j2", "j3"]) if o.name == "m_mu1mu2")
    plots.plot_reweighted(obs, truth, gen, w_g, tmp_path / "rew.png")
    plots.plot_weight_clusters(obs, truth, gen, w_t, w_g, tmp_path / "clusters.png")
    acc = (test_b[:, 0] > 0).astype(int)
    plots.plot_class_probabilities(test_b[:, 0], D_b, acc, tmp_path / "acc.png", np.linspace(-3, 3, 13), "$x_1$")
    mu = np.ones(len(w_b))
    plots.plot_bayesian_pull(w_b, mu, 0.05 + 0.1 * np.abs(np.log(w_b)), tmp_path / "pull.png")
    for name in ("roc.png", "w_lin.png", "w_log.pdf", "cal.png", "rew.png", "clusters.png", "acc.png", "pull.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_classifier_config_refuses_unknown_keys():
    """ClassifierConfig.from_dict({'hiden': 64}) gave hidden=256, the default."""
    from lhcflow.errors import InputError

    assert ClassifierConfig.from_dict({"hidden": 64, "lr": 3e-4}).hidden == 64
    with pytest.raises(InputError, match=r"unknown classifier setting\(s\) 'hiden' \(did you mean 'hidden'\?\)"):
        ClassifierConfig.from_dict({"hiden": 64})
