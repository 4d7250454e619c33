"""Classifier training (thesis §3.1.3 Eq 3.17, §4.4 Table A.2, §6.4.2/§6.5.2 Table A.8).

Binary: sample ``a`` (truth / accepted) has label 1, sample ``b`` (generated / rejected)
label 0; the loss is the weighted binary cross-entropy of Eq 3.17. With ``balance=True``
each class's event weights are rescaled to the same total, ``Σ_a w = Σ_b w = (N_a+N_b)/2``,
i.e. P(y=0) = P(y=1) = 1/2 as Eq 3.19 requires for ``w = D/(1−D)`` (Eq 4.16). Use
``balance=False`` when ``D`` must be a probability of the actual mixture, as for the
acceptance ε(x_hard) of Eq 6.20. Categorical: :func:`train_multiclass` with the weighted
cross-entropy, e.g. the jet multiplicity p(n|x_hard) of §6.5.2.

Adam, ReduceLROnPlateau on the validation loss (factor 0.1, patience 5), optional early
stopping, and the state with the lowest validation loss restored at the end. Bayesian
networks add KL/N_train (Eq 3.67) and are validated at the posterior means. A checkpoint
is written after every epoch; a rerun resumes after the last finished epoch (each epoch's
shuffling and dropout are seeded by (seed, epoch), so a resumed run equals an
uninterrupted one), unless the data or a setting other than ``epochs`` changed: then it
starts over.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lhcflow.atomic import save_torch
from lhcflow.classifier.network import Classifier
from lhcflow.errors import reject_unknown
from lhcflow.models.bayesian import bayesian_mode
from lhcflow.training.checkpoint import clone_state, fingerprint, read_checkpoint, write_checkpoint
from lhcflow.training.termination import deferred_sigterm
from lhcflow.training.trainer import History, pick_device

log = logging.getLogger("lhcflow")


@dataclass
class ClassifierConfig:
    """Architecture and training hyperparameters; defaults from Table A.2."""

    hidden: int = 256
    layers: int = 5
    dropout: float = 0.1
    bayesian: bool = False
    prior_sigma: float = 1.0
    epochs: int = 50
    batch_size: int = 1024
    lr: float = 1e-3
    lr_factor: float = 0.1
    lr_patience: int = 5
    stop_patience: int | None = None  # stop after this many epochs without improvement
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, cfg: dict) -> ClassifierConfig:
        """From a config mapping; a key that is not a field raises
        :class:`~lhcflow.errors.UnknownSettingError`."""
        reject_unknown("classifier", cfg, cls.__dataclass_fields__)
        return cls(**cfg)

    def network(self, dims_in: int, n_classes: int = 1) -> Classifier:
        return Classifier(dims_in, n_classes, hidden=self.hidden, layers=self.layers, dropout=self.dropout,
                          bayesian=self.bayesian, prior_sigma=self.prior_sigma)


ClassifierHistory = History  # per-epoch history with the epoch whose state was kept (best_epoch)


def balance_weights(w_a: np.ndarray, w_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rescale both classes to the same total weight (N_a + N_b)/2 (mean weight 1 overall)."""
    half = 0.5 * (len(w_a) + len(w_b))
    return w_a * (half / w_a.sum()), w_b * (half / w_b.sum())


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("event weights must be finite, non-negative, not all zero, one per event")
    return w


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = int(round(fraction * n))
    return perm[n_val:], perm[:n_val]


def _binary_set(x_a, x_b, w_a, w_b, balance: bool):
    x_a, x_b = np.asarray(x_a, dtype=np.float32), np.asarray(x_b, dtype=np.float32)
    w_a, w_b = _weights(w_a, len(x_a)), _weights(w_b, len(x_b))
    if balance:
        w_a, w_b = balance_weights(w_a, w_b)
    x = np.concatenate([x_a, x_b])
    y = np.concatenate([np.ones(len(x_a), np.float32), np.zeros(len(x_b), np.float32)])
    return x, y, np.concatenate([w_a, w_b])


