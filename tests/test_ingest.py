"""Tests for ROOT -> canonical HDF5 ingestion (lhcflow.data.ingest)."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import vector

from lhcflow.data.events import EventBatch, ObjectType, read_events, read_info
from lhcflow.data.ingest import IngestError, ingest_sample, resolve_source, split_uniform
from lhcflow.data.layouts import MUON_MASS_GEV, NANOAOD_DEEPCSV_MEDIUM

SPLIT = {"fractions": {"train": 0.45, "val": 0.1, "test": 0.45}, "seed": 1234}
Z_SELECTION = {
    "muons": {"min": 2, "max": 2, "keep": 2, "pt_min_gev": 0.0, "abs_eta_max": None, "opposite_charge": True},
    "jets": {"min": 0, "max": None, "keep": 0, "pt_min_gev": 20.0, "abs_eta_max": None},
}
TT_SELECTION = {
    "muons": {"min": 0, "max": None, "keep": 1, "pt_min_gev": 0.0, "opposite_charge": False},
    "jets": {"min": 2, "max": None, "keep": 4, "pt_min_gev": 20.0, "abs_eta_max": None},
}


def cms2010_source(shared_data: Path, cartesian: bool = False) -> dict:
    """Flat CMS 2010 dimuon ntuple through a flat mapping."""
    if cartesian:
        objects = [{"px": f"px{i}", "py": f"py{i}", "pz": f"pz{i}", "energy": f"E{i}", "charge": f"Q{i}"} for i in (1, 2)]
        muon = {"objects": objects}
    else:
        objects = [{"pt": f"pt{i}", "eta": f"eta{i}", "phi": f"phi{i}", "charge": f"Q{i}"} for i in (1, 2)]
        muon = {"objects": objects, "mass": MUON_MASS_GEV}
    return {"files": [shared_data / "cms2010_dimuon_zmumu.root"], "layout": "flat", "tree": "events", "mapping": {"muon": muon}}


def outputs_in(tmp_path: Path, tag: str = "out") -> dict[str, Path]:
    return {name: tmp_path / tag / f"{name}.h5" for name in SPLIT["fractions"]}


def run(source, selection, tmp_path, tag="out", split=SPLIT, **kwargs) -> tuple[dict, dict[str, Path]]:
    outputs = outputs_in(tmp_path, tag)
    kwargs.setdefault("progress", False)
    cutflow = ingest_sample(
        source, selection, split, outputs, tmp_path / tag / "cutflow.json", sample_name=tag, **kwargs
    )
    return cutflow, outputs


def read_all(outputs: dict[str, Path]) -> EventBatch:
    """All splits concatenated and ordered by source entry."""
    batch = EventBatch.concatenate([read_events(p) for p in outputs.values()])
    return batch.select(np.argsort(batch.source_index, kind="stable"))


def dimuon_mass(batch: EventBatch) -> np.ndarray:
    mu = [
        vector.array({"pt": batch.pt[:, i], "eta": batch.eta[:, i], "phi": batch.phi[:, i], "mass": batch.mass[:, i]})
        for i in (0, 1)
    ]
    return (mu[0] + mu[1]).mass


def write_tree(path: Path, tree: str, branches: dict) -> Path:
    """Write a TTree (not an RNTuple) with uproot."""
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()})
        f[tree].extend(branches)
    return path


def delphes_like(path: Path, n: int = 500, seed: int = 7, nan_entry: int | None = None) -> Path:
    """A small synthetic Delphes-layout file (branches ``Muon.PT`` ...)."""
    rng = np.random.default_rng(seed)

    def jagged(counts, values):
        return ak.unflatten(values.astype(np.float32), counts)

    n_mu, n_el, n_jet = rng.integers(0, 4, n), rng.integers(0, 3, n), rng.integers(0, 6, n)
    if nan_entry is not None:
        n_mu[nan_entry] = max(n_mu[nan_entry], 1)
    mu_pt = rng.exponential(30, n_mu.sum()) + 5
    if nan_entry is not None:
        mu_pt[n_mu[:nan_entry].sum()] = np.nan
    branches = {
        "Muon.PT": jagged(n_mu, mu_pt),
        "Muon.Eta": jagged(n_mu, rng.normal(0, 1.5, n_mu.sum())),
        "Muon.Phi": jagged(n_mu, rng.uniform(-np.pi, np.pi, n_mu.sum())),
        "Muon.Charge": ak.unflatten(rng.choice([-1, 1], n_mu.sum()).astype(np.int32), n_mu),
        "Electron.PT": jagged(n_el, rng.exponential(30, n_el.sum()) + 5),
        "Electron.Eta": jagged(n_el, rng.normal(0, 1.5, n_el.sum())),
        "Electron.Phi": jagged(n_el, rng.uniform(-np.pi, np.pi, n_el.sum())),
        "Electron.Charge": ak.unflatten(rng.choice([-1, 1], n_el.sum()).astype(np.int32), n_el),
        "Jet.PT": jagged(n_jet, rng.exponential(40, n_jet.sum()) + 10),
        "Jet.Eta": jagged(n_jet, rng.normal(0, 2, n_jet.sum())),
        "Jet.Phi": jagged(n_jet, rng.uniform(-np.pi, np.pi, n_jet.sum())),
        "Jet.Mass": jagged(n_jet, rng.uniform(2, 15, n_jet.sum())),
        "Jet.BTag": ak.unflatten(rng.integers(0, 2, n_jet.sum()).astype(np.uint32), n_jet),
        "Event.Weight": jagged(np.ones(n, dtype=np.int64), rng.uniform(0.5, 1.5, n)),
    }
    return write_tree(path, "Delphes", branches)


# --------------------------------------------------------------------------- real files


def test_cms2010_flat_mapping(shared_data, tmp_path):
    cutflow, outputs = run(cms2010_source(shared_data), Z_SELECTION, tmp_path)
    raw = uproot.open(shared_data / "cms2010_dimuon_zmumu.root")["events"].arrays(library="np")
    expected = np.flatnonzero((raw["Q1"] * raw["Q2"] < 0) & (raw["pt1"] > 0) & (raw["pt2"] > 0))
    batch = read_all(outputs)
    assert np.array_equal(batch.source_index, expected)
    assert cutflow["steps"][-1]["events"] == len(expected)
    assert read_info(outputs["train"]).slots == ["mu1", "mu2"]
    assert (batch.type == ObjectType.MUON).all() and (batch.pt[:, 0] >= batch.pt[:, 1]).all()
    mass = dimuon_mass(batch)
    counts, edges = np.histogram(mass, bins=np.arange(60, 121, 2))
    assert 86 <= edges[np.argmax(counts)] <= 94
    # The file's pt/eta/phi are not exactly consistent with its px/py/pz (and so with
    # its M) for all events: compare per event with M recomputed from the same columns
    # (float32 storage), and with the file's M in the bulk. The cartesian test below
    # checks the file's M per event.
    np.testing.assert_allclose(mass, dimuon_mass_from_raw(raw, expected), rtol=1e-3)
    assert np.median(np.abs(mass / raw["M"][expected] - 1)) < 1e-3


def dimuon_mass_from_raw(raw: dict, rows: np.ndarray) -> np.ndarray:
    mu = [
        vector.array({"pt": raw[f"pt{i}"][rows], "eta": raw[f"eta{i}"][rows], "phi": raw[f"phi{i}"][rows],
                      "mass": np.full(len(rows), MUON_MASS_GEV)})
        for i in (1, 2)
    ]
    return (mu[0] + mu[1]).mass


def test_cms2010_cartesian_mapping_matches_file_mass(shared_data, tmp_path):
    _, outputs = run(cms2010_source(shared_data, cartesian=True), Z_SELECTION, tmp_path)
    raw = uproot.open(shared_data / "cms2010_dimuon_zmumu.root")["events"].arrays(["M"], library="np")
    batch = read_all(outputs)
    np.testing.assert_allclose(dimuon_mass(batch), raw["M"][batch.source_index], rtol=1e-3)
    np.testing.assert_allclose(batch.mass, MUON_MASS_GEV, rtol=1e-2)


def test_nanoaod_ttbar_preset(shared_data, tmp_path):
    """The preset's kinematic mapping alone: no ID cuts, no cleaning (tested in test_cleaning.py)."""
    path = shared_data / "cms2015_nanoaod_ttbar.root"
    source = {"files": [path], "layout": "nanoaod", "cleaning": {"method": "none"},
              "mapping": {"muon": {"id": []}, "electron": {"id": []}}}
    cutflow, outputs = run(source, TT_SELECTION, tmp_path)
    raw = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_btagDeepB", "Muon_pt", "genWeight"])
    jets = ak.zip({"pt": raw.Jet_pt, "b": raw.Jet_btagDeepB})
    jets = jets[jets.pt > 20.0]
    jets = jets[ak.argsort(jets.pt, axis=1, ascending=False)]
    passed = np.flatnonzero(ak.to_numpy(ak.num(jets) >= 2))
    batch = read_all(outputs)
    assert np.array_equal(batch.source_index, passed)
    assert cutflow["steps"][-1]["events"] == len(passed)
    np.testing.assert_allclose(cutflow["steps"][-1]["sum_weights"], ak.sum(raw.genWeight[passed]), rtol=1e-6)
    kept = ak.fill_none(ak.pad_none(jets[passed], 4, clip=True), {"pt": 0.0, "b": -1.0})
    np.testing.assert_allclose(batch.pt[:, 1:], ak.to_numpy(kept.pt), rtol=1e-6)
    assert np.array_equal(batch.btag[:, 1:], ak.to_numpy(kept.b > NANOAOD_DEEPCSV_MEDIUM).astype(np.int8))
    assert np.array_equal(batch.n_jets_all, ak.to_numpy(ak.num(jets[passed])))
    n_mu = ak.to_numpy(ak.num(raw.Muon_pt[passed]))
    assert np.array_equal(batch.type[:, 0] == ObjectType.MUON, n_mu > 0)


