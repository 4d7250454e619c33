"""The detector stage (lhcflow.detector): parametrized response on toys, config errors, Delphes plumbing.

The response tests measure efficiencies and resolutions on large toy samples and compare them with
the formulas the module states, within 4 standard errors; each also shows that a wrong formula (a
doubled stochastic term) would be told apart, so the comparison can fail.
"""

from __future__ import annotations

import stat
import sys

import awkward as ak
import numpy as np
import pytest
import uproot
from tqdm import tqdm

from lhcflow.data.ingest import build_objects, iter_chunks, resolve_source, validate_files
from lhcflow.detector import DelphesLayoutWriter, DetectorConfigError, TruthEvents
from lhcflow.detector import delphes
from lhcflow.detector.parametrized import (DEFAULT_PARAMETERS, ParametrizedDetector, detector_parameters,
                                           jet_energy_resolution, muon_efficiency, muon_pt_resolution,
                                           photon_efficiency, photon_energy_resolution, tag_probability)
from lhcflow.thj.shower import detector_sink, shower_thj

N_TOY = 40_000
MUON_MASS, PION_MASS = 0.10566, 0.13957


def toy_events(objects, n=N_TOY, b_hadron=None, c_hadron=None, first_number=0) -> TruthEvents:
    """``n`` events holding ``objects`` = [(pdgId, pt, eta, phi, mass), ...] and optional B/C hadrons."""
    columns = {k: [] for k in ("px", "py", "pz", "E", "pdgId", "origin")}
    for pid, pt, eta, phi, mass in objects:
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        for key, value in zip(("px", "py", "pz", "E", "pdgId", "origin"),
                              (px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2), pid, 0)):
            columns[key].append(np.full(n, value))
    particles = ak.zip({k: ak.from_regular(np.stack(v, axis=1)) for k, v in columns.items()})
    numbers = np.arange(first_number, first_number + n)
    return TruthEvents(particles, _hadrons(b_hadron, n), _hadrons(c_hadron, n), numbers)


def _hadrons(where, n):
    """One hadron per event at ``where`` = (pt, eta, phi), or none."""
    values, k = (where, 1) if where is not None else ((0.0, 0.0, 0.0), 0)
    return ak.zip({name: ak.from_regular(np.full((n, k), v))
                   for name, v in zip(("pt", "eta", "phi"), values)})


def _flat(records, field):
    return ak.to_numpy(ak.flatten(records[field])).astype(np.float64)


def _within(measured, expected, error, n_sigma=4.0):
    return abs(measured - expected) < n_sigma * error


def _efficiency_error(eff, n):
    return np.sqrt(max(eff * (1 - eff), 1e-4) / n)


@pytest.mark.parametrize("eta", [0.3, 1.9])
def test_photon_resolution_and_efficiency(eta):
    p = DEFAULT_PARAMETERS["photon"]
    pt_true = 50.0
    energy_true = pt_true * np.cosh(eta)
    reco = ParametrizedDetector(seed=1).simulate(toy_events([(22, pt_true, eta, 0.0, 0.0)]))["Photon"]
    eff, eff_expected = ak.mean(ak.num(reco)), float(photon_efficiency(pt_true, eta, p))
    assert _within(eff, eff_expected, _efficiency_error(eff_expected, N_TOY))
    energy = _flat(reco, "E")
    sigma, sigma_expected = energy.std(), float(photon_energy_resolution(energy_true, eta, p))
    error = sigma_expected / np.sqrt(2 * len(energy))
    assert _within(sigma, sigma_expected, error)
    assert _within(energy.mean(), energy_true, sigma_expected / np.sqrt(len(energy)))
    wrong = dict(p, energy_stochastic_sqrt_gev=2 * p["energy_stochastic_sqrt_gev"])
    assert not _within(sigma, float(photon_energy_resolution(energy_true, eta, wrong)), error, n_sigma=10)


