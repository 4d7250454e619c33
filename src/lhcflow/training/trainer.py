"""Generic training loop for conditional generators (thesis §4.2.1, Table A.1).

Adam with a one-cycle learning-rate schedule, batches balanced over groups (the jet
multiplicities: every batch holds the groups in equal proportions), the weighted loss of
Eq. 4.8 when event weights are given, the KL term of Bayesian networks scaled by 1/N_train
(Eq. 3.67), a checkpoint after every epoch that a rerun resumes from, and a progress bar. With a
validation set the returned model holds the state of the epoch with the lowest validation loss
(``History.best_epoch``), not the last one: a late rise of the validation loss (overtraining) does
not reach the networks that generate or integrate.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from lhcflow.errors import reject_unknown
from lhcflow.training.checkpoint import clone_state, fingerprint, load_checkpoint, save_checkpoint

log = logging.getLogger("lhcflow")


@dataclass
class TrainingConfig:
    epochs: int = 100
    batch_size: int = 1024
    lr_start: float = 1e-4
    lr_max: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    balance_groups: bool = True
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, cfg: dict) -> TrainingConfig:
        """From a config mapping; a key that is not a field raises
        :class:`~lhcflow.errors.UnknownSettingError`."""
        reject_unknown("training", cfg, cls.__dataclass_fields__)
        known = dict(cfg)
        if "betas" in known:
            known["betas"] = tuple(known["betas"])
        return cls(**known)


@dataclass
class TrainingData:
    """Network inputs ``x``, conditions ``c``, optional event weights and group labels."""

    x: np.ndarray
    c: np.ndarray
    weight: np.ndarray | None = None
    group: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        if len(self.c) != n or (self.weight is not None and len(self.weight) != n):
            raise ValueError("x, c and weight must have the same number of events")
        if not np.isfinite(self.x).all() or not np.isfinite(self.c).all():
            raise ValueError("training inputs contain NaN or inf")
        self.group = np.zeros(n, dtype=np.int64) if self.group is None else np.asarray(self.group)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class History:
    """Per-epoch losses, learning rate and time; ``best_epoch`` (1-based) is the epoch whose state the
    trained model holds (lowest validation loss), 0 when there was no finite validation loss."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def best_val_loss(self) -> float:
        return self.val_loss[self.best_epoch - 1] if self.best_epoch else math.nan

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def pick_device(name: str = "auto") -> torch.device:
    """The GPU when one is visible (``auto``), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def epoch_batches(data: TrainingData, batch_size: int, rng: np.random.Generator, balance: bool) -> list[np.ndarray]:
    """Index batches of one epoch. Balanced: each batch draws ``batch_size / n_groups`` events
    per group, cycling through reshuffled copies of the smaller groups (oversampling)."""
    n_batches = max(1, math.ceil(len(data) / batch_size))
    if not balance:
        order = rng.permutation(len(data))
        return [order[i * batch_size:(i + 1) * batch_size] for i in range(n_batches)]
    groups = [np.flatnonzero(data.group == g) for g in np.unique(data.group)]
    per_group = max(1, batch_size // len(groups))
    streams = []
    for members in groups:
        copies = math.ceil(n_batches * per_group / len(members))
        streams.append(np.concatenate([rng.permutation(members) for _ in range(copies)]))
    return [np.concatenate([s[i * per_group:(i + 1) * per_group] for s in streams]) for i in range(n_batches)]


def _tensors(data: TrainingData, idx: np.ndarray, device: torch.device):
    x = torch.as_tensor(data.x[idx], dtype=torch.float32, device=device)
    c = torch.as_tensor(data.c[idx], dtype=torch.float32, device=device)
    w = None if data.weight is None else torch.as_tensor(data.weight[idx], dtype=torch.float32, device=device)
    return x, c, w


def _objective(model, x, c, w, n_train: int) -> torch.Tensor:
    return model.loss(x, c, w) + model.kl() / n_train


@torch.no_grad()
def evaluate(model, data: TrainingData, device: torch.device, n_train: int, batch_size: int = 8192) -> float:
    """Mean objective over a data set: weighted NLL + KL/N_train, the same KL scaling as in
    training so that training and validation losses are comparable."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        x, c, w = _tensors(data, idx, device)
        total += float(_objective(model, x, c, w, n_train)) * len(idx)
        count += len(idx)
    return total / max(count, 1)


def train(model, train_data: TrainingData, cfg: TrainingConfig, checkpoint: str | Path,
          val_data: TrainingData | None = None, progress: bool = True, name: str = "train",
          epoch_data: Callable[[int], TrainingData] | None = None) -> History:
    """Train ``model`` (a :class:`~lhcflow.models.base.ConditionalGenerator`) and return its history.

    If ``checkpoint`` exists and comes from the same training (same config and training data,
    see :func:`~lhcflow.training.checkpoint.fingerprint`), training resumes after the epoch
    stored there; a checkpoint of another training is overwritten.

    ``epoch_data(epoch)``, if given, supplies each epoch's training data (same size as ``train_data``),
    e.g. conditions resampled every epoch (thesis Eq 6.38); it must be deterministic in ``epoch``.

    With ``val_data`` the model ends in the state of its best validation epoch (kept in the checkpoint
    too, so a resumed training ends where an uninterrupted one does); without, in the last state.
    """
    device = pick_device(cfg.device)
    model.to(device)
    n_batches = max(1, math.ceil(len(train_data) / cfg.batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr_start, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr_max, total_steps=cfg.epochs * n_batches, div_factor=cfg.lr_max / cfg.lr_start)
    history, first_epoch, best_state = History(), 0, None
    checkpoint = Path(checkpoint)
    settings = {k: v for k, v in asdict(cfg).items() if k != "device"}
    key = fingerprint(model, settings, train_data.x, train_data.c, train_data.weight, train_data.group)
    resumed = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, key=key, name=name)
    if resumed is not None:
        done, saved, best_state = resumed
        history, first_epoch = History(**saved), done + 1
        log.info("%s: resuming from %s after epoch %d", name, checkpoint, done + 1)
    for epoch in range(first_epoch, cfg.epochs):
        start = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        losses = []
        data = train_data if epoch_data is None else epoch_data(epoch)
        bar = tqdm(epoch_batches(data, cfg.batch_size, rng, cfg.balance_groups), disable=not progress,
                   desc=f"{name} epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, leave=False,
                   mininterval=5.0)
        for idx in bar:
            x, c, w = _tensors(data, idx, device)
            loss = _objective(model, x, c, w, len(train_data))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss became {float(loss)} in epoch {epoch + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)  # redrawn every mininterval
        history.epoch.append(epoch + 1)
        history.train_loss.append(float(np.mean(losses)))
        history.val_loss.append(evaluate(model, val_data, device, len(train_data))
                                if val_data is not None and len(val_data) else math.nan)
        history.lr.append(scheduler.get_last_lr()[0])
        history.seconds.append(time.perf_counter() - start)
        val = history.val_loss[-1]
        if np.isfinite(val) and (not history.best_epoch or val < history.best_val_loss):
            history.best_epoch, best_state = epoch + 1, clone_state(model)
        log.info("%s epoch %d/%d: train %.5f, val %.5f, %.1f s", name, epoch + 1, cfg.epochs,
                 history.train_loss[-1], history.val_loss[-1], history.seconds[-1])
        save_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                        history=history.as_dict(), key=key, best_state=best_state)
    if best_state is not None:
        model.load_state_dict(best_state)
        log.info("%s: keeping epoch %d (lowest validation loss %.5f)", name, history.best_epoch,
                 history.best_val_loss)
    model.to("cpu")
    return history
