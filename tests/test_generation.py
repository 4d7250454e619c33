"""Tests for lhcflow.generation (Pythia Z+jets, LHE showering, jets, ntuples)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import awkward as ak
import numpy as np
import pylhe
import pytest
import uproot

from lhcflow.generation import jets as jetlib
from lhcflow.generation.lhe import LHEError
from lhcflow.generation.merging import MergingError
from lhcflow.generation.pythia import lhe_settings, read_lhe_header, run_pythia, shower_lhe, zjets_settings
from lhcflow.physics.kinematics import delta_r

SHARED = Path(os.environ.get("LHCFLOW_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
MG5 = SHARED / "mg5_zjets_ckkwl_7tev_zmumu.lhe.gz"
POWHEG = SHARED / "powheg_zj.lhe"
BRANCHES = {"nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge",
            "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btag", "genWeight",
            "nGenHard", "GenHard_pt", "GenHard_eta", "GenHard_phi", "GenHard_mass", "GenHard_pdgId"}
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")


def _zjets(tmp_path, seed, name, n=50):
    root, meta = tmp_path / f"{name}.root", tmp_path / f"{name}.json"
    run_pythia(zjets_settings({}), n, seed, root, meta, progress=False, chunk_size=25)
    return uproot.open(root)["Events"].arrays(), json.loads(meta.read_text())


@pytest.fixture(scope="module")
def zjets(tmp_path_factory):
    return _zjets(tmp_path_factory.mktemp("zjets"), 12345, "a")


def _mll(events, prefix):
    pt, eta, phi = (events[f"{prefix}_{v}"] for v in ("pt", "eta", "phi"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2)
    return np.sqrt(ak.sum(e, 1) ** 2 - ak.sum(px, 1) ** 2 - ak.sum(py, 1) ** 2 - ak.sum(pz, 1) ** 2)


def test_zjets_branches_and_metadata(zjets):
    events, meta = zjets
    assert BRANCHES <= set(events.fields)
    assert len(events) == 50 and meta["n_written"] == 50
    assert meta["generator"].startswith("Pythia 8.3")
    assert meta["beam_energies_gev"] == pytest.approx([6500, 6500])
    assert meta["sigma_gen_pb"] > 0 and meta["sum_weights"] == pytest.approx(50)
    assert ak.all(events.Jet_pt >= 20) and ak.all(ak.num(events.Jet_pt) == events.nJet)
    assert ak.all(events.Jet_pt[:, :-1] >= events.Jet_pt[:, 1:])


def test_zjets_muons_form_z(zjets):
    events, _ = zjets
    assert ak.all(events.nMuon == 2)
    assert ak.all(ak.sum(events.Muon_charge, axis=1) == 0)
    mll = ak.to_numpy(_mll(events, "Muon"))
    assert np.all((mll > 35) & (mll < 155))  # 50-150 window, below it only via QED FSR
    assert np.median(mll) == pytest.approx(91, abs=5)


def test_hard_record_is_mumu_plus_parton(zjets):
    """Z -> mu mu + 1 parton at the hard level: mu-, mu+ first, their mass inside the generated window."""
    events, _ = zjets
    assert (ak.to_numpy(events.nGenHard) == 3).all()
    pid = ak.to_numpy(events.GenHard_pdgId)
    assert (pid[:, 0] == 13).all() and (pid[:, 1] == -13).all()
    assert np.isin(np.abs(pid[:, 2]), [1, 2, 3, 4, 5, 21]).all()
    mll = _mll({k.replace("GenHard", "H"): events[k][:, :2] for k in events.fields if k.startswith("GenHard")}, "H")
    assert np.all((ak.to_numpy(mll) > 50) & (ak.to_numpy(mll) < 150))


def test_muons_not_clustered_into_jets(zjets):
    events, _ = zjets
    pairs = ak.cartesian({"m": ak.zip({"pt": events.Muon_pt, "eta": events.Muon_eta,
                                       "phi": events.Muon_phi}),
                          "j": ak.zip({"pt": events.Jet_pt, "eta": events.Jet_eta,
                                       "phi": events.Jet_phi})})
    dr = delta_r(pairs.m.eta, pairs.m.phi, pairs.j.eta, pairs.j.phi)
    same = (dr < 0.01) & (abs(pairs.j.pt / pairs.m.pt - 1) < 0.05)
    assert not ak.any(same)


def test_seed_reproducibility(zjets, tmp_path):
    events, _ = zjets
    again, _ = _zjets(tmp_path, 12345, "b")
    other, _ = _zjets(tmp_path, 54321, "c")
    assert ak.all(again.Muon_pt == events.Muon_pt) and ak.all(ak.flatten(again.Jet_pt == events.Jet_pt))
    assert not ak.all(other.Muon_pt == events.Muon_pt)


def test_cluster_back_to_back():
    def part(pt, eta, phi):
        return {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
                "E": pt * np.cosh(eta)}
    hard = [part(100, 0.5, 0.0), part(80, -0.5, np.pi), part(1, 0.6, 0.1), part(2, -0.4, np.pi - 0.1),
            part(0.5, 3.0, 1.5)]
    event = ak.Array([{k: [p[k] for p in hard] for k in ("px", "py", "pz", "E")}])
    particles = ak.zip({k: event[k] for k in ("px", "py", "pz", "E")})
    jets = jetlib.cluster_jets(particles, 0.4, 20.0)
    assert ak.num(jets).tolist() == [2]
    assert ak.to_list(jets.pt[0]) == pytest.approx([101.0, 82.0], abs=0.1)
    assert jets.eta[0, 0] == pytest.approx(0.5, abs=0.01)
    btag = jetlib.btag_jets(jets, ak.Array([[{"eta": -0.45, "phi": np.pi - 0.05}]]), 0.4)
    assert btag.tolist() == [[False, True]]


def test_b_hadron_ids():
    ids = np.array([511, -521, 531, 5122, -5232, 553, 421, 211, 513, 1000512])
    assert jetlib.is_b_hadron(ids).tolist() == [True, True, True, True, True, False, False, False,
                                                True, False]


@needs_shared
def test_mg5_header_merging():
    header = read_lhe_header(MG5)
    assert header.beam_energies_gev == (3500.0, 3500.0)
    settings = lhe_settings(MG5, {"merging": {"scale_gev": 15}})
    assert "Merging:Process = pp>LEPTONS,NEUTRINOS" in settings and "Merging:doPTLundMerging = on" in settings
    assert "Merging:nJetMax = 2" in settings and "Merging:TMS = 15.0" in settings
    assert "Merging:TMS = 10.0" in lhe_settings(MG5, {})  # run-card fallback (pt_pythia = 10, do_pt_pythia = T)
    with pytest.raises(MergingError, match="0, 1, 2 extra jets"):  # never summed without merging
        lhe_settings(MG5, {"merging": {"scheme": "none"}})


@needs_shared
def test_shower_mg5_ckkwl(tmp_path):
    meta = shower_lhe(MG5, {"merging": {"scale_gev": 15}}, 30, 3, tmp_path / "m.root",
                      tmp_path / "m.json", progress=False)
    assert meta["beam_energies_gev"] == pytest.approx([3500, 3500])
    assert meta["lhe_init"]["beam_energies_gev"] == [3500, 3500]
    assert "Merging:Process = pp>LEPTONS,NEUTRINOS" in meta["settings"]
    assert meta["source_lhe"] == str(MG5) and meta["n_written"] + meta["n_zero_weight"] == 30
    events = uproot.open(tmp_path / "m.root")["Events"].arrays()
    assert ak.all(events.nMuon + events.nElectron == 2)


@needs_shared
def test_shower_powheg_no_merging(tmp_path):
    meta = shower_lhe(POWHEG, {}, None, 5, tmp_path / "p.root", tmp_path / "p.json", progress=False)
    assert not any(s.startswith("Merging:") for s in meta["settings"])
    assert meta["beam_energies_gev"] == pytest.approx([980, 980]) and meta["n_written"] == 100
    events = uproot.open(tmp_path / "p.root")["Events"].arrays()
    assert ak.all(events.nElectron == 2) and ak.all(events.nMuon == 0)
    assert float(ak.sum(events.genWeight)) == pytest.approx(meta["sum_weights"], rel=1e-5)


@needs_shared
def test_decompressed_lhe_copy_gives_the_same_events_and_is_removed(tmp_path):
    """lhe_decompress: true showers a copy named after the output; one a killed run left is overwritten,
    and the copy is gone afterwards."""
    (tmp_path / ".d.root.lhe.part").write_text("left by a killed run")
    cfg = {"merging": {"scale_gev": 15}}
    shower_lhe(MG5, cfg, 30, 3, tmp_path / "g.root", tmp_path / "g.json", progress=False)
    shower_lhe(MG5, {**cfg, "lhe_decompress": True}, 30, 3, tmp_path / "d.root", tmp_path / "d.json",
               progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.root", "g.json", "g.root"]
    direct, copied = (uproot.open(tmp_path / name)["Events"].arrays() for name in ("g.root", "d.root"))
    assert len(direct) > 0 and ak.all(direct.Muon_pt == copied.Muon_pt)
    assert ak.all(direct.genWeight == copied.genWeight)


def test_missing_lhe_raises_and_leaves_no_output(tmp_path):
    missing = tmp_path / "nope.lhe.gz"
    with pytest.raises(LHEError, match="nope.lhe.gz: LHE file not found"):
        shower_lhe(missing, {}, 10, 1, tmp_path / "out" / "x.root", tmp_path / "out" / "x.json")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_failed_run_leaves_no_partial_file(tmp_path):
    with pytest.raises(ValueError, match="rejected"):
        run_pythia(["Bogus:setting = 3"], 5, 1, tmp_path / "x.root", tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


@needs_shared
def test_ckkwl_merged_sample_keeps_hard_jets(tmp_path):
    """About a fifth of the MG5 events carry a parton above 20 GeV; a merged sample must keep
    such jets (a wrong Merging:Process rejects every event with a parton: ~1-2 % with jets)."""
    meta = shower_lhe(MG5, {"merging": {"scale_gev": 20}}, 400, 11, tmp_path / "m.root", tmp_path / "m.json",
                      progress=False)
    events = uproot.open(tmp_path / "m.root")["Events"].arrays(["nJet", "genWeight"])
    frac = float(ak.sum(events.genWeight[events.nJet >= 1]) / ak.sum(events.genWeight))
    assert 0.08 < frac < 0.5, frac
    assert meta["sigma_gen_pb"] < 3244.3  # merging removes the double counting of the inclusive LHE sum


@needs_shared
def test_unmerged_shower_reports_the_lhe_cross_section(tmp_path):
    """Without merging Pythia only showers the LHE events, so for POWHEG's weighted events
    (IDWTUP = -4) its cross section is their mean weight, with the standard error of the mean
    (computed here from the weights pylhe reads)."""
    weights = np.array([e.eventinfo.weight for e in pylhe.LHEFile.fromfile(str(POWHEG)).events])
    meta = shower_lhe(POWHEG, {"mpi": False, "hadronization": False}, None, 4, tmp_path / "p.root",
                      tmp_path / "p.json", progress=False)
    assert meta["sigma_gen_pb"] == pytest.approx(weights.mean(), rel=1e-6)
    assert meta["sigma_err_pb"] == pytest.approx(weights.std() / np.sqrt(len(weights)), rel=1e-3)
