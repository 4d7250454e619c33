"""The ``delphes`` preset on trees with Delphes' own branch structure.

Delphes writes each collection as a split TClonesArray: a top-level branch ``Muon`` whose sub-branches
uproot lists as ``Muon/Muon.PT``, ``Muon/Muon.Eta``, ..., next to a counter branch ``Muon_size``; the
event record is ``Event/Event.Weight`` (one entry per event) and Delphes >= 3.4 adds
``Weight/Weight.Weight`` (one entry per event weight). uproot cannot write a split TClonesArray
(``uproot.writing`` writes TBranch/TLeaf trees only: no TBranchElement, no streamer of a user class),
and there is no ROOT here. ``write_delphes`` therefore writes a tree whose ``keys()`` are the strings
uproot reports for a real Delphes file (``Muon``, ``Muon/Muon.PT``, ``Muon_size``, ...), as flat
branches; ``split=False`` writes the other spelling found in the wild (``Muon.PT`` at top level, as
lhcflow's own detector stage writes). The expected selections are computed from the generated objects.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from lhcflow.data.events import ObjectType, read_events
from lhcflow.data.ingest import ingest_sample
from lhcflow.data.layouts import DELPHES_MUON_ISOLATION

SPLIT = {"fractions": {"train": 0.5, "val": 0.2, "test": 0.3}, "seed": 3}
SELECTION = {"muons": {"min": 1, "keep": 2, "pt_min_gev": 10.0},
             "electrons": {"min": 0, "keep": 0, "pt_min_gev": 10.0},
             "jets": {"min": 1, "keep": 3, "pt_min_gev": 20.0}}
# Data members Delphes writes per class (classes/DelphesClasses.h), TRef members left out.
CLASSES = {
    "Event": {"fUniqueID": np.uint32, "fBits": np.uint32, "Number": np.int64, "ReadTime": np.float32,
              "ProcTime": np.float32, "ProcessID": np.int32, "MPI": np.int32, "Weight": np.float32,
              "CrossSection": np.float32, "Scale": np.float32},
    "Weight": {"fUniqueID": np.uint32, "fBits": np.uint32, "Weight": np.float32},
    "Muon": {"fUniqueID": np.uint32, "fBits": np.uint32, "PT": np.float32, "Eta": np.float32, "Phi": np.float32,
             "T": np.float32, "Charge": np.int32, "IsolationVar": np.float32, "IsolationVarRhoCorr": np.float32},
    "Electron": {"fUniqueID": np.uint32, "fBits": np.uint32, "PT": np.float32, "Eta": np.float32,
                 "Phi": np.float32, "T": np.float32, "Charge": np.int32, "EhadOverEem": np.float32,
                 "IsolationVar": np.float32},
    "Jet": {"fUniqueID": np.uint32, "fBits": np.uint32, "PT": np.float32, "Eta": np.float32, "Phi": np.float32,
            "T": np.float32, "Mass": np.float32, "Flavor": np.uint32, "BTag": np.uint32, "TauTag": np.uint32,
            "Charge": np.int32, "NCharged": np.int32},
}


def generate(n: int = 400, seed: int = 11) -> dict[str, ak.Array]:
    """Objects per class; a third of the jets sit on a lepton (copies of its direction)."""
    rng = np.random.default_rng(seed)

    def objects(counts, **columns):
        return ak.zip({k: ak.unflatten(np.asarray(v), counts) for k, v in columns.items()})

    n_mu, n_el, n_jet = rng.integers(0, 3, n), rng.integers(0, 3, n), rng.integers(0, 5, n)
    mu = objects(n_mu, PT=rng.exponential(30, n_mu.sum()) + 5, Eta=rng.uniform(-2.4, 2.4, n_mu.sum()),
                 Phi=rng.uniform(-np.pi, np.pi, n_mu.sum()), Charge=rng.choice([-1, 1], n_mu.sum()),
                 IsolationVar=rng.uniform(0, 0.5, n_mu.sum()))
    el = objects(n_el, PT=rng.exponential(30, n_el.sum()) + 5, Eta=rng.uniform(-2.4, 2.4, n_el.sum()),
                 Phi=rng.uniform(-np.pi, np.pi, n_el.sum()), Charge=rng.choice([-1, 1], n_el.sum()),
                 IsolationVar=rng.uniform(0, 0.2, n_el.sum()))
    jet_eta, jet_phi = rng.uniform(-3, 3, n_jet.sum()), rng.uniform(-np.pi, np.pi, n_jet.sum())
    leptons = ak.concatenate([mu[["Eta", "Phi"]], el[["Eta", "Phi"]]], axis=1)
    first = np.concatenate([[0], np.cumsum(n_jet)[:-1]])
    for i in np.flatnonzero((n_jet > 0) & (ak.to_numpy(ak.num(leptons)) > 0) & (rng.uniform(size=n) < 0.6)):
        lepton = leptons[i][rng.integers(len(leptons[i]))]  # the first jet of the event is that lepton
        jet_eta[first[i]], jet_phi[first[i]] = lepton["Eta"], lepton["Phi"]
    jet = objects(n_jet, PT=rng.exponential(40, n_jet.sum()) + 10, Eta=jet_eta, Phi=jet_phi,
                  Mass=rng.uniform(2, 15, n_jet.sum()), BTag=rng.integers(0, 2, n_jet.sum()))
    ones = np.ones(n, dtype=np.int64)
    event = objects(ones, Number=np.arange(n), Weight=rng.uniform(0.5, 1.5, n))
    weight = objects(2 * ones, Weight=np.stack([rng.uniform(0.2, 0.4, n), rng.uniform(5, 6, n)], axis=1).ravel())
    return {"Event": event, "Weight": weight, "Muon": mu, "Electron": el, "Jet": jet}


def write_delphes(path: Path, truth: dict[str, ak.Array], split: bool = True, isolation: bool = True) -> Path:
    """A tree ``Delphes`` with Delphes' branch names (see the module docstring)."""
    data, types = {}, {}
    for name, members in CLASSES.items():
        objects = truth[name]
        counts = ak.num(objects)
        columns = {}
        for member, dtype in members.items():
            if member.startswith("IsolationVar") and not isolation:
                continue
            values = objects[member] if member in objects.fields else ak.zeros_like(objects[objects.fields[0]])
            columns[member] = ak.values_astype(values, dtype)
        if split:
            data[name] = ak.to_numpy(counts).astype(np.int32)  # the TClonesArray's own branch
            types[name] = data[name].dtype
        data[f"_{name}"] = ak.zip(columns)
        types[f"_{name}"] = data[f"_{name}"].type
    prefix = (lambda outer: f"{outer}/{outer}.") if split else (lambda outer: f"{outer}.")
    with uproot.recreate(path) as f:
        f.mktree("Delphes", types, counter_name=lambda outer: f"{outer[1:]}_size",
                 field_name=lambda outer, inner: f"{prefix(outer[1:])}{inner}")
        f["Delphes"].extend(data)
    return path


