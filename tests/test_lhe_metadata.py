"""LHE metadata of the NIS Drell-Yan and tHj events: PDF id, α_s and integrator of the run.

The references are published numbers, not lhcflow's table: the official LHAPDF ids of the sets
(LHAPDF ``pdfsets.index``) and their α_s(M_Z) (``AlphaS_MZ`` of the set's LHAPDF ``.info`` file).
Every written file is parsed with pylhe.
"""

from __future__ import annotations

import numpy as np
import pylhe
import pytest

from lhcflow.config import ConfigError, validate_config
from lhcflow.generation.pythia import _init_pythia
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.lhe import LHEWriter
from lhcflow.nis.stages import EventsSettings, ExperimentSettings, RunSettings, events_stage, run_stage
from lhcflow.physics.pdf import load_pythia_pdf
from lhcflow.physics.pdf_sets import UnknownPDFSetError
from lhcflow.thj import hard
from lhcflow.thj.cross_section import ThjCrossSection
from lhcflow.thj.shower import thj_settings

# set → (LHAPDF id from pdfsets.index, AlphaS_MZ from the LHAPDF .info file, PDF:pSet of Pythia 8.317's
# xmldoc/PDFSelection.xml)
PUBLISHED = {"NNPDF23_lo_as_0119_qed": (246800, 0.119, 14), "NNPDF31_lo_as_0118": (315000, 0.118, 18)}
TINY_MADNIS = {"preset": "table_a5", "batch_size": 256, "epochs": 1, "batches_per_epoch": 4,
               "history_every": 4, "history_batches": 1, "history_batch_size": 256}


def _assert_metadata(path, pdf_name: str, integrator: str) -> list:
    """The <init> PDF ids, the events' α_s and the <generator> tag of ``path``; returns the events."""
    lhe = pylhe.LHEFile.fromfile(str(path))
    lhapdf_id, alphas, _ = PUBLISHED[pdf_name]
    info = lhe.init.initInfo
    assert (info.PDFgroupA, info.PDFgroupB, info.PDFsetA, info.PDFsetB) == (0, 0, lhapdf_id, lhapdf_id)
    [generator] = lhe.init.generators
    assert generator.name == "lhcflow" and generator.extra_attributes["integrator"] == integrator
    assert integrator in generator.description
    events = list(lhe.events)
    assert events and all(ev.eventinfo.aqcd == pytest.approx(alphas, rel=1e-8) for ev in events)
    return events


@pytest.mark.parametrize("pdf_name", sorted(PUBLISHED))
def test_drell_yan_events_name_their_pdf_and_madnis(tmp_path, pdf_name):
    exp = {"integrand": {"name": "drell_yan", "prior": "mg5", "pdf": pdf_name},
           "variants": {"m": {"method": "madnis", "config": TINY_MADNIS}}}
    experiment = ExperimentSettings("dy", exp)
    run_stage(RunSettings(experiment, "m", 0, 0, 500), out_json=tmp_path / "r.json", out_state=tmp_path / "m.pt")
    meta = events_stage(EventsSettings(experiment, "m", 20, 1, batch_size=5000), state=tmp_path / "m.pt",
                        out_lhe=tmp_path / "dy.lhe", out_meta=tmp_path / "dy.json").meta
    assert meta["pdf"] == pdf_name and meta["lhapdf_id"] == PUBLISHED[pdf_name][0] and meta["integrator"] == "madnis"
    _assert_metadata(tmp_path / "dy.lhe", pdf_name, "MadNIS")


@pytest.mark.parametrize(("pdf_name", "method", "config"), [
    ("NNPDF23_lo_as_0119_qed", "madnis", {"batch_size": 256, "epochs": 1, "batches_per_epoch": 3}),
    ("NNPDF31_lo_as_0118", "vegas", {"iterations": 2, "samples_per_iteration": 2000}),
])
def test_thj_hard_events_name_their_pdf_and_integrator(tmp_path, pdf_name, method, config):
    xs = ThjCrossSection(pdf_name=pdf_name)
    events, stats = hard.generate_hard_events(xs, 10, 0.0, integrator={"method": method, "config": config}, seed=3,
                                              batch_size=4096)
    assert stats["method"] == method
    hard.write_hard_events(events, tmp_path / "hard.lhe", tmp_path / "hard.h5")
    written = _assert_metadata(tmp_path / "hard.lhe", pdf_name, {"vegas": "VEGAS", "madnis": "MadNIS"}[method])
    assert len(written) == len(events)


