"""Resumable training state: model, optimizer, scheduler, epoch, loss history and RNG states.

Checkpoints are written atomically after every epoch; a rerun of a killed job (SIGTERM from
SLURM's time limit, Ctrl-C) loads the latest one and continues with the next epoch. A SIGTERM
that arrives during the write (under :func:`~lhcflow.training.termination.exit_on_sigterm`)
takes effect once the checkpoint is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import save_torch
from lhcflow.training.termination import deferred_sigterm

log = logging.getLogger("lhcflow")


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


def clone_state(model: torch.nn.Module) -> dict:
    """A CPU copy of the model's state dict (e.g. the best-validation state), independent of later steps."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def rng_state() -> dict:
    """The global RNG states a training draws from: torch (CPU and every CUDA device in use), numpy, python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping) -> None:
    """Set the global RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(path: str | Path, state: Mapping, key: str | None = None) -> None:
    """Write a training ``state`` with its fingerprint ``key`` and the RNG states, atomically; a
    SIGTERM during the write waits until the checkpoint is whole."""
    with deferred_sigterm():
        save_torch(path, {**state, "fingerprint": key, "rng": rng_state()})


def read_checkpoint(path: str | Path, key: str | None = None, name: str = "training") -> dict | None:
    """The state written by :func:`write_checkpoint`, or None: there is none, or (with a ``key``)
    it belongs to another training (changed config or data: its :func:`fingerprint` differs),
    which is logged for ``name`` and then overwritten by the new training's checkpoints.
    The RNG states (``state["rng"]``) are left to the caller: :func:`restore_rng_state`."""
    path = Path(path)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if key is not None and state.get("fingerprint") != key:
        log.warning("%s: %s is from another training (config or data changed): starting over", name, path)
        return None
    return state


def save_checkpoint(path: str | Path, *, model, optimizer, scheduler, epoch: int, history: dict,
                    key: str | None = None, best_state: Mapping | None = None) -> None:
    """Save the state after ``epoch`` (0-based) and the best-validation ``best_state`` so far;
    ``key`` (:func:`fingerprint`) names the training."""
    write_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                            "best_state": best_state}, key)


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler, key: str | None = None,
                    name: str = "training") -> tuple[int, dict, dict | None] | None:
    """Restore everything saved by :func:`save_checkpoint`; returns (last finished epoch, history,
    best-validation state), or None when :func:`read_checkpoint` finds no checkpoint of this training
    (or one from before best states were kept): it starts over."""
    state = read_checkpoint(path, key, name)
    if state is None:
        return None
    if "best_state" not in state:
        log.warning("%s: %s keeps no best-validation state (older lhcflow): starting over", name, path)
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    return state["epoch"], state["history"], state["best_state"]
