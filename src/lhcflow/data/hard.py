"""Hard-process datasets for the acceptance and multiplicity classifiers (thesis §6.4.2, §6.5.2).

Every generated event, accepted or not, with its hard-scattering momenta x_hard (the
``hard`` collection: outgoing hard-process particles before the shower), whether it passes
the reco-level selection (the label of ε(x_hard), Eq 6.20), and how many reco jets pass the
jet cuts (the label of p(n|x_hard)). The train/val/test assignment uses the same seeded
per-entry hash as ingestion, so an accepted event lands in the same split in both files.

File layout (HDF5): ``hard`` (N, slots, 4) float32 with (pT, η, φ, m), ``present`` (N, slots),
``accepted`` (N,), ``n_jets`` (N,), ``weight`` (N,), ``split`` (N,) index into the attribute
``splits``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
from tqdm import tqdm

from lhcflow.atomic import atomic_path
from lhcflow.data.ingest import (
    IngestError,
    Ingestor,
    assign_split,
    build_objects,
    iter_chunks,
    parse_selection,
    resolve_source,
    split_uniform,
    validate_files,
)

HARD_FEATURES = ("pt", "eta", "phi", "mass")
DATASETS = {"hard": np.float32, "present": np.bool_, "accepted": np.bool_, "n_jets": np.int16,
            "weight": np.float64, "split": np.int8}


@dataclass
class HardDataset:
    """Hard-scattering momenta with acceptance and reco jet multiplicity per event."""

    hard: np.ndarray
    present: np.ndarray
    accepted: np.ndarray
    n_jets: np.ndarray
    weight: np.ndarray
    split: np.ndarray
    splits: list[str]

    def __len__(self) -> int:
        return len(self.weight)

    def select(self, mask: np.ndarray) -> HardDataset:
        return HardDataset(self.hard[mask], self.present[mask], self.accepted[mask], self.n_jets[mask],
                           self.weight[mask], self.split[mask], self.splits)

    def of_split(self, name: str) -> HardDataset:
        return self.select(self.split == self.splits.index(name))


def hard_slots(objects: ak.Array, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_slots`` hard particles as (N, n_slots, 4) (pT, η, φ, m) plus a presence mask."""
    padded = ak.pad_none(objects, n_slots, axis=1, clip=True)
    present = ~ak.to_numpy(ak.is_none(padded, axis=1))
    values = np.stack([ak.to_numpy(ak.fill_none(padded[k], 0.0)).astype(np.float32) for k in HARD_FEATURES], axis=-1)
    return values, present


def build_hard_dataset(source: Mapping, selection: Mapping, split: Mapping, out_path: str | Path, *,
                       n_slots: int, sample_name: str, chunk_size: int = 100_000, progress: bool = True) -> dict:
    """Write the hard dataset of one sample; returns a summary. No output is left on error."""
    resolved = resolve_source(source)
    if "hard" not in resolved.collections:
        raise IngestError(f"{sample_name}: no 'hard' collection in the mapping of {resolved.files[0]}; "
                          "acceptance needs the hard-process record (GenHard_* branches of lhcflow samples)")
    cuts = parse_selection(selection)
    fractions = dict(split.get("fractions") or {"train": 0.45, "val": 0.1, "test": 0.45})
    seed = int(split.get("seed", 0))
    ingestor = Ingestor(resolved, cuts, list(fractions), fractions, seed)
    plans = validate_files(resolved, [*ingestor.collections, "hard"], ingestor.collections[len(cuts):])
    totals = {"events": 0, "accepted": 0, "sum_weights": 0.0, "sum_weights_accepted": 0.0}
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as out:
        inner = {"hard": (n_slots, len(HARD_FEATURES)), "present": (n_slots,)}
        for name, dtype in DATASETS.items():
            shape = inner.get(name, ())
            out.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                               chunks=(min(chunk_size, 16384), *shape), compression="gzip", shuffle=True,
                               track_times=False)
        out.attrs["splits"] = json.dumps(list(fractions))
        out.attrs["sample"] = sample_name
        out.attrs["selection"] = json.dumps(dict(selection), default=str)
        bar = tqdm(total=sum(p.entries for p in plans), unit="evt", desc=f"hard {sample_name}",
                   disable=not progress, file=sys.stderr)
        with bar:
            for chunk in iter_chunks(plans, resolved.tree, chunk_size, bar):
                objects, weights, passed = ingestor.select(chunk)
                hard, present = hard_slots(build_objects(chunk, resolved.collections["hard"]), n_slots)
                jets = objects.get("jet")
                n_jets = ak.to_numpy(ak.num(jets, axis=1)) if jets is not None else np.zeros(len(chunk))
                which = assign_split(split_uniform(seed, chunk.plan.index, chunk.entries()), fractions)
                _append(out, hard=hard, present=present, accepted=passed, n_jets=n_jets, weight=weights,
                        split=which)
                totals["events"] += len(chunk)
                totals["accepted"] += int(passed.sum())
                totals["sum_weights"] += float(weights.sum())
                totals["sum_weights_accepted"] += float(weights[passed].sum())
        if totals["events"] == 0:
            raise IngestError(f"{sample_name}: no events in {[str(f) for f in resolved.files]}")
    totals["acceptance"] = totals["sum_weights_accepted"] / totals["sum_weights"]
    return totals


def _append(out: h5py.File, **arrays: np.ndarray) -> None:
    n0 = out["weight"].shape[0]
    n1 = n0 + len(arrays["weight"])
    for name, values in arrays.items():
        ds = out[name]
        ds.resize(n1, axis=0)
        ds[n0:n1] = values


def read_hard_dataset(path: str | Path) -> HardDataset:
    """Load a hard dataset written by :func:`build_hard_dataset`."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            data = {name: f[name][...] for name in DATASETS}
            splits = json.loads(f.attrs["splits"])
    except (OSError, KeyError) as exc:
        raise IngestError(f"{path}: not a hard dataset ({type(exc).__name__}: {exc})") from None
    return HardDataset(splits=splits, **data)
