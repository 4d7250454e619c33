"""NanoAOD-like ROOT output written in chunks, atomically.

Tree ``Events``: ``nMuon``, ``Muon_{pt,eta,phi,mass,charge}``, ``nElectron``,
``Electron_{pt,eta,phi,mass,charge}``, ``nJet``, ``Jet_{pt,eta,phi,mass,btag}``,
``genWeight``, and ``nGenHard``, ``GenHard_{pt,eta,phi,mass,pdgId}``: the outgoing particles of
the hard process before the shower (leptons first, then partons by decreasing pT).
Both lepton collections are always present (possibly empty).
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from lhcflow.atomic import atomic_path, write_json

LEPTON_FIELDS = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "mass": np.float32,
                 "charge": np.int32}
JET_FIELDS = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "mass": np.float32,
              "btag": np.bool_}
HARD_FIELDS = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "mass": np.float32,
               "pdgId": np.int32}
# Differential jet rates sqrt(d_{n,n+1}) [GeV] of merged LHE samples (lhcflow.generation.jets.jet_rates)
DJR_BRANCHES = {"DJR_d01": np.float32, "DJR_d12": np.float32, "DJR_d23": np.float32}
COLLECTIONS = {"Muon": LEPTON_FIELDS, "Electron": LEPTON_FIELDS, "Jet": JET_FIELDS, "GenHard": HARD_FIELDS}


def _collection(records: ak.Array, fields: dict) -> ak.Array:
    """Jagged record array restricted to ``fields`` with fixed output dtypes."""
    return ak.zip({name: ak.values_astype(records[name], dtype) for name, dtype in fields.items()})


def empty_chunk() -> dict:
    """A zero-event chunk with the full branch schema."""
    counts = np.zeros(0, dtype=np.int64)
    chunk = {name: ak.zip({f: ak.unflatten(np.zeros(0, dtype=d), counts) for f, d in fields.items()})
             for name, fields in COLLECTIONS.items()}
    chunk["genWeight"] = np.zeros(0, dtype=np.float32)
    return chunk


def make_chunk(muons: ak.Array, electrons: ak.Array, jets: ak.Array, weights, hard: ak.Array,
               extra: dict | None = None) -> dict:
    """Assemble one chunk of events into the branch layout expected by the writer; ``extra``: one
    value per event for each extra branch the writer was opened with."""
    chunk = {name: _collection(arr, COLLECTIONS[name])
             for name, arr in (("Muon", muons), ("Electron", electrons), ("Jet", jets), ("GenHard", hard))}
    chunk["genWeight"] = np.asarray(weights, dtype=np.float32)
    chunk.update({name: np.asarray(values) for name, values in (extra or {}).items()})
    return chunk


class NtupleWriter:
    """Context manager writing chunks to a temp file, renamed onto the target on success.

    ``extra``: further one-value-per-event branches (name -> dtype), e.g. :data:`DJR_BRANCHES`.
    """

    def __init__(self, path: str | os.PathLike, tree: str = "Events", extra: dict | None = None):
        self.path = Path(path)
        self.tree = tree
        self.extra = dict(extra or {})
        self.n_written = 0
        self._atomic = None
        self._file = None
        self._tree = None

    def __enter__(self) -> "NtupleWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._file = uproot.recreate(tmp)
        types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in empty_chunk().items()}
        types.update({name: np.dtype(dtype) for name, dtype in self.extra.items()})
        self._tree = self._file.mktree(self.tree, types, counter_name=lambda name: f"n{name}",
                                       field_name=lambda outer, inner: f"{outer}_{inner}")
        return self

    def write(self, chunk: dict) -> None:
        """Append one chunk (dict of branch-name -> array); empty chunks are skipped."""
        n = len(chunk["genWeight"])
        if n == 0:
            return
        if set(self.extra) - set(chunk):
            raise ValueError(f"chunk lacks the branches {sorted(set(self.extra) - set(chunk))}")
        chunk = {**chunk, **{name: np.asarray(chunk[name], dtype=t) for name, t in self.extra.items()}}
        self._tree.extend(chunk)
        self.n_written += n

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._file.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))


def write_metadata(path: str | os.PathLike, meta: dict) -> None:
    """Write run metadata as JSON, atomically."""
    write_json(path, meta)
