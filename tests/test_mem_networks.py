"""ML-MEM networks and their preprocessing (thesis §6.2-6.4): features, transfer, sampling, acceptance, stages."""

import json

import h5py
import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch.autograd.functional import jacobian

from lhcflow.classifier.features import FeatureScaler
from lhcflow.classifier.hard import hard_features as classifier_hard_features
from lhcflow.classifier.stages import HardTrainSettings, train_hard_stage
from lhcflow.classifier.train import load_classifier, predict
from lhcflow.data.hard import read_hard_dataset
from lhcflow.mem.acceptance import LearnedAcceptance
from lhcflow.mem.data import read_paired_events, write_hard_dataset
from lhcflow.mem.features import RecoLayout, SelectionMap, Standardizer, hard_features, hard_momenta
from lhcflow.mem.sampling import SamplingNetwork
from lhcflow.mem.stages import SamplingSettings, TransferSettings, train_sampling_stage, train_transfer_stage
from lhcflow.mem.transfer import TransferNetwork, outside_selection, sampled_outside_selection
from lhcflow.physics.kinematics import to_ptetaphim
from lhcflow.thj.files import PairedFileError

MT, MH = 173.0, 125.0
SLOTS = ["a1", "a2", "b", "mu", "j1", "j2", "j3", "j4", "j5"]
TINY_INN = {"n_blocks": 2, "hidden": 16, "layers_per_block": 2, "bins": 6}
TINY_TRAINING = {"epochs": 2, "batch_size": 64, "lr_start": 1e-3, "lr_max": 3e-3, "device": "cpu"}


def _on_shell(p3: np.ndarray, m: float) -> np.ndarray:
    return np.concatenate([np.sqrt((p3**2).sum(-1, keepdims=True) + m * m), p3], -1)


def inside_selection(p4: np.ndarray) -> np.ndarray:
    """Events whose required objects (a1, a2, b, mu, j1) pass the default Table 6.1 cuts."""
    pt_eta = to_ptetaphim(p4)
    pt_min = np.array([20.0, 20.0, 25.0, 20.0, 25.0])
    return ((pt_eta[..., 0] > pt_min) & (np.abs(pt_eta[..., 1]) < 2.4)).all(1)


def make_paired_file(path, n=400, seed=0, accepted_fraction=0.9):
    """A synthetic paired tHj file: on-shell hard t, H, q with p_T balance; reco objects = smeared partons."""
    rng = np.random.default_rng(seed)
    pt, ph = rng.normal(0, 80, (n, 3)), rng.normal(0, 80, (n, 3))
    pj = np.concatenate([-(pt[:, :2] + ph[:, :2]), rng.normal(0, 300, (n, 1))], 1)
    x_hard = np.stack([_on_shell(pt, MT), _on_shell(ph, MH), _on_shell(pj, 0.0)], 1)
    x_reco = np.zeros((n, len(SLOTS), 4))
    for slot, (source, m) in enumerate([(ph * 0.5, 0.0), (ph * 0.5, 0.0), (pt * 0.4, 5.0), (pt * 0.3, 0.0),
                                        (pj, 8.0)]):
        x_reco[:, slot] = _on_shell(source * rng.normal(1, 0.1, (n, 1)), m)
    present = np.zeros((n, len(SLOTS)), bool)
    present[:, :5] = True
    extra = _on_shell(rng.normal(0, 30, (n, 3)), 4.0)
    extra_pt_eta = to_ptetaphim(extra)
    present[:, 5] = (rng.random(n) < 0.5) & (extra_pt_eta[:, 0] > 25.0) & (np.abs(extra_pt_eta[:, 1]) < 2.4)
    n_extra = present[:, 5].astype(np.int64)
    x_reco[:, 5] = np.where(present[:, 5:6], extra, 0.0)
    with h5py.File(path, "w") as f:
        f["alpha"] = rng.uniform(-np.pi, np.pi, n)
        f["x_hard"] = x_hard
        f["x_reco"] = x_reco
        f["x_reco_ptetaphim"] = np.where(present[..., None], to_ptetaphim(x_reco), 0.0)
        f["x_reco_present"] = present
        f["n_extra_jets"] = n_extra
        f["accepted"] = (rng.random(n) < accepted_fraction) & inside_selection(x_reco[:, :5])
        f["g"] = rng.random((n, 5))
        f["weight"] = np.full(n, 1e-3)
        f["split"] = rng.choice(3, n, p=[0.6, 0.2, 0.2]).astype(np.int8)
        f.attrs["x_reco_slots"] = json.dumps(SLOTS)
        f.attrs["decay"] = "leptonic"
        f.attrs["splits"] = json.dumps(["train", "val", "test"])
        f.attrs["branching_ratio"] = 2.5e-4
        f.attrs["selection"] = json.dumps({})
    return path


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return make_paired_file(tmp_path_factory.mktemp("mem") / "paired.h5")