def train_classifier(x_a: np.ndarray, x_b: np.ndarray, w_a: np.ndarray | None = None,
                     w_b: np.ndarray | None = None, cfg: ClassifierConfig | None = None,
                     checkpoint: str | Path | None = None, val: tuple | None = None, balance: bool = True,
                     progress: bool = True, name: str = "classifier") -> tuple[Classifier, ClassifierHistory]:
    """Binary classifier of ``a`` (label 1) against ``b`` (label 0); returns (model, history).

    ``val`` is ``(x_a_val, x_b_val[, w_a_val, w_b_val])``; without it ``cfg.val_fraction``
    of each sample is held out (seeded).
    """
    cfg = cfg or ClassifierConfig()
    if val is None:
        rng = np.random.default_rng([cfg.seed, 1])
        ta, va = _split(len(x_a), cfg.val_fraction, rng)
        tb, vb = _split(len(x_b), cfg.val_fraction, rng)
        pick = lambda w, i: None if w is None else np.asarray(w)[i]  # noqa: E731
        val = (x_a[va], x_b[vb], pick(w_a, va), pick(w_b, vb))
        x_a, x_b, w_a, w_b = x_a[ta], x_b[tb], pick(w_a, ta), pick(w_b, tb)
    val = tuple(val) + (None,) * (4 - len(val))
    train_set = _binary_set(x_a, x_b, w_a, w_b, balance)
    val_set = _binary_set(*val, balance) if len(val[0]) and len(val[1]) else None
    torch.manual_seed(cfg.seed)
    model = cfg.network(train_set[0].shape[1], 1)
    loss = lambda logits, y: F.binary_cross_entropy_with_logits(logits, y, reduction="none")  # noqa: E731
    history = fit(model, train_set, val_set, loss, cfg, checkpoint, progress, name)
    return model, history


def train_multiclass(x: np.ndarray, labels: np.ndarray, n_classes: int, w: np.ndarray | None = None,
                     cfg: ClassifierConfig | None = None, checkpoint: str | Path | None = None,
                     val: tuple | None = None, progress: bool = True,
                     name: str = "multiclass") -> tuple[Classifier, ClassifierHistory]:
    """Categorical classifier p(label|x) with weighted cross-entropy; labels in [0, n_classes).

    ``val`` is ``(x_val, labels_val[, w_val])``; without it ``cfg.val_fraction`` is held out.
    No class balancing: the output estimates the class probabilities of the training mixture.
    """
    cfg = cfg or ClassifierConfig()
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes})")
    w = _weights(w, len(x))
    if val is None:
        tr, va = _split(len(x), cfg.val_fraction, np.random.default_rng([cfg.seed, 1]))
        val = (x[va], labels[va], w[va])
        x, labels, w = x[tr], labels[tr], w[tr]
    vx, vl = np.asarray(val[0], np.float32), np.asarray(val[1], np.int64)
    vw = _weights(val[2] if len(val) > 2 else None, len(vx)) if len(vx) else None
    torch.manual_seed(cfg.seed)
    model = cfg.network(x.shape[1], n_classes)
    loss = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    history = fit(model, (x, labels, w / w.mean()), (vx, vl, vw) if len(vx) else None, loss, cfg,
                  checkpoint, progress, name)
    return model, history


def _save(path: Path, **state) -> None:
    with deferred_sigterm():  # a SIGTERM during the write takes effect once it is complete
        save_torch(path, state)


@torch.no_grad()
def _val_loss(model, data, loss_fn, device, batch_size: int = 65536) -> float:
    x, y, w = data
    model.eval()
    total = 0.0
    with bayesian_mode(model, "map"):
        for s in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[s:s + batch_size], device=device)
            yb = torch.as_tensor(y[s:s + batch_size], device=device)
            wb = torch.as_tensor(w[s:s + batch_size], dtype=torch.float32, device=device)
            total += float((wb * loss_fn(model(xb), yb)).sum())
    return total / float(np.sum(w))