def delta_r(eta1, phi1, eta2, phi2):
    dphi = np.abs(phi1 - phi2)
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    return np.sqrt((eta1 - eta2) ** 2 + dphi**2)


def expected(truth: dict[str, ak.Array], isolation: bool = True) -> tuple[np.ndarray, list, list, int]:
    """Passing events, their muon pTs and jet pTs, and the jets cleaned away, event by event in numpy."""
    events, muons, jets, removed = [], [], [], 0
    for i in range(len(truth["Event"])):
        mu, jet = ak.to_numpy(truth["Muon"][i].PT), ak.to_numpy(truth["Jet"][i].PT)
        mu_ok = (truth["Muon"][i].PT > 10) & ((truth["Muon"][i].IsolationVar < DELPHES_MUON_ISOLATION) | (not isolation))
        el_ok = (truth["Electron"][i].PT > 10) & ((truth["Electron"][i].IsolationVar < 0.12) | (not isolation))
        mu_ok, el_ok = ak.to_numpy(mu_ok), ak.to_numpy(el_ok)
        lep_eta = np.concatenate([ak.to_numpy(truth["Muon"][i].Eta)[mu_ok], ak.to_numpy(truth["Electron"][i].Eta)[el_ok]])
        lep_phi = np.concatenate([ak.to_numpy(truth["Muon"][i].Phi)[mu_ok], ak.to_numpy(truth["Electron"][i].Phi)[el_ok]])
        j_eta, j_phi = ak.to_numpy(truth["Jet"][i].Eta), ak.to_numpy(truth["Jet"][i].Phi)
        clean = np.array([not np.any(delta_r(e, p, lep_eta, lep_phi) < 0.4) for e, p in zip(j_eta, j_phi)], bool)
        kept_jets = np.sort(jet[clean & (jet > 20)])[::-1]
        removed += int((~clean).sum())
        if mu_ok.sum() >= 1 and len(kept_jets) >= 1:
            events.append(i)
            muons.append(np.sort(mu[mu_ok])[::-1][:2].astype(np.float32).tolist())
            jets.append(kept_jets[:3].astype(np.float32).tolist())
    return np.array(events), muons, jets, removed