def test_hard_features_round_trip_eq631():
    rng = np.random.default_rng(1)
    features = torch.as_tensor(rng.normal(0, 100, (50, 7)))
    momenta = hard_momenta(features, MT, MH)
    assert torch.allclose(hard_features(momenta), features)
    masses = to_ptetaphim(momenta)[..., 3]
    assert torch.allclose(masses[:, 0], torch.full((50,), MT, dtype=torch.float64)) and torch.allclose(masses[:, 1], torch.full((50,), MH, dtype=torch.float64))
    assert torch.allclose(momenta[..., 1:3].sum(1), torch.zeros(50, 2, dtype=torch.float64), atol=1e-9)  # p_T balance


def test_reco_layout_dimensions():
    assert len(RecoLayout.from_slots(SLOTS, "leptonic").columns()) == 17  # 5·4 − 3 (thesis §6.3)
    hadronic = ["a1", "a2", "b", "j1", "j2", "j3", "j4", "j5", "j6", "j7"]
    layout = RecoLayout.from_slots(hadronic, "hadronic")
    assert len(layout.columns()) == 22  # 6·4 − 2
    assert layout.slot_types()[:4] == ["photon", "photon", "bjet", "jet"]
    with pytest.raises(ValueError, match="unknown top decay"):
        RecoLayout.from_slots(SLOTS, "semileptonic")


def test_standardizer_density_transform():
    x = np.random.default_rng(2).normal([3.0, -1.0], [2.0, 0.5], (1000, 2))
    s = Standardizer(2).fit(x)
    z = s(torch.as_tensor(x))
    assert torch.allclose(s.inverse(z), torch.as_tensor(x))
    # a N(0,1) density in z is N(mean, std) in x: log p_x = log p_z + log|dz/dx|
    log_px = norm.logpdf(z.numpy()).sum(1) + float(s.log_det())
    expected = norm.logpdf(x, s.mean.numpy(), s.std.numpy()).sum(1)
    assert np.allclose(log_px, expected)


def _log_abs_det(fn, rows: torch.Tensor) -> np.ndarray:
    """log|det ∂fn/∂x| per row from autograd (the independent reference for the analytic Jacobians)."""
    return np.array([float(torch.linalg.slogdet(jacobian(lambda r: fn(r[None])[0], row))[1]) for row in rows])