def fit(model: Classifier, train_set: tuple, val_set: tuple | None, loss_fn: Callable, cfg: ClassifierConfig,
        checkpoint: str | Path | None = None, progress: bool = True, name: str = "classifier") -> ClassifierHistory:
    """Shared loop: weighted per-event loss ``loss_fn(logits, y)``, Adam, plateau schedule,
    best-state restore and per-epoch checkpoints. ``train_set``/``val_set`` are (x, y, w)."""
    device = pick_device(cfg.device)
    model.to(device)
    x, y, w = train_set
    xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    wt = torch.as_tensor(w, dtype=torch.float32, device=device)
    n = len(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_factor,
                                                           patience=cfg.lr_patience)
    history, first, best_loss, best_state, stale, stopped = ClassifierHistory(), 0, math.inf, None, 0, False
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    # more epochs continue a finished training; anything else changed (data, settings) starts over
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("device", "epochs")}
    key = fingerprint(model, settings, *train_set, *(val_set or ()))
    state = read_checkpoint(checkpoint, key, name) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = ClassifierHistory(**state["history"])
        first, best_loss, best_state = state["epoch"] + 1, state["best_loss"], state["best_state"]
        stale, stopped = state["stale"], state["stopped"]
        log.info("%s: resuming from %s after epoch %d", name, checkpoint, state["epoch"] + 1)
    for epoch in range(first, 0 if stopped else cfg.epochs):
        start = time.perf_counter()
        order = torch.as_tensor(np.random.default_rng([cfg.seed, epoch]).permutation(n), device=device)
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        losses = []
        batches = order.split(cfg.batch_size)
        bar = tqdm(batches, disable=not progress, desc=f"{name} epoch {epoch + 1}/{cfg.epochs}",
                   file=sys.stderr, leave=False, mininterval=5.0)
        for idx in bar:
            loss = (wt[idx] * loss_fn(model(xt[idx]), yt[idx])).mean() + model.kl() / n
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss became {float(loss)} in epoch {epoch + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        train_loss = float(np.mean(losses))
        val_loss = _val_loss(model, val_set, loss_fn, device) if val_set is not None else train_loss
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_state, stale = val_loss, clone_state(model), 0
            history.best_epoch = epoch + 1
        else:
            stale += 1
        history.epoch.append(epoch + 1)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        history.lr.append(optimizer.param_groups[0]["lr"])
        history.seconds.append(time.perf_counter() - start)
        log.info("%s epoch %d/%d: train %.5f, val %.5f, lr %.1e, %.1f s", name, epoch + 1, cfg.epochs,
                 train_loss, val_loss, history.lr[-1], history.seconds[-1])
        stopped = cfg.stop_patience is not None and stale >= cfg.stop_patience
        if checkpoint is not None:
            write_checkpoint(checkpoint, dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                                              scheduler=scheduler.state_dict(), history=history.as_dict(), epoch=epoch,
                                              best_loss=best_loss, best_state=best_state, stale=stale,
                                              stopped=stopped), key)
        if stopped:
            log.info("%s: early stop after epoch %d (best %d)", name, epoch + 1, history.best_epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu").eval()
    return history


@torch.no_grad()
def predict_logits(model: Classifier, x: np.ndarray, batch_size: int = 65536, mode: str = "map") -> np.ndarray:
    """Network outputs before the sigmoid/softmax; Bayesian layers in ``mode`` (``map``/``fixed``)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    with bayesian_mode(model, mode) if model.bayesian else contextlib.nullcontext():
        for s in range(0, len(x), batch_size):
            out.append(model(torch.as_tensor(np.asarray(x[s:s + batch_size], np.float32), device=device)).cpu())
    return torch.cat(out).double().numpy() if out else np.zeros((0,) if model.n_classes == 1 else (0, model.n_classes))


def predict(model: Classifier, x: np.ndarray, batch_size: int = 65536, mode: str = "map") -> np.ndarray:
    """Classifier output D(x): sigmoid (binary, shape (n,)) or softmax (shape (n, n_classes))."""
    z = torch.as_tensor(predict_logits(model, x, batch_size, mode))
    return (torch.sigmoid(z) if model.n_classes == 1 else torch.softmax(z, dim=-1)).numpy()


def predict_replicas(model: Classifier, x: np.ndarray, n_replicas: int, seed: int = 0) -> np.ndarray:
    """D(x) for ``n_replicas`` posterior draws of a Bayesian classifier, shape (K, n, ...)."""
    if not model.bayesian:
        raise ValueError("predict_replicas needs a Bayesian classifier")
    torch.manual_seed(seed)  # bayesian_mode(model, "fixed") draws a fresh replica per call
    return np.stack([predict(model, x, mode="fixed") for _ in range(n_replicas)])


def save_classifier(path: str | Path, model: Classifier, extra: dict | None = None) -> None:
    """Weights, constructor arguments and JSON-able ``extra`` (e.g. a FeatureScaler state)."""
    _save(Path(path), hparams=model.hparams, model=model.state_dict(), extra=extra or {})


def load_classifier(path: str | Path) -> tuple[Classifier, dict]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = Classifier(**state["hparams"])
    model.load_state_dict(state["model"])
    return model.eval(), state["extra"]
