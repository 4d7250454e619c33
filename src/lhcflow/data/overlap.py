"""Jet-lepton overlap removal ("cleaning") of reconstructed objects.

A reconstructed isolated lepton is usually also clustered into a jet: without cleaning, the
leading "jet" of a Z -> ee event is most often an electron. Two independent ways to find
those jets:

- :func:`near_leptons`: a jet within Delta R < R of any selected lepton (the ATLAS/CMS
  convention, R = 0.4 for anti-kT R = 0.4 jets); Delta R from :mod:`vector`.
- :func:`linked_by_lepton_index` / :func:`linked_by_jet_index`: the jet that the reconstruction
  itself associated with a selected lepton, from NanoAOD's index branches (``Muon_jetIdx``
  pointing from a lepton to its jet, or ``Jet_muonIdx1/2`` from a jet to up to two leptons).

Each returns a jagged boolean per jet, True for jets to remove. Indices refer to positions in
the collections as stored in the file, so every object carries its stored ``index``.
"""

from __future__ import annotations

from collections.abc import Sequence

import awkward as ak
import numpy as np
import vector


def _momenta(objects: ak.Array) -> ak.Array:
    return vector.zip({"pt": objects.pt, "eta": objects.eta, "phi": objects.phi, "mass": objects.mass})


def near_leptons(jets: ak.Array, leptons: ak.Array, radius: float) -> ak.Array:
    """True for jets within ``Delta R < radius`` of any lepton of the same event."""
    pairs = ak.cartesian({"jet": _momenta(jets), "lepton": _momenta(leptons)}, axis=1, nested=True)
    return ak.any(pairs.jet.deltaR(pairs.lepton) < radius, axis=2)


def linked_by_lepton_index(jets: ak.Array, lepton_jet_index: ak.Array) -> ak.Array:
    """True for jets whose stored index is the ``jetIdx`` of a selected lepton (-1: none)."""
    pairs = ak.cartesian({"jet": jets.index, "link": lepton_jet_index}, axis=1, nested=True)
    return ak.any(pairs.jet == pairs.link, axis=2)


def linked_by_jet_index(jet_lepton_indices: Sequence[ak.Array], lepton_index: ak.Array) -> ak.Array:
    """True for jets one of whose lepton indices (``Jet_muonIdx1``, ``Jet_muonIdx2``) is a selected lepton."""
    removed = None
    for links in jet_lepton_indices:
        pairs = ak.cartesian({"link": links, "lepton": lepton_index}, axis=1, nested=True)
        hit = ak.any(pairs.link == pairs.lepton, axis=2)
        removed = hit if removed is None else removed | hit
    return removed


def leading_near_lepton(jets: ak.Array, leptons: ak.Array, radius: float) -> np.ndarray:
    """Per event: the leading (highest-pT) jet lies within ``radius`` of a lepton (False without jets)."""
    leading = jets[ak.argsort(jets.pt, axis=1, ascending=False)][:, :1]
    return ak.to_numpy(ak.fill_none(ak.firsts(near_leptons(leading, leptons, radius)), False))


__all__ = ["leading_near_lepton", "linked_by_jet_index", "linked_by_lepton_index", "near_leptons"]