def test_selection_map_jacobian_inverse_and_support():
    """SelectionMap (Eq 4.4 and atanh(η/η_max) per object): log|∂y/∂x| equals the autograd determinant, the
    inverse of any y lies inside the cuts, and the transfer density is −inf outside them."""
    layout = RecoLayout.from_slots(SLOTS, "leptonic")
    pt_min, eta_max = layout.selection_bounds({"photon_pt_min_gev": 30.0, "jet_abs_eta_max": 2.0})
    assert pt_min[:5] == [30.0, 30.0, 25.0, 20.0, 25.0] and eta_max[:5] == [2.4, 2.4, 2.0, 2.4, 2.0]
    smap = SelectionMap(layout, pt_min, eta_max)
    gen = torch.Generator().manual_seed(3)
    y = 2.5 * torch.randn(4000, 17, generator=gen, dtype=torch.float64)  # broad: far into the tails
    for i, o in enumerate(smap.offsets):
        y[:, o + 2] = np.pi * (2 * torch.rand(4000, generator=gen, dtype=torch.float64) - 1)  # φ in (−π, π)
    x = smap.inverse(y)
    objects = np.zeros((len(x), len(SLOTS), 4))
    for col, (slot, comp) in enumerate(layout.columns()):
        objects[:, slot, comp] = x[:, col].numpy()
    pt_eta = to_ptetaphim(objects)[:, :5]  # (E ignored for pT, η)
    assert (pt_eta[..., 0] > np.array(pt_min[:5])).all() and (np.abs(pt_eta[..., 1]) < np.array(eta_max[:5])).all()
    y_back, log_det, inside = smap(x)
    # round trip where (E, p⃗) is well conditioned (|y| < 3; tiny masses cannot be recovered from E² − p²)
    typical = (y.abs() < 3).all(1)
    assert inside.all() and torch.allclose(y_back[typical], y[typical], atol=1e-7, rtol=0)
    assert np.allclose(log_det[:20].numpy(), _log_abs_det(lambda r: smap(r)[0], x[:20]), atol=1e-8)

    outside = x[:3].clone()
    outside[0, 3:6] *= 0.5  # a2 (30 GeV cut) pushed below its threshold for these pT... or not: checked below
    outside[1, 8] = 1e4 * torch.sign(outside[1, 8])  # b-jet pz: |η| beyond 2.0
    outside[2, 0] = 0.0  # photon px, py = 0: pT = 0
    outside[2, 1] = 0.0
    expected = [bool(np.hypot(*outside[0, 3:5].numpy()) > 30.0), False, False]
    assert smap(outside)[2].tolist() == expected
    net = TransferNetwork("cinn", layout, (MT, MH), TINY_INN, pt_min, eta_max).double()
    hard = torch.zeros(3, 7, dtype=torch.float64)
    assert (net.log_prob(outside, hard)[~torch.as_tensor(expected)] == -np.inf).all()


def test_flat_transfer_density_is_physical(paired):
    data = read_paired_events([paired], accepted_only=True)
    layout = RecoLayout.from_slots(SLOTS, "leptonic")
    net = TransferNetwork("cinn", layout, (MT, MH), TINY_INN, *layout.selection_bounds({})).double()
    rows, hard = net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"]), hard_features(data["x_hard"])
    net.fit_preprocessing(rows, hard)
    # an untrained INN is the identity (zero-initialised last layers): p_θ = N(mean, std) per mapped feature
    # y(x) times |∂y/∂x|, a density in the (E, p⃗) reco features; the Jacobian from autograd
    logp = net.log_prob(torch.as_tensor(rows), torch.as_tensor(hard)).detach().numpy()
    y = net.reco_map(torch.as_tensor(rows))[0].numpy()
    expected = norm.logpdf(y, net.reco_scaler.mean.numpy(), net.reco_scaler.std.numpy()).sum(1)
    assert np.allclose(logp[:20], expected[:20] + _log_abs_det(lambda r: net.reco_map(r)[0], torch.as_tensor(rows[:20])),
                       atol=1e-8)
    assert net.log_prob_replicas(torch.as_tensor(rows), torch.as_tensor(hard)).shape == (1, len(rows))
    objects = net.reco_objects(rows)
    assert np.allclose(objects[..., :3], data["x_reco_ptetaphim"][:, :5, :3], atol=1e-6)


