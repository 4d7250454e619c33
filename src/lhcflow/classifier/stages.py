"""The classifier chains as workflow stages.

The classifier metric of the Z+jets generators (thesis §4.4): train on truth vs generated, evaluate,
reweight. Truth is label 1, generated label 0; w = D/(1−D) (Eq. 4.16) reweights generated events towards
the truth. Both samples are split by a seeded hash into a classifier-training and a held-out half; every
weight, ROC curve and plot is computed on the held-out halves only.

The classifiers on hard-scattering momenta (thesis §6.4.2, §6.5.2, Table A.8; :mod:`lhcflow.classifier.hard`):
training and evaluation (Figs 6.15, 6.20) on the hard dataset of a generated sample
(:func:`lhcflow.data.stages.hard_dataset_stage`, which runs without torch) or of the tHj chain
(:func:`lhcflow.mem.stages.hard_dataset_stage`).

Every stage takes one frozen settings object (built once from the validated config by its ``from_config``)
and its files as keyword-only arguments, and returns a frozen result.

* :func:`train_stage`, :func:`evaluate_stage`, :func:`reweight_stage` — the classifier metric.
* :func:`train_hard_stage`, :func:`evaluate_hard_stage` — the hard classifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lhcflow.atomic import write_json
from lhcflow.classifier.features import FeatureScaler
from lhcflow.classifier.hard import (
    KINDS,
    binned_agreement,
    hard_features,
    hard_observables,
    observable_values,
    task_data,
)
from lhcflow.classifier.metric import (
    bayesian_pull,
    features,
    held_out,
    holdout_mask,
    reweighted_deviations,
    weight_quantiles,
)
from lhcflow.classifier.train import (
    ClassifierConfig,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
    train_multiclass,
)
from lhcflow.classifier.weights import auc, calibration_curve
from lhcflow.data.events import read_events, read_info, write_events
from lhcflow.settings import Settings
from lhcflow.zjets.chain import MagicSettings, ModelSettings, load_chain
from lhcflow.zjets.magic import require_normalised_weights

# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TrainSettings(Settings):
    """The truth-vs-generated classifier (``classifier``: ``dr_cutoff``, ``network``, ``training``) and
    ``seed`` (of the held-out halves and the training)."""

    config_key = "classifier"

    dr_cutoff: float
    seed: int
    network: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluateSettings(Settings):
    """``seed`` of the held-out halves, figures in ``fmt``; with the Bayesian ``generator`` (kind binn) and
    its ``magic`` settings also the mixed pull of Eq 4.18 over ``n_replicas`` network draws."""

    seed: int
    fmt: str = "png"
    generator: ModelSettings | None = None
    magic: MagicSettings | None = None
    n_replicas: int = 10


@dataclass(frozen=True)
class ReweightSettings(Settings):
    """``seed`` of the held-out halves."""

    seed: int


@dataclass(frozen=True)
class HardTrainSettings(Settings):
    """A hard classifier ``task`` (``kind`` acceptance or multiplicity, ``n_min``/``n_max``, ``network``,
    ``training``; stored with the model) and ``seed``."""

    task: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class HardEvaluateSettings(Settings):
    """Figures in ``fmt`` with the LaTeX ``slot_labels`` of the hard particles."""

    fmt: str = "png"
    slot_labels: Sequence[str] = ()


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TrainResult:
    """Events trained on per class and the written history."""

    n_truth: int
    n_generated: int
    history: Mapping[str, Any]


@dataclass(frozen=True)
class EvaluateResult:
    """Held-out AUC, quantiles of the generated events' weights w, and all written metrics."""

    auc: float
    weights_generated: Mapping[str, float]
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class ReweightResult:
    """Reweighted (held-out generated) events written."""

    n_events: int


@dataclass(frozen=True)
class HardTrainResult:
    """Training and validation events and the written history."""

    n_train: int
    n_val: int
    history: Mapping[str, Any]


@dataclass(frozen=True)
class HardEvaluateResult:
    """The written metrics (learned vs true probabilities, per-observable agreement)."""

    kind: str
    n_test: int
    metrics: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- classifier metric