@pytest.mark.parametrize("eta", [0.2, 1.0, 2.0])
def test_muon_resolution_and_efficiency(eta):
    p = DEFAULT_PARAMETERS["muon"]
    pt_true = 40.0
    reco = ParametrizedDetector(seed=2).simulate(toy_events([(13, pt_true, eta, 0.0, MUON_MASS)]))["Muon"]
    eff, eff_expected = ak.mean(ak.num(reco)), float(muon_efficiency(pt_true, eta, p))
    assert _within(eff, eff_expected, _efficiency_error(eff_expected, N_TOY))
    relative = _flat(reco, "PT") / pt_true
    sigma, sigma_expected = relative.std(), float(muon_pt_resolution(pt_true, eta, p))
    error = sigma_expected / np.sqrt(2 * len(relative))
    assert _within(sigma, sigma_expected, error)
    assert ak.all(reco.Charge == -1)  # mu- has pdgId +13
    wrong = dict(p, resolution_constant=[2 * c for c in p["resolution_constant"]])
    assert not _within(sigma, float(muon_pt_resolution(pt_true, eta, wrong)), error, n_sigma=10)


def test_muon_outside_tracker_is_lost():
    reco = ParametrizedDetector(seed=2).simulate(toy_events([(-13, 40.0, 2.45, 0.0, MUON_MASS)], n=2000))
    assert ak.sum(ak.num(reco["Muon"])) == 0
    p = DEFAULT_PARAMETERS["muon"]
    assert muon_efficiency(2000.0, 0.0, p) < muon_efficiency(900.0, 0.0, p)  # the card's TeV fall-off


def test_jet_energy_resolution():
    p = DEFAULT_PARAMETERS["jet"]
    pt_true, eta = 80.0, 0.5
    energy_true = np.sqrt((pt_true * np.cosh(eta)) ** 2 + PION_MASS**2)
    jets = ParametrizedDetector(seed=3).simulate(toy_events([(211, pt_true, eta, 1.0, PION_MASS)]))["Jet"]
    assert ak.all(ak.num(jets) == 1)
    energy = np.sqrt((_flat(jets, "PT") * np.cosh(_flat(jets, "Eta"))) ** 2 + _flat(jets, "Mass") ** 2)
    relative = energy / energy_true
    sigma, sigma_expected = relative.std(), float(jet_energy_resolution(energy_true, p))
    error = sigma_expected / np.sqrt(2 * len(relative))
    assert _within(sigma, sigma_expected, error)
    assert _within(relative.mean(), 1.0, sigma_expected / np.sqrt(len(relative)))
    wrong = dict(p, energy_stochastic_sqrt_gev=2 * p["energy_stochastic_sqrt_gev"])
    assert not _within(sigma, float(jet_energy_resolution(energy_true, wrong)), error, n_sigma=10)


@pytest.mark.parametrize(("flavour", "hadron"), [(5, "b"), (4, "c"), (0, None)])
def test_btag_rates_by_flavour(flavour, hadron):
    pb = DEFAULT_PARAMETERS["btag"]
    pt_true, eta, phi = 60.0, 0.5, -1.0
    marker = (10.0, eta + 0.1, phi)
    truth = toy_events([(211, pt_true, eta, phi, PION_MASS)], b_hadron=marker if hadron == "b" else None,
                       c_hadron=marker if hadron == "c" else None)
    jets = ParametrizedDetector(seed=4).simulate(truth)["Jet"]
    assert ak.all(jets.Flavor == flavour)
    rate = _flat(jets, "BTag").mean()
    expected = float(np.mean(tag_probability(_flat(jets, "PT"), _flat(jets, "Eta"), flavour, pb)))
    assert _within(rate, expected, _efficiency_error(expected, len(_flat(jets, "PT"))))
    forward = ParametrizedDetector(seed=4).simulate(toy_events([(211, pt_true, 3.0, phi, PION_MASS)], n=2000,
                                                               b_hadron=(10.0, 3.0, phi)))["Jet"]
    assert ak.sum(forward.BTag) == 0  # outside the tracker


