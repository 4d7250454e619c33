"""Detector stage of the tHj chain (thesis §6.1: detector effects after the shower), swappable.

Two implementations turn showered events into reconstructed photons, muons and jets:

* :mod:`lhcflow.detector.parametrized` — an in-process parametrized response built on the
  numbers of the Delphes CMS card (efficiencies, resolutions, isolation, anti-kT jets, b-tagging);
* :mod:`lhcflow.detector.delphes` — the showered events as HepMC3, run through a user's
  ``DelphesHepMC3`` binary.

Both leave a ROOT file in the layout Delphes writes (tree ``Delphes``, branches ``Photon.PT``,
``Muon.PT``, ``Jet.BTag``, ``Event.Number``, ``Event.Weight``, ``Particle.PID`` …), so the
reconstruction reads either through the ingestor's ``delphes`` preset (:mod:`lhcflow.data.layouts`).
The parametrized file keeps in ``Particle`` only the hard-process record (Pythia status 21-23:
incoming partons, t, H, light quark and the resonance decay products), which is what pairing with
the hard events needs; ``Photon.Origin``/``Muon.Origin`` (1: from the W, 2: from the Higgs) and
``Jet.Flavor`` are its truth labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from lhcflow.atomic import atomic_path
from lhcflow.errors import InputError

TREE = "Delphes"
ORIGIN_OTHER, ORIGIN_W, ORIGIN_HIGGS = 0, 1, 2
COLLECTION_FIELDS = {
    "Photon": {"PT": np.float32, "Eta": np.float32, "Phi": np.float32, "E": np.float32, "Origin": np.int8},
    "Muon": {"PT": np.float32, "Eta": np.float32, "Phi": np.float32, "Charge": np.int32, "Origin": np.int8},
    "Jet": {"PT": np.float32, "Eta": np.float32, "Phi": np.float32, "Mass": np.float32, "BTag": np.uint32,
            "Flavor": np.uint32},
    "Particle": {"PID": np.int32, "Status": np.int32, "Px": np.float64, "Py": np.float64, "Pz": np.float64,
                 "E": np.float64},
}
EVENT_FIELDS = {"Event.Number": np.int64, "Event.Weight": np.float64}


class DetectorConfigError(InputError, ValueError):
    """A detector parameter or option is unknown or invalid; the message names it."""


@dataclass
class TruthEvents:
    """One batch of showered events as the parametrized detector sees them.

    ``particles``: per event the stable particles (``px, py, pz, E, pdgId, origin``);
    ``b_hadrons``/``c_hadrons``: per event the weakly decaying B/C hadrons (``pt, eta, phi``);
    ``numbers``: per event a unique number (the LHE index), which keys its random numbers.
    """

    particles: ak.Array
    b_hadrons: ak.Array
    c_hadrons: ak.Array
    numbers: np.ndarray

    def __len__(self) -> int:
        return len(self.particles)


def _typed(records: ak.Array, fields: dict) -> ak.Array:
    return ak.zip({name: ak.values_astype(records[name], dtype) for name, dtype in fields.items()})


class DelphesLayoutWriter:
    """Write reconstructed batches in the Delphes ROOT layout, atomically (nothing left on error)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.n_written = 0
        self._atomic = self._file = self._tree = None

    def __enter__(self) -> DelphesLayoutWriter:
        self._atomic = atomic_path(self.path)
        self._file = uproot.recreate(self._atomic.__enter__())
        empty = np.zeros(0, dtype=np.int64)
        types = {name: _typed(ak.zip({f: ak.unflatten(np.zeros(0, d), empty) for f, d in fields.items()}),
                              fields).type for name, fields in COLLECTION_FIELDS.items()}
        types.update(EVENT_FIELDS)
        self._tree = self._file.mktree(TREE, types, counter_name=lambda name: f"{name}_size",
                                       field_name=lambda outer, inner: f"{outer}.{inner}")
        return self

    def write(self, collections: dict[str, ak.Array], number: np.ndarray, weight: np.ndarray) -> None:
        """Append a batch: ``collections`` keyed like :data:`COLLECTION_FIELDS`, event numbers and weights."""
        if len(number) == 0:
            return
        chunk = {name: _typed(collections[name], fields) for name, fields in COLLECTION_FIELDS.items()}
        chunk["Event.Number"] = np.asarray(number, dtype=np.int64)
        chunk["Event.Weight"] = np.asarray(weight, dtype=np.float64)
        self._tree.extend(chunk)
        self.n_written += len(number)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._file.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))


__all__ = ["TREE", "ORIGIN_OTHER", "ORIGIN_W", "ORIGIN_HIGGS", "COLLECTION_FIELDS", "DetectorConfigError",
           "TruthEvents", "DelphesLayoutWriter"]