def train_stage(settings: TrainSettings, *, truth: str | Path, generated: str | Path, out_model: str | Path,
                out_history: str | Path, checkpoint: str | Path | None = None,
                progress: bool = True) -> TrainResult:
    """Train the truth-vs-generated classifier on the non-held-out halves (generated events keep
    their magic-transformation weights ``⟨f⟩_n f̄`` as sample weights; files without the
    ``⟨f⟩_n`` normalisation are refused); a rerun after a kill resumes from ``checkpoint``."""
    seed, dr_cutoff = settings.seed, settings.dr_cutoff
    require_normalised_weights(generated, read_info(generated).provenance)
    truth_events, generated_events = read_events(truth), read_events(generated)
    keep_t = ~holdout_mask(len(truth_events), seed)
    keep_g = ~holdout_mask(len(generated_events), seed + 1)
    x_t = features(truth_events.select(keep_t), dr_cutoff)
    x_g = features(generated_events.select(keep_g), dr_cutoff)
    w_t, w_g = truth_events.weight[keep_t], generated_events.weight[keep_g]
    scaler = FeatureScaler.fit(np.concatenate([x_t, x_g]), np.concatenate([w_t, w_g]))
    config = ClassifierConfig.from_dict({**settings.network, **settings.training, "seed": seed})
    model, history = train_classifier(scaler.transform(x_t), scaler.transform(x_g), w_t, w_g, config,
                                      checkpoint=checkpoint, progress=progress, name="classifier")
    save_classifier(out_model, model, extra={"scaler": scaler.state_dict(), "dr_cutoff": dr_cutoff})
    summary = {**history.__dict__, "n_truth": int(keep_t.sum()), "n_generated": int(keep_g.sum())}
    write_json(out_history, summary)
    return TrainResult(summary["n_truth"], summary["n_generated"], summary)


def evaluate_stage(settings: EvaluateSettings, *, truth: str | Path, generated: str | Path, model: str | Path,
                   out_dir: str | Path, out_metrics: str | Path, train: str | Path | None = None,
                   preprocessing: str | Path | None = None,
                   nets: Sequence[str | Path] = ()) -> EvaluateResult:
    """ROC and AUC, weight distributions, calibration, reweighted observables and weight
    clusters (Figs. 4.8-4.12) on the held-out halves; metrics as JSON. For a Bayesian generator (kind
    binn, its chain loaded from ``preprocessing`` and ``nets``), also the mixed pull of Eq. 4.18 and the
    correlation of w with the relative density error over ``n_replicas`` network draws (Fig. 4.13). With
    ``train``, the bulk deviation from the held-out truth of the generated, the reweighted and the
    training events (the Train/Truth floor of the same truth events) per Fig. 4.4 observable."""
    from lhcflow.classifier import plots
    from lhcflow.physics.metrics import zjets_benchmark_observables

    seed, fmt = settings.seed, settings.fmt
    bayesian_chain = None
    if settings.generator is not None and settings.generator.kind == "binn":
        if settings.magic is None or preprocessing is None or not nets:
            raise ValueError("the Bayesian pull of a binn generator needs its magic settings, preprocessing "
                             "file and networks")
        bayesian_chain = load_chain(settings.generator, settings.magic, preprocessing, nets)
    s = held_out(truth, generated, model, seed)
    wt_t, wt_g = s["truth"].weight, s["generated"].weight
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots.plot_roc({"truth vs generated": (s["D_truth"], s["D_generated"], wt_t, wt_g)}, out_dir / f"roc.{fmt}")
    for log_x in (False, True):
        plots.plot_weight_distribution(s["w_truth"], s["w_generated"], out_dir / f"weights{'_log' if log_x else ''}.{fmt}",
                                       log_x=log_x)
    labels = np.r_[np.ones(len(s["D_truth"])), np.zeros(len(s["D_generated"]))]
    plots.plot_calibration(np.r_[s["D_truth"], s["D_generated"]], labels, out_dir / f"calibration.{fmt}",
                           weights=np.r_[wt_t, wt_g])
    for obs in zjets_benchmark_observables():
        plots.plot_reweighted(obs, s["truth"], s["generated"], wt_g * s["w_generated"],
                              out_dir / f"reweighted_{obs.name}.{fmt}")
        plots.plot_weight_clusters(obs, s["truth"], s["generated"], s["w_truth"], s["w_generated"],
                                   out_dir / f"clusters_{obs.name}.{fmt}")
    metrics = {
        "auc": auc(s["D_truth"], s["D_generated"], wt_t, wt_g),
        "n_truth": len(s["truth"]), "n_generated": len(s["generated"]),
        "weights_generated": weight_quantiles(s["w_generated"], wt_g),
        "weights_truth": weight_quantiles(s["w_truth"], wt_t),
        "calibration": dict(zip(("mean_D", "fraction", "total"),
                                (a.tolist() for a in calibration_curve(np.r_[s["D_truth"], s["D_generated"]],
                                                                       labels, np.r_[wt_t, wt_g], bins=10)))),
        "generator": read_info(generated).provenance,
    }
    if train is not None:
        metrics["bulk_deviation"] = reweighted_deviations(s, read_events(train),
                                                          zjets_benchmark_observables())
    if bayesian_chain is not None:
        metrics["bayesian"] = bayesian_pull(bayesian_chain, s, settings.n_replicas, seed,
                                            out_dir / f"bayesian_pull.{fmt}")
    write_json(out_metrics, metrics)
    return EvaluateResult(metrics["auc"], metrics["weights_generated"], metrics)