def test_flat_transfer_samples_stay_inside_the_selection(paired):
    """Forward simulation puts exactly no probability outside the reco cuts (the simulation has none there):
    a randomised cINN on the mapped features, 20000 samples of x̃_reco."""
    data = read_paired_events([paired], accepted_only=True)
    layout = RecoLayout.from_slots(SLOTS, "leptonic")
    bounds = layout.selection_bounds(data["attrs"]["selection"])
    torch.manual_seed(0)
    net = TransferNetwork("cinn", layout, (MT, MH), TINY_INN, *bounds)
    rows, hard = net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"]), hard_features(data["x_hard"])
    net.fit_preprocessing(rows, hard)
    with torch.no_grad():  # randomise the INN so that the check is not the identity
        for p in net.generator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    many = np.repeat(hard, -(-20000 // len(hard)), axis=0)[:20000]
    leak = sampled_outside_selection(net, many, *bounds, seed=1)
    assert leak["events"] == 20000 and leak["any"] == 0.0
    assert all(v == {"any": 0.0, "pt": 0.0, "eta": 0.0} for v in leak["objects"].values())
    # the measurement itself sees simulated-like leaks: pT of the b-jet just below its 25 GeV cut
    objects = net.reco_objects(rows)
    objects[0, 2, 0], objects[1, 4, 1] = 24.9, -2.5
    leak = outside_selection(objects, *bounds, layout.required)
    assert leak["objects"]["b"]["pt"] == leak["objects"]["j1"]["eta"] == 1 / len(objects)
    assert leak["any"] == 2 / len(objects)


def test_transfer_and_sampling_stages_train_resume_and_reload(paired, tmp_path):
    spec = {"kind": "binn", "network": TINY_INN, "training": TINY_TRAINING}
    out = tmp_path / "transfer.pt"
    summary = train_transfer_stage(TransferSettings(transfer=spec, masses=(MT, MH), seed=3), paired=[paired],
                                   out_model=out, out_history=tmp_path / "t.json", checkpoint=tmp_path / "t.ckpt",
                                   progress=False).history
    assert summary["epoch"] == [1, 2] and np.isfinite(summary["val_loss"]).all()
    assert summary["outside_selection"]["any"] == 0.0 and summary["outside_selection"]["events"] == summary["n_val"]
    net, _ = TransferNetwork.load(out)
    data = read_paired_events([paired], accepted_only=True)
    rows = torch.as_tensor(net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"]))
    hard = torch.as_tensor(hard_features(data["x_hard"]))
    net.draw_replicas(4, seed=1)
    replicas = net.log_prob_replicas(rows.float(), hard.float())
    assert replicas.shape == (4, len(rows)) and torch.isfinite(replicas).all()
    assert not torch.allclose(replicas[0], replicas[1])  # Bayesian replicas differ
    sampled = net.sample(hard.float())
    assert sampled.shape == rows.shape and torch.isfinite(sampled).all()
    old = torch.load(out, weights_only=False)  # a transfer saved before the selection map: a clear error
    del old["spec"]["pt_min"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: .*'pt_min'.*retrain"):
        TransferNetwork.load(tmp_path / "old.pt")

    samp_spec = SamplingSettings.from_config({"variant": "transfer", "network": TINY_INN, "training": TINY_TRAINING,
                                              "seed": 4})
    summary = train_sampling_stage(samp_spec, paired=[paired], out_model=tmp_path / "s.pt",
                                   out_history=tmp_path / "s.json", checkpoint=tmp_path / "s.ckpt", transfer=out,
                                   progress=False).history
    assert summary["variant"] == "transfer" and len(summary["train_loss"]) == 2
    sampler, extra = SamplingNetwork.load(tmp_path / "s.pt")
    assert extra["variant"] == "transfer"
    with pytest.raises(ValueError, match="needs a trained transfer"):
        train_sampling_stage(samp_spec, paired=[paired], out_model=tmp_path / "x.pt", out_history=tmp_path / "x.json",
                             checkpoint=tmp_path / "x.ckpt")


def test_sampling_network_density_matches_its_samples(paired):
    data = read_paired_events([paired], accepted_only=True)
    layout = RecoLayout.from_slots(SLOTS, "leptonic")
    reco = np.concatenate([layout.reco_features(data["x_reco"]), layout.extra_jets(data["x_reco"], data["x_reco_present"])], 1)
    torch.manual_seed(0)
    net = SamplingNetwork(reco.shape[1], TINY_INN).double()
    net.fit_preprocessing(reco, hard_features(data["x_hard"]))
    with torch.no_grad():  # randomise the INN so that the check is not the identity
        for p in net.inn.parameters():
            p.add_(0.05 * torch.randn_like(p))
    context = net.context(reco[:20])
    alpha = torch.linspace(-3, 3, 20, dtype=torch.float64)
    r = torch.randn(20, 7, dtype=torch.float64)
    with torch.no_grad():
        x, log_q = net.sample(r, context, alpha)
    assert torch.allclose(net.log_prob(x, context, alpha), log_q, atol=1e-6)


def test_learned_acceptance_uses_the_classifier_inputs(paired, tmp_path):
    dataset = tmp_path / "hard.h5"
    assert write_hard_dataset([paired], dataset, (MT, MH)) == 400
    ds = read_hard_dataset(dataset)
    assert np.allclose(ds.hard[:, :, 3], [MT, MH, 0.0])
    task = {"kind": "acceptance", "network": {"hidden": 16, "layers": 3}, "training": {"epochs": 2, "device": "cpu"}}
    train_hard_stage(HardTrainSettings(task=task, seed=5), dataset=dataset, out_model=tmp_path / "acc.pt",
                     out_history=tmp_path / "acc.json", progress=False)
    model, extra = load_classifier(tmp_path / "acc.pt")
    expected = predict(model, FeatureScaler.from_state(extra["scaler"]).transform(classifier_hard_features(ds)[0]))
    data = read_paired_events([paired])
    eps = LearnedAcceptance(tmp_path / "acc.pt", (MT, MH))(torch.as_tensor(hard_features(data["x_hard"])))
    assert np.allclose(eps.numpy(), expected.reshape(-1), atol=2e-5)


def test_paired_reader_names_the_broken_file(paired, tmp_path):
    broken = tmp_path / "broken.h5"
    with h5py.File(paired) as src, h5py.File(broken, "w") as dst:
        for key in src:
            if key != "g":
                src.copy(key, dst)
        dst.attrs.update(src.attrs)
    with pytest.raises(PairedFileError, match=r"broken\.h5: the paired tHj file has no dataset 'g'"):
        read_paired_events([broken])
    with pytest.raises(PairedFileError, match="missing.h5: cannot open"):
        read_paired_events([tmp_path / "missing.h5"])


TINY_TRANSFORMER = {"embed_dim": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "feedforward_dim": 32,
                    "subnet_layers": 2, "subnet_hidden": 16, "bins": 4}


def test_transfermer_with_variable_jets_through_the_stages(paired, tmp_path):
    """The transformer kinds train through the generic trainer, reload, and add log p(n|x_hard) (Eq 6.45)."""
    from lhcflow.mem.acceptance import LearnedMultiplicity

    spec = {"kind": "transfermer", "variable_jets": True, "n_extra_max": 1, "network": TINY_TRANSFORMER,
            "training": {**TINY_TRAINING, "epochs": 1}}
    train_transfer_stage(TransferSettings(transfer=spec, masses=(MT, MH), seed=6), paired=[paired],
                         out_model=tmp_path / "tt.pt", out_history=tmp_path / "tt.json", checkpoint=tmp_path / "tt.ckpt",
                         progress=False)
    net, _ = TransferNetwork.load(tmp_path / "tt.pt")
    assert net.variable_jets and net.n_extra_max == 1
    data = read_paired_events([paired], accepted_only=True)
    rows = torch.as_tensor(net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"])).float()
    assert rows.shape[1:] == (len(SLOTS), 5)
    hard = torch.as_tensor(hard_features(data["x_hard"])).float()
    without = net.log_prob(rows, hard)
    assert torch.isfinite(without).all()
    cut = rows[:3].clone()
    cut[0, 2, 0], cut[1, 0, 1] = 24.0, 2.5  # b-jet below 25 GeV, photon beyond |η| = 2.4: no density
    assert net.log_prob(cut, hard[:3]).tolist()[:2] == [-np.inf, -np.inf]
    assert torch.allclose(net.log_prob(cut, hard[:3])[2], without[2])

    dataset = tmp_path / "hard.h5"
    write_hard_dataset([paired], dataset, (MT, MH))
    task = {"kind": "multiplicity", "n_min": 0, "n_max": 1, "network": {"hidden": 16, "layers": 3},
            "training": {"epochs": 1, "device": "cpu"}}
    train_hard_stage(HardTrainSettings(task=task, seed=7), dataset=dataset, out_model=tmp_path / "mult.pt",
                     out_history=tmp_path / "mult.json", progress=False)
    net.multiplicity = LearnedMultiplicity(tmp_path / "mult.pt", (MT, MH))
    log_pn = net.multiplicity(hard.double())
    assert log_pn.shape == (len(hard), 2) and torch.allclose(log_pn.exp().sum(1), torch.ones(len(hard), dtype=torch.float64))
    n_extra = torch.as_tensor(np.clip(data["n_extra_jets"], 0, 1))
    expected = without.double() + log_pn.gather(1, n_extra[:, None])[:, 0]
    assert torch.allclose(net.log_prob(rows, hard).double(), expected, atol=1e-4)
    sampled = net.sample(hard[:8])
    assert sampled.shape == (8, len(SLOTS), 5) and (sampled[:, 6:, 4] == 0).all()  # at most one extra jet


TINY_TRANSFUSION = {"embed_dim": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1,
                    "feedforward_dim": 32, "cfm_layers": 2, "cfm_hidden": 16, "cfm_step": 0.25}


@pytest.mark.parametrize("kind, network, unused, renamed", [
    ("transfermer", TINY_TRANSFORMER, {"cfm_step": 0.5}, {"generator.head.": "generator.object_flow."}),
    ("transfusion", TINY_TRANSFUSION, {"bins": 3, "subnet_layers": 9},
     {"generator.head.onshell.": "generator.cfm_onshell.", "generator.head.jet.": "generator.cfm_jet."}),
])
def test_transformer_transfers_saved_before_the_composed_heads_load(paired, tmp_path, kind, network, unused,
                                                                     renamed):
    """A file of a transformer transfer written when TransferTransformer branched on its kind (head weights
    under object_flow / cfm_onshell / cfm_jet; network keys of the other kind accepted and unused) loads into
    the composed transfer (a per-object head passed in) with the same density."""
    data = read_paired_events([paired], accepted_only=True)
    layout = RecoLayout.from_slots(SLOTS, "leptonic")
    torch.manual_seed(0)
    net = TransferNetwork(kind, layout, (MT, MH), network, *layout.selection_bounds({}))
    rows = net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"])
    hard = hard_features(data["x_hard"])
    net.fit_preprocessing(rows, hard)
    with torch.no_grad():  # weights away from the zero-initialised last layers, so that every one counts
        gen = torch.Generator().manual_seed(1)
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    net.save(tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=False)

    def old_key(key: str) -> str:
        return next((old + key[len(new):] for new, old in renamed.items() if key.startswith(new)), key)

    payload["state"] = {old_key(k): v for k, v in payload["state"].items()}
    assert sum(k.startswith(tuple(renamed.values())) for k in payload["state"]) > 4
    payload["spec"]["network"] = {**network, **unused}
    torch.save(payload, tmp_path / "old.pt")
    old, _ = TransferNetwork.load(tmp_path / "old.pt")
    rows_t, hard_t = torch.as_tensor(rows[:20]).float(), torch.as_tensor(hard[:20]).float()
    net.eval()
    assert torch.equal(old.log_prob(rows_t, hard_t), net.log_prob(rows_t, hard_t))
    assert torch.isfinite(net.log_prob(rows_t, hard_t)).all()


def test_mem_stages_integrate_resume_and_analyse(paired, tmp_path):
    """Transfer + both samplers -> MEM integrals (resumed from chunks, byte-identical) -> likelihoods, Fig 6.13."""
    from lhcflow.mem.data import split_mask
    from lhcflow.mem.sampling import sampling_context
    from lhcflow.mem.stages import (
        DiagnosticsSettings,
        IntegrateSettings,
        LikelihoodSettings,
        diagnostics_stage,
        integrate_stage,
        likelihood_stage,
    )
    from lhcflow.training.trainer import TrainingData, evaluate

    spec = {"kind": "cinn", "network": TINY_INN, "training": {**TINY_TRAINING, "epochs": 4}}
    history = train_transfer_stage(TransferSettings(transfer=spec, masses=(MT, MH), seed=3), paired=[paired],
                                   out_model=tmp_path / "t.pt", out_history=tmp_path / "t.json",
                                   checkpoint=tmp_path / "t.ckpt", progress=False).history
    samplers, histories = {}, {}
    for variant in ("true_pairs", "transfer"):
        samplers[variant] = tmp_path / f"s_{variant}.pt"
        settings = SamplingSettings.from_config({"variant": variant, "network": TINY_INN,
                                                 "training": {**TINY_TRAINING, "epochs": 4}, "seed": 4})
        histories[variant] = train_sampling_stage(
            settings, paired=[paired], out_model=samplers[variant], out_history=tmp_path / f"s_{variant}.json",
            checkpoint=tmp_path / f"s_{variant}.ckpt", transfer=tmp_path / "t.pt", progress=False).history
    # both stages save the state of their best validation epoch: its loss is what the saved network gives
    data = read_paired_events([paired], accepted_only=True)
    val = {k: (v[split_mask(data, "val")] if isinstance(v, np.ndarray) else v) for k, v in data.items()}
    transfer, _ = TransferNetwork.load(tmp_path / "t.pt")
    rows = transfer.reco_rows(val["x_reco"], val["x_reco_ptetaphim"], val["x_reco_present"])
    loss = evaluate(transfer.training_view(), TrainingData(*transfer.training_arrays(rows, hard_features(val["x_hard"]))),
                    torch.device("cpu"), history["n_train"])
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-5) and history["best_epoch"] >= 1
    sampler, _ = SamplingNetwork.load(samplers["true_pairs"])
    arrays = sampler.training_arrays(sampling_context(transfer.layout, val), hard_features(val["x_hard"]), val["alpha"])
    loss = evaluate(sampler.inn, TrainingData(*arrays), torch.device("cpu"), histories["true_pairs"]["n_train"])
    assert loss == pytest.approx(min(histories["true_pairs"]["val_loss"]), rel=1e-5)
    fiducial = tmp_path / "fiducial.json"
    fiducial.write_text(json.dumps({"fit": {"parameters": {"A": 1e-3, "B": 5e-3, "C": -2e-3, "D": 0.0, "E": 0.0}}}))
    cross_sections = tmp_path / "cross_sections.json"
    cross_sections.write_text(json.dumps({"sigma_i_pb": [0.05, 1e-4, -0.04, 1e-5, 0.02]}))
    integration = {"batch_size": 64, "min_iterations": 1, "max_iterations": 2, "bootstrap_replicas": 4,
                   "alpha_grid_deg": [-45, 0, 45], "chunk_size": 3}
    settings = IntegrateSettings.from_config({"process": {}, "integration": integration, "seed": 11, "max_events": 5})
    paths = {"paired": [paired], "transfer": tmp_path / "t.pt", "sampling": samplers["transfer"], "fiducial": fiducial,
             "out_h5": tmp_path / "int.h5", "out_stats": tmp_path / "int.json", "checkpoint_dir": tmp_path / "ckpt"}
    stats = integrate_stage(settings, **paths, progress=False).stats
    assert stats["n_events"] == 5 and len(list((tmp_path / "ckpt").glob("chunk_*.h5"))) == 2
    first = (tmp_path / "int.h5").read_bytes()
    integrate_stage(settings, **paths, progress=False)  # resumed from the two chunks
    assert (tmp_path / "int.h5").read_bytes() == first

    analysis = {"small_set": 4, "large_set": 10, "events_per_set": 2, "calibration_sets": 2, "pull_sets": 3}
    settings = LikelihoodSettings.from_config({"alpha_deg": {"alpha0": 0.0}, "analysis": analysis, "label": "cinn",
                                               "seed": 5})
    metrics = likelihood_stage(settings, integrals=[tmp_path / "int.h5"], stats=[tmp_path / "int.json"],
                               test_paired={"alpha0": [paired]}, fiducial=fiducial, cross_sections=cross_sections,
                               out_metrics=tmp_path / "m.json", out_likelihood=tmp_path / "l.png",
                               out_calibration=tmp_path / "c.png", out_diagnostics=tmp_path / "d.png").metrics
    sample = metrics["samples"]["alpha0"]
    assert sample["n_events"] + sample["n_dropped_nonfinite"] == 5
    # every showered event of the sample, accepted or not, enters the selection-free hard-level estimate
    assert 5 < sample["hard_no_selection"]["n_events"] <= len(read_paired_events([paired])["alpha"])
    assert len(sample["set_pulls"]["MEM"]) == 3 and sample["small_set"]["n_events"] == min(4, sample["n_events"])
    assert all((tmp_path / f).stat().st_size > 0 for f in ("l.png", "c.png", "d.png"))

    settings = DiagnosticsSettings.from_config({"process": {}, "integration": integration, "n_events": 4, "seed": 12})
    result = diagnostics_stage(settings, paired=[paired], transfer=tmp_path / "t.pt", samplers=samplers,
                               fiducial=fiducial, out_json=tmp_path / "diag.json", out_figure=tmp_path / "diag.png",
                               checkpoint_dir=tmp_path / "diag_ckpt", progress=False)
    assert result.n_events == 4 and len(result.setups) == 4
    assert {row["vegas"] for row in result.setups.values()} == {False, True}
