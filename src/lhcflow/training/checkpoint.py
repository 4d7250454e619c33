"""Resumable training state: model, optimizer, scheduler, epoch, loss history and RNG states.

Checkpoints are written atomically after every epoch; a rerun of a killed job (SIGTERM from
SLURM's time limit, Ctrl-C) loads the latest one and continues with the next epoch. A SIGTERM
that arrives during the write (under :func:`~lhcflow.training.termination.exit_on_sigterm`)
takes effect once the checkpoint is complete.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import save_torch
from lhcflow.training.termination import deferred_sigterm


def fingerprint(model: torch.nn.Module, settings: Mapping, *arrays: np.ndarray | None) -> str:
    """What makes two trainings the same: their ``settings`` (hyperparameters, JSON-able), the
    network's parameter names and shapes, and the training data ``arrays`` (None skipped).
    A checkpoint resumes only the training it came from, never one with changed config or data."""
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    digest.update(repr([(k, tuple(v.shape)) for k, v in model.state_dict().items()]).encode())
    for array in arrays:
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def save_checkpoint(path: str | Path, *, model, optimizer, scheduler, epoch: int, history: dict,
                    key: str | None = None) -> None:
    """Save the state after ``epoch`` (0-based); ``key`` (:func:`fingerprint`) names the training."""
    state = {
        "fingerprint": key,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "history": history,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    with deferred_sigterm():
        save_torch(path, state)


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler,
                    key: str | None = None) -> tuple[int, dict] | None:
    """Restore everything saved by :func:`save_checkpoint`; returns (last finished epoch, history).

    With a ``key``, a checkpoint of another training (changed config or data: its
    :func:`fingerprint` differs) is not loaded and None is returned: the training starts over.
    """
    state = torch.load(path, map_location="cpu", weights_only=False)
    if key is not None and state.get("fingerprint") != key:
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["epoch"], state["history"]
