"""The canonical event format shared by every lhcflow chain.

One sample is one HDF5 file. Each event holds an ordered list of ``n_slots`` physics
objects (e.g. ``mu1, mu2, j1, j2, j3`` for Z+jets); empty slots have type ``NONE`` and
zero kinematics. Every per-object quantity is its own ``(n_events, n_slots)`` dataset,
so a reader fetches only the columns and row ranges it needs:

==============  =========  =================================================
dataset         dtype      meaning
==============  =========  =================================================
``type``        int8       object type code (:class:`ObjectType`), 0 = empty
``pt``          float32    transverse momentum [GeV]
``eta``         float32    pseudorapidity
``phi``         float32    azimuth in (-pi, pi]
``mass``        float32    mass [GeV]
``charge``      int8       electric charge (jets: 0)
``btag``        int8       b-tag flag (1 tagged, 0 not)
``weight``      float64    event weight, shape ``(n_events,)``
``n_jets_all``  int16      jets passing the jet selection before truncation
``source_index`` int64     event number inside the source file
==============  =========  =================================================

File attributes carry the sample: ``schema_version``, ``slots`` (slot labels),
``cross_section_pb`` and its error, ``generator``, ``seed``, ``sources`` (JSON list
of input files), ``split`` and free-form ``provenance`` JSON.

Why HDF5 and not Parquet: the generative and classifier networks consume fixed-width
tensors; padded ``(n_events, n_slots)`` datasets map onto a torch batch by a slice,
h5py reads any row range of any column without touching the rest, chunked datasets
grow by appending (bounded memory when streaming), and attributes hold provenance
next to the data. Parquet would hand back jagged lists that every reader must pad.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from lhcflow.atomic import atomic_path
from lhcflow.errors import InputError
from lhcflow.h5format import H5Format

SCHEMA_VERSION = 1
OBJECT_FIELDS: dict[str, type] = {
    "type": np.int8,
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "mass": np.float32,
    "charge": np.int8,
    "btag": np.int8,
}
EVENT_FIELDS: dict[str, type] = {
    "weight": np.float64,
    "n_jets_all": np.int16,
    "source_index": np.int64,
}


class EventFileError(InputError, ValueError):
    """A canonical event file that is missing, unreadable or lacks a dataset or attribute."""


#: the canonical event file: its datasets (shape of one event's row, S = slots), attributes and one error
EVENT_FORMAT = H5Format(
    "canonical event file",
    fields={**{name: ("S",) for name in OBJECT_FIELDS}, **{name: () for name in EVENT_FIELDS}},
    attrs={"schema_version": f"the format version, {SCHEMA_VERSION}", "slots": "JSON list of slot labels",
           "cross_section_pb": "cross section in pb", "cross_section_err_pb": "its error",
           "generator": "its name", "seed": "generation seed", "sources": "JSON list of input files",
           "split": "train, val, test or all", "provenance": "JSON"},
    error=EventFileError, remedy="rerun the rule that wrote it (generation or ingestion)")


class ObjectType(enum.IntEnum):
    """Type code stored in the ``type`` dataset."""

    NONE = 0
    MUON = 1
    ELECTRON = 2
    PHOTON = 3
    JET = 4


@dataclass
class SampleInfo:
    """Per-sample metadata stored as file attributes."""

    slots: list[str]
    cross_section_pb: float = float("nan")
    cross_section_err_pb: float = float("nan")
    generator: str = "unknown"
    seed: int = -1
    sources: list[str] = field(default_factory=list)
    split: str = "all"
    provenance: dict = field(default_factory=dict)

    def to_attrs(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "slots": json.dumps(self.slots),
            "cross_section_pb": float(self.cross_section_pb),
            "cross_section_err_pb": float(self.cross_section_err_pb),
            "generator": self.generator,
            "seed": int(self.seed),
            "sources": json.dumps([str(s) for s in self.sources]),
            "split": self.split,
            "provenance": json.dumps(self.provenance, sort_keys=True, default=str),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> SampleInfo:
        version = int(attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported canonical schema version {version} (expected {SCHEMA_VERSION})")
        return cls(
            slots=json.loads(attrs["slots"]),
            cross_section_pb=float(attrs["cross_section_pb"]),
            cross_section_err_pb=float(attrs["cross_section_err_pb"]),
            generator=str(attrs["generator"]),
            seed=int(attrs["seed"]),
            sources=json.loads(attrs["sources"]),
            split=str(attrs["split"]),
            provenance=json.loads(attrs["provenance"]),
        )


@dataclass
class EventBatch:
    """A block of events in the canonical layout (numpy arrays, see module docstring)."""

    type: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    btag: np.ndarray
    weight: np.ndarray
    n_jets_all: np.ndarray
    source_index: np.ndarray

    def __post_init__(self) -> None:
        n, k = self.type.shape
        for name in OBJECT_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=OBJECT_FIELDS[name])
            if arr.shape != (n, k):
                raise ValueError(f"field {name!r} has shape {arr.shape}, expected {(n, k)}")
            setattr(self, name, arr)
        for name in EVENT_FIELDS:
            arr = np.asarray(getattr(self, name), dtype=EVENT_FIELDS[name])
            if arr.shape != (n,):
                raise ValueError(f"field {name!r} has shape {arr.shape}, expected {(n,)}")
            setattr(self, name, arr)

    def __len__(self) -> int:
        return self.type.shape[0]

    @property
    def n_slots(self) -> int:
        return self.type.shape[1]

    @classmethod
    def empty(cls, n_events: int, n_slots: int) -> EventBatch:
        arrays = {k: np.zeros((n_events, n_slots), dtype=t) for k, t in OBJECT_FIELDS.items()}
        arrays["weight"] = np.ones(n_events)
        arrays["n_jets_all"] = np.zeros(n_events, dtype=np.int16)
        arrays["source_index"] = np.arange(n_events, dtype=np.int64)
        return cls(**arrays)

    def select(self, index: np.ndarray | slice) -> EventBatch:
        """Events picked by a boolean mask, integer index or slice."""
        return EventBatch(**{k: getattr(self, k)[index] for k in (*OBJECT_FIELDS, *EVENT_FIELDS)})

    @classmethod
    def concatenate(cls, batches: Sequence[EventBatch]) -> EventBatch:
        names = (*OBJECT_FIELDS, *EVENT_FIELDS)
        return cls(**{k: np.concatenate([getattr(b, k) for b in batches]) for k in names})

    def multiplicity(self, kind: ObjectType) -> np.ndarray:
        """Number of stored objects of ``kind`` per event."""
        return (self.type == kind).sum(axis=1)


class EventWriter:
    """Append :class:`EventBatch` blocks to a canonical HDF5 file, atomically.

    Use as a context manager; the file appears under its final name only when the
    block exits without an exception.
    """

    def __init__(self, path: str | Path, info: SampleInfo, chunk_events: int = 16384):
        self.path = Path(path)
        self.info = info
        self.chunk_events = chunk_events
        self.n_written = 0
        self._atomic = None
        self._file: h5py.File | None = None

    def __enter__(self) -> EventWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        k = len(self.info.slots)
        for name, dtype in OBJECT_FIELDS.items():
            self._file.create_dataset(
                name, shape=(0, k), maxshape=(None, k), dtype=dtype,
                chunks=(self.chunk_events, k), compression="gzip", compression_opts=4, shuffle=True,
                track_times=False,  # no object timestamps: equal content gives equal bytes
            )
        for name, dtype in EVENT_FIELDS.items():
            self._file.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=dtype,
                chunks=(self.chunk_events,), compression="gzip", compression_opts=4, shuffle=True,
                track_times=False,
            )
        return self

    def write(self, batch: EventBatch) -> None:
        if batch.n_slots != len(self.info.slots):
            raise ValueError(f"batch has {batch.n_slots} slots, file {self.path} expects {len(self.info.slots)}")
        n0, n1 = self.n_written, self.n_written + len(batch)
        for name in (*OBJECT_FIELDS, *EVENT_FIELDS):
            ds = self._file[name]
            ds.resize(n1, axis=0)
            ds[n0:n1] = getattr(batch, name)
        self.n_written = n1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._file.attrs.update(self.info.to_attrs())
                self._file.attrs["n_events"] = self.n_written
        finally:
            self._file.close()
            self._atomic.__exit__(exc_type, exc, tb)


def write_events(path: str | Path, batch: EventBatch, info: SampleInfo) -> None:
    """Write one batch as a complete canonical file."""
    with EventWriter(path, info) as writer:
        writer.write(batch)


def _open(path: str | Path, attrs=()) -> tuple[h5py.File, int]:
    """The file, checked against :data:`EVENT_FORMAT` (all datasets, ``attrs``), and its event count."""
    handle = EVENT_FORMAT.open(path)
    try:
        EVENT_FORMAT.check(handle, path, attrs=attrs)
        try:
            sizes = {"S": len(json.loads(handle.attrs["slots"]))} if "slots" in handle.attrs else None
        except (TypeError, ValueError) as exc:
            raise EVENT_FORMAT.fail(path, f"attribute 'slots' is not a JSON list ({exc})") from None
        return handle, EVENT_FORMAT.check(handle, path, EVENT_FORMAT.fields, sizes=sizes)
    except BaseException:
        handle.close()
        raise


def read_info(path: str | Path) -> SampleInfo:
    handle, _ = _open(path, EVENT_FORMAT.attrs)
    with handle:
        try:
            return SampleInfo.from_attrs(handle.attrs)
        except ValueError as exc:
            raise EVENT_FORMAT.fail(path, str(exc)) from None


def count_events(path: str | Path) -> int:
    handle, n = _open(path)
    handle.close()
    return n


def read_events(path: str | Path, start: int = 0, stop: int | None = None) -> EventBatch:
    """Read events ``[start, stop)`` of a canonical file, the one reader of :data:`EVENT_FORMAT`: a missing
    file, dataset or bad shape raises :class:`EventFileError` naming the file and the dataset."""
    handle, _ = _open(path)
    with handle:
        return EventBatch(**{k: handle[k][start:stop] for k in (*OBJECT_FIELDS, *EVENT_FIELDS)})


def iter_events(path: str | Path, chunk_size: int = 100_000) -> Iterator[EventBatch]:
    """Stream a canonical file in blocks of ``chunk_size`` events (bounded memory)."""
    n = count_events(path)
    for start in range(0, n, chunk_size):
        yield read_events(path, start, min(start + chunk_size, n))
