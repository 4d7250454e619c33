"""tHj from hard events to paired reco events (thesis §6.1): shower, detector, cut flow, pairing.

The hard events are synthetic but physical: 2 → 3 phase space for t (173 GeV), H (125 GeV) and a
massless quark at a random √ŝ, boosted along z with x₁x₂s = ŝ, written as LHEF 3.0 with the colour
flow of tHj (b → t and q → q′, both colour singlets exchanged) and the ``#lhcflow`` comment line.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from lhcflow.data.ingest import IngestError
from lhcflow.detector import ORIGIN_HIGGS, ORIGIN_W
from lhcflow.nis.lhe import LHEWriter
from lhcflow.physics.pdf import load_pythia_pdf
from lhcflow.thj import hard, reco
from lhcflow.thj.files import PAIRED_FIELDS, PairedFileError, read_paired_file
from lhcflow.thj.paired import PairingError, build_paired_dataset
from lhcflow.thj.shower import _Batches, scan_lhe, shower_thj

SQRT_S = 13000.0
MASSES = np.array([0.0, 0.0, 173.0, 125.0, 0.0])
# (incoming light, outgoing light, incoming heavy, outgoing top): u b -> d t, dbar b -> ubar t and conjugates
CHANNELS = np.array([[2, 1, 5, 6], [-1, -2, 5, 6], [-2, -1, -5, -6], [1, 2, -5, -6]])
N_EVENTS = 100


# --------------------------------------------------------------------------- synthetic tHj events


def _two_body(m_parent, m1, m2, rng):
    """Isotropic two-body decay in the parent rest frame: (n, 4) momenta (E, px, py, pz)."""
    p = np.sqrt((m_parent**2 - (m1 + m2) ** 2) * (m_parent**2 - (m1 - m2) ** 2)) / (2 * m_parent)
    cos, phi = rng.uniform(-1, 1, len(p)), rng.uniform(0, 2 * np.pi, len(p))
    sin = np.sqrt(1 - cos**2)
    vec = p[:, None] * np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=-1)
    return (np.column_stack([np.sqrt(m1**2 + p**2), vec]), np.column_stack([np.sqrt(m2**2 + p**2), -vec]))


def _boost(p, beta):
    """Boost (n, 4) momenta by velocities (n, 3)."""
    b2 = (beta**2).sum(-1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = (beta * p[:, 1:]).sum(-1)
    coef = np.where(b2 > 0, (gamma - 1) / np.where(b2 > 0, b2, 1), 0.0)
    return np.column_stack([gamma * (p[:, 0] + bp), p[:, 1:] + (coef * bp + gamma * p[:, 0])[:, None] * beta])


def thj_momenta(n, rng):
    """(n, 5, 4) lab momenta [beam +z parton, beam -z parton, t, H, q]; ŝ = x1 x2 s."""
    sqrt_shat = rng.uniform(MASSES[2] + MASSES[3] + 30, 1200, n)
    m_hq = rng.uniform(MASSES[3] + 1, sqrt_shat - MASSES[2] - 1)
    top, hq = _two_body(sqrt_shat, np.full(n, MASSES[2]), m_hq, rng)
    higgs, quark = _two_body(m_hq, np.full(n, MASSES[3]), np.zeros(n), rng)
    higgs, quark = (_boost(p, hq[:, 1:] / hq[:, :1]) for p in (higgs, quark))
    y_max = -np.log(sqrt_shat / SQRT_S)
    y = np.clip(rng.normal(0, 0.8, n), -0.95 * y_max, 0.95 * y_max)
    x1, x2 = sqrt_shat / SQRT_S * np.exp(y), sqrt_shat / SQRT_S * np.exp(-y)
    beam = np.zeros((n, 3))
    beam[:, 2] = np.tanh(y)
    outgoing = [_boost(p, beam) for p in (top, higgs, quark)]
    e_beam = SQRT_S / 2
    incoming = [np.column_stack([x * e_beam, 0 * x, 0 * x, sign * x * e_beam])
                for x, sign in ((x1, 1), (x2, -1))]
    return np.stack(incoming + outgoing, axis=1)


def _colours(pdg, heavy_first):
    """b -> t on colour line 501, q -> q' on 502 (anti-colour for antiquarks)."""
    col = np.zeros(pdg.shape + (2,), dtype=np.int64)
    heavy = np.where(heavy_first, 0, 1)
    rows = np.arange(len(pdg))
    for slots, tag in (((heavy, 2), 501), ((1 - heavy, 4), 502)):
        for slot in slots:
            ids = pdg[rows, slot]
            col[rows, slot, 0] = np.where(ids > 0, tag, 0)
            col[rows, slot, 1] = np.where(ids < 0, tag, 0)
    return col