def test_delphes_preset(tmp_path):
    path = delphes_like(tmp_path / "delphes.root")
    selection = {"muons": {"min": 1, "keep": 2, "opposite_charge": False}, "jets": {"min": 1, "keep": 2, "pt_min_gev": 20.0}}
    source = {"files": [path], "layout": "delphes", "cleaning": {"method": "none"}}  # cleaning: test_cleaning.py
    cutflow, outputs = run(source, selection, tmp_path)
    raw = uproot.open(path)["Delphes"].arrays()
    n_jet = ak.num(raw["Jet.PT"][raw["Jet.PT"] > 20])
    passed = np.flatnonzero(ak.to_numpy((ak.num(raw["Muon.PT"]) >= 1) & (n_jet >= 1)))
    batch = read_all(outputs)
    assert np.array_equal(batch.source_index, passed)
    np.testing.assert_allclose(batch.weight, ak.to_numpy(ak.firsts(raw["Event.Weight"]))[passed], rtol=1e-6)
    muons = batch.type[:, :2] == ObjectType.MUON
    np.testing.assert_allclose(batch.mass[:, :2][muons], MUON_MASS_GEV, rtol=1e-6)
    assert cutflow["tree"] == "Delphes" and set(np.unique(batch.btag)) <= {0, 1}


