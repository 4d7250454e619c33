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

``id`` lists a collection's ID and isolation cuts (:mod:`lhcflow.data.objectcuts`); the
presets' defaults are the common working points of each format. ``cleaning`` is the layout's
jet-lepton overlap removal (:mod:`lhcflow.data.overlap`) when the config says ``method: auto``,
and for NanoAOD the branches of its own jet-lepton links.
"""

from __future__ import annotations

import copy

MUON_MASS_GEV = 0.1056583755
ELECTRON_MASS_GEV = 0.00051099895
NANOAOD_DEEPCSV_MEDIUM = 0.4941
# CMS muon POG: tight ID with the tight PF isolation working point (Delta R = 0.4, relative < 0.15).
NANOAOD_MUON_ID = ["Muon_tightId", "Muon_pfRelIso04_all < 0.15"]
# Cut-based electron ID (0 fail, 1 veto, 2 loose, 3 medium, 4 tight): loose, its isolation included.
NANOAOD_ELECTRON_ID = ["Electron_cutBased >= 2"]
# Delphes' relative isolation (IsolationVar, present since Delphes 3.1) at the PTRatioMax of Delphes'
# standard CMS card (muons 0.25, electrons 0.12); cards that apply no isolation leave it to this cut.
DELPHES_MUON_ISOLATION = 0.25
DELPHES_ELECTRON_ISOLATION = 0.12

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


def _delphes_isolation(prefix: str, value: float) -> list[dict]:
    return [{"branch": f"{prefix}.IsolationVar", "op": "<", "value": value, "optional": True}]


PRESETS: dict[str, dict] = {
    "nanoaod": {
        "tree": "Events",
        "cleaning": {
            "method": "delta_r",
            "lepton_jet_index": {"muon": "Muon_jetIdx", "electron": "Electron_jetIdx"},
            "jet_lepton_index": {"muon": ["Jet_muonIdx1", "Jet_muonIdx2"],
                                 "electron": ["Jet_electronIdx1", "Jet_electronIdx2"]},
        },
        "mapping": {
            "muon": {**_nano("Muon", "pt", "eta", "phi", "mass", "charge"), "id": NANOAOD_MUON_ID},
            "electron": {**_nano("Electron", "pt", "eta", "phi", "mass", "charge"), "id": NANOAOD_ELECTRON_ID},
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
        "cleaning": {"method": "delta_r"},
        "mapping": {
            "muon": {
                **_delphes("Muon", pt="PT", eta="Eta", phi="Phi", charge="Charge"),
                "mass": MUON_MASS_GEV,
                "id": _delphes_isolation("Muon", DELPHES_MUON_ISOLATION),
            },
            "electron": {
                **_delphes("Electron", pt="PT", eta="Eta", phi="Phi", charge="Charge"),
                "mass": ELECTRON_MASS_GEV,
                "id": _delphes_isolation("Electron", DELPHES_ELECTRON_ISOLATION),
            },
            "photon": {**_delphes("Photon", pt="PT", eta="Eta", phi="Phi"), "mass": 0.0},
            "jet": _delphes("Jet", pt="PT", eta="Eta", phi="Phi", mass="Mass", btag="BTag"),
            "weight": "Event.Weight",
        },
    },
    "lhcflow": {
        "tree": "Events",
        # Generated samples cluster their jets without the hard leptons and their descendants.
        "cleaning": {"method": "none"},
        "mapping": {
            "muon": _nano("Muon", "pt", "eta", "phi", "mass", "charge"),
            "electron": _nano("Electron", "pt", "eta", "phi", "mass", "charge"),
            "photon": _nano("Photon", "pt", "eta", "phi", "mass"),
            "jet": _nano("Jet", "pt", "eta", "phi", "mass", "btag"),
            "hard": _nano("GenHard", "pt", "eta", "phi", "mass"),
            "weight": "genWeight",
        },
    },
    "flat": {"tree": None, "cleaning": {"method": "delta_r"}, "mapping": {}},
}


def preset(layout: str) -> dict:
    """A deep copy of the preset called ``layout``."""
    if layout not in PRESETS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[layout])