def write_synthetic_thj(directory: Path, n: int, seed: int, sigma_pb: float = 0.0436) -> tuple[Path, Path]:
    """A tHj LHE file with ``#lhcflow alpha=... index=...`` comments and its ``hard.h5`` companion."""
    rng = np.random.default_rng(seed)
    momenta = thj_momenta(n, rng)
    channel = CHANNELS[rng.integers(0, len(CHANNELS), n)]
    heavy_first = rng.random(n) < 0.5
    pdg = np.column_stack([np.where(heavy_first, channel[:, 2], channel[:, 0]),
                           np.where(heavy_first, channel[:, 0], channel[:, 2]),
                           channel[:, 3], np.full(n, 25), channel[:, 1]])
    alpha = rng.uniform(-np.pi, np.pi, n)
    lhe, hard = directory / "thj.lhe", directory / "hard.h5"
    with LHEWriter(lhe, cross_section=sigma_pb, event_weight=sigma_pb / n, scale=200.0,
                   pdf=load_pythia_pdf(), integrator="vegas", process="p p > t h j") as writer:
        writer.write(momenta, pdg, [-1, -1, 1, 1, 1], colours=_colours(pdg, heavy_first),
                     masses=np.broadcast_to(MASSES, (n, 5)),
                     comments=[f"lhcflow alpha={a:.12e} index={i}" for i, a in enumerate(alpha)])
    write_hard_h5(hard, alpha, momenta, pdg, sigma_pb)
    return lhe, hard