def test_resolve_merges_overrides_field_by_field(shared_data):
    source = {"files": [shared_data / "cms2015_nanoaod_ttbar.root"], "layout": "nanoaod",
              "mapping": {"jet": {"btag": {"column": "Jet_btagCSVV2", "threshold": 0.8}}, "muon": {"mass": 0.1}}}
    resolved = resolve_source(source)
    assert resolved.collections["jet"].fields["btag"].column == "Jet_btagCSVV2"
    assert resolved.collections["jet"].fields["pt"].column == "Jet_pt"
    assert resolved.collections["muon"].fields["mass"].value == 0.1
    assert "Jet_btagCSVV2" in resolved.branches(["jet"]) and "Muon_pt" not in resolved.branches(["jet"])


# --------------------------------------------------------------------------- splits


def test_splits_disjoint_reproducible_and_chunk_independent(shared_data, tmp_path):
    source = cms2010_source(shared_data)
    cutflow, first = run(source, Z_SELECTION, tmp_path, "a", chunk_size=100_000)
    _, again = run(source, Z_SELECTION, tmp_path, "b", chunk_size=100)
    n = cutflow["steps"][-1]["events"]
    indices = {k: read_events(p).source_index for k, p in first.items()}
    assert sum(map(len, indices.values())) == n
    assert len(np.unique(np.concatenate(list(indices.values())))) == n
    for name, fraction in SPLIT["fractions"].items():
        assert abs(len(indices[name]) / n - fraction) < 0.04
        assert cutflow["splits"][name]["events"] == len(indices[name])
        a, b = read_events(first[name]), read_events(again[name])
        for key in ("type", "pt", "eta", "phi", "mass", "charge", "btag", "weight", "source_index"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
    _, other = run(source, Z_SELECTION, tmp_path, "c", split={**SPLIT, "seed": 99})
    assert not np.array_equal(read_events(other["train"]).source_index, indices["train"])


def test_split_hash_is_uniform_and_keyed_by_file():
    u = split_uniform(1234, 0, np.arange(200_000))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    assert not np.array_equal(u[:100], split_uniform(1234, 1, np.arange(100)))


# --------------------------------------------------------------------------- bad input


def assert_nothing_left(tmp_path: Path, tag: str = "out") -> None:
    left = [p.name for p in (tmp_path / tag).glob("*")] if (tmp_path / tag).exists() else []
    assert left == [], left


def fail(source, selection, tmp_path, stale: bool = True) -> str:
    """Run an ingestion expected to fail, with stale outputs present; return the message."""
    if stale:
        for path in [*outputs_in(tmp_path).values(), tmp_path / "out" / "cutflow.json"]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("stale")
    with pytest.raises(IngestError) as info:
        run(source, selection, tmp_path)
    assert_nothing_left(tmp_path)
    return str(info.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.root"
    msg = fail({"files": [missing], "layout": "nanoaod"}, TT_SELECTION, tmp_path)
    assert str(missing) in msg and "does not exist" in msg


def test_not_a_root_file(tmp_path):
    bogus = tmp_path / "text.root"
    bogus.write_text("this is not ROOT\n" * 10)
    msg = fail({"files": [bogus], "layout": "nanoaod"}, TT_SELECTION, tmp_path)
    assert str(bogus) in msg and "not a readable ROOT file" in msg


def test_malformed_delphes(shared_data, tmp_path):
    path = shared_data / "malformed_delphes.root"
    msg = fail({"files": [path], "layout": "delphes"}, TT_SELECTION, tmp_path)
    assert str(path) in msg and "no TTree 'Delphes'" in msg


def test_missing_branch_suggests_close_match(shared_data, tmp_path):
    path = shared_data / "cms2015_nanoaod_ttbar.root"
    source = {"files": [path], "layout": "nanoaod", "mapping": {"muon": {"pt": "Muon_ptt"}}}
    msg = fail(source, TT_SELECTION, tmp_path)
    assert str(path) in msg and "'Muon_ptt'" in msg and "muon.pt" in msg and "'Muon_pt'" in msg


def test_second_shard_validated_before_writing(shared_data, tmp_path):
    good = delphes_like(tmp_path / "good.root")
    bad = write_tree(tmp_path / "bad.root", "Delphes", {"Muon.PT": ak.Array([[1.0]])})
    selection = {"muons": {"min": 0, "keep": 1}}
    msg = fail({"files": [good, bad], "layout": "delphes"}, selection, tmp_path)
    assert str(bad) in msg and "Muon.Eta" in msg


def test_nan_names_branch_and_entry(tmp_path):
    path = delphes_like(tmp_path / "nan.root", nan_entry=123)
    msg = fail({"files": [path], "layout": "delphes"}, {"muons": {"min": 0, "keep": 1}}, tmp_path)
    assert str(path) in msg and "'Muon.PT'" in msg and "entry 123" in msg


def test_empty_selection_names_step(shared_data, tmp_path):
    selection = {**Z_SELECTION, "muons": {**Z_SELECTION["muons"], "pt_min_gev": 1e6}}
    msg = fail(cms2010_source(shared_data), selection, tmp_path)
    assert "'out'" in msg and "cms2010_dimuon_zmumu.root" in msg and "muons_multiplicity" in msg


def test_cutflow_json_written(shared_data, tmp_path):
    cutflow, _ = run(cms2010_source(shared_data), Z_SELECTION, tmp_path)
    stored = json.loads((tmp_path / "out" / "cutflow.json").read_text())
    assert stored["steps"] == cutflow["steps"]
    assert [s["name"] for s in stored["steps"]] == ["read", "muons_multiplicity", "muons_opposite_charge", "jets_multiplicity"]
    assert stored["mapping"]["muon"]["objects"][0]["pt"] == "pt1"
    assert sum(s["events"] for s in stored["splits"].values()) == stored["steps"][-1]["events"]


def test_a_mapping_without_enough_momentum_fields_names_both_parametrisations(shared_data, tmp_path):
    source = cms2010_source(shared_data, cartesian=True)
    for obj in source["mapping"]["muon"]["objects"]:
        del obj["pz"]  # px, py alone: neither pt/eta/phi nor px/py/pz
    with pytest.raises(IngestError) as err:
        run(source, Z_SELECTION, tmp_path)
    text = str(err.value)
    assert "cms2010_dimuon_zmumu.root" in text and "mapping.muon.objects[0]" in text
    assert "pt, eta, phi" in text and "px, py, pz with energy or mass" in text
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("keep", ["half", "all_but_10", "header_only"])
def test_truncated_root_file_is_named_truncated(shared_data, tmp_path, keep):
    data = (shared_data / "cms2010_dimuon_zmumu.root").read_bytes()
    size = {"half": len(data) // 2, "all_but_10": len(data) - 10, "header_only": 50}[keep]
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[:size])
    source = {**cms2010_source(shared_data), "files": [cut]}
    msg = fail(source, Z_SELECTION, tmp_path)
    assert str(cut) in msg and "truncated" in msg
    # cut by 10 bytes, the file still opens and reads in uproot: only the header's fEND tells
    if keep == "header_only":
        assert "shorter than a ROOT file header" in msg
    else:
        assert f"ROOT header says {len(data)} bytes, file has {size} (copy incomplete?)" in msg


def test_empty_file_is_named_empty(tmp_path):
    empty = tmp_path / "empty.root"
    empty.write_bytes(b"")
    msg = fail({"files": [empty], "layout": "nanoaod"}, TT_SELECTION, tmp_path)
    assert str(empty) in msg and "empty file" in msg
