"""Column-mapping presets for the ROOT layouts that ingestion reads.

A preset names the tree and, per collection (``muon``, ``electron``, ``photon``,
``jet``, and ``hard``: the hard-process particles before the shower), where each canonical
field comes from. A field is a branch name, a number
(a constant for every object), or for ``btag`` a ``{column, threshold}`` dict.
``weight`` is an event-level branch, a number, ``None`` (weight 1) or
``{column, optional: true}`` (weight 1 in files without that branch).

Flat ntuples with a fixed number of objects per event use
``{objects: [{pt: pt1, ...}, {pt: pt2, ...}], mass: 0.105...}`` instead; fields given
next to ``objects`` apply to every object.
"""

from __future__ import annotations

import copy

MUON_MASS_GEV = 0.1056583755
ELECTRON_MASS_GEV = 0.00051099895
NANOAOD_DEEPCSV_MEDIUM = 0.4941

COLLECTIONS = ("muon", "electron", "photon", "jet", "hard")
FIELDS = ("pt", "eta", "phi", "mass", "charge", "btag")
DEFAULT_FIELDS: dict[str, dict] = {
    "muon": {"mass": MUON_MASS_GEV, "btag": 0},
    "electron": {"mass": ELECTRON_MASS_GEV, "btag": 0},
    "photon": {"mass": 0.0, "charge": 0, "btag": 0},
    "jet": {"charge": 0, "btag": 0},
    "hard": {"charge": 0, "btag": 0},
}


def _nano(prefix: str, *fields: str) -> dict:
    return {f: f"{prefix}_{f}" for f in fields}


def _delphes(prefix: str, **fields: str) -> dict:
    return {f: f"{prefix}.{branch}" for f, branch in fields.items()}


PRESETS: dict[str, dict] = {
    "nanoaod": {
        "tree": "Events",
        "mapping": {
            "muon": _nano("Muon", "pt", "eta", "phi", "mass", "charge"),
            "electron": _nano("Electron", "pt", "eta", "phi", "mass", "charge"),
            "photon": _nano("Photon", "pt", "eta", "phi", "mass"),
            "jet": {
                **_nano("Jet", "pt", "eta", "phi", "mass"),
                "btag": {"column": "Jet_btagDeepB", "threshold": NANOAOD_DEEPCSV_MEDIUM},
            },
            "weight": {"column": "genWeight", "optional": True},
        },
    },
    "delphes": {
        "tree": "Delphes",
        "mapping": {
            "muon": {**_delphes("Muon", pt="PT", eta="Eta", phi="Phi", charge="Charge"), "mass": MUON_MASS_GEV},
            "electron": {
                **_delphes("Electron", pt="PT", eta="Eta", phi="Phi", charge="Charge"),
                "mass": ELECTRON_MASS_GEV,
            },
            "photon": {**_delphes("Photon", pt="PT", eta="Eta", phi="Phi"), "mass": 0.0},
            "jet": _delphes("Jet", pt="PT", eta="Eta", phi="Phi", mass="Mass", btag="BTag"),
            "weight": "Event.Weight",
        },
    },
    "lhcflow": {
        "tree": "Events",
        "mapping": {
            "muon": _nano("Muon", "pt", "eta", "phi", "mass", "charge"),
            "electron": _nano("Electron", "pt", "eta", "phi", "mass", "charge"),
            "photon": _nano("Photon", "pt", "eta", "phi", "mass"),
            "jet": _nano("Jet", "pt", "eta", "phi", "mass", "btag"),
            "hard": _nano("GenHard", "pt", "eta", "phi", "mass"),
            "weight": "genWeight",
        },
    },
    "flat": {"tree": None, "mapping": {}},
}


def preset(layout: str) -> dict:
    """A deep copy of the preset called ``layout``."""
    if layout not in PRESETS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[layout])
