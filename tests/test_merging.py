"""Merging read from the LHE header: detection, refusals, MLM matching with Pythia's MadGraph-style
jet matching (cross section, per-event multiplicity, jet rates), CKKW-L as configured."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import awkward as ak
import numpy as np
import pylhe
import pytest
import uproot

from lhcflow.config import ConfigError, check_inputs, validate_config
from lhcflow.generation.jets import jet_rates
from lhcflow.generation.lhe import read_lhe_header
from lhcflow.generation.merging import MergingError, detect_merging, plan_merging
from lhcflow.generation.pythia import _init_pythia, hard_partons, lhe_settings
from lhcflow.generation.shards import generate_shard

FAST = {"mpi": False, "hadronization": False}  # the MLM veto acts on the parton shower before both


@pytest.fixture(scope="module")
def mlm(shared_data):
    return shared_data / "mg5_zll_mlm_7tev.lhe.gz"


@pytest.fixture(scope="module")
def ckkwl(shared_data):
    return shared_data / "mg5_zjets_ckkwl_7tev_zmumu.lhe.gz"


def _with_card(source, target, replace: dict, n_events: int = 20):
    """A copy of an LHE file with its first events and the run-card lines containing a key of
    ``replace`` (e.g. ``'= ickkw'``) replaced by the given line."""
    with gzip.open(source, "rt") as fh:
        text = fh.read()
    head = text.split("<event>")[0].splitlines()
    head = [next((new for key, new in replace.items() if key in line), line) for line in head]
    events = re.findall(r"<event>.*?</event>", text, re.DOTALL)[:n_events]
    target.write_text("\n".join(head) + "\n" + "\n".join(events) + "\n</LesHouchesEvents>\n")
    return target


def _sample(path, merging=None, **kw):
    return {"kind": "lhe", "file": str(path), "n_events": None, "n_shards": 1, "pythia": dict(FAST),
            "merging": merging or {}, **kw}


def _nothing_left(out):
    if not out.exists():
        return True
    return not [p for p in out.rglob("*") if p.is_file() or p.name.startswith(".lhe-shard")]


# --------------------------------------------------------------------------- detection

def test_schemes_detected_from_the_headers(mlm, ckkwl, shared_data):
    """The three shared files as their headers state them (see ../shared/data/README.md)."""
    info = detect_merging(read_lhe_header(mlm))
    assert info.scheme == "mlm" and info.multiplicities == (0, 1, 2)
    card = info.parameters
    assert card["xqcut"] == 10 and card["ptj"] == 5 and card["maxjetflavor"] == 4
    assert info.process_jets == {1: 0, 2: 1, 3: 2} and info.generator == "MadGraph5_aMC@NLO 2.2.1"
    info = detect_merging(read_lhe_header(ckkwl))  # ickkw = 0, pt_pythia = 10 with do_pt_pythia = T
    assert info.scheme == "ckkwl" and info.multiplicities == (0, 1, 2) and "ptlund = 10" in info.source
    info = detect_merging(read_lhe_header(shared_data / "powheg_zj.lhe"))
    assert info.scheme == "none" and info.generator == "POWHEG-BOX"


def test_mlm_settings_follow_the_run_card(mlm):
    """setMad off (on, Pythia would set qCut = xqcut), qCut = 1.5 xqcut (MG5's default),
    nQmatch = maxjetflavor, nJetMax = the highest multiplicity, event-by-event exclusive mode."""
    settings = lhe_settings(mlm, {})
    for line in ("JetMatching:merge = on", "JetMatching:setMad = off", "JetMatching:qCut = 15.0",
                 "JetMatching:nQmatch = 4", "JetMatching:nJetMax = 2", "JetMatching:exclusive = 2"):
        assert line in settings
    assert not any(s.startswith("Merging:") for s in settings)


@pytest.mark.parametrize("ickkw, found", [(3, "FxFx"), (4, "UNLOPS"), (2, "MadEvent CKKW"), (7, "unknown")])
def test_schemes_the_stage_cannot_apply_stop_before_showering(mlm, tmp_path, ickkw, found):
    user = _with_card(mlm, tmp_path / "user_sample.lhe", {"= ickkw": f" {ickkw} = ickkw ! merging"})
    out = tmp_path / "out"
    with pytest.raises(MergingError) as err:
        generate_shard(_sample(user), 0, 1, out / "s.root", out / "s.json", progress=False)
    message = str(err.value)
    assert str(user) in message and found in message and f"ickkw = {ickkw}" in message
    assert "merging.scheme mlm" in message and "ckkwl" in message  # what the config can do
    assert ".lhe-shard" not in message and _nothing_left(out)
    with pytest.raises(ConfigError, match="user_sample.lhe"):  # and before any job, at config time
        check_inputs(validate_config({"samples": {"x": _sample(user)}}))


def test_multijet_sample_is_never_showered_unmerged(mlm, ckkwl, tmp_path):
    """scheme: none on a 0/1/2-jet sample, and a 0/1/2-jet MG5 sample without any merging
    (ickkw = 0, no ktdurham/ptlund): refused, naming the multiplicities found."""
    out = tmp_path / "out"
    with pytest.raises(MergingError, match=r"0, 1, 2 extra jets.*double count") as err:
        generate_shard(_sample(mlm, {"scheme": "none"}), 0, 1, out / "s.root", out / "s.json", progress=False)
    assert str(mlm) in str(err.value) and _nothing_left(out)
    plain = _with_card(ckkwl, tmp_path / "plain.lhe", {"= do_pt_pythia": " F = do_pt_pythia"})
    with pytest.raises(MergingError, match=r"plain.lhe: the header lists processes with 0, 1, 2 extra jets"):
        generate_shard(_sample(plain), 0, 1, out / "s.root", out / "s.json", progress=False)
    assert _nothing_left(out)
    # the same sample with an explicit CKKW-L scale is what the message proposes, and it is accepted
    assert plan_merging(read_lhe_header(plain), {"scheme": "ckkwl", "scale_gev": 20}).scheme == "ckkwl"


@pytest.mark.parametrize("which, merging, match", [
    ("mlm", {"scheme": "ckkwl"}, r"merging.scheme: ckkwl contradicts the header, which states MLM matching"),
    ("ckkwl", {"scheme": "mlm"}, r"merging.scheme: mlm contradicts the header, which states CKKW-L"),
    ("mlm", {"qcut_gev": 10}, r"qCut = 10 GeV \(merging.qcut_gev\) is not above the run card's xqcut = 10"),
    ("mlm", {"scale_gev": 30}, r"merging.scale_gev is a setting of scheme ckkwl.*scheme mlm"),
    ("ckkwl", {"qcut_gev": 30}, r"merging.qcut_gev is a setting of scheme mlm.*scheme ckkwl"),
    ("ckkwl", {"scale_gev": 5}, r"scale_gev = 5 GeV is below the run card's generation cut \(ptlund = 10"),
])
def test_config_that_contradicts_the_header(mlm, ckkwl, tmp_path, which, merging, match):
    path = {"mlm": mlm, "ckkwl": ckkwl}[which]
    out = tmp_path / "out"
    with pytest.raises(MergingError, match=match) as err:
        generate_shard(_sample(path, merging), 0, 1, out / "s.root", out / "s.json", progress=False)
    assert str(err.value).startswith(str(path)) and _nothing_left(out)
    config = validate_config({"samples": {"x": _sample(path, merging)}})
    with pytest.raises(ConfigError, match="samples.x: "):
        check_inputs(config)


def test_jetmatching_settings_act_on_mlm_and_are_refused_elsewhere(mlm, ckkwl, tmp_path):
    """A user's JetMatching:* line takes effect on an MLM sample (checked in Pythia after init, and
    against xqcut); on a CKKW-L sample it would do nothing, so it is refused."""
    header = read_lhe_header(mlm)
    plan = plan_merging(header, {}, ["JetMatching:qCut = 25"])
    assert plan.parameters["qcut_gev"] == 25 and "extra_settings" in plan.parameters["qcut_from"]
    pythia = _init_pythia(lhe_settings(mlm, {**FAST, "extra_settings": ["JetMatching:qCut = 25"]}), 1)
    assert pythia.parm("JetMatching:qCut") == 25 and pythia.flag("JetMatching:merge")
    with pytest.raises(MergingError, match=r"qCut = 8 GeV \(pythia.extra_settings JetMatching:qCut\)"):
        plan_merging(header, {}, ["JetMatching:qCut = 8"])
    with pytest.raises(MergingError, match="JetMatching:merge off"):
        plan_merging(header, {}, ["JetMatching:merge = off"])
    with pytest.raises(MergingError, match=r"JetMatching:\* settings act only with merging.scheme mlm"):
        plan_merging(read_lhe_header(ckkwl), {}, ["JetMatching:qCut = 30"], "user.lhe.gz")
    with pytest.raises(MergingError, match=r"Merging:\* settings act only with merging.scheme ckkwl"):
        plan_merging(header, {}, ["Merging:TMS = 30"])


def test_workflow_refuses_a_scheme_the_header_contradicts(mlm, tmp_path):
    """Before any job: the default config with its LHE sample pointed at the MLM file, scheme ckkwl."""
    import subprocess
    import sys

    import yaml

    REPO_ROOT = Path(__file__).resolve().parents[1]

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    config["samples"]["zjets_mg5_ckkwl"].update(file=str(mlm), merging={"scheme": "ckkwl"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    terminal = result.stdout + result.stderr
    assert result.returncode != 0
    expected = f"samples.zjets_mg5_ckkwl: {mlm}: merging.scheme: ckkwl contradicts the header"
    assert expected in terminal, terminal


# --------------------------------------------------------------------------- MLM physics

@pytest.fixture(scope="module")
def matched(mlm, tmp_path_factory):
    """The whole MLM file showered and matched at qCut = 15 GeV (the default) and 30 GeV."""
    out = tmp_path_factory.mktemp("mlm")
    runs = {}
    for qcut in (15, 30):
        root, meta = out / f"q{qcut}.root", out / f"q{qcut}.json"
        generate_shard(_sample(mlm, {"qcut_gev": qcut}), 0, 3, root, meta, progress=False)
        runs[qcut] = (json.loads(meta.read_text()), uproot.open(root)["Events"].arrays(), root)
    return runs


def test_matched_cross_section(mlm, matched):
    """The MLM-merged σ reproduces the inclusive cross section of the lowest multiplicity.

    Reference: the 0-jet process of the file (`@1` = p p > l+ l-, LPRUP 1 in <init>, read with pylhe:
    2064.9 pb), whose inclusive rate the merging redistributes over the jet multiplicities. At LO
    the merged total differs from it by terms beyond the accuracy of the merging, visible as its
    dependence on qCut: 1943 pb at 15 GeV, 1995 at 20, 2061 at 30, 2073 at 45 (measured on this
    file), a spread of 6 %. The tolerance, 10 %, is that merging systematic with a margin; the
    statistical error (19 pb, 1 %) is below it. The unmatched sum of the multiplicities, 3750.8 pb,
    lies 80 % above and is excluded by both this and the second check.
    """
    init = pylhe.LHEFile.fromfile(str(mlm)).init
    xsec = {p.procId: p.xSection for p in init.procInfo}
    sigma0, total = xsec[1], sum(xsec.values())
    for qcut, (meta, _, _) in matched.items():
        assert meta["merging"]["qcut_gev"] == qcut
        assert meta["sigma_gen_pb"] == pytest.approx(sigma0, rel=0.10), qcut
        assert meta["sigma_gen_pb"] < total - 20 * meta["sigma_err_pb"]
        # consistency of what the shard records: σ = σ_LHE x (accepted / tried) within its error
        eff = meta["merging"]["matching_efficiency"]
        assert meta["n_tried"] == 10000 and eff == meta["n_accepted"] / meta["n_tried"]
        assert meta["sigma_gen_pb"] == pytest.approx(total * eff, abs=meta["sigma_err_pb"])
        assert meta["lhe_init"]["sigma_pb"] == pytest.approx(total)


def test_matching_separates_the_multiplicities_at_qcut(matched):
    """kT-MLM at parton level: a jet above qCut must come from a matrix-element parton, so the
    showered 0-parton events have √d01 below qCut and the 1-parton events above it (likewise d12
    for 1 and 2 partons). Pythia's SlowJet kT measure (R = 1, cosh Δy − cos Δφ) is not FastJet's
    (ΔR²), so a few events sit just across the scale: measured ≤ 0.2 % beyond 10 % of qCut."""
    for qcut, (_, events, _) in matched.items():
        partons = hard_partons(ak.zip({"pdgId": events.GenHard_pdgId}))
        d01, d12 = ak.to_numpy(events.DJR_d01), ak.to_numpy(events.DJR_d12)
        assert set(np.unique(partons)) == {0, 1, 2}
        assert np.mean(d01[partons == 0] > 1.1 * qcut) < 0.01
        assert np.mean(d01[partons == 1] < qcut / 1.1) < 0.01
        assert np.mean(d12[partons == 1] > 1.1 * qcut) < 0.01
        assert np.mean(d12[partons == 2] < qcut / 1.1) < 0.01
        # without matching the shower of 0-parton events reaches far above qCut (power shower):
        # that it does not here is the veto at work


def test_highest_multiplicity_is_matched_inclusively(mlm, matched, tmp_path):
    """2-parton events (the highest multiplicity) may have extra shower jets softer than their
    partons; with nJetMax = 3 (as if a 3-parton sample existed) they are matched exclusively and
    vetoed more often. Pythia counts each event's partons from the hard process: compare the
    2-parton acceptance of the two runs on the same events (binomial errors; the runs share their
    events, so the difference is known better than this)."""
    inclusive = matched[15][0]
    sample = _sample(mlm, {"qcut_gev": 15})
    sample["pythia"] = {**FAST, "extra_settings": ["JetMatching:nJetMax = 3"]}
    exclusive = generate_shard(sample, 0, 3, tmp_path / "x.root", tmp_path / "x.json", progress=False)
    assert inclusive["lhe_by_partons"] == exclusive["lhe_by_partons"]  # the same LHE events
    n2 = inclusive["lhe_by_partons"]["2"]
    acc = {k: m["written_by_partons"]["2"] / n2 for k, m in (("incl", inclusive), ("excl", exclusive))}
    err = np.sqrt(acc["incl"] * (1 - acc["incl"]) / n2 + acc["excl"] * (1 - acc["excl"]) / n2)
    assert acc["incl"] - acc["excl"] > 4 * err, acc
    # 0- and 1-parton events are matched exclusively in both runs
    for n in ("0", "1"):
        written = (exclusive["written_by_partons"][n], inclusive["written_by_partons"][n])
        assert written[0] == pytest.approx(written[1], rel=0.1)


def test_jet_rates_closed_form():
    """√d_{n,n+1} of the exclusive kT algorithm (R = 1) for three massless particles at y = 0:
    d_iB = pT_i², d_ij = min(pT_i², pT_j²) ΔR²; the soft one (pT 5) at Δφ = 0.3 from the 40 GeV
    one merges first (d = 25 × 0.09 < 25), then the two hard back-to-back ones go to the beam."""
    def particle(pt, phi):
        return {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": 0.0, "E": pt}
    event = [particle(40, 0.0), particle(30, np.pi), particle(5, 0.3)]
    rates = jet_rates(ak.Array([event, event[:1], []]), 3)
    merged = np.hypot(40 + 5 * np.cos(0.3), 5 * np.sin(0.3))  # E-scheme recombination, pT of the merged jet
    assert rates[0] == pytest.approx([merged, 30.0, 5 * 0.3], rel=1e-6)
    assert rates[1].tolist() == [40.0, 0.0, 0.0] and rates[2].tolist() == [0.0, 0.0, 0.0]


def test_merging_figures(matched, tmp_path):
    """The report figures: six files, and histograms whose multiplicities add up to the sum and whose
    sum integrates to the matched σ (every event has √d01 within the 1-500 GeV axis)."""
    from lhcflow.plots.merging import merging_figures

    meta, events, root = matched[15]
    out = tmp_path
    written = merging_figures([root], [meta], out / "figures", fmt="png", title="mlm")
    assert sorted(p.name for p in written) == ["djr_d01.png", "djr_d12.png", "djr_d23.png", "jet1_pt.png",
                                               "jet2_pt.png", "jet3_pt.png"]
    contents = json.loads((out / "figures" / "histograms.json").read_text())
    assert contents["scheme"] == "mlm" and contents["scale_gev"] == 15
    d01 = contents["histograms"]["DJR_d01"]
    parts = np.sum([d01[str(n)] for n in range(3)], axis=0)
    assert parts == pytest.approx(d01["sum"])
    inside = np.mean((ak.to_numpy(events.DJR_d01) > 1) & (ak.to_numpy(events.DJR_d01) < 500))
    assert np.sum(d01["sum"]) == pytest.approx(meta["sigma_gen_pb"] * inside, rel=1e-6)