def write_hard_h5(path, alpha, momenta, pdg, sigma_pb, drop=(), heavy="top_antitop"):
    """hard.h5 of the synthetic events (t and t̄ channels, hence heavy = top_antitop)."""
    n = len(alpha)
    g = np.column_stack([np.ones(n), np.sin(alpha), np.cos(alpha), *np.zeros((2, n))])
    data = {"alpha": alpha, "g": g, "g_event": 2 * g, "momenta": momenta, "pdg": pdg,
            "weight": np.full(n, sigma_pb / n), "scale": np.full(n, 200.0)}
    with h5py.File(path, "w") as f:
        for name, values in data.items():
            if name not in drop:
                f[name] = values
        f.attrs["sigma_pb"] = sigma_pb
        if heavy is not None:
            f.attrs["heavy"] = heavy


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Shower 100 leptonic events (no ISR), detector, pairing: paths and outputs."""
    d = tmp_path_factory.mktemp("thj")
    lhe, hard = write_synthetic_thj(d, N_EVENTS, seed=7)
    meta = shower_thj(lhe, d / "reco.root", d / "shower.json", seed=11,
                      cfg={"w_decay": "leptonic", "isr": False}, progress=False, chunk_size=40)
    cutflow = build_paired_dataset(d / "reco.root", hard, d / "paired.h5", d / "cutflow.json",
                                   decay="leptonic", shower_meta=d / "shower.json", progress=False,
                                   chunk_size=30)
    with h5py.File(d / "paired.h5") as f:
        paired = {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}
        paired.update({f"counts/{k}": v[...] for k, v in f["counts"].items()})
        paired["attrs"] = dict(f.attrs)
    with h5py.File(hard) as f:
        hard_data = {k: f[k][...] for k in f}
    events = uproot.open(d / "reco.root")["Delphes"].arrays()
    return {"dir": d, "lhe": lhe, "hard": hard, "meta": meta, "cutflow": cutflow, "paired": paired,
            "hard_data": hard_data, "events": events}


# --------------------------------------------------------------------------- shower and pairing


def test_every_event_pairs_with_its_hard_event(chain):
    p, h = chain["paired"], chain["hard_data"]
    assert chain["meta"]["n_written"] == N_EVENTS and chain["meta"]["n_failed"] == 0
    assert chain["cutflow"]["n_paired"] == N_EVENTS and chain["cutflow"]["n_paired_by_number"] == N_EVENTS
    assert sorted(p["hard_index"]) == list(range(N_EVENTS))
    np.testing.assert_allclose(p["x_hard"], h["momenta"][p["hard_index"], 2:], rtol=1e-12)
    np.testing.assert_array_equal(p["alpha"], h["alpha"][p["hard_index"]])
    np.testing.assert_array_equal(p["g"], h["g"][p["hard_index"]])
    np.testing.assert_array_equal(p["g_event"], h["g_event"][p["hard_index"]])
    np.testing.assert_array_equal(p["pdg_hard"][:, 1], 25)
    pt, mass = p["x_hard_ptetaphim"][..., 0], p["x_hard_ptetaphim"][..., 3]
    np.testing.assert_allclose(mass, np.broadcast_to([173.0, 125.0, 0.0], mass.shape), atol=1e-3)
    assert (pt > 0).all()


def test_pairing_falls_back_to_top_momentum(chain, tmp_path):
    """hard.h5 rows shuffled: Event.Number points at wrong rows, the top momentum finds the right ones."""
    h = chain["hard_data"]
    order = np.random.default_rng(3).permutation(N_EVENTS)
    shuffled = tmp_path / "shuffled.h5"
    write_hard_h5(shuffled, h["alpha"][order], h["momenta"][order], h["pdg"][order], 0.0436)
    report = build_paired_dataset(chain["dir"] / "reco.root", shuffled, tmp_path / "p.h5",
                                  tmp_path / "c.json", decay="leptonic", shower_meta=chain["meta"],
                                  progress=False)
    assert report["n_paired"] == N_EVENTS and report["n_paired_by_number"] < N_EVENTS
    with h5py.File(tmp_path / "p.h5") as f:
        np.testing.assert_array_equal(order[f["hard_index"][...]], chain["paired"]["hard_index"])
        np.testing.assert_array_equal(f["accepted"][...], chain["paired"]["accepted"])


def test_unpairable_events_name_the_file(chain, tmp_path):
    other_lhe, other_hard = write_synthetic_thj(tmp_path, 20, seed=99)
    reco_root = chain["dir"] / "reco.root"
    with pytest.raises(PairingError, match="match no hard event") as err:
        build_paired_dataset(reco_root, other_hard, tmp_path / "paired.h5", tmp_path / "cutflow.json",
                             decay="leptonic", shower_meta=chain["meta"], progress=False)
    assert str(reco_root) in str(err.value) and str(other_hard) in str(err.value)
    assert not (tmp_path / "paired.h5").exists() and not (tmp_path / "cutflow.json").exists()
    assert not list(tmp_path.glob(".paired*"))


def test_files_of_the_hard_event_writer_pair(tmp_path):
    """The LHE + hard.h5 written by lhcflow.thj.hard (the real generator's writer) go through the chain."""
    rng = np.random.default_rng(5)
    n = 20
    momenta = thj_momenta(n, rng)
    channel = CHANNELS[rng.integers(0, len(CHANNELS), n)]
    pdg = np.column_stack([channel[:, 0], channel[:, 2], channel[:, 3], np.full(n, 25), channel[:, 1]])
    alpha = rng.uniform(-np.pi, np.pi, n)
    g = np.column_stack([np.ones(n), *np.zeros((4, n))])
    events = hard.HardEvents(momenta=momenta, pdg=pdg, alpha=alpha, g=g, g_event=g, weight=np.full(n, 0.002),
                             scale=np.full(n, 150.0),
                             attrs={"sigma_pb": 0.04, "sqrt_s_gev": SQRT_S, "pdf": "NNPDF23_lo_as_0119_qed",
                                    "integrator": "vegas", "heavy": "top_antitop"})
    hard.write_hard_events(events, tmp_path / "hard.lhe", tmp_path / "hard.h5")
    shower_thj(tmp_path / "hard.lhe", tmp_path / "reco.root", tmp_path / "shower.json", seed=3,
               progress=False)
    report = build_paired_dataset(tmp_path / "reco.root", tmp_path / "hard.h5", tmp_path / "paired.h5",
                                  tmp_path / "cutflow.json", decay="leptonic",
                                  shower_meta=tmp_path / "shower.json", progress=False)
    assert report["n_paired"] == report["n_paired_by_number"] == n
    with h5py.File(tmp_path / "paired.h5") as f:
        np.testing.assert_array_equal(f["alpha"][...], alpha[f["hard_index"][...]])
        assert f.attrs["heavy"] == "top_antitop"
    assert "heavy = top_antitop" in (tmp_path / "hard.lhe").read_text()


class _FakePythia:
    """Stands in for pythia8mc: hands out batches (None = failed event) and the last event's comment."""

    def __init__(self, batches, comments, eof_after):
        self.batches, self.comments, self.eof_after, self.calls = list(batches), list(comments), eof_after, 0

    def nextBatch(self, n, error_mode):
        self.calls += 1
        return ak.Array(self.batches.pop(0))

    def infoPython(self):
        fake = self

        class Info:
            def atEndOfFile(self):
                return fake.calls >= fake.eof_after

            def getEventComments(self):
                return fake.comments[fake.calls - 1]
        return Info()


def test_batch_positions_follow_the_lhe_comment_index():
    """Failed events keep their place, a comment index ahead of the count shifts the numbering, EOF
    padding is dropped."""
    ok = {"x": 1}
    pythia = _FakePythia([[ok, None, ok], [ok, ok], [ok, None, None]],
                         ["#lhcflow alpha=0.1 index=2\n", "#lhcflow alpha=0.2 index=6\n", ""], eof_after=3)
    batches = _Batches(pythia, "x.lhe")
    _, number = batches.next(3)
    assert number.tolist() == [0, 2] and batches.failed == 1
    _, number = batches.next(2)
    assert number.tolist() == [5, 6] and batches.read == 7  # the file skipped an event: comment says 6
    events, number = batches.next(3)
    assert number.tolist() == [7] and len(events) == 1 and batches.eof and batches.failed == 1


def test_muons_come_from_the_w(chain):
    ev = chain["events"]
    muons = ev[["Muon.PT", "Muon.Origin", "Muon.Charge"]]
    origin = ak.to_numpy(ak.flatten(muons["Muon.Origin"]))
    assert len(origin) > 0.6 * N_EVENTS
    assert (origin == ORIGIN_W).mean() > 0.95
    # t -> W+ -> mu+ (charge +1), tbar -> W- -> mu-
    top_sign = np.sign(ak.to_numpy(ak.firsts(ev["Particle.PID"][abs(ev["Particle.PID"]) == 6])))
    leading = ak.to_numpy(ak.fill_none(ak.firsts(ev["Muon.Charge"][ev["Muon.Origin"] == ORIGIN_W]), 0))
    has = leading != 0
    np.testing.assert_array_equal(leading[has], top_sign[has])


def test_two_hard_photons_in_most_events(chain):
    ev = chain["events"]
    from_higgs = ev["Photon.Origin"] == ORIGIN_HIGGS
    two = ak.to_numpy(ak.sum(from_higgs, axis=1)) >= 2
    # ~0.87 geometric acceptance x 0.95^2 efficiency x ~0.8 for both outside jets (isolation)
    assert two.mean() > 0.5
    pt, eta, phi = (ak.to_numpy(ev[f"Photon.{k}"][from_higgs][two][:, :2]).astype(float)
                    for k in ("PT", "Eta", "Phi"))
    m2 = 2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    assert (np.abs(np.sqrt(m2) - 125.0) < 5.0).mean() > 0.9


def test_branching_ratios_from_pythia(chain):
    ratios = chain["meta"]["branching_ratios"]
    assert ratios["top"] == pytest.approx(ratios["antitop"])
    assert chain["meta"]["branching_ratio"] == pytest.approx(ratios["top"] * ratios["higgs"])
    assert ratios["top"] == pytest.approx(ratios["w"], rel=0.02)  # t -> bW is nearly all; W -> mu nu inside
    assert 0 < ratios["higgs"] < 0.01 and 0.05 < ratios["w"] < 0.2
    assert chain["cutflow"]["branching_ratio"] == chain["meta"]["branching_ratio"]


def test_shower_records_the_hard_process_pdf(chain):
    """The synthetic LHE names NNPDF2.3 LO, α_s = 0.119 (LHAPDF 246800): Pythia's pSet 14 (PDFSelection.xml)."""
    assert chain["meta"]["pdf_lhapdf_id"] == 246800 and chain["meta"]["pdf_pset"] == "14"
    assert "PDF:pSet = 14" in chain["meta"]["settings"]


def test_cut_flow_is_monotonic_and_matches_a_recount(chain):
    flow, p = chain["cutflow"], chain["paired"]
    stored = json.loads((chain["dir"] / "cutflow.json").read_text())
    assert stored == json.loads(json.dumps(flow))
    names = [s["name"] for s in flow["steps"]]
    assert names == ["sigma", "sigma_x_br", "photons", "muons", "jets", "b_jet", "light_jets"]
    cuts = flow["steps"][2:]
    counts = [s["events"] for s in cuts]
    assert all(a >= b for a, b in zip(counts, counts[1:])) and counts[-1] > 0
    n = {k.split("/")[1]: p[k] for k in p if k.startswith("counts/")}
    recount = np.ones(N_EVENTS, bool)
    expected = []
    for need in (n["photons"] >= 2, n["muons"] >= 1, n["jets"] >= 2, n["bjets"] == 1, n["light_jets"] >= 1):
        recount &= need
        expected.append(int(recount.sum()))
    assert counts == expected
    sigma_ab = flow["sigma_pb"] * 1e6
    assert flow["steps"][1]["rate_ab"] == pytest.approx(sigma_ab * flow["branching_ratio"])
    for step, k in zip(cuts, expected):
        assert step["fraction"] == pytest.approx(k / N_EVENTS)
        assert step["rate_ab"] == pytest.approx(sigma_ab * flow["branching_ratio"] * k / N_EVENTS)
    assert int(p["accepted"].sum()) == counts[-1]


def test_accepted_flags_and_x_reco_slots(chain):
    p = chain["paired"]
    slots = json.loads(p["attrs"]["x_reco_slots"])
    assert slots == reco.x_reco_slots("leptonic") == ["a1", "a2", "b", "mu", "j1", "j2", "j3", "j4", "j5"]
    n_steps = len(json.loads(p["attrs"]["cut_flow_steps"]))
    np.testing.assert_array_equal(p["accepted"], p["cuts_passed"] == n_steps)
    assert len(p["accepted"]) == N_EVENTS and (~p["accepted"]).any()  # rejected events are kept
    acc = p["accepted"]
    assert p["x_reco_present"][acc][:, :5].all()
    np.testing.assert_array_equal(p["x_reco_present"][acc][:, 5:].sum(axis=1), p["n_extra_jets"][acc])
    np.testing.assert_array_equal(p["x_reco"][~p["x_reco_present"]], 0.0)
    pt = p["x_reco_ptetaphim"][..., 0]
    assert (pt[:, 0] >= pt[:, 1]).all()
    light = pt[:, 4:]
    assert (light[:, :-1] >= light[:, 1:]).all()
    assert (pt[acc][:, :2] > 20).all() and (pt[acc][:, 2] > 25).all()
    e, px, py, pz = np.moveaxis(p["x_reco"][acc][:, :4].astype(float), -1, 0)
    np.testing.assert_allclose(np.hypot(px, py), pt[acc][:, :4], rtol=1e-4)
    assert set(np.unique(p["split"])) <= {0, 1, 2}


def test_shower_is_deterministic_and_batch_independent(chain, tmp_path):
    shower_thj(chain["lhe"], tmp_path / "again.root", tmp_path / "again.json", seed=11, n_events=30,
               cfg={"w_decay": "leptonic"}, progress=False, chunk_size=7)
    again = uproot.open(tmp_path / "again.root")["Delphes"].arrays()
    first = chain["events"][:30]
    for branch in ("Photon.PT", "Muon.PT", "Jet.PT", "Jet.BTag", "Event.Number"):
        assert ak.all(again[branch] == first[branch]), branch


# --------------------------------------------------------------------------- bad input


def test_non_lhe_input_names_the_file(shared_data, tmp_path):
    bogus = shared_data / "cms2010_dimuon_zmumu.root"
    with pytest.raises(ValueError, match="Les Houches") as err:
        shower_thj(bogus, tmp_path / "reco.root", tmp_path / "shower.json", seed=1, progress=False)
    assert str(bogus) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_lhe_names_the_file(chain, tmp_path):
    text = chain["lhe"].read_text()
    cut = tmp_path / "truncated.lhe"
    cut.write_text(text[: text.index("<event>", len(text) // 2) + 200])
    with pytest.raises(ValueError, match="truncated") as err:
        shower_thj(cut, tmp_path / "reco.root", tmp_path / "shower.json", seed=1, progress=False)
    assert str(cut) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.lhe"]


def test_lhe_without_top_names_the_file(shared_data, tmp_path):
    """A real LHE file of another process (POWHEG Z+jet) is not a tHj sample: its <init> names no
    PDF set (PDFSUP = -1) for the shower's ISR, and with one it has no top."""
    zj = shared_data / "powheg_zj.lhe"
    assert scan_lhe(zj) == 100
    with pytest.raises(ValueError, match="PDFSUP: LHAPDF id -1") as err:
        shower_thj(zj, tmp_path / "reco.root", tmp_path / "shower.json", seed=1, n_events=10, progress=False)
    assert str(zj) in str(err.value)
    assert list(tmp_path.iterdir()) == []
    with_pdf = tmp_path / "zj.lhe"
    with_pdf.write_text(zj.read_text().replace("     -1     -1     -1     -1     -4", "      0      0 246800 246800     -4", 1))
    with pytest.raises(ValueError, match="no top") as err:
        shower_thj(with_pdf, tmp_path / "reco.root", tmp_path / "shower.json", seed=1, n_events=10, progress=False)
    assert str(with_pdf) in str(err.value)
    assert list(tmp_path.iterdir()) == [with_pdf]


def test_malformed_reco_file_names_the_file(shared_data, chain, tmp_path):
    bad = shared_data / "malformed_delphes.root"
    with pytest.raises(IngestError, match="Delphes") as err:
        build_paired_dataset(bad, chain["hard"], tmp_path / "paired.h5", tmp_path / "cutflow.json",
                             decay="leptonic", shower_meta=chain["meta"], progress=False)
    assert str(bad) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_malformed_hard_file_names_file_and_field(chain, tmp_path):
    h = chain["hard_data"]
    broken = tmp_path / "hard_no_g.h5"
    write_hard_h5(broken, h["alpha"], h["momenta"], h["pdg"], 0.0436, drop=("g",))
    with pytest.raises(hard.HardEventError, match="'g'.*rerun thj_hard_events") as err:
        build_paired_dataset(chain["dir"] / "reco.root", broken, tmp_path / "paired.h5",
                             tmp_path / "cutflow.json", decay="leptonic", shower_meta=chain["meta"],
                             progress=False)
    assert str(broken) in str(err.value)
    with pytest.raises(PairingError, match="branching_ratio"):
        build_paired_dataset(chain["dir"] / "reco.root", chain["hard"], tmp_path / "paired.h5",
                             tmp_path / "cutflow.json", decay="leptonic", shower_meta={}, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard_no_g.h5"]


def test_paired_reader_on_the_written_file_and_broken_copies(chain, tmp_path):
    """read_paired_file reads every declared dataset of the writer's file as h5py does, decodes the JSON
    attributes, and names the file and the dataset or attribute of a broken copy."""
    good = chain["dir"] / "paired.h5"
    data, attrs = read_paired_file(good)
    assert set(data) == set(PAIRED_FIELDS)
    for name in PAIRED_FIELDS:
        np.testing.assert_array_equal(data[name], chain["paired"][name])
    assert attrs["x_reco_slots"] == json.loads(chain["paired"]["attrs"]["x_reco_slots"])
    assert attrs["cut_flow_steps"] == [s.name for s in reco.cut_flow_steps("leptonic")]
    assert attrs["decay"] == "leptonic"
    assert attrs["branching_ratio"] == chain["paired"]["attrs"]["branching_ratio"]

    def copy(name, skip=(), slots=None):
        path = tmp_path / name
        with h5py.File(good) as src, h5py.File(path, "w") as dst:
            for key in src:
                if key not in skip:
                    src.copy(key, dst)
            dst.attrs.update({k: v for k, v in src.attrs.items() if k not in skip})
            if slots is not None:
                dst.attrs["x_reco_slots"] = json.dumps(slots)
        return path

    cases = [(copy("no_present.h5", skip=("x_reco_present",)), "no dataset 'x_reco_present'"),
             (copy("slots.h5", slots=["a1", "a2"]), r"'x_reco' .* \(100, 9, 4\), expected \(N, S, 4\)"),
             (copy("no_br.h5", skip=("branching_ratio",)), "attribute 'branching_ratio' missing"),
             (tmp_path / "missing.h5", "file not found")]
    (tmp_path / "junk.h5").write_text("not HDF5")
    cases.append((tmp_path / "junk.h5", "not a readable HDF5 file"))
    for path, match in cases:
        with pytest.raises(PairedFileError, match=match) as err:
            read_paired_file(path, attrs=("branching_ratio",))
        assert str(err.value).startswith(f"{path}: ") and "rerun thj_paired" in str(err.value)


def test_heavy_choice_is_recorded_and_enforced(chain, tmp_path):
    """The paired file and cut flow state the hard events' heavy choice; a t̄ among top-only events, or
    hard events that do not state the choice, are errors of the hard-event file naming it."""
    assert chain["paired"]["attrs"]["heavy"] == chain["cutflow"]["heavy"] == "top_antitop"
    h = chain["hard_data"]
    args = dict(decay="leptonic", shower_meta=chain["meta"], progress=False)
    for heavy, match in (("top", "heavy = top but the top slot holds PDG id"), (None, "'heavy'"),
                         ("both", "'heavy'.*top_antitop")):
        path = tmp_path / f"hard_{heavy}.h5"
        write_hard_h5(path, h["alpha"], h["momenta"], h["pdg"], 0.0436, heavy=heavy)
        with pytest.raises(hard.HardEventError, match=match) as err:
            build_paired_dataset(chain["dir"] / "reco.root", path, tmp_path / "p.h5", tmp_path / "c.json", **args)
        assert str(path) in str(err.value)
    assert not (tmp_path / "p.h5").exists() and not (tmp_path / "c.json").exists()


def test_unknown_options_are_named(chain, tmp_path):
    with pytest.raises(ValueError, match="w_decays"):
        shower_thj(chain["lhe"], tmp_path / "r.root", tmp_path / "m.json", seed=1,
                   cfg={"w_decays": "leptonic"})
    with pytest.raises(ValueError, match="photon_pt_mn_gev"):
        reco.selection_config({"photon_pt_mn_gev": 10})
    with pytest.raises(ValueError, match="semileptonic"):
        reco.cut_flow_steps("semileptonic")
    assert list(tmp_path.iterdir()) == []


def test_hadronic_cut_flow_steps():
    steps = reco.cut_flow_steps("hadronic")
    assert [s.name for s in steps] == ["photons", "jets", "b_jet", "light_jets"]
    assert [(s.minimum, s.maximum) for s in steps] == [(2, None), (4, None), (1, 1), (3, None)]
    assert reco.x_reco_slots("hadronic") == ["a1", "a2", "b"] + [f"j{i}" for i in range(1, 8)]


def test_one_particle_jets_are_not_tagged_jets_and_every_accepted_event_is_in_the_transfer_support():
    """A massless jet (one photon, m = 0) is not a b- or light jet: the next jet takes its slot. With it,
    every accepted event lies inside the support of the transfer's selection map (log m of the jets,
    Eq 6.9, computed from the stored float64 (E, p⃗)), including jets of a few MeV at TeV energies."""
    import torch

    from lhcflow.mem.features import RecoLayout, SelectionMap

    def objects(pt, eta, phi, mass, btag=None):
        fields = {"pt": pt, "eta": eta, "phi": phi, "mass": mass}
        if btag is not None:
            fields["btag"] = btag
        return ak.zip({k: ak.Array(v) for k, v in fields.items()})

    photons = objects([[60.0, 40.0]] * 3, [[0.1, -0.5]] * 3, [[0.0, 2.0]] * 3, [[0.0, 0.0]] * 3)
    muons = objects([[30.0]] * 3, [[1.0]] * 3, [[-2.0]] * 3, [[0.1057]] * 3)
    # event 0: the leading light jet is one massless particle; event 1: a 5 MeV jet at 2 TeV; event 2: normal
    jets = objects([[80.0, 70.0, 50.0], [2000.0, 70.0, 50.0], [80.0, 70.0, 50.0]],
                   [[0.2, 1.5, -1.0], [0.0, 1.5, -1.0], [0.2, 1.5, -1.0]],
                   [[1.0, -1.0, 2.5], [1.0, -1.0, 2.5], [1.0, -1.0, 2.5]],
                   [[0.0, 12.0, 6.0], [0.005, 12.0, 6.0], [0.02, 12.0, 6.0]],
                   btag=[[0, 1, 0], [0, 1, 0], [0, 1, 0]])
    events = reco.reconstruct({"photon": photons, "muon": muons, "jet": jets}, "leptonic")
    slots = reco.x_reco_slots("leptonic")
    j1 = slots.index("j1")
    assert events.accepted.tolist() == [True, True, True]
    np.testing.assert_allclose(events.x_reco[:, j1, 0], [50.0, 50.0, 80.0])   # massless / 5 MeV jets skipped
    assert events.counts["jets"].tolist() == [3, 3, 3]                        # but still counted as jets
    # every accepted event inside the support of the transfer's selection map
    layout = RecoLayout.from_slots(slots, "leptonic")
    smap = SelectionMap(layout, *layout.selection_bounds(None))
    _, _, inside = smap(torch.as_tensor(layout.reco_features(events.x_reco_p4)))
    assert inside.all()
    # without the mass requirement the massless jet would be j1 and outside the support
    loose = reco.reconstruct({"photon": photons, "muon": muons, "jet": jets}, "leptonic",
                             {"jet_mass_min_gev": -1.0})
    _, _, inside = smap(torch.as_tensor(layout.reco_features(loose.x_reco_p4)))
    assert inside.tolist() == [False, True, True]