def test_isolation_and_jet_inputs():
    near = toy_events([(22, 50.0, 0.0, 0.0, 0.0), (211, 10.0, 0.3, 0.0, PION_MASS)], n=2000)
    far = toy_events([(22, 50.0, 0.0, 0.0, 0.0), (211, 25.0, 0.8, 0.0, PION_MASS)], n=2000)
    det = ParametrizedDetector(seed=5)
    out_near, out_far = det.simulate(near), det.simulate(far)
    assert ak.sum(ak.num(out_near["Photon"])) == 0  # 10 GeV within 0.5 > 0.12 x 50 GeV
    assert ak.mean(ak.num(out_far["Photon"])) > 0.9
    # the non-isolated photon ends up in the jet; an isolated one does not
    assert ak.mean(ak.max(out_near["Jet"].PT, axis=1)) == pytest.approx(60.0, rel=0.05)
    isolated = ak.num(out_far["Photon"]) == 1
    assert ak.mean(ak.max(out_far["Jet"].PT[isolated], axis=1)) == pytest.approx(25.0, rel=0.1)
    muon = toy_events([(13, 40.0, 0.0, 0.0, MUON_MASS), (211, 15.0, 0.3, 0.0, PION_MASS)], n=2000)
    assert ak.sum(ak.num(det.simulate(muon)["Muon"])) == 0  # 15 GeV > 0.25 x 40 GeV


def test_deterministic_per_event_and_seeded():
    objects = [(22, 50.0, 0.3, 0.0, 0.0), (13, 40.0, 1.0, 2.0, MUON_MASS), (211, 80.0, 0.5, -2.0, PION_MASS)]
    truth = toy_events(objects, n=500, b_hadron=(10.0, 0.5, -2.0))
    a = ParametrizedDetector(seed=7).simulate(truth)
    b = ParametrizedDetector(seed=7).simulate(truth)
    c = ParametrizedDetector(seed=8).simulate(truth)
    tail = ParametrizedDetector(seed=7).simulate(toy_events(objects, n=200, b_hadron=(10.0, 0.5, -2.0),
                                                            first_number=300))
    for name, field in (("Photon", "E"), ("Muon", "PT"), ("Jet", "PT"), ("Jet", "BTag")):
        assert ak.all(a[name][field] == b[name][field])
        assert ak.all(a[name][field][300:] == tail[name][field])  # batch-independent
    assert a["Photon"].E.tolist() != c["Photon"].E.tolist()


def test_parameter_overrides_and_unknown_keys():
    params = detector_parameters({"photon": {"efficiency_barrel": 0.5}})
    assert params["photon"]["efficiency_barrel"] == 0.5
    assert DEFAULT_PARAMETERS["photon"]["efficiency_barrel"] == 0.95  # defaults untouched
    reco = ParametrizedDetector({"photon": {"efficiency_barrel": 0.5}}, seed=1).simulate(
        toy_events([(22, 50.0, 0.3, 0.0, 0.0)], n=4000))
    assert ak.mean(ak.num(reco["Photon"])) == pytest.approx(0.5, abs=0.04)
    with pytest.raises(DetectorConfigError, match=r"detector\.parameters\.photon\.efficiency_barel"):
        detector_parameters({"photon": {"efficiency_barel": 0.9}})
    with pytest.raises(DetectorConfigError, match=r"detector\.parameters\.electron"):
        detector_parameters({"electron": {}})
    with pytest.raises(DetectorConfigError, match="resolution_constant"):
        detector_parameters({"muon": {"resolution_constant": [0.01]}})
    with pytest.raises(DetectorConfigError, match="geant4"):
        detector_sink({"kind": "geant4"}, "x.root", 1)
    with pytest.raises(DetectorConfigError, match="paramters"):
        detector_sink({"kind": "parametrized", "paramters": {}}, "x.root", 1)
    with pytest.raises(DetectorConfigError, match="card"):
        detector_sink({"kind": "delphes"}, "x.root", 1)


# --------------------------------------------------------------------------- Delphes layout and Delphes