def reweight_stage(settings: ReweightSettings, *, truth: str | Path, generated: str | Path, model: str | Path,
                   out: str | Path) -> ReweightResult:
    """The held-out generated events with their weights multiplied by the classifier weight."""
    s = held_out(truth, generated, model, settings.seed)
    events = s["generated"]
    events.weight[:] = events.weight * s["w_generated"]
    info = read_info(generated)
    info.provenance = {**info.provenance, "classifier": str(model), "reweighted": True}
    info.split = "generated_reweighted"
    write_events(out, events, info)
    return ReweightResult(len(events))


# ----------------------------------------------------------------------------------------- hard classifiers


def train_hard_stage(settings: HardTrainSettings, *, dataset: str | Path, out_model: str | Path,
                     out_history: str | Path, checkpoint: str | Path | None = None,
                     progress: bool = True) -> HardTrainResult:
    """Train the task's classifier on the train split, validated on the val split; a rerun after a kill
    resumes from ``checkpoint``."""
    task, seed = settings.task, settings.seed
    if task["kind"] not in KINDS:
        raise ValueError(f"hard classifier kind must be one of {KINDS}, got {task['kind']!r}")
    from lhcflow.data.hard import read_hard_dataset

    ds = read_hard_dataset(dataset)
    train, y_train = task_data(ds.of_split("train"), task)
    val, y_val = task_data(ds.of_split("val"), task)
    if len(train) == 0:
        raise ValueError(f"{dataset}: no training events for the {task['kind']} classifier")
    x_train, names = hard_features(train)
    scaler = FeatureScaler.fit(x_train, train.weight, names)
    x_train, x_val = scaler.transform(x_train), scaler.transform(hard_features(val)[0])
    cfg = ClassifierConfig.from_dict({**task.get("network", {}), **task.get("training", {}), "seed": seed})
    if task["kind"] == "acceptance":
        a, b = y_train == 1, y_train == 0
        va, vb = y_val == 1, y_val == 0
        model, history = train_classifier(
            x_train[a], x_train[b], train.weight[a], train.weight[b], cfg, checkpoint=checkpoint,
            val=(x_val[va], x_val[vb], val.weight[va], val.weight[vb]), balance=False, progress=progress,
            name="acceptance")
    else:
        n_classes = task["n_max"] - task["n_min"] + 1
        model, history = train_multiclass(x_train, y_train, n_classes, train.weight, cfg, checkpoint=checkpoint,
                                          val=(x_val, y_val, val.weight), progress=progress, name="multiplicity")
    save_classifier(out_model, model, extra={"scaler": scaler.state_dict(), "task": dict(task)})
    summary = {**history.as_dict(), "n_train": len(train), "n_val": len(val)}
    write_json(out_history, summary)
    return HardTrainResult(summary["n_train"], summary["n_val"], summary)


def evaluate_hard_stage(settings: HardEvaluateSettings, *, dataset: str | Path, model: str | Path,
                        out_dir: str | Path, out_metrics: str | Path | None = None) -> HardEvaluateResult:
    """Fig 6.15 / 6.20 analogues on the test split, plus summary metrics (written to ``out_metrics``)."""
    from lhcflow.classifier.plots import plot_class_probabilities
    from lhcflow.data.hard import read_hard_dataset

    fmt, slot_labels = settings.fmt, settings.slot_labels
    network, extra = load_classifier(model)
    task = extra["task"]
    scaler = FeatureScaler.from_state(extra["scaler"])
    test, labels = task_data(read_hard_dataset(dataset).of_split("test"), task)
    P = predict(network, scaler.transform(hard_features(test)[0]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_slots = test.hard.shape[1]
    slot_labels = list(slot_labels or [])[:n_slots] + [f"{i + 1}" for i in range(len(slot_labels or []), n_slots)]
    if task["kind"] == "acceptance":
        names = ["acceptance"]
        metrics = {"acceptance_true": float(np.average(labels, weights=test.weight)),
                   "acceptance_learned": float(np.average(P, weights=test.weight)),
                   "auc": auc(P[labels == 1], P[labels == 0], test.weight[labels == 1], test.weight[labels == 0])}
    else:
        names = [f"$n_j = {n}$" for n in range(task["n_min"], task["n_max"])] + [rf"$n_j \geq {task['n_max']}$"]
        metrics = {"fractions_true": np.bincount(labels, test.weight, P.shape[1]) / test.weight.sum(),
                   "fractions_learned": np.average(P, axis=0, weights=test.weight),
                   "accuracy": float(np.average(P.argmax(1) == labels, weights=test.weight))}
        metrics = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in metrics.items()}
    metrics["observables"] = {}
    for name, label, edges in hard_observables(slot_labels):
        fractions = plot_class_probabilities(observable_values(test, name), P, labels, out_dir / f"{name}.{fmt}",
                                             edges, label, class_names=names, weights=test.weight,
                                             title=f"{task['kind']}, test split")
        metrics["observables"][name] = binned_agreement(fractions)
    metrics["n_test"] = len(test)
    metrics["kind"] = task["kind"]
    if out_metrics is not None:
        write_json(out_metrics, metrics)
    return HardEvaluateResult(metrics["kind"], metrics["n_test"], metrics)
