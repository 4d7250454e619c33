"""Paired tHj events (:mod:`lhcflow.thj.paired`) as the ML-MEM reads them (thesis §6.2-6.4).

* :func:`read_paired_events`: the fields the networks need from one or more paired shards, with the
  file attributes (slots, decay, selection, branching ratio, split names) checked to agree.
* :func:`write_hard_dataset`: every showered event, accepted or not, in the layout of
  :mod:`lhcflow.data.hard`, so the acceptance ε_ψ(x_hard) (Eq 6.20, Table A.8) and the extra-jet
  multiplicity p(n|x_hard) (Eq 6.45) train with the project's hard-process classifiers. The hard masses
  are written as the nominal (m_t, m_H, 0) so that the classifier inputs are exactly those the MEM
  integrand rebuilds from the Eq 6.31 features.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lhcflow.atomic import atomic_path
from lhcflow.physics.kinematics import to_ptetaphim
from lhcflow.thj.files import PAIRED_FORMAT, read_paired_file

MEM_FIELDS = ("alpha", "x_hard", "x_reco", "x_reco_ptetaphim", "x_reco_present", "n_extra_jets", "accepted",
              "g", "weight", "split")
SHARED_ATTRS = ("x_reco_slots", "decay", "splits", "branching_ratio")


def read_paired_events(paths: Sequence[str | Path], accepted_only: bool = False) -> dict[str, Any]:
    """Concatenated :data:`MEM_FIELDS` of paired shards (:func:`lhcflow.thj.paired.read_paired_file`) plus
    ``attrs``; a missing field, disagreeing attributes or non-finite momenta raise
    :class:`~lhcflow.thj.paired.PairedFileError` naming the file."""
    parts, attrs = [], None
    for path in paths:
        part, found = read_paired_file(path, MEM_FIELDS)
        these = {k: found[k] for k in (*SHARED_ATTRS, "selection") if k in found}
        if attrs is None:
            attrs = these
        elif any(these.get(k) != attrs.get(k) for k in SHARED_ATTRS):
            raise PAIRED_FORMAT.fail(path, f"attributes {SHARED_ATTRS} differ from those of {paths[0]}")
        if accepted_only:
            keep = part["accepted"].astype(bool)
            part = {k: v[keep] for k, v in part.items()}
        parts.append(part)
    if not parts:
        raise ValueError("no paired tHj files given")
    data = {k: np.concatenate([p[k] for p in parts]) for k in MEM_FIELDS}
    for name in ("x_hard", "x_reco", "alpha"):
        if not np.isfinite(data[name]).all():
            raise PAIRED_FORMAT.fail(list(map(str, paths)), f"non-finite values in field {name!r}")
    data["attrs"] = attrs
    return data


def split_mask(data: dict[str, Any], name: str) -> np.ndarray:
    """Events of split ``name`` (train/val/test)."""
    splits = list(data["attrs"]["splits"])
    if name not in splits:
        raise ValueError(f"split {name!r} not among {splits}")
    return data["split"] == splits.index(name)


def subset(data: Mapping[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """The events of ``mask`` of paired data (its ``attrs`` kept)."""
    return {k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in data.items()}


def training_split(paired: Sequence[str | Path]) -> tuple[dict, dict]:
    """The accepted ``train`` and ``val`` events of the paired shards the MEM networks train on."""
    data = read_paired_events(paired, accepted_only=True)
    train_data, val_data = subset(data, split_mask(data, "train")), subset(data, split_mask(data, "val"))
    if len(train_data["alpha"]) < 10:
        raise ValueError(f"{list(map(str, paired))}: only {len(train_data['alpha'])} accepted training events; "
                         "generate a larger tHj training sample (thj.samples)")
    return train_data, val_data


def read_test_events(paths: Sequence[str | Path], max_events: int | None = None) -> dict[str, Any]:
    """The accepted events of a fixed-α test sample the MEM measures (the first ``max_events``)."""
    data = read_paired_events(paths, accepted_only=True)
    if max_events is not None:
        data = subset(data, np.arange(len(data["alpha"])) < max_events)
    if len(data["alpha"]) == 0:
        raise ValueError(f"{list(map(str, paths))}: no accepted test events")
    return data


def write_hard_dataset(paths: Sequence[str | Path], out_path: str | Path, masses: tuple[float, float]) -> int:
    """All showered events of ``paths`` as a :mod:`lhcflow.data.hard` dataset; returns the event count."""
    data = read_paired_events(paths)
    hard = to_ptetaphim(np.asarray(data["x_hard"], np.float64))
    hard[..., 3] = np.array([masses[0], masses[1], 0.0])
    arrays = {"hard": hard.astype(np.float32), "present": np.ones(hard.shape[:2], bool),
              "accepted": data["accepted"].astype(bool), "n_jets": data["n_extra_jets"].astype(np.int16),
              "weight": data["weight"].astype(np.float64), "split": data["split"].astype(np.int8)}
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", track_order=False) as out:
        for name, values in arrays.items():
            out.create_dataset(name, data=values, track_times=False)
        out.attrs["splits"] = json.dumps(list(data["attrs"]["splits"]))
        out.attrs["slots"] = json.dumps(["t", "H", "q"])
        out.attrs["source"] = json.dumps([str(p) for p in paths])
    return len(hard)
