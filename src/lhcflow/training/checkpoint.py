"""Resumable training state: model, optimizer, scheduler, epoch, loss history and RNG states.

Checkpoints are written atomically after every epoch; a rerun of a killed job (SIGTERM from
SLURM's time limit, Ctrl-C) loads the latest one and continues with the next epoch.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import atomic_path


def save_checkpoint(path: str | Path, *, model, optimizer, scheduler, epoch: int, history: dict) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "history": history,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler) -> tuple[int, dict]:
    """Restore everything saved by :func:`save_checkpoint`; returns (last finished epoch, history)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["epoch"], state["history"]