def test_writer_refuses_unknown_integrator_and_sets(tmp_path):
    with pytest.raises(ValueError, match="integrator 'flat'"):
        LHEWriter(tmp_path / "x.lhe", cross_section=1.0, pdf=load_pythia_pdf(), integrator="flat")
    unknown = load_pythia_pdf("NNPDF23_nnlo_as_0119_qed")  # shipped, but no verified LHAPDF id
    with pytest.raises(UnknownPDFSetError, match="NNPDF23_nnlo_as_0119_qed.*NNPDF23_nlo_as_0119_qed"):
        drell_yan_integrand(pdf=unknown)
    assert not list(tmp_path.iterdir())


def test_unknown_pdf_set_is_a_config_error():
    base = {"samples": {"s": {"kind": "pythia", "n_events": 10}}}
    nis = {"nis": {"experiments": {"dy": {"integrand": {"name": "drell_yan", "pdf": "NNPDF40_lo_as_01180"},
                                          "variants": {"v": {"method": "flat",
                                                             "integrand": {"pdf": "CT14qed_proton"}}}}}}}
    with pytest.raises(ConfigError) as err:
        validate_config({**base, **nis, "thj": {"process": {"pdf": "NNPDF31_lo_as_0118x"}}})
    text = str(err.value)
    assert "nis.experiments.dy.integrand.pdf: PDF set 'NNPDF40_lo_as_01180'" in text
    assert "nis.experiments.dy.variants.v.integrand.pdf: PDF set 'CT14qed_proton'" in text
    assert "thj.process.pdf: PDF set 'NNPDF31_lo_as_0118x'" in text and "did you mean 'NNPDF31_lo_as_0118'" in text
    # the schema default of a Drell-Yan integrand is the set closest to the thesis's σ (README table)
    ok = validate_config({**base, "nis": {"experiments": {"dy": {"integrand": {"name": "drell_yan"},
                                                                 "variants": {"v": {"method": "flat"}}}}}})
    assert ok["nis"]["experiments"]["dy"]["integrand"]["pdf"] == "NNPDF23_lo_as_0119_qed"


# --------------------------------------------------------------------------------------------------
# The shower's ISR PDF is the hard process's
# --------------------------------------------------------------------------------------------------

def _tiny_lhe(path, pdf_name: str):
    p = np.array([[[100.0, 0, 0, 100.0], [100.0, 0, 0, -100.0], [100.0, 100.0, 0, 0], [100.0, -100.0, 0, 0]]])
    with LHEWriter(path, cross_section=1.0, event_weight=1.0, pdf=load_pythia_pdf(pdf_name),
                   integrator="vegas") as writer:
        writer.write(p, [2, -2, 11, -11], [-1, -1, 1, 1])
    return path


@pytest.mark.parametrize("pdf_name", sorted(PUBLISHED))
def test_shower_pdf_is_the_hard_process_pdf(tmp_path, pdf_name):
    """After setup Pythia's proton PDF (ISR, remnants) equals lhcflow's grid of the LHE file's set.

    Pythia interpolates the same grid with its own polynomials: 99 % of points agree to 2e-3
    (tests/test_pdf.py); here 1e-3 at a few bulk points, against ≥ 1 % between the two sets.
    """
    lhe = _tiny_lhe(tmp_path / "t.lhe", pdf_name)
    pythia = _init_pythia(thj_settings(lhe, {"isr": True}) + ["Next:numberCount = 0"], seed=1)
    grid = load_pythia_pdf(pdf_name)
    other = load_pythia_pdf(next(n for n in PUBLISHED if n != pdf_name))
    pdf = pythia.getPDFPtr(2212)
    points = [(1e-3, 8315.0), (0.01, 3e4), (0.1, 1e4), (2.7e-3, 91.19**2)]
    worst, apart = 0.0, 0.0
    for x, q2 in points:
        for pid in (21, 1, 2, -1, -2, 4, 5):
            ref = float(grid.xfxQ2(pid, np.array([x]), q2)[0])
            worst = max(worst, abs(pdf.xf(pid, x, q2) / ref - 1))
            apart = max(apart, abs(float(other.xfxQ2(pid, np.array([x]), q2)[0]) / ref - 1))
    assert worst < 1e-3 and apart > 1e-2, (worst, apart)
    assert pythia.settings.word("PDF:pSet") == str(PUBLISHED[pdf_name][2]) and pythia.flag("PartonLevel:ISR")


def test_shower_refuses_an_unknown_pdf_id(tmp_path):
    lhe = _tiny_lhe(tmp_path / "t.lhe", "NNPDF23_lo_as_0119_qed")
    text = lhe.read_text().replace(" 246800 246800 ", " 331500 331500 ")
    bad = tmp_path / "bad.lhe"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad.lhe: <init> PDFSUP: LHAPDF id 331500"):
        thj_settings(bad)
