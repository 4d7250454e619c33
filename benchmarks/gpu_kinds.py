"""The network kinds that ``gpu_check.py`` trains, times and compares between the CPU and a device.

Every kind is built from the project's own code (``build_generator``, ``build_transfer``,
``SamplingNetwork``, ``Classifier``, ``MadnisIntegrator``, ``integrate_events``) and trained by the
project's own loops (``training.trainer.train``, ``classifier.train.fit``, ``MadnisIntegrator.train``),
so that what runs here on a GPU is what the workflow runs there. A kind offers:

* ``build(jitter)``: a fresh network on the CPU (seeded); ``jitter`` adds a seeded N(0, 0.02²) to every
  weight, so that the zero-initialised last layers (identity flows, prior channel weights) become
  generic and the fixed-weight comparison exercises the whole network;
* ``train(model, device, steps)``: ``steps`` optimiser steps of ``batch_size`` on the device;
* ``produce(model, device, n)``: n samples or densities at one batch (the samples/s measurement);
* ``evaluate(model, device, dtype)``: named float64 CPU tensors at fixed inputs (the agreement check).

Inputs are synthetic but shaped like the real ones: standardised Z+jets network-1 features (9 dims,
3-way one-hot multiplicity, ``zjets.chain.network_dims``), tHj pairs with on-shell t, H, q, p_T balance
and reco objects inside the Table 6.1 selection of a leptonic ``RecoLayout``, Eq 4.17 classifier
features, and the Drell-Yan + Z′ integrand of §5.2.3. Nothing is read from ``results/``.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.classifier.features import zjets_features
from lhcflow.classifier.train import ClassifierConfig, fit
from lhcflow.data.events import EventBatch
from lhcflow.mem.features import hard_features
from lhcflow.physics.kinematics import to_ptetaphim
from lhcflow.mem.integration import MemIntegrand, MemSettings, integrate_events
from lhcflow.mem.sampling import SamplingNetwork, sampling_context
from lhcflow.mem.thj_integrand import fiducial_sigma, hard_terms_function
from lhcflow.mem.transfer import build_transfer, layout_of, reco_rows, selection_bounds
from lhcflow.models import bayesian_mode, build_generator
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.thj.matrix_element import cp_factors
from lhcflow.thj.cross_section import cross_section_from_config
from lhcflow.training.trainer import TrainingConfig, TrainingData, train
from lhcflow.zjets.chain import network_dims

#: relative jitter of the fixed weights (see :func:`jitter`)
JITTER = 0.1
#: RK4 steps of the CFM densities in the agreement check: the comparison is of the same arithmetic
#: repeated fewer times; throughput is measured at the configured number of steps.
AGREEMENT_ODE_STEPS = 5
SLOTS = ("a1", "a2", "b", "mu", "j1", "j2", "j3")  # leptonic tHj: 5 required objects, 2 extra-jet slots
BRANCHING_RATIO = 2.5e-4
#: Eq 6.3 coefficients [pb] of the synthetic σ_fid(α) (a normalisation, the same on every device)
FIDUCIAL = {"A": 1.0, "B": 2.0, "C": 0.5, "D": 0.1, "E": 0.05}


def jitter(module: torch.nn.Module, seed: int, scale: float = JITTER) -> None:
    """Add seeded Gaussian noise, drawn on the CPU, to every floating parameter of ``module``: ``scale`` × the
    tensor's RMS, or ``scale``/10 absolute for an all-zero tensor (the zero-initialised last layers of the flows
    and of the channel-weight network, zero biases). Every part of the network becomes generic while its
    conditioning stays near that of an initialised one (an absolute 0.02 on every weight, tried first, moved
    the paper-size Transfermer's float32 log-density by up to 0.30 from float64 on the CPU; this, by 0.05)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                rms = float(p.double().square().mean().sqrt()) if p.numel() else 0.0
                size = scale * rms if rms > 0 else scale / 10
                p.add_(size * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p))


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_generic(model, data: TrainingData, training: Mapping, device: torch.device, name: str) -> None:
    """One epoch of the project's generator trainer over ``data`` (= the requested number of steps)."""
    cfg = TrainingConfig.from_dict({**training, "epochs": 1, "seed": 0, "device": str(device)})
    with tempfile.TemporaryDirectory() as tmp:
        train(model, data, cfg, Path(tmp) / "check.ckpt", progress=False, name=name)