def _reco_collections(n):
    """Reco-like collections in the Delphes layout with 0, 1, 2, 0, ... objects per event."""
    counts = np.arange(n) % 3
    total = int(counts.sum())
    base, ones = np.linspace(20, 80, total), np.ones(total)

    def jagged(**fields):
        return ak.unflatten(ak.zip(fields), counts)

    return {"Photon": jagged(PT=base, Eta=base / 100, Phi=-base / 100, E=2 * base, Origin=2 * ones),
            "Muon": jagged(PT=base + 1, Eta=base / 90, Phi=base / 80, Charge=ones, Origin=ones),
            "Jet": jagged(PT=base + 2, Eta=base / 70, Phi=base / 60, Mass=base / 10,
                          BTag=np.arange(total) % 2, Flavor=5 * ones),
            "Particle": jagged(PID=6 * ones, Status=22 * ones, Px=base, Py=base, Pz=base, E=3 * base)}


def test_delphes_layout_is_read_by_the_ingestor(tmp_path):
    path = tmp_path / "reco.root"
    collections = _reco_collections(10)
    with DelphesLayoutWriter(path) as writer:
        writer.write(collections, np.arange(10) + 100, np.full(10, 0.5))
    resolved = resolve_source({"files": [path], "layout": "delphes"})
    plans = validate_files(resolved, ["photon", "muon", "jet"])
    chunk = next(iter_chunks(plans, resolved.tree, 100, tqdm(disable=True)))
    jets = build_objects(chunk, resolved.collections["jet"])
    np.testing.assert_allclose(_flat(jets, "pt"), _flat(collections["Jet"], "PT"), rtol=1e-6)
    np.testing.assert_array_equal(_flat(jets, "btag"), _flat(collections["Jet"], "BTag"))
    photons = build_objects(chunk, resolved.collections["photon"])
    assert ak.all(photons.mass == 0) and ak.all(ak.num(photons) == ak.num(collections["Photon"]))
    tree = uproot.open(path)["Delphes"]
    assert tree["Event.Number"].array().tolist() == list(range(100, 110))


def test_delphes_layout_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with DelphesLayoutWriter(tmp_path / "reco.root") as writer:
            writer.write(_reco_collections(4), np.arange(4), np.ones(4))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_missing_delphes_gives_a_clear_error(monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(delphes.DelphesNotFound) as err:
        delphes.find_delphes()
    message = str(err.value)
    assert "DelphesHepMC3" in message and "PATH" in message and "detector.executable" in message
    assert "parametrized" in message
    out = tmp_path / "out"
    with pytest.raises(delphes.DelphesNotFound):
        shower_thj(shared_data / "powheg_zj.lhe", out / "reco.root", out / "shower.json", seed=1,
                   detector={"kind": "delphes", "card": "delphes_card_CMS.tcl"}, progress=False)
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_pyhepmc_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyhepmc", None)
    with pytest.raises(delphes.DelphesNotFound, match="pip install pyhepmc"):
        delphes.HepMC3Writer(tmp_path / "events.hepmc")


def test_hepmc_status_codes():
    pythia = np.array([1, 91, -12, -84, -91, -22, -62, -21])
    np.testing.assert_array_equal(delphes.hepmc_status(pythia), [1, 1, 4, 2, 2, 22, 62, 21])


def _fake_delphes(directory, body):
    exe = directory / "DelphesHepMC3"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_run_delphes_plumbing_with_a_stand_in(monkeypatch, tmp_path):
    """A stand-in binary checks the call (card, output, input) and the atomic output: no Delphes needed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    card, hepmc = tmp_path / "card.tcl", tmp_path / "events.hepmc"
    card.write_text("set ExecutionPath {}\n")
    hepmc.write_text("HepMC::Version 3\n")
    _fake_delphes(bin_dir, 'test -f "$1" && test ! -e "$2" && test -f "$3" && echo "$1 $3" > "$2"')
    out = delphes.run_delphes(card, hepmc, tmp_path / "out" / "delphes.root")
    assert out.read_text().split() == [str(card), str(hepmc)]
    _fake_delphes(bin_dir, "echo 'card error' >&2; exit 3")
    with pytest.raises(RuntimeError, match="card error"):
        delphes.run_delphes(card, hepmc, tmp_path / "out" / "bad.root")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["delphes.root"]
    with pytest.raises(FileNotFoundError, match="nope.tcl"):
        delphes.run_delphes(tmp_path / "nope.tcl", hepmc, tmp_path / "out" / "bad.root")
