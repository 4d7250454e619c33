"""The tHj chain's HDF5 files as they are read back, one reader and one error type each (thesis §6.1).

* ``hard.h5`` (written by :mod:`lhcflow.thj.hard`): :data:`HARD_FORMAT`, :func:`open_hard_file`,
  :class:`HardEventError`;
* paired files (written by :mod:`lhcflow.thj.paired`): :data:`PAIRED_FIELDS`, :data:`PAIRED_FORMAT`,
  :func:`read_paired_file`, :class:`PairedFileError`.

Only h5py and numpy here, so that the rules of every environment (MEM, fiducial, pairing) can read them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lhcflow.errors import InputError
from lhcflow.h5format import H5Format, attribute

#: object counts after the Table 6.1 object cuts (lhcflow.thj.reco), stored as counts/<name>
COUNTS = ("photons", "muons", "jets", "bjets", "light_jets")


class HardEventError(InputError, ValueError):
    """A hard-event file that is missing, malformed or lacks a field."""


class PairedFileError(InputError, ValueError):
    """A paired file that is missing, unreadable or lacks a dataset or attribute."""


#: hard.h5: its datasets (shape of one event's row), the attributes a reader may need, its one error
HARD_FORMAT = H5Format(
    "hard-event file",
    fields={"momenta": (5, 4), "pdg": (5,), "alpha": (), "g": (5,), "g_event": (5,), "weight": (),
            "scale": ()},
    attrs={"sigma_pb": "cross section of the sample in pb",
           "heavy": "top or top_antitop; hard events from an older lhcflow lack it"},
    error=HardEventError, remedy="rerun thj_hard_events (lhcflow.thj.hard writes it)")
HARD_FIELDS = tuple(HARD_FORMAT.fields)


class HardFile:
    """An open ``hard.h5`` whose requested datasets and attributes were checked: ``len``, ``attrs``,
    :meth:`read` of a whole dataset or of event rows. Use it as a context manager."""

    def __init__(self, path: Path, handle: h5py.File, fields: Sequence[str], n: int):
        self.path, self.handle, self.fields, self.n = path, handle, tuple(fields), n
        self.attrs = {key: attribute(value) for key, value in handle.attrs.items()}

    def __len__(self) -> int:
        return self.n

    def __enter__(self) -> "HardFile":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def read(self, name: str, index: np.ndarray | None = None) -> np.ndarray:
        """Dataset ``name`` (one of the checked fields), whole or at the event rows ``index`` (no repeats)."""
        if name not in self.fields:
            raise KeyError(f"{name!r} was not among the fields {self.fields} this hard file was opened with")
        dataset = self.handle[name]
        if index is None:
            return dataset[()]
        if len(index) == 0:
            return np.zeros((0, *dataset.shape[1:]), dataset.dtype)
        lo, hi = int(index.min()), int(index.max()) + 1
        if hi - lo <= 4 * len(index):  # nearly contiguous: one slice
            return dataset[lo:hi][index - lo]
        order = np.argsort(index)
        values = dataset[index[order]]
        out = np.empty_like(values)
        out[order] = values
        return out


def open_hard_file(path: str | os.PathLike, fields: Sequence[str] = HARD_FIELDS, attrs: Sequence[str] = (),
                   optional: Sequence[str] = ()) -> HardFile:
    """The one reader of ``hard.h5`` (:data:`HARD_FORMAT`): checks ``fields``, the ``optional`` fields the
    file has and ``attrs``; any problem raises :class:`HardEventError` naming the file and the field."""
    path = Path(path)
    handle = HARD_FORMAT.open(path)
    try:
        present = [*fields, *(name for name in optional if name in handle)]
        return HardFile(path, handle, present, HARD_FORMAT.check(handle, path, present, attrs))
    except BaseException:
        handle.close()
        raise


#: the paired file (module docstring): dataset -> (shape of one event's row, S = x_reco slots; dtype)
PAIRED_FIELDS = {"alpha": ((), np.float64), "x_hard": ((3, 4), np.float64),
                 "x_hard_ptetaphim": ((3, 4), np.float64), "pdg_hard": ((3,), np.int32),
                 "x_reco": (("S", 4), np.float64), "x_reco_ptetaphim": (("S", 4), np.float64),
                 "x_reco_present": (("S",), np.bool_), "n_extra_jets": ((), np.int8),
                 "accepted": ((), np.bool_), "cuts_passed": ((), np.int8), "g": ((5,), np.float64),
                 "hard_index": ((), np.int64), "split": ((), np.int8),
                 **{f"counts/{name}": ((), np.int16) for name in COUNTS},
                 "g_event": ((5,), np.float64), "scale": ((), np.float64),  # only when hard.h5 has them
                 "weight": ((), np.float64)}
#: attributes stored as JSON text
PAIRED_JSON_ATTRS = ("x_reco_slots", "x_hard_slots", "momentum_components", "splits", "split", "selection",
                     "cut_flow_steps", "sources")
PAIRED_FORMAT = H5Format(
    "paired tHj file", fields={name: row for name, (row, _) in PAIRED_FIELDS.items()},
    attrs={"decay": "leptonic or hadronic", "heavy": "top or top_antitop, from hard.h5",
           "x_reco_slots": "labels of the x_reco slots", "splits": "names of the split indices",
           "selection": "the reco selection", "cut_flow_steps": "the Table 6.1 cuts in order",
           "sigma_pb": "cross section of the hard sample in pb", "branching_ratio": "of the forced decays"},
    error=PairedFileError, remedy="rerun thj_paired (lhcflow.thj.paired writes it)")


def read_paired_file(path: str | os.PathLike, fields: Sequence[str] = tuple(PAIRED_FIELDS),
                     attrs: Sequence[str] = ()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The one reader of paired files (:data:`PAIRED_FORMAT`): datasets ``fields`` and every attribute
    (JSON ones decoded); a missing file, dataset or attribute in ``attrs`` raises :class:`PairedFileError`."""
    path = Path(path)
    with PAIRED_FORMAT.open(path) as handle:
        found = {key: attribute(value) for key, value in handle.attrs.items()}
        try:
            found.update({key: json.loads(found[key]) for key in PAIRED_JSON_ATTRS if key in found})
        except (TypeError, ValueError) as exc:
            raise PAIRED_FORMAT.fail(path, f"attributes {PAIRED_JSON_ATTRS} must be JSON ({exc})") from None
        sizes = {"S": len(found["x_reco_slots"])} if "x_reco_slots" in found else None
        PAIRED_FORMAT.check(handle, path, fields, attrs, sizes)
        return {name: handle[name][()] for name in fields}, found