class _Inputs:
    """Inputs of the throughput calls, made once per (device, n) so that the timed calls only compute."""

    def __init__(self, make: Callable[[int], tuple[torch.Tensor, ...]]):
        self.make, self.cache = make, {}

    def __call__(self, device: torch.device, n: int) -> tuple[torch.Tensor, ...]:
        key = (str(device), n)
        if key not in self.cache:
            self.cache = {key: tuple(t.to(device) for t in self.make(n))}  # keep one size at a time
        return self.cache[key]


def _tile(rng: np.random.Generator, n: int, *arrays: np.ndarray) -> list[np.ndarray]:
    idx = rng.integers(len(arrays[0]), size=n)
    return [a[idx] for a in arrays]


@dataclass
class Kind:
    """One network kind of the check (see the module docstring)."""

    name: str
    description: str
    sizes: dict[str, Any]
    batch_size: int | None                       # training batch; None: not trained here
    produce_what: str
    produce_target: dict[str, int]               # large batch per device type
    build: Callable[[bool], Any]
    train: Callable[[Any, torch.device, int], None] | None
    produce: Callable[[Any, torch.device, int], int]   # returns the number actually produced
    evaluate: Callable[[Any, torch.device, torch.dtype], dict[str, torch.Tensor]]
    n_parameters: Callable[[Any], int] = field(default=lambda m: sum(p.numel() for p in m.parameters()))


# ----------------------------------------------------------------------------------- Z+jets generators