def ingest(path: Path, tmp_path: Path, mapping: dict | None = None, tag: str = "out"):
    outputs = {name: tmp_path / tag / f"{name}.h5" for name in SPLIT["fractions"]}
    source = {"files": [path], "layout": "delphes", "mapping": mapping or {}}
    cutflow = ingest_sample(source, SELECTION, SPLIT, outputs, tmp_path / tag / "cutflow.json", sample_name=tag,
                            progress=False)
    batches = [read_events(p) for p in outputs.values()]
    index = np.concatenate([b.source_index for b in batches])
    order = np.argsort(index)
    return cutflow, {k: np.concatenate([getattr(b, k) for b in batches])[order]
                     for k in ("pt", "type", "weight", "source_index")}


def rows(values: np.ndarray, present: np.ndarray) -> list[list[float]]:
    return [v[p].tolist() for v, p in zip(values, present)]


@pytest.mark.parametrize("split", [True, False], ids=["Muon/Muon.PT", "Muon.PT"])
def test_delphes_tree_with_delphes_branch_names(tmp_path, split):
    truth = generate()
    path = write_delphes(tmp_path / "delphes.root", truth, split=split)
    keys = uproot.open(path)["Delphes"].keys()
    named = ["Muon/Muon.PT", "Muon", "Muon_size", "Event/Event.Weight", "Weight/Weight.Weight"] if split else \
        ["Muon.PT", "Muon_size", "Event.Weight", "Weight.Weight"]
    assert set(named) <= set(keys)
    cutflow, batch = ingest(path, tmp_path)
    events, muons, jets, removed = expected(truth)
    assert np.array_equal(batch["source_index"], events)
    assert rows(batch["pt"][:, :2], batch["type"][:, :2] == ObjectType.MUON) == muons
    assert rows(batch["pt"][:, 2:], batch["type"][:, 2:] == ObjectType.JET) == jets
    np.testing.assert_allclose(batch["weight"], ak.to_numpy(truth["Event"].Weight[events, 0]).astype(np.float32))
    np.testing.assert_allclose(cutflow["steps"][-1]["sum_weights"], batch["weight"].sum(), rtol=1e-6)
    assert cutflow["objects"]["jet"]["removed_by_cleaning"] == removed
    assert cutflow["cleaning"]["leading_jet_near_lepton_after"]["events"] == 0
    assert "skipped_id_cuts" not in cutflow["files"][0]


def test_delphes_weight_branch_of_newer_delphes(tmp_path):
    truth = generate(n=200)
    path = write_delphes(tmp_path / "delphes.root", truth)
    _, batch = ingest(path, tmp_path, mapping={"weight": "Weight.Weight"})
    # Weight.Weight holds one entry per event weight; the first is the event's own
    np.testing.assert_allclose(batch["weight"], ak.to_numpy(truth["Weight"].Weight[batch["source_index"], 0]),
                               rtol=1e-6)


def test_delphes_without_isolation_branch_skips_that_cut_and_says_so(tmp_path):
    truth = generate(n=200)
    path = write_delphes(tmp_path / "old_delphes.root", truth, isolation=False)
    cutflow, batch = ingest(path, tmp_path)
    events, muons, _, _ = expected(truth, isolation=False)
    assert np.array_equal(batch["source_index"], events)
    assert rows(batch["pt"][:, :2], batch["type"][:, :2] == ObjectType.MUON) == muons
    assert cutflow["files"][0]["skipped_id_cuts"] == ["muon.id 'Muon.IsolationVar < 0.25'",
                                                      "electron.id 'Electron.IsolationVar < 0.12'"]
