"""Object IDs and jet-lepton cleaning of ROOT inputs (lhcflow.data.objectcuts, lhcflow.data.overlap).

References are independent of the code under test: files built with known overlaps (a jet on top of an
electron, one at Delta R = 0.5, pairs across phi = +-pi), Delta R written out in numpy, and NanoAOD's own
jet-lepton index branches read and matched in plain Python loops.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from lhcflow.config import validate_config
from lhcflow.data.events import read_events
from lhcflow.data.ingest import IngestError, ingest_sample
from lhcflow.data.objectcuts import parse_cut, parse_cuts

SPLIT = {"fractions": {"train": 0.5, "val": 0.2, "test": 0.3}, "seed": 7}
NANO = "cms2015_nanoaod_ttbar.root"
# This open-data NanoAOD leaves Muon_tightId/mediumId/looseId false for every muon (see
# test_an_id_cut_that_rejects_every_object_stops): its global, isolated muons instead.
NANO_MUON_ID = {"muon": {"id": ["Muon_isGlobal", "Muon_pfRelIso04_all < 0.15"]}}
ALL_JETS = 12  # more slots than the most jets in an event of the ttbar file (11)


def run(source, selection, tmp_path, tag="out"):
    outputs = {name: tmp_path / tag / f"{name}.h5" for name in SPLIT["fractions"]}
    cutflow = ingest_sample(source, selection, SPLIT, outputs, tmp_path / tag / "cutflow.json", sample_name=tag,
                            progress=False)
    return cutflow, outputs


def read_all(outputs):
    batches = [read_events(p) for p in outputs.values()]
    index = np.concatenate([b.source_index for b in batches])
    order = np.argsort(index)
    return {key: np.concatenate([getattr(b, key) for b in batches])[order]
            for key in ("pt", "eta", "phi", "type", "weight", "n_jets_all", "source_index")}


def delta_r(eta1, phi1, eta2, phi2):
    """Reference Delta R, the azimuth difference folded by hand."""
    dphi = np.abs(phi1 - phi2)
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    return np.sqrt((eta1 - eta2) ** 2 + dphi**2)


def write_nano(path: Path, events: list[dict]) -> Path:
    """A NanoAOD-layout tree (nMuon, Muon_pt, ...; nElectron, ...; nJet, Jet_pt, ...) from per-event dicts."""
    fields = {"Muon": ("pt", "eta", "phi", "mass", "charge", "tightId", "pfRelIso04_all"),
              "Electron": ("pt", "eta", "phi", "mass", "charge", "cutBased"),
              "Jet": ("pt", "eta", "phi", "mass", "btagDeepB")}
    dtypes = {"charge": np.int32, "cutBased": np.int32, "tightId": np.bool_}
    data = {}
    for name, keys in fields.items():
        records = {}
        for key in keys:
            per_event = [[obj.get(key, {"charge": -1, "tightId": True, "cutBased": 4}.get(key, 0.0))
                          for obj in ev.get(name, [])] for ev in events]
            counts = [len(v) for v in per_event]
            flat = np.array([x for v in per_event for x in v], dtype=dtypes.get(key, np.float32))
            records[key] = ak.unflatten(flat, counts)
        data[name] = ak.zip(records)
    data["genWeight"] = np.array([ev.get("weight", 1.0) for ev in events], dtype=np.float32)
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        f["Events"].extend(data)
    return path


# --------------------------------------------------------------------------- the cut grammar


def test_cut_grammar_reads_branch_op_number_and_nothing_else():
    assert str(parse_cut("Muon_tightId")) == "Muon_tightId"
    cut = parse_cut("  Muon_pfRelIso04_all<0.15 ")
    assert (cut.branch, cut.op, cut.value) == ("Muon_pfRelIso04_all", "<", 0.15)
    assert parse_cut({"branch": "Electron_cutBased", "op": ">=", "value": 2}).value == 2.0
    assert parse_cut("Muon.IsolationVar <= 2.5e-1").value == 0.25
    assert parse_cut("Muon_isGlobal == true").value == 1.0
    values = ak.Array([[0.1, 0.15, 0.2], []])
    assert parse_cut("x < 0.15").passes(values).tolist() == [[True, False, False], []]
    assert parse_cut("x").passes(ak.Array([[0, 3], [True]])).tolist() == [[False, True], [True]]
    for bad in ["__import__('os').system('true')", "Muon_pt < Muon_eta", "Muon_pt < 1; x", "a < 1 and b > 2",
                "Muon_pt =< 3", "", {"branch": "x", "op": "<"}, {"branch": "x", "op": "in", "value": 1},
                {"column": "x"}, 3]:
        with pytest.raises(ValueError):
            parse_cut(bad)
    assert parse_cuts(None) == [] and len(parse_cuts("Muon_tightId")) == 1


def test_schema_accepts_cleaning_and_id_and_rejects_typos():
    sample = {"kind": "root", "files": ["x.root"], "layout": "nanoaod",
              "mapping": {"muon": {"id": ["Muon_mediumId", {"branch": "Muon_pfRelIso04_all", "op": "<", "value": 0.25}]}},
              "cleaning": {"method": "nanoaod_indices", "indices": "jet"}}
    config = validate_config({"samples": {"s": sample}})
    assert config["samples"]["s"]["cleaning"] == {"method": "nanoaod_indices", "indices": "jet", "delta_r": 0.4,
                                                  "leptons": ["muon", "electron"]}
    assert validate_config({"samples": {"s": {**sample, "cleaning": {}}}})["samples"]["s"]["cleaning"]["method"] == "auto"
    for bad in [{"cleaning": {"method": "dr"}}, {"cleaning": {"delta_R": 0.3}}, {"cleaning": {"delta_r": 0}},
                {"mapping": {"muon": {"id": [{"branch": "x", "op": "=~", "value": 1}]}}},
                {"mapping": {"muon": {"id": ["x; y"]}}}, {"mapping": {"muon": {"ptt": "Muon_pt"}}}]:
        with pytest.raises(ValueError):
            validate_config({"samples": {"s": {**sample, **bad}}})


# --------------------------------------------------------------------------- known answers


ELECTRON = {"pt": 40.0, "eta": 0.5, "phi": 1.0}


def known_overlaps(tmp_path: Path) -> Path:
    """Six events whose cleaned jets are known by construction (jet pT labels the case)."""
    events = [
        # a jet exactly on the electron goes; one at Delta R = 0.5 (in eta) stays
        {"Electron": [ELECTRON], "Jet": [{"pt": 41.0, "eta": 0.5, "phi": 1.0}, {"pt": 30.0, "eta": 1.0, "phi": 1.0}],
         "weight": 2.0},
        # across phi = +-pi: Delta phi = 2 pi - 6.2 = 0.083 goes; 2 pi - 5.8 = 0.483 stays
        {"Electron": [{"pt": 50.0, "eta": 0.0, "phi": 3.1}],
         "Jet": [{"pt": 52.0, "eta": 0.0, "phi": -3.1}, {"pt": 35.0, "eta": 0.0, "phi": -2.7}], "weight": 3.0},
        # an electron failing the ID (cutBased 1, veto) cleans nothing
        {"Electron": [{**ELECTRON, "cutBased": 1}], "Jet": [{"pt": 41.0, "eta": 0.5, "phi": 1.0}], "weight": 5.0},
        # muons: Delta R = 0.39 goes, 0.41 stays; a non-isolated muon cleans nothing
        {"Muon": [{"pt": 30.0, "eta": -1.0, "phi": 0.0}, {"pt": 25.0, "eta": 2.0, "phi": -2.0, "pfRelIso04_all": 0.5}],
         "Jet": [{"pt": 60.0, "eta": -1.39, "phi": 0.0}, {"pt": 45.0, "eta": -1.0, "phi": 0.41},
                 {"pt": 26.0, "eta": 2.0, "phi": -2.0}], "weight": 7.0},
        # a lepton below the selection's pT cut (10 GeV) cleans nothing
        {"Muon": [{"pt": 8.0, "eta": 0.0, "phi": 0.0}], "Jet": [{"pt": 33.0, "eta": 0.0, "phi": 0.0}], "weight": 11.0},
        # the only jet is the electron: the event loses its jet
        {"Electron": [ELECTRON], "Jet": [{"pt": 40.5, "eta": 0.52, "phi": 0.99}], "weight": 13.0},
    ]
    return write_nano(tmp_path / "known.root", events)


KNOWN_KEPT = [[30.0], [35.0], [41.0], [45.0, 26.0], [33.0], []]
KNOWN_SELECTION = {"muons": {"min": 0, "keep": 0, "pt_min_gev": 10.0}, "electrons": {"min": 0, "keep": 0, "pt_min_gev": 10.0},
                   "jets": {"min": 0, "keep": 3, "pt_min_gev": 20.0}}


def test_delta_r_cleaning_of_known_overlaps(tmp_path):
    path = known_overlaps(tmp_path)
    cutflow, outputs = run({"files": [path], "layout": "nanoaod"}, KNOWN_SELECTION, tmp_path)
    batch = read_all(outputs)
    kept = [sorted(row[row > 0].tolist(), reverse=True) for row in batch["pt"]]
    assert kept == KNOWN_KEPT
    assert cutflow["objects"]["jet"]["removed_by_cleaning"] == 4
    cleaning = cutflow["cleaning"]
    assert cleaning["applied"] and cleaning["method"] == "delta_r"
    # events 0, 1, 3, 5 lose a jet: weights 2 + 3 + 7 + 13
    assert cleaning["events_with_jets_removed"] == {"events": 4, "sum_weights": 25.0}
    # leading jets on a lepton before: events 0, 1, 3, 5; after: none
    assert cleaning["leading_jet_near_lepton_before"] == {"events": 4, "sum_weights": 25.0}
    assert cleaning["leading_jet_near_lepton_after"] == {"events": 0, "sum_weights": 0.0}
    assert cleaning["leading_jet_after"]["events"] == 5


def test_known_overlaps_without_cleaning_and_a_jet_requirement(tmp_path):
    path = known_overlaps(tmp_path)
    selection = {**KNOWN_SELECTION, "jets": {**KNOWN_SELECTION["jets"], "min": 1}}
    cutflow, outputs = run({"files": [path], "layout": "nanoaod"}, selection, tmp_path)
    assert read_all(outputs)["source_index"].tolist() == [0, 1, 2, 3, 4]
    assert cutflow["steps"][-1] == {"name": "jets_multiplicity", "events": 5, "sum_weights": 28.0}
    # without cleaning event 5 (weight 13) passes the >= 1 jet cut on its electron
    assert cutflow["cleaning"]["selected_without_cleaning"] == {"events": 6, "sum_weights": 41.0}
    _, plain = run({"files": [path], "layout": "nanoaod", "cleaning": {"method": "none"}}, selection, tmp_path, "plain")
    assert read_all(plain)["source_index"].tolist() == [0, 1, 2, 3, 4, 5]


def test_cleaning_against_muons_only(tmp_path):
    path = known_overlaps(tmp_path)
    source = {"files": [path], "layout": "nanoaod", "cleaning": {"leptons": ["muon"], "delta_r": 0.45}}
    _, outputs = run(source, KNOWN_SELECTION, tmp_path)
    kept = [sorted(row[row > 0].tolist(), reverse=True) for row in read_all(outputs)["pt"]]
    # electrons clean nothing; with R = 0.45 the muon jet at 0.41 goes too
    assert kept == [[41.0, 30.0], [52.0, 35.0], [41.0], [26.0], [33.0], [40.5]]


# --------------------------------------------------------------------------- the real NanoAOD file


def nano_reference(path: Path, pt_min: float = 20.0) -> dict:
    """Selected leptons and jets of the ttbar file in numpy, event by event (no code under test)."""
    raw = uproot.open(path)["Events"].arrays(library="np")
    out = {"jets": [], "near": [], "idx_lepton": [], "idx_jet": []}
    for i in range(len(raw["nJet"])):
        mu_ok = raw["Muon_isGlobal"][i] & (raw["Muon_pfRelIso04_all"][i] < 0.15)
        el_ok = raw["Electron_cutBased"][i] >= 2
        lep_eta = np.concatenate([raw["Muon_eta"][i][mu_ok], raw["Electron_eta"][i][el_ok]])
        lep_phi = np.concatenate([raw["Muon_phi"][i][mu_ok], raw["Electron_phi"][i][el_ok]])
        eta, phi = raw["Jet_eta"][i], raw["Jet_phi"][i]
        near = np.array([bool(np.any(delta_r(eta[j], phi[j], lep_eta, lep_phi) < 0.4)) for j in range(len(eta))],
                        dtype=bool)
        by_lepton = np.isin(np.arange(len(eta)), np.concatenate([raw["Muon_jetIdx"][i][mu_ok],
                                                                 raw["Electron_jetIdx"][i][el_ok]]))
        mu_sel, el_sel = np.flatnonzero(mu_ok), np.flatnonzero(el_ok)
        by_jet = np.array([np.isin([raw["Jet_muonIdx1"][i][j], raw["Jet_muonIdx2"][i][j]], mu_sel).any()
                           or np.isin([raw["Jet_electronIdx1"][i][j], raw["Jet_electronIdx2"][i][j]], el_sel).any()
                           for j in range(len(eta))], dtype=bool)
        out["jets"].append(raw["Jet_pt"][i])
        out["near"].append(near)
        out["idx_lepton"].append(by_lepton)
        out["idx_jet"].append(by_jet)
    out["weight"] = raw["genWeight"]
    out["electrons_passing_id"] = sum(int((c >= 2).sum()) for c in raw["Electron_cutBased"])
    return out


def kept_jets(batch) -> list[list[float]]:
    return [sorted(row[row > 0].tolist(), reverse=True) for row in batch["pt"]]


def reference_kept(ref: dict, removed: str | None) -> list[list[float]]:
    rows = []
    for pt, gone in zip(ref["jets"], ref[removed] if removed else [np.zeros(len(p), bool) for p in ref["jets"]]):
        rows.append(sorted(pt[(~gone) & (pt > 20.0)].astype(np.float32).tolist(), reverse=True))
    return rows


TT_ALL = {"muons": {"min": 0, "keep": 0}, "electrons": {"min": 0, "keep": 0},
          "jets": {"min": 0, "keep": ALL_JETS, "pt_min_gev": 20.0}}


def test_nanoaod_delta_r_cleaning_leaves_no_leading_jet_on_a_lepton(shared_data, tmp_path):
    path = shared_data / NANO
    ref = nano_reference(path)
    cutflow, outputs = run({"files": [path], "layout": "nanoaod", "mapping": NANO_MUON_ID}, TT_ALL, tmp_path)
    batch = read_all(outputs)
    assert kept_jets(batch) == reference_kept(ref, "near")
    # the leading (pT > 20 GeV) jet lies on a selected lepton: reference count before cleaning
    leading_on_lepton = [bool(near[pt > 20][np.argmax(pt[pt > 20])]) for pt, near in zip(ref["jets"], ref["near"])
                         if (pt > 20).any()]
    cleaning = cutflow["cleaning"]
    assert cleaning["leading_jet_before"]["events"] == len(leading_on_lepton)
    assert cleaning["leading_jet_near_lepton_before"]["events"] == sum(leading_on_lepton)
    assert sum(leading_on_lepton) > 0.2 * len(leading_on_lepton)  # 61 of 168 in this file
    assert cleaning["leading_jet_near_lepton_after"]["events"] == 0
    assert cutflow["objects"]["jet"]["removed_by_cleaning"] == sum(int(n.sum()) for n in ref["near"])
    assert cutflow["objects"]["electron"]["passed_id"] == ref["electrons_passing_id"]


@pytest.mark.parametrize("indices", ["lepton", "jet"])
def test_nanoaod_index_cleaning_matches_its_links_and_agrees_with_delta_r(shared_data, tmp_path, indices):
    path = shared_data / NANO
    ref = nano_reference(path)
    source = {"files": [path], "layout": "nanoaod", "mapping": NANO_MUON_ID,
              "cleaning": {"method": "nanoaod_indices", "indices": indices}}
    cutflow, outputs = run(source, TT_ALL, tmp_path)
    assert kept_jets(read_all(outputs)) == reference_kept(ref, f"idx_{indices}")
    # two independent algorithms: geometric cone and the reconstruction's constituent links
    by_index = np.concatenate(ref[f"idx_{indices}"])
    near = np.concatenate(ref["near"])
    both, either = int((by_index & near).sum()), int((by_index | near).sum())
    assert both / either > 0.95  # measured: 74 of 75 jets; the 75th lies 0.397 from a muon linked to another jet
    assert cutflow["cleaning"]["leading_jet_near_lepton_after"]["events"] <= either - both


def test_an_id_cut_that_rejects_every_object_stops(shared_data, tmp_path):
    path = shared_data / NANO
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.h5").write_text("stale")
    with pytest.raises(IngestError) as err:
        run({"files": [path], "layout": "nanoaod"}, TT_ALL, tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "mapping.muon.id" in msg and "'Muon_tightId'" in msg and "all 41 muons" in msg
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_cleaning_and_id_configs_name_the_field(shared_data, tmp_path):
    path = shared_data / NANO
    cases = [
        ({"mapping": {"muon": {"id": ["Muon_tightID"]}}}, ["'Muon_tightID'", "muon.id", "'Muon_tightId'"]),
        ({"mapping": {"muon": {"id": ["Muon_pt >> 3"]}}}, ["mapping.muon.id", "Muon_pt >> 3"]),
        ({"cleaning": {"method": "dR"}}, ["cleaning.method", "'dR'"]),
    ]
    for extra, needles in cases:
        with pytest.raises(IngestError) as err:
            run({"files": [path], "layout": "nanoaod", **extra}, TT_ALL, tmp_path)
        assert all(n in str(err.value) for n in needles), str(err.value)
    delphes = tmp_path / "d.root"
    with uproot.recreate(delphes) as f:
        f["Delphes"] = {"Jet.PT": ak.Array([[30.0]])}
    with pytest.raises(IngestError) as err:
        run({"files": [delphes], "layout": "delphes", "cleaning": {"method": "nanoaod_indices"}}, TT_ALL, tmp_path)
    assert "nanoaod_indices" in str(err.value) and "'delphes'" in str(err.value) and "delta_r" in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_config_sample_hands_its_cleaning_and_ids_to_ingestion(shared_data, tmp_path):
    from lhcflow.data.sources import ingest_arguments

    sample = {"kind": "root", "files": [str(shared_data / NANO)], "layout": "nanoaod", "mapping": NANO_MUON_ID,
              "cleaning": {"method": "none"}}
    cfg = validate_config({"samples": {"tt": sample}})["samples"]["tt"]
    arguments = ingest_arguments(cfg, cfg["files"])
    assert arguments["source"]["cleaning"]["method"] == "none"
    cutflow, _ = run(arguments["source"], TT_ALL, tmp_path)
    assert cutflow["cleaning"]["applied"] is False and cutflow["objects"]["jet"]["removed_by_cleaning"] == 0
    raw = uproot.open(shared_data / NANO)["Events"].arrays(["Muon_isGlobal", "Muon_pfRelIso04_all"])
    assert cutflow["objects"]["muon"]["passed_id"] == ak.sum(raw.Muon_isGlobal & (raw.Muon_pfRelIso04_all < 0.15))
    assert cutflow["id_cuts"]["muon"]["Muon_isGlobal"] == {"tested": ak.count(raw.Muon_isGlobal),
                                                          "passed": ak.sum(raw.Muon_isGlobal)}
