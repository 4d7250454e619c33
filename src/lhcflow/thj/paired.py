"""Paired (α, x_hard, x_reco) tHj events for the matrix element method (thesis §6.1, Eqs 6.7-6.8).

Each detector-level event (Delphes-layout ROOT, :mod:`lhcflow.thj.shower`) is paired with the hard
event it was showered from in ``hard.h5`` (:mod:`lhcflow.thj.hard`): the candidate is the event's
``Event.Number`` (the LHE index), confirmed by the hard-process top four-momentum in ``Particle``
(first |PID| = 6 with status 22) agreeing with ``momenta[:, 2]`` of ``hard.h5``; where it does not,
the top momentum is looked up among all hard events. An event without a match, or two events
claiming one hard event, is an error naming the file. Every showered event is kept, rejected ones
with ``accepted = 0`` (the label of the acceptance ε(x_hard), Eq 6.11). Tops and antitops pair
alike (|PID| = 6; t̄ → b̄ μ⁻ ν̄ under the same forced decays); the ``heavy`` attribute of hard.h5
(top or top_antitop) is copied, and a t̄ among ``heavy = top`` events is an error.

Output (HDF5, one row per showered event, written in chunks, atomically with the cut-flow JSON; read back
by :func:`read_paired_file`, whose errors are :class:`PairedFileError`):

=====================  ===========  ===========================================================
dataset                shape        meaning
=====================  ===========  ===========================================================
``alpha``              (N,)         CP phase α [rad]
``x_hard``             (N, 3, 4)    t, H, light quark: (E, px, py, pz) [GeV], lab frame (Eq 6.7)
``x_hard_ptetaphim``   (N, 3, 4)    the same as (pT, η, φ, m)
``pdg_hard``           (N, 3)       their PDG ids
``x_reco``             (N, S, 4)    Eq 6.8 slots (attribute ``x_reco_slots``), (E, px, py, pz), 0-padded
``x_reco_ptetaphim``   (N, S, 4)    the same as (pT, η, φ, m)
``x_reco_present``     (N, S)       slot filled
``n_extra_jets``       (N,)         light jets beyond the required ones (at most 4)
``accepted``           (N,)         passes all cuts of Table 6.1
``cuts_passed``        (N,)         consecutive cuts passed
``counts/<objects>``   (N,)         photons, muons, jets, bjets, light_jets after object cuts
``weight``             (N,)         hard-event weight
``g``                  (N, 5)       factorised |M|² weights of the hard event (Eq 6.33)
``g_event``, ``scale``  (N, 5), (N,) copied from ``hard.h5`` when present (reweighting in α, μ_F)
``hard_index``         (N,)         row in ``hard.h5``
``split``              (N,)         index into attribute ``splits`` (same hash as ingestion)
=====================  ===========  ===========================================================
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from lhcflow.atomic import atomic_path, write_json
from lhcflow.data.hard import _append
from lhcflow.data.ingest import (IngestError, _branch_index, _missing_branch_message, _open_tree,
                                 assign_split, build_objects, check_finite, iter_chunks, resolve_source,
                                 split_uniform, validate_files)
from lhcflow.physics.kinematics import to_ptetaphim
from lhcflow.thj import reco
from lhcflow.thj.files import HARD_FORMAT, PAIRED_FIELDS, HardFile, open_hard_file
from lhcflow.thj.heavy import kinds as heavy_kinds

PAIRING_HARD_FIELDS = ("alpha", "g", "momenta", "pdg", "weight")
OPTIONAL_HARD_FIELDS = ("g_event", "scale")  # copied when hard.h5 has them
HARD_SLOTS = ("t", "H", "q")
TOP_SLOT = 2  # momenta[:, 2] is the top in hard.h5
PAIRING_BRANCHES = ("Event.Number", "Particle.PID", "Particle.Status", "Particle.Px", "Particle.Py",
                    "Particle.Pz", "Particle.E")
OBJECTS = ("photon", "muon", "jet")
DEFAULT_SPLIT = {"fractions": {"train": 0.45, "val": 0.1, "test": 0.45}, "seed": 0}


class PairingError(IngestError):
    """A showered event has no hard event, or the reco inputs are malformed; names the file."""


# --------------------------------------------------------------------------- hard events


@dataclass
class HardEvents:
    """An open ``hard.h5`` for pairing: the top momenta in memory, the rest read by row."""

    file: HardFile
    top: np.ndarray
    sigma_pb: float
    heavy: str  # top or top_antitop (lhcflow.thj.heavy)

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def optional(self) -> list[str]:
        return [name for name in OPTIONAL_HARD_FIELDS if name in self.file.fields]

    def __len__(self) -> int:
        return len(self.top)

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """All hard datasets at ``index`` (any order, no repeats)."""
        return {name: self.file.read(name, index) for name in self.file.fields}


def open_hard_events(path: str | os.PathLike) -> HardEvents:
    """``hard.h5`` through :func:`lhcflow.thj.hard.open_hard_file`, with the fields and attributes pairing
    needs; problems with the file raise :class:`lhcflow.thj.hard.HardEventError`."""
    f = open_hard_file(path, PAIRING_HARD_FIELDS, ("sigma_pb", "heavy"), OPTIONAL_HARD_FIELDS)
    try:
        if len(f) == 0:
            raise HARD_FORMAT.fail(f.path, "no hard events")
        choice = str(f.attrs["heavy"])
        try:
            heavy_kinds(choice)
        except ValueError as exc:
            raise HARD_FORMAT.fail(f.path, f"attribute 'heavy': {exc}") from None
        top = f.read("momenta")[:, TOP_SLOT, :].astype(np.float64)
        return HardEvents(f, top, float(f.attrs["sigma_pb"]), choice)
    except BaseException:
        f.handle.close()
        raise


def check_heavy_ids(hard: HardEvents, pdg: np.ndarray) -> None:
    """Top-only hard events (``heavy = top``, Eq 6.4) hold no t̄: PDG id 6 in the top slot."""
    if hard.heavy == "top" and (pdg[:, TOP_SLOT] != 6).any():
        found = sorted(set(pdg[:, TOP_SLOT].tolist()) - {6})
        raise HARD_FORMAT.fail(hard.path, f"attribute heavy = top but the top slot holds PDG id(s) {found}")


# --------------------------------------------------------------------------- pairing


def _first(values: ak.Array) -> np.ndarray:
    """One value per event of a flat branch, or the first entry of a jagged one (Delphes ``Event``)."""
    if values.ndim > 1:
        values = ak.fill_none(ak.firsts(values, axis=1), -1)
    return ak.to_numpy(values)


def pairing_columns(chunk) -> tuple[np.ndarray, np.ndarray]:
    """(Event.Number, hard-process top (E, px, py, pz)) per event of a chunk of a Delphes-layout file."""
    number = _first(chunk.column("Event.Number")).astype(np.int64)
    pid, status = chunk.column("Particle.PID"), chunk.column("Particle.Status")
    is_top = (abs(pid) == 6) & (status == 22)
    first = ak.argmax(is_top, axis=1, keepdims=True)
    has_top = ak.to_numpy(ak.any(is_top, axis=1))
    if not has_top.all():
        entry = chunk.entry_start + int(np.argmin(has_top))
        raise PairingError(f"{chunk.plan.path}: entry {entry} has no hard-process top (|Particle.PID| = 6 "
                           "with Particle.Status = 22); cannot pair it with a hard event")
    top = [ak.to_numpy(ak.flatten(chunk.column(f"Particle.{c}")[first])) for c in ("E", "Px", "Py", "Pz")]
    return number, np.stack(top, axis=-1).astype(np.float64)


class HardMatcher:
    """Hard-event row per showered event: ``Event.Number`` if the top agrees, else the nearest top."""

    def __init__(self, hard: HardEvents, rel_tol: float = 1e-5, abs_tol_gev: float = 1e-4):
        self.hard, self.rel_tol, self.abs_tol = hard, rel_tol, abs_tol_gev
        self.used = np.zeros(len(hard), bool)
        self._tree = None
        self.n_by_number = 0

    def _agrees(self, top: np.ndarray, index: np.ndarray) -> np.ndarray:
        ref = self.hard.top[index]
        return (np.abs(top - ref) <= self.abs_tol + self.rel_tol * np.abs(ref[:, :1])).all(axis=1)

    def match(self, number: np.ndarray, top: np.ndarray, source: Path) -> np.ndarray:
        n = len(self.hard)
        valid = (number >= 0) & (number < n)
        index = np.where(valid, number, 0)
        ok = valid & self._agrees(top, index)
        self.n_by_number += int(ok.sum())
        if not ok.all():
            if self._tree is None:
                self._tree = cKDTree(self.hard.top[:, 1:])
            _, nearest = self._tree.query(top[~ok, 1:])
            index[~ok] = nearest
            ok[~ok] = self._agrees(top[~ok], nearest)
        if not ok.all():
            bad = number[~ok][:5].tolist()
            raise PairingError(f"{source}: {int((~ok).sum())} event(s) (Event.Number {bad}...) match no hard "
                               f"event of {self.hard.path}: no top momentum agrees within {self.rel_tol:g} "
                               "(relative)")
        repeated = self.used[index].any() or len(np.unique(index)) != len(index)
        if repeated:
            raise PairingError(f"{source}: two showered events pair with the same hard event of "
                               f"{self.hard.path}")
        self.used[index] = True
        return index


# --------------------------------------------------------------------------- driver


def _require_branches(plan, tree_name: str, branches) -> None:
    """Add the pairing branches to a validated file plan; a missing one raises naming file and branch."""
    available = _branch_index(_open_tree(plan.path, tree_name))
    for branch in branches:
        if branch not in available:
            raise PairingError(_missing_branch_message(plan.path, tree_name, branch, ["pairing"], available))
        plan.keys[branch] = available[branch]


def _branching_ratio(shower_meta: str | os.PathLike | Mapping) -> float:
    if isinstance(shower_meta, Mapping):
        meta, where = shower_meta, "shower metadata"
    else:
        where = Path(shower_meta)
        try:
            meta = json.loads(where.read_text())
        except (OSError, ValueError) as exc:
            raise PairingError(f"{where}: unreadable shower metadata ({type(exc).__name__}: {exc})") \
                from None
    if "branching_ratio" not in meta:
        raise PairingError(f"{where}: no 'branching_ratio' (written by lhcflow.thj.shower)")
    return float(meta["branching_ratio"])


def _create_datasets(out: h5py.File, n_slots: int, chunk: int, optional: list[str]) -> None:
    for name, (row, dtype) in PAIRED_FIELDS.items():
        if name in OPTIONAL_HARD_FIELDS and name not in optional:
            continue
        inner = tuple(n_slots if d == "S" else d for d in row)
        out.create_dataset(name, shape=(0, *inner), maxshape=(None, *inner), dtype=dtype,
                           chunks=(chunk, *inner), compression="gzip", shuffle=True, track_times=False)


def build_paired_dataset(reco_root: str | os.PathLike, hard_h5: str | os.PathLike,
                         out_h5: str | os.PathLike, cutflow_json: str | os.PathLike, *, decay: str,
                         shower_meta: str | os.PathLike | Mapping, selection: Mapping | None = None,
                         split: Mapping | None = None, chunk_size: int = 20_000,
                         progress: bool = True) -> dict:
    """Pair, select and write the paired dataset and the Table 6.1 cut flow; returns the cut flow.

    ``decay`` is ``leptonic`` or ``hadronic``; ``shower_meta`` (the shower's JSON or its dict) gives
    the branching ratio. On any error neither output exists.
    """
    targets = [Path(out_h5), Path(cutflow_json)]
    try:
        return _build(Path(reco_root), Path(hard_h5), Path(out_h5), Path(cutflow_json), decay=decay,
                      branching_ratio=_branching_ratio(shower_meta),
                      selection=reco.selection_config(selection), split={**DEFAULT_SPLIT, **(split or {})},
                      chunk_size=chunk_size, progress=progress)
    except BaseException:
        for path in targets:
            path.unlink(missing_ok=True)
        raise


def _build(reco_root: Path, hard_h5: Path, out_h5: Path, cutflow_json: Path, *, decay, branching_ratio,
           selection, split, chunk_size, progress) -> dict:
    steps = reco.cut_flow_steps(decay, selection)
    slots = reco.x_reco_slots(decay, selection)
    resolved = resolve_source({"files": [reco_root], "layout": "delphes"})
    plans = validate_files(resolved, OBJECTS)
    _require_branches(plans[0], resolved.tree, PAIRING_BRANCHES)
    fractions, seed = dict(split["fractions"]), int(split["seed"])
    cutflow = reco.CutFlow(steps)
    hard = open_hard_events(hard_h5)
    with hard.file, atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as out:
        matcher = HardMatcher(hard)
        _create_datasets(out, len(slots), max(1, min(chunk_size, 16384)), hard.optional)
        bar = tqdm(total=plans[0].entries, unit="evt", desc=f"pair tHj {decay}", disable=not progress,
                   file=sys.stderr)
        with bar:
            for chunk in iter_chunks(plans, resolved.tree, chunk_size, bar):
                check_finite(chunk)
                index = matcher.match(*pairing_columns(chunk), reco_root)
                objects = {name: build_objects(chunk, resolved.collections[name]) for name in OBJECTS}
                events = reco.reconstruct(objects, decay, selection)
                rows = hard.rows(index)
                check_heavy_ids(hard, rows["pdg"])
                x_hard = rows["momenta"][:, TOP_SLOT:]
                cutflow.add(events, rows["weight"])
                _append(out, alpha=rows["alpha"], x_hard=x_hard, x_hard_ptetaphim=to_ptetaphim(x_hard),
                        pdg_hard=rows["pdg"][:, TOP_SLOT:], x_reco=events.x_reco_p4,
                        x_reco_ptetaphim=events.x_reco, x_reco_present=events.present,
                        n_extra_jets=events.n_extra_jets, accepted=events.accepted,
                        cuts_passed=events.cuts_passed, g=rows["g"], hard_index=index,
                        split=assign_split(split_uniform(seed, 0, index), fractions),
                        **{f"counts/{k}": v for k, v in events.counts.items()},
                        **{name: rows[name] for name in hard.optional}, weight=rows["weight"])
        if cutflow.events == 0:
            raise PairingError(f"{reco_root}: no events")
        report = {"decay": decay, "heavy": hard.heavy, "reco_file": str(reco_root), "hard_file": str(hard_h5),
                  "n_hard_events": len(hard), "n_paired": cutflow.events,
                  "n_paired_by_number": matcher.n_by_number,
                  "n_hard_not_showered": len(hard) - cutflow.events,
                  "selection": selection,
                  **cutflow.report(hard.sigma_pb, branching_ratio)}
        out.attrs.update({"decay": decay, "heavy": hard.heavy, "x_reco_slots": json.dumps(slots),
                          "x_hard_slots": json.dumps(HARD_SLOTS),
                          "momentum_components": json.dumps(["E", "px", "py", "pz"]),
                          "splits": json.dumps(list(fractions)), "split": json.dumps(split),
                          "selection": json.dumps(selection),
                          "cut_flow_steps": json.dumps([s.name for s in steps]),
                          "sigma_pb": hard.sigma_pb, "branching_ratio": branching_ratio,
                          "sources": json.dumps([str(reco_root), str(hard_h5)])})
    write_json(cutflow_json, report)
    return report
