"""Classifiers on hard-scattering momenta as workflow stages (thesis §6.4.2, §6.5.2, Table A.8).

* ``acceptance``: binary ε(x_hard) = P(event passes the reco selection | x_hard), Eq 6.20, from
  accepted (label 1) vs rejected (label 0) events, *unbalanced* binary cross-entropy so that the
  output is the acceptance probability itself.
* ``multiplicity``: categorical p(n|x_hard) over the reco jet multiplicity of accepted events
  (classes ``n_min … n_max``, the last one inclusive), categorical cross-entropy.

Inputs follow Table A.8's preprocessing: per hard particle log pT, η, φ and log m (columns
that are constant, e.g. lepton masses, are passed through centred by the scaler); absent slots
are NaN, i.e. 0 after standardisation, with a presence flag. Training uses the ``train``
split, validation the ``val`` split, every number and figure the ``test`` split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lhcflow.atomic import write_json
from lhcflow.classifier.features import FeatureScaler
from lhcflow.classifier.plots import plot_class_probabilities
from lhcflow.classifier.train import ClassifierConfig, load_classifier, predict, save_classifier, train_classifier, \
    train_multiclass
from lhcflow.classifier.weights import auc
from lhcflow.data.hard import HardDataset, read_hard_dataset
from lhcflow.physics.kinematics import mass, to_four_momenta

KINDS = ("acceptance", "multiplicity")


def hard_features(ds: HardDataset) -> tuple[np.ndarray, list[str]]:
    """(N, 4·slots [+ slots]) inputs: log pT, η, φ, log m per slot (NaN where absent)."""
    n_slots = ds.hard.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pt, eta, phi, mass = (ds.hard[..., k].astype(np.float64) for k in range(4))
        cols = np.stack([np.log(pt), eta, phi, np.log(np.maximum(mass, 1e-6))], axis=-1)
    cols = np.where(ds.present[..., None], cols, np.nan).reshape(len(ds), -1)
    names = [f"{q}_{i}" for i in range(n_slots) for q in ("log_pt", "eta", "phi", "log_m")]
    if not ds.present.all():
        cols = np.concatenate([cols, ds.present.astype(np.float64)], axis=1)
        names += [f"present_{i}" for i in range(n_slots)]
    return cols, names


def multiplicity_labels(n_jets: np.ndarray, n_min: int, n_max: int) -> np.ndarray:
    """Class index of each reco jet multiplicity: n_min → 0, …, ≥ n_max → n_max − n_min."""
    return np.clip(np.asarray(n_jets, np.int64), n_min, n_max) - n_min


def _task_data(ds: HardDataset, task: Mapping) -> tuple[HardDataset, np.ndarray]:
    """Events the task trains on and their labels."""
    if task["kind"] == "acceptance":
        return ds, ds.accepted.astype(np.int64)
    accepted = ds.select(ds.accepted)
    return accepted, multiplicity_labels(accepted.n_jets, task["n_min"], task["n_max"])


def train_hard_stage(dataset_path: str | Path, task: Mapping, seed: int, out_model: str | Path,
                     out_history: str | Path, checkpoint: str | Path | None = None, progress: bool = True) -> dict:
    """Train the task's classifier on the train split, validated on the val split."""
    if task["kind"] not in KINDS:
        raise ValueError(f"hard classifier kind must be one of {KINDS}, got {task['kind']!r}")
    ds = read_hard_dataset(dataset_path)
    train, y_train = _task_data(ds.of_split("train"), task)
    val, y_val = _task_data(ds.of_split("val"), task)
    if len(train) == 0:
        raise ValueError(f"{dataset_path}: no training events for the {task['kind']} classifier")
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
    return summary


def hard_observables(slot_labels: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
    """(name, axis label, bin edges) of the observables the probabilities are plotted against."""
    obs = []
    for i, label in enumerate(slot_labels):
        obs.append((f"pt_{i}", rf"$p_{{T,{label}}}$ [GeV]", np.linspace(0, 200, 21)))
        obs.append((f"eta_{i}", rf"$\eta_{{{label}}}$", np.linspace(-5, 5, 21)))
    obs.append(("m_hard", r"$\sqrt{\hat{s}}$ [GeV]", np.linspace(0, 1000, 21)))
    return obs


def observable_values(ds: HardDataset, name: str) -> np.ndarray:
    """Values of a :func:`hard_observables` entry (pT/η of a slot, or the total invariant mass)."""
    if name == "m_hard":
        momenta = to_four_momenta(ds.hard.astype(np.float64)) * ds.present[..., None]
        return mass(*np.moveaxis(momenta.sum(1), -1, 0))
    quantity, slot = name.split("_")
    column = {"pt": 0, "eta": 1}[quantity]
    values = ds.hard[:, int(slot), column].astype(np.float64)
    return np.where(ds.present[:, int(slot)], values, np.nan)


def binned_agreement(fractions: Mapping[str, np.ndarray], min_events: int = 50) -> dict:
    """Learned vs true class fractions of :func:`class_fractions` in bins with at least
    ``min_events`` events: max |Δ| and χ²/ndf with binomial errors (floored at 1/n_eff)."""
    good = fractions["n"] >= min_events
    true, learned, n_eff = fractions["true"][:, good], fractions["learned"][:, good], fractions["n_eff"][good]
    var = np.maximum(true * (1 - true), 1.0 / n_eff) / n_eff
    ndf = true.size
    return {"chi2_ndf": float(np.sum((learned - true) ** 2 / var)) / max(ndf, 1),
            "max_abs_diff": float(np.max(np.abs(learned - true))) if ndf else 0.0, "bins": ndf}


def evaluate_hard_stage(dataset_path: str | Path, model_path: str | Path, out_dir: str | Path,
                        fmt: str = "png", slot_labels: Sequence[str] | None = None) -> dict:
    """Fig 6.15 / 6.20 analogues on the test split, plus summary metrics."""
    model, extra = load_classifier(model_path)
    task = extra["task"]
    scaler = FeatureScaler.from_state(extra["scaler"])
    test, labels = _task_data(read_hard_dataset(dataset_path).of_split("test"), task)
    P = predict(model, scaler.transform(hard_features(test)[0]))
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
    return metrics