def zjets_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network-1 inputs: (n, 9) correlated standardised features whose mean depends on the one-hot
    multiplicity condition (n, 3), multiplicities 1/2/3 in the proportions 0.6/0.3/0.1."""
    dims, dims_c = network_dims(1)
    rng = np.random.default_rng(seed)
    n_jets = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    cond = (n_jets[:, None] == np.arange(1, dims_c + 1)[None, :]).astype(np.float64)
    mix = np.linalg.cholesky(0.5 * np.eye(dims) + 0.5 / dims)
    x = rng.normal(size=(n, dims)) @ mix.T + 0.3 * (n_jets[:, None] - 1.5)
    return x, cond, n_jets


def generator_kind(kind: str, model_cfg: Mapping, seed: int = 1) -> Kind:
    dims, dims_c = network_dims(1)
    network, training = dict(model_cfg["network"]), dict(model_cfg["training"])
    x_fix, c_fix, _ = zjets_inputs(128 if kind == "cfm" else 256, seed + 100)  # a CFM density costs 10³ passes

    def build(jittered: bool):
        torch.manual_seed(seed)
        model = build_generator(kind, dims, dims_c, **network)
        if jittered:
            jitter(model, seed)
        return model

    def train_steps(model, device, steps):
        x, c, n_jets = zjets_inputs(steps * training["batch_size"], seed + 200)
        _train_generic(model, TrainingData(x, c, group=n_jets), training, device, f"{kind} network 1")

    conditions = _Inputs(lambda n: (torch.as_tensor(zjets_inputs(n, seed + 300)[1], dtype=torch.float32),))

    def produce(model, device, n):
        model.to(device).eval()
        (c,) = conditions(device, n)
        with bayesian_mode(model, "map"), torch.no_grad():
            model.sample(c)
        return n

    def evaluate(model, device, dtype):
        model = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        x, c = (torch.as_tensor(a, dtype=torch.float64).to(device, dtype) for a in (x_fix, c_fix))
        with bayesian_mode(model, "map"), torch.no_grad():
            if kind == "cfm":
                log_p = model.log_prob(x, c, steps=AGREEMENT_ODE_STEPS)
            else:
                log_p = model.log_prob(x, c)
        return {"log_prob": _f64(log_p)}

    what = "events sampled by network 1 (9 dims" + (f", RK4 with {network.get('steps', 50)} steps)" if kind == "cfm" else ")")
    return Kind(f"zjets_{kind}", f"Z+jets {kind.upper()} network 1 (dims {dims}, condition {dims_c}), build_generator",
                {"network": network, "training": training}, int(training["batch_size"]), what,
                {"cuda": 2**18, "cpu": 2**16}, build, train_steps, produce, evaluate)


# ----------------------------------------------------------------------------------- tHj pairs

def _on_shell(p3: np.ndarray, m: float | np.ndarray) -> np.ndarray:
    return np.concatenate([np.sqrt((p3**2).sum(-1, keepdims=True) + np.square(m)), p3], -1)


def paired_like(n: int, seed: int, masses: tuple[float, float] = (173.0, 125.0)) -> dict[str, Any]:
    """Accepted tHj pairs as :func:`lhcflow.mem.data.read_paired_events` returns them: on-shell t, H and a
    massless light quark with p_T balance (x_hard); reco photons (from H), b and μ (from t) and the leading
    jet (from q) smeared by 10 %, 0-2 extra jets; every required object inside the default Table 6.1
    selection of the leptonic ``RecoLayout``, extra jets only where inside it."""
    rng = np.random.default_rng(seed)
    probe = {"attrs": {"x_reco_slots": list(SLOTS), "decay": "leptonic", "selection": {}}}
    layout = layout_of(probe)
    pt_min, eta_max = (np.asarray(b) for b in selection_bounds(probe, layout))
    parts, have = [], 0
    while have < n:
        m = 4 * (n - have) + 64
        pt, ph = rng.normal(0, 90, (m, 3)), rng.normal(0, 90, (m, 3))
        pj = np.concatenate([-(pt[:, :2] + ph[:, :2]), rng.normal(0, 150, (m, 1))], 1)
        x_hard = np.stack([_on_shell(pt, masses[0]), _on_shell(ph, masses[1]), _on_shell(pj, 0.0)], 1)
        x_reco = np.zeros((m, len(SLOTS), 4))
        share = rng.uniform(0.3, 0.7, (m, 1))
        sources = [(ph * share, 0.0), (ph * (1 - share), 0.0), (pt * 0.45, 5.0), (pt * 0.35, 0.0), (pj, 8.0)]
        for slot, (p3, mass) in enumerate(sources):
            x_reco[:, slot] = _on_shell(p3 * rng.normal(1, 0.1, (m, 1)), mass)
        present = np.zeros((m, len(SLOTS)), bool)
        present[:, :5] = True
        n_extra = rng.choice([0, 1, 2], size=m, p=[0.5, 0.3, 0.2])
        for k, slot in enumerate((5, 6)):
            extra = _on_shell(rng.normal(0, 40, (m, 3)), rng.uniform(2, 10, (m, 1)))
            obj = to_ptetaphim(extra)
            keep = (n_extra > k) & (obj[:, 0] > pt_min[slot]) & (np.abs(obj[:, 1]) < eta_max[slot])
            keep &= present[:, slot - 1]  # extra jets fill a prefix of the extra slots
            present[:, slot] = keep
            x_reco[:, slot] = np.where(keep[:, None], extra, 0.0)
        obj = to_ptetaphim(x_reco[:, :5])
        inside = ((obj[..., 0] > pt_min[:5]) & (np.abs(obj[..., 1]) < eta_max[:5])).all(1)
        inside &= (obj[:, [2, 4], 3] > 0).all(1)
        x_reco, x_hard, present = x_reco[inside], x_hard[inside], present[inside]
        parts.append((x_hard, x_reco, present))
        have += len(x_hard)
    x_hard, x_reco, present = (np.concatenate(a)[:n] for a in zip(*parts))
    return {"alpha": rng.uniform(-np.pi, np.pi, n), "x_hard": x_hard, "x_reco": x_reco,
            "x_reco_ptetaphim": np.where(present[..., None], to_ptetaphim(x_reco), 0.0), "x_reco_present": present,
            "n_extra_jets": present[:, 5:].sum(1), "accepted": np.ones(n, bool), "g": rng.random((n, 5)),
            "weight": np.full(n, 1e-3), "split": np.zeros(n, np.int8),
            "attrs": {"x_reco_slots": list(SLOTS), "decay": "leptonic", "selection": {}, "splits": ["train"],
                      "branching_ratio": BRANCHING_RATIO}}


POOL = 20_000  # synthetic pairs per pool; larger requests resample it


def transfer_kind(name: str, spec: Mapping, seed: int = 2) -> Kind:
    """``cinn`` (Table A.7), ``transfermer`` (A.10) or ``transfusion`` (A.11) transfer p_θ(x_reco|x_hard)."""
    pool = paired_like(POOL, seed)
    masses = (173.0, 125.0)
    hard = hard_features(pool["x_hard"])
    training = dict(spec["training"])

    rows: list[np.ndarray] = []  # reco rows of the pool: the same for every network of this kind

    def build(jittered: bool):
        torch.manual_seed(seed)
        net = build_transfer(spec, pool, masses)
        rows[:] = rows or [reco_rows(net, pool)]
        net.fit_preprocessing(rows[0], hard)
        if jittered:
            jitter(net, seed)
        return net

    def train_steps(net, device, steps):
        x_reco, x_hard = _tile(np.random.default_rng(seed + 1), steps * training["batch_size"], rows[0], hard)
        x, c = net.training_arrays(x_reco, x_hard)
        _train_generic(net.training_view(), TrainingData(x, c), training, device, f"transfer {name}")

    def _inputs(n: int, rng_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(reco rows, x_hard) of n pairs, float64 on the CPU (rows stay float64: the selection map needs
        pT − pT_min; x_hard goes to the network's dtype)."""
        x_reco, x_hard = _tile(np.random.default_rng(rng_seed), n, rows[0], hard)
        return torch.as_tensor(x_reco, dtype=torch.float64), torch.as_tensor(x_hard, dtype=torch.float64)

    sampled = _Inputs(lambda n: _inputs(n, seed + 3))

    def produce(net, device, n):
        net.to(device).eval()
        x_reco, x_hard = sampled(device, n)
        with torch.no_grad():
            net.log_prob(x_reco, x_hard.to(next(net.parameters()).dtype))
        return n

    def evaluate(net, device, dtype):
        net = copy.deepcopy(net).to(device=device, dtype=dtype).eval()
        if net.kind == "transfusion":
            net.generator.head.jet.steps = net.generator.head.onshell.steps = AGREEMENT_ODE_STEPS
        x_reco, x_hard = _inputs(128 if net.kind == "transfusion" else 256, seed + 4)
        with torch.no_grad():
            log_p = net.log_prob(x_reco.to(device, torch.float64 if net.flat else dtype), x_hard.to(device, dtype))
        return {"log_prob": _f64(log_p)}

    target = {"cuda": 2**13 if spec["kind"] == "transfusion" else 2**16,
              "cpu": 2**10 if spec["kind"] == "transfusion" else 2**14}
    return Kind(f"transfer_{name}", f"MEM transfer {spec['kind']} p(x_reco|x_hard), leptonic tHj layout {SLOTS}",
                {"network": dict(spec.get("network", {})), "training": training}, int(training["batch_size"]),
                "transfer densities log p(x_reco|x_hard) evaluated", target, build, train_steps, produce, evaluate)


def _sampler_inputs(pool: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    layout = layout_of(pool)
    return sampling_context(layout, pool), hard_features(pool["x_hard"])


def sampling_kind(spec: Mapping, seed: int = 3) -> Kind:
    """Sampling-cINN q_φ(x_hard | x_reco, α) (Table A.7), trained on true pairs (Eq 6.36)."""
    pool = paired_like(POOL, seed)
    context_raw, hard = _sampler_inputs(pool)
    network, training = dict(spec["network"]), dict(spec["training"])

    context: list[torch.Tensor] = []  # standardised pool conditions: the same for every network (same fit)

    def build(jittered: bool):
        torch.manual_seed(seed)
        net = SamplingNetwork(context_raw.shape[1], network)
        net.fit_preprocessing(context_raw, hard)
        context[:] = context or [net.context(context_raw)]  # on the CPU, before the network moves
        if jittered:
            jitter(net, seed)
        return net

    def train_steps(net, device, steps):
        ctx, x_hard, alpha = _tile(np.random.default_rng(seed + 1), steps * training["batch_size"], context_raw,
                                   hard, pool["alpha"])
        x, c = net.training_arrays(ctx, x_hard, alpha)
        _train_generic(net.inn, TrainingData(x, c), training, device, "sampling cINN")

    def _inputs(n: int, rng_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent r ~ N(0, 1), the conditions of n pool events and α uniform in [−π, π), on the CPU."""
        gen = torch.Generator().manual_seed(rng_seed)
        idx = torch.randint(len(context_raw), (n,), generator=gen)
        r = torch.randn(n, 7, generator=gen, dtype=torch.float64)
        alpha = (2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1) * math.pi
        return r, context[0][idx], alpha

    sampled = _Inputs(lambda n: _inputs(n, seed + 3))

    def produce(net, device, n):
        net.to(device).eval()
        with torch.no_grad():
            net.sample(*sampled(device, n))
        return n

    def evaluate(net, device, dtype):
        net = copy.deepcopy(net).to(device=device, dtype=dtype).eval()
        r, ctx, alpha = (t.to(device) for t in _inputs(256, seed + 4))
        with torch.no_grad():
            x, log_q = net.sample(r, ctx, alpha)
        return {"log_q": _f64(log_q), "x_hard_over_100gev": _f64(x) / 100.0}

    return Kind("sampling_cinn", f"MEM Sampling-cINN q(x_hard|x_reco, α), condition {context_raw.shape[1]} + 2",
                {"network": network, "training": training}, int(training["batch_size"]),
                "x_hard sampled with log q (latent r -> x_hard)", {"cuda": 2**16, "cpu": 2**14}, build,
                train_steps, produce, evaluate)


# ----------------------------------------------------------------------------------- classifier

def classifier_inputs(n: int, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features of two classes whose means differ by 0.3 in every feature."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    return (rng.normal(size=(n, dims)) + 0.3 * y[:, None]).astype(np.float32), y


def classifier_kind(cfg: Mapping, seed: int = 4) -> Kind:
    """Table A.2 classifier on the Eq 4.17 Z+jets features (their count from ``zjets_features``)."""
    dims = len(zjets_features(EventBatch.empty(2, 5))[1])
    network, training = dict(cfg["network"]), dict(cfg["training"])
    x_fix, _ = classifier_inputs(4096, dims, seed + 100)

    def config(device) -> ClassifierConfig:
        return ClassifierConfig.from_dict({**network, **training, "epochs": 1, "seed": 0, "device": str(device)})

    def build(jittered: bool):
        torch.manual_seed(seed)
        model = config("cpu").network(dims, 1)
        if jittered:
            jitter(model, seed)
        return model

    def train_steps(model, device, steps):
        x, y = classifier_inputs(steps * training["batch_size"], dims, seed + 200)
        loss = lambda logits, labels: torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels, reduction="none")
        fit(model, (x, y, np.ones(len(x))), None, loss, config(device), progress=False, name="classifier")

    features = _Inputs(lambda n: (torch.as_tensor(classifier_inputs(n, dims, seed + 300)[0]),))

    def produce(model, device, n):
        model.to(device).eval()
        (x,) = features(device, n)
        with torch.no_grad():
            torch.sigmoid(model(x))
        return n

    def evaluate(model, device, dtype):
        model = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        with torch.no_grad():
            logit = model(torch.as_tensor(x_fix, dtype=torch.float64).to(device, dtype))
        return {"logit": _f64(logit)}

    return Kind("classifier", f"classifier (Eq 4.17 Z+jets features, {dims} inputs), binary cross-entropy",
                {"network": network, "training": training}, int(training["batch_size"]),
                "classifier outputs D(x) evaluated", {"cuda": 2**20, "cpu": 2**17}, build, train_steps, produce,
                evaluate)


# ----------------------------------------------------------------------------------- MadNIS

_CACHE: dict[tuple[str, str], Any] = {}


def _cached(what: str, device: torch.device, make: Callable[[], Any]) -> Any:
    """Integrands with PDF grids are built once per device (loading a grid takes seconds)."""
    key = (what, str(device))
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _drell_yan(device: torch.device):
    return _cached("drell_yan", device, lambda: drell_yan_integrand(channels=("photon", "z", "zprime"),
                                                                    prior="mg5", device=device))


class _Madnis:
    """Holder of a MadNIS integrator of the Drell-Yan + Z′ integrand (None until built or trained)."""

    def __init__(self, integ: MadnisIntegrator | None = None):
        self.integ = integ

    def parameters(self):
        return iter(()) if self.integ is None else self.integ.integrator.parameters()


def madnis_kind(config: Mapping, seed: int = 5) -> Kind:
    """MadNIS (the ``config`` flow and channel-weight network, e.g. Table A.5) on the Drell-Yan + Z′
    integrand with the MG5 prior."""
    cfg = dict(config)

    def integrator(device: torch.device, dtype: str) -> MadnisIntegrator:
        return MadnisIntegrator(_drell_yan(device), {**cfg, "dtype": dtype}, device=device, seed=seed)

    def build(jittered: bool):
        if not jittered:
            return _Madnis()  # train() builds it on the device
        obj = _Madnis(integrator(torch.device("cpu"), "float64"))
        jitter(obj.integ.integrator, seed)
        return obj

    def train_steps(obj, device, steps):
        obj.integ = integrator(device, "float32")
        obj.integ.train(steps=steps, progress=False)

    def produce(obj, device, n):
        if obj.integ is None or obj.integ.device != device:
            raise RuntimeError("MadNIS throughput needs the integrator trained on the same device first")
        obj.integ.sample_weighted(n, seed=seed + 3, batch_size=n)
        return n

    def evaluate(obj, device, dtype):
        """Integral Σ_i ⟨α_iξ f/(g_i q_i)⟩ from one fixed latent sample per channel (drawn on the CPU), and
        the log-weights of its points, with the weights of ``obj`` on (device, dtype)."""
        other = integrator(device, str(dtype).removeprefix("torch."))
        other.integrator.load_state_dict(obj.integ.integrator.state_dict())
        flow = other.integrator.flow
        gen = torch.Generator().manual_seed(seed + 4)
        total, log_w = torch.zeros((), dtype=torch.float64), []
        with torch.no_grad():
            for channel in range(other.n_channels):
                shape = (2048, other.unit_dim)
                z = torch.rand(shape, generator=gen, dtype=torch.float64) if flow.uniform_latent \
                    else torch.randn(shape, generator=gen, dtype=torch.float64)
                r, _ = flow.transform(z.to(device, dtype), channel=channel, inverse=True)
                log_q = flow.log_prob(r, channel=channel)
                f_over_g, x, _ = other.evaluator(r, channel)
                alpha = other.channel_weights(x)[:, channel]
                w = _f64(alpha * f_over_g) * torch.exp(-_f64(log_q))
                total = total + w.mean()
                log_w.append(torch.log(w))
        return {"integral_pb": total.reshape(1), "log_weight": torch.cat(log_w)}

    def n_parameters(obj) -> int:
        return sum(p.numel() for p in obj.parameters())

    return Kind("madnis", "MadNIS on Drell-Yan + Z' (photon, Z, Z' channels, MG5 prior), lhcflow.nis wrapper",
                {"config": cfg}, int(cfg["batch_size"]),
                "weighted events (flow sample + integrand + channel weights)", {"cuda": 2**18, "cpu": 2**15},
                build, train_steps, produce, evaluate, n_parameters)


# ----------------------------------------------------------------------------------- MEM integration

class _Mem:
    """Transfer cINN + Sampling-cINN + tHj dσ (PDFs) = the Eq 6.35 integrand of ``integrate_events``."""

    def __init__(self, transfer, sampler, pool, context_raw, fiducial_path: Path):
        self.transfer, self.sampler, self.pool, self.context_raw = transfer, sampler, pool, context_raw
        self.fiducial_path = fiducial_path

    def parameters(self):
        yield from self.transfer.parameters()
        yield from self.sampler.parameters()

    def integrate(self, device: torch.device, dtype: torch.dtype, n_events: int, settings: MemSettings):
        transfer = copy.deepcopy(self.transfer).to(device=device, dtype=dtype).eval()
        sampler = copy.deepcopy(self.sampler).to(device=device, dtype=dtype).eval()
        xs = _cached("thj_cross_section", device, lambda: cross_section_from_config({}, str(device)))
        _, sigma_fid = fiducial_sigma(self.fiducial_path)

        @torch.no_grad()
        def transfer_log_prob(reco, x_hard):
            return transfer.log_prob_replicas(reco, x_hard.to(dtype)).to(torch.float64)

        integrand = MemIntegrand(hard_terms=hard_terms_function(xs, BRANCHING_RATIO),
                                 f_terms=lambda a: cp_factors(a).to(a.device),
                                 transfer_log_prob=transfer_log_prob, sigma_fid=sigma_fid)
        reco = torch.as_tensor(reco_rows(self.transfer, self.pool)[:n_events], dtype=torch.float64)
        context = self.sampler.context(self.context_raw[:n_events])  # the CPU copy: integrate_events moves it
        return integrate_events(integrand, sampler, reco, context, settings, device=device)


def mem_kind(transfer_spec: Mapping, sampling_spec: Mapping, batch_size: int, workdir: Path, seed: int = 6) -> Kind:
    """One MEM integration (Eq 6.35, two-network setup) with the cINN transfer and the Sampling-cINN."""
    pool = paired_like(512, seed)
    context_raw, hard = _sampler_inputs(pool)
    fiducial = workdir / "fiducial.json"
    fiducial.write_text(json.dumps({"fit": {"parameters": FIDUCIAL}}))
    alpha_grid = tuple(np.radians([-90.0, -45.0, 0.0, 45.0, 90.0]))

    def build(jittered: bool):
        torch.manual_seed(seed)
        transfer = build_transfer(transfer_spec, pool, (173.0, 125.0))
        transfer.fit_preprocessing(reco_rows(transfer, pool), hard)
        sampler = SamplingNetwork(context_raw.shape[1], sampling_spec["network"])
        sampler.fit_preprocessing(context_raw, hard)
        if jittered:
            jitter(transfer, seed)
            jitter(sampler, seed + 1)
        return _Mem(transfer, sampler, pool, context_raw, fiducial)

    def produce(mem, device, n):
        events = max(1, n // batch_size)
        settings = MemSettings(batch_size=batch_size, min_iterations=1, max_iterations=1, bootstrap_replicas=100,
                               alpha_grid=alpha_grid, seed=seed)
        mem.integrate(device, torch.float32, events, settings)
        return events * batch_size

    def evaluate(mem, device, dtype):
        settings = MemSettings(batch_size=1024, min_iterations=1, max_iterations=1, bootstrap_replicas=10,
                               alpha_grid=alpha_grid, seed=seed)
        result = mem.integrate(device, dtype, 2, settings)
        return {"log_likelihood": torch.as_tensor(result.log_likelihood(np.asarray(alpha_grid))).reshape(-1)}

    def n_parameters(mem) -> int:
        return sum(p.numel() for p in mem.parameters())

    return Kind("mem_integration", "MEM integration (integrate_events): cINN transfer + Sampling-cINN + tHj dσ with "
                f"PDFs, {batch_size} samples per event, 1 iteration, 100 bootstrap replicas, 5 α points",
                {"transfer": dict(transfer_spec["network"]), "sampling": dict(sampling_spec["network"]),
                 "samples_per_event": batch_size}, None,
                "integrand samples (events × samples per event)", {"cuda": 32 * batch_size, "cpu": 2 * batch_size},
                build, None, produce, evaluate, n_parameters)
