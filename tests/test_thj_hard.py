"""Hard tHj events (thesis §6.1): factorised σ_i, the Eq 6.3 fit, unweighted events, LHE/HDF5 files."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import torch

from lhcflow.nis.run import run_integrator
from lhcflow.thj import hard
from lhcflow.thj.cross_section import ThjCrossSection

SMALL_VEGAS = {"method": "vegas", "config": {"iterations": 4, "samples_per_iteration": 6000}}


@pytest.fixture(scope="module")
def xs():
    return ThjCrossSection()                     # heavy = top, the thesis datasets (Eq 6.4)


@pytest.fixture(scope="module")
def xs_both():
    return ThjCrossSection(heavy="top_antitop")


@pytest.fixture(scope="module")
def sigma_i(xs):
    return hard.factorized_cross_sections(xs, 20_000, SMALL_VEGAS, seed=4)


def test_factorized_sigma_matches_direct_integration(xs, sigma_i):
    """σ(90°) from the five σ_i equals an independent VEGAS integration of dσ(90°)."""
    value, error = sigma_i.at(math.radians(90.0))
    direct = run_integrator("vegas", xs.integrand(math.pi / 2), 20_000, SMALL_VEGAS["config"], seed=9)
    pull = (value[0] - direct.integral) / math.hypot(error[0], direct.error)
    assert abs(pull) < 4, (value, error, direct.integral, direct.error)


def test_cp_fit_recovers_the_exact_parameters(sigma_i):
    angles = np.radians(hard.FIT_ANGLES_DEG)
    values, errors = sigma_i.at(angles)
    fit = hard.fit_cp_parameters(angles, values, errors)
    exact = sigma_i.cp_parameters()
    for key in hard.CP_PARAMETERS:
        assert fit["parameters"][key] == pytest.approx(exact[key], abs=1e-9)
    assert np.allclose(hard.eq63(angles, exact), values)
    assert exact["B"] > 4 * exact["A"] > 0        # σ(180°) = A + 2B ≫ σ(0°) = A
    assert exact["C"] < 0


def test_fit_needs_five_angles():
    with pytest.raises(ValueError, match="five angles"):
        hard.fit_cp_parameters([0.0, 1.0], [1.0, 2.0])


def _charge(pdg: np.ndarray) -> np.ndarray:
    """Electric charge ×3 of quarks (|id| ≤ 6); 0 for the Higgs."""
    up = np.isin(np.abs(pdg), (2, 4, 6))
    down = np.isin(np.abs(pdg), (1, 3, 5))
    return np.sign(pdg) * (2 * up - 1 * down)


@pytest.fixture(scope="module")
def fixed_events(xs):
    return hard.generate_hard_events(xs, 300, 0.0, integrator=SMALL_VEGAS, seed=5)


def test_fixed_alpha_events_are_physical(xs_both):
    """t + t̄ events: charge conservation, beams, flavours, weights (``heavy = top_antitop``)."""
    events, stats = hard.generate_hard_events(xs_both, 300, 0.0, integrator=SMALL_VEGAS, seed=5)
    assert events.attrs["heavy"] == "top_antitop"
    p = events.momenta
    assert len(events) == 300 and stats["n_events"] == 300
    assert np.abs(p[:, 0] + p[:, 1] - p[:, 2:].sum(1)).max() < 1e-6
    assert (p[:, 0, 3] > 0).all() and (p[:, 1, 3] < 0).all()                 # beam 1 along +z
    charge_in = _charge(events.pdg[:, 0]) + _charge(events.pdg[:, 1])
    charge_out = _charge(events.pdg[:, 2]) + _charge(events.pdg[:, 4])
    assert (charge_in == charge_out).all()
    assert set(np.abs(events.pdg[:, 2])) == {6}
    light_from_beam2 = np.abs(events.pdg[:, 0]) == 5
    assert 0.35 < light_from_beam2.mean() < 0.65
    tops = (events.pdg[:, 2] == 6).mean()
    assert 0.5 < tops < 0.85                                                 # t ≈ 2/3 of t + t̄
    density = (events.g * np.array([1, 0, 1, 0, 0])).sum(1)
    assert (density > 0).all()
    assert 0 < stats["unweighting_efficiency"] <= 1
    assert events.weight.sum() == pytest.approx(events.attrs["sigma_pb"], rel=1e-6)


def test_heavy_parts_add_up_and_agree_with_a_top_only_integration(xs_both, sigma_i):
    """σ_i of t and t̄ from one t + t̄ sample add up to its σ_i, and σ_t(α) agrees with the separate
    top-only integration (independent VEGAS grids and points: pull < 4, i.e. a 6e-5 false alarm)."""
    both = hard.factorized_cross_sections(xs_both, 20_000, SMALL_VEGAS, seed=21)
    assert set(both.parts) == {"top", "antitop"}
    assert np.allclose(both.parts["top"].sigma + both.parts["antitop"].sigma, both.sigma, rtol=1e-12)
    for degrees in (0.0, 90.0, 180.0):
        (t, t_err), (ref, ref_err) = (r.at(math.radians(degrees)) for r in (both.parts["top"], sigma_i))
        assert abs(t[0] - ref[0]) < 4 * math.hypot(t_err[0], ref_err[0]), degrees


def test_top_only_events_and_their_files(xs, tmp_path):
    """heavy = top: every event has a top (Eq 6.4), and hard.h5 and the LHE header say so."""
    events, _ = hard.generate_hard_events(xs, 100, 0.0, integrator=SMALL_VEGAS, seed=22)
    assert (events.pdg[:, 2] == 6).all() and ((events.pdg[:, :2] == 5).sum(1) == 1).all()   # b → t, never b̄
    hard.write_hard_events(events, tmp_path / "h.lhe", tmp_path / "h.h5")
    assert hard.read_hard_events(tmp_path / "h.h5").attrs["heavy"] == "top"
    assert "heavy = top\n" in (tmp_path / "h.lhe").read_text()


TINY_THJ = {"process": {"heavy": "top"}, "integrator": {"method": "vegas", "config": {"iterations": 2,
            "samples_per_iteration": 2000}}, "n_eval_sigma": 4000, "fit_angles_deg": list(hard.FIT_ANGLES_DEG)}


@pytest.mark.parametrize("choice", ["top", "top_antitop"])
def test_cross_section_record_states_the_choice_and_both_sigmas(tmp_path, choice):
    """cross_sections.json: σ_i of the choice, σ(0°) and σ(180°)/σ(0°) of t, t̄ and t + t̄ from one sample."""
    from lhcflow.thj.record import read_cross_sections
    from lhcflow.thj.stages import CrossSectionSettings, cross_sections_stage

    settings = CrossSectionSettings.from_config({**TINY_THJ, "process": {"heavy": choice}, "seed": 3})
    record = cross_sections_stage(settings, out_json=tmp_path / "xs.json").record
    assert read_cross_sections(tmp_path / "xs.json") == json.loads(json.dumps(record))
    by = record["by_heavy"]
    assert record["heavy"] == choice and set(by) == {"top", "antitop", "top_antitop"}
    assert record["sigma_i_pb"] == by[choice]["sigma_i_pb"] and record["sigma_0_pb"] == by[choice]["sigma_0_pb"]
    assert by["top"]["sigma_0_pb"] + by["antitop"]["sigma_0_pb"] == pytest.approx(by["top_antitop"]["sigma_0_pb"])
    share = by["top"]["sigma_0_pb"] / by["top_antitop"]["sigma_0_pb"]
    assert record["top_fraction_alpha0"] == pytest.approx(share) and 0 < record["top_fraction_alpha0_err"] < 0.1
    assert record["process"]["heavy"] == choice
    for row in by.values():
        assert row["ratio_180_0"] == pytest.approx(row["sigma_180_pb"] / row["sigma_0_pb"])
        assert 0 < row["ratio_180_0_err"] < row["ratio_180_0"]


def test_hard_stage_refuses_cross_sections_of_another_choice(tmp_path):
    from lhcflow.thj.stages import HardEventsSettings, hard_events_stage

    sigma_json = tmp_path / "xs.json"
    sigma_json.write_text(json.dumps({"heavy": "top_antitop", "sigma_i_pb": [1.0, 0, 0, 0, 0],
                                      "covariance_pb2": np.eye(5).tolist(), "n_calls": 1}))
    settings = HardEventsSettings.from_config({"name": "alpha0", "sample": {"alpha_deg": 0.0, "n_events": 10},
                                               "shard": 0, "process": TINY_THJ["process"],
                                               "integrator": TINY_THJ["integrator"], "seed": 1})
    with pytest.raises(ValueError, match="heavy = 'top_antitop'.*thj.process.heavy is 'top'") as err:
        hard_events_stage(settings, cross_sections=sigma_json, out_lhe=tmp_path / "h.lhe", out_h5=tmp_path / "h.h5")
    assert str(sigma_json) in str(err.value) and not list(tmp_path.glob("h.*"))


def test_unknown_heavy_choice_is_named():
    with pytest.raises(ValueError, match="thj.process.heavy: 'antitop'"):
        ThjCrossSection(heavy="antitop")


def test_uniform_alpha_sample(xs, sigma_i):
    events, stats = hard.generate_hard_events(xs, 400, None, sigma_i, integrator=SMALL_VEGAS, seed=6)
    assert events.attrs["alpha_sampling"] == "uniform"
    counts, _ = np.histogram(events.alpha, bins=4, range=(-math.pi, math.pi))
    assert counts.min() > 60                                                  # uniform: 100 ± 10 each
    assert stats["integral"] == pytest.approx(1.0, abs=5 * stats["integral_error"] + 0.02)


def test_files_round_trip_and_lhe_is_readable(fixed_events, tmp_path):
    import pylhe

    events, _ = fixed_events
    hard.write_hard_events(events, tmp_path / "hard.lhe", tmp_path / "hard.h5")
    back = hard.read_hard_events(tmp_path / "hard.h5")
    assert np.allclose(back.momenta, events.momenta) and np.allclose(back.g, events.g)
    assert back.attrs["pdf"] == "NNPDF23_lo_as_0119_qed"
    lhe_events = list(pylhe.LHEFile.fromfile(str(tmp_path / "hard.lhe")).events)
    assert len(lhe_events) == len(events)
    first = lhe_events[0].particles
    assert [int(p.id) for p in first] == events.pdg[0].tolist()
    assert first[2].pz == pytest.approx(events.momenta[0, 2, 3], rel=1e-9)
    text = (tmp_path / "hard.lhe").read_text()
    assert text.count("#lhcflow alpha=") == len(events)
    first_g = text.split("#lhcflow alpha=", 2)[1].split(" g=")[1].split()[0]
    assert np.allclose([float(x) for x in first_g.split(",")], events.g[0], rtol=1e-9)


def test_bad_hard_files_are_named(tmp_path, fixed_events):
    with pytest.raises(hard.HardEventError, match="not found"):
        hard.read_hard_events(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(hard.HardEventError, match="junk.h5"):
        hard.read_hard_events(tmp_path / "junk.h5")
    events, _ = fixed_events
    hard.write_hard_events(events, None, tmp_path / "ok.h5")
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f["g"]
    with pytest.raises(hard.HardEventError, match="'g'|\\['g'\\]"):
        hard.read_hard_events(tmp_path / "ok.h5")
    bad = hard.HardEvents(**{k: getattr(events, k).copy() for k in hard.HARD_FIELDS}, attrs=events.attrs)
    bad.alpha[3] = np.nan
    hard.write_hard_events(bad, None, tmp_path / "nan.h5")
    with pytest.raises(hard.HardEventError, match="alpha.*event 3"):
        hard.read_hard_events(tmp_path / "nan.h5")
    bad.alpha[3], bad.g = 0.0, bad.g[:, :4]
    hard.write_hard_events(bad, None, tmp_path / "shape.h5")
    with pytest.raises(hard.HardEventError, match=r"shape.h5: dataset 'g' .* \(\d+, 4\), expected \(N, 5\)"):
        hard.read_hard_events(tmp_path / "shape.h5")
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f.attrs["heavy"]
    with pytest.raises(hard.HardEventError, match="ok.h5: attribute 'heavy' missing.*rerun thj_hard_events"):
        hard.open_hard_file(tmp_path / "ok.h5", fields=("alpha",), attrs=("sigma_pb", "heavy"))


def test_hard_file_reads_whole_fields_and_rows(tmp_path, fixed_events):
    """open_hard_file (the one reader of hard.h5) gives what was written, whole or by rows in any order."""
    events, _ = fixed_events
    hard.write_hard_events(events, None, tmp_path / "h.h5")
    back = hard.read_hard_events(tmp_path / "h.h5")
    for name in hard.HARD_FIELDS:
        np.testing.assert_array_equal(getattr(back, name), getattr(events, name))
    rows = np.random.default_rng(1).permutation(len(events))[: len(events) // 3]
    with hard.open_hard_file(tmp_path / "h.h5", fields=("momenta", "g"), attrs=("sigma_pb",)) as f:
        assert len(f) == len(events) and f.attrs["sigma_pb"] == events.attrs["sigma_pb"]
        np.testing.assert_array_equal(f.read("g", rows), events.g[rows])
        np.testing.assert_array_equal(f.read("momenta", rows[:2]), events.momenta[rows[:2]])
        with pytest.raises(KeyError, match="alpha"):
            f.read("alpha")


def test_reweighting_to_other_angles(xs, sigma_i, fixed_events):
    """Σ w · dσ(x|α)/dσ(x|α_e) reproduces σ(α) from the σ_i, for fixed-α and α-uniform samples."""
    uniform, _ = hard.generate_hard_events(xs, 1500, None, sigma_i, integrator=SMALL_VEGAS, seed=8)
    events, _ = fixed_events
    for sample in (events, uniform):
        for degrees in (0.0, 90.0, 180.0):
            alpha = math.radians(degrees)
            terms = sample.weight * hard.reweighting_factors(sample, alpha)
            estimate, error = terms.sum(), terms.std() * math.sqrt(len(terms))
            expected = sigma_i.at(alpha)[0][0]
            assert abs(estimate - expected) < 4 * error + 0.02 * expected, (sample.attrs["alpha_sampling"], degrees)


def _fake_paired(path, events, accepted, branching_ratio=0.5):
    """A paired file with the fields the fiducial stage reads (the shower itself is tested elsewhere)."""
    with h5py.File(path, "w") as f:
        for name in ("alpha", "g_event", "weight"):
            f[name] = getattr(events, name)
        f["accepted"] = accepted
        f["cuts_passed"] = 1 + accepted.astype(np.int64)
        f.attrs["branching_ratio"] = branching_ratio
        f.attrs["cut_flow_steps"] = '["all", "central_jet"]'


def test_fiducial_cross_section_by_reweighting(xs, sigma_i, tmp_path):
    """σ_fid(α) of an α-uniform sample with a kinematic cut agrees with a fixed-α sample at α = 180°."""
    from lhcflow.thj import fiducial

    def central(events):
        p = events.momenta[:, 4]
        return np.abs(np.arcsinh(p[:, 3] / np.hypot(p[:, 1], p[:, 2]))) < 2.0

    uniform, _ = hard.generate_hard_events(xs, 3000, None, sigma_i, integrator=SMALL_VEGAS, seed=12)
    fixed, _ = hard.generate_hard_events(xs, 1500, math.pi, integrator=SMALL_VEGAS, seed=13)
    data = {}
    for name, events in (("uniform", uniform), ("fixed", fixed)):
        hard.write_hard_events(events, None, tmp_path / f"{name}.h5")
        _fake_paired(tmp_path / f"{name}_paired.h5", events, central(events))
        data[name] = fiducial.read_paired([tmp_path / f"{name}_paired.h5"], [tmp_path / f"{name}.h5"])
    everything = fiducial.fiducial_cross_sections(data["uniform"], np.ones(len(uniform), dtype=bool))
    for degrees in (0.0, 180.0):
        value, error = everything.at(math.radians(degrees))
        assert abs(value[0] - 0.5 * sigma_i.at(math.radians(degrees))[0][0]) < 4 * error[0]
    reweighted = fiducial.fiducial_cross_sections(data["uniform"]).at(math.pi)
    direct = fiducial.fiducial_cross_sections(data["fixed"]).at(math.pi)
    assert abs(reweighted[0][0] - direct[0][0]) < 4 * math.hypot(reweighted[1][0], direct[1][0])
    assert 0.2 < reweighted[0][0] / everything.at(math.pi)[0][0] < 0.9        # the cut removes events
    flow = fiducial.cut_flow(data["uniform"], 0.0)
    fractions = [row["fraction"] for row in flow["steps"][2:]]
    assert fractions[0] == pytest.approx(1.0) and fractions[1] < 1.0
    assert flow["steps"][1]["rate_ab"] == pytest.approx(0.5 * flow["steps"][0]["rate_ab"])


def test_fiducial_record_states_heavy_and_refuses_mixtures(fixed_events, tmp_path):
    from lhcflow.thj import fiducial
    from lhcflow.thj.stages import FiducialSettings, fiducial_stage

    events, _ = fixed_events
    accepted = np.arange(len(events)) % 3 > 0
    paths = {}
    for choice in ("top", "top_antitop"):
        hard.write_hard_events(events, None, tmp_path / f"{choice}.h5")
        with h5py.File(tmp_path / f"{choice}.h5", "a") as f:
            f.attrs["heavy"] = choice
        _fake_paired(tmp_path / f"{choice}_paired.h5", events, accepted)
        paths[choice] = ([tmp_path / f"{choice}_paired.h5"], [tmp_path / f"{choice}.h5"])
    (tmp_path / "xs.json").write_text(json.dumps({"heavy": "top"}))
    settings = FiducialSettings(name="custom", alpha_deg={"alpha0": 0.0}, fit_angles_deg=hard.FIT_ANGLES_DEG)
    outputs = {"out_json": tmp_path / "fid.json", "out_figure": tmp_path / "fid.png", "out_table": tmp_path / "t.html",
               "out_thesis": tmp_path / "thesis.html"}
    record = fiducial_stage(settings, cross_sections=tmp_path / "xs.json", train_paired=paths["top"][0],
                            train_hard=paths["top"][1], tests={"alpha0": paths["top"]}, **outputs).record
    assert record["heavy"] == "top" and "thesis_comparison" not in record       # no thesis counterpart
    assert json.loads(outputs["out_json"].read_text())["heavy"] == "top"
    assert all(path.stat().st_size > 0 for path in outputs.values())
    for tests, sigma in (({"alpha0": (0.0, *paths["top_antitop"])}, None), ({}, {"heavy": "top_antitop"})):
        with pytest.raises(ValueError, match="heavy = top;.*heavy = top_antitop"):
            fiducial.run_fiducial("custom", paths["top"], tests, hard.FIT_ANGLES_DEG, sigma)
    with h5py.File(tmp_path / "top.h5", "a") as f:
        del f.attrs["heavy"]
    with pytest.raises(hard.HardEventError, match="top.h5: attribute 'heavy' missing"):
        fiducial.read_paired(*paths["top"])


def test_cut_flow_errors_match_the_spread_of_replicas():
    """Errors of the Table 6.1 rates and fractions (weighted events, correlated numerator and denominator)
    against the spread over 400 independent replicas: std of a std estimate ≈ 1/√800 = 3.5 %, so 15 %."""
    from lhcflow.thj import fiducial

    rng = np.random.default_rng(17)
    n, replicas = 500, 400
    rows = []
    for _ in range(replicas):
        weight = rng.exponential(1.0, n)
        passes = rng.random(n) < np.clip(0.2 + 0.3 * weight, 0, 0.9)           # heavier events pass more
        data = {"alpha": np.zeros(n), "g_event": np.tile([1.0, 0, 0, 0, 0], (n, 1)), "weight": weight,
                "cuts_passed": passes.astype(np.int8), "accepted": passes,
                "attrs": {"hard": {"alpha_sampling": "fixed"},
                          "paired": {"branching_ratio": 0.5, "cut_flow_steps": '["cut"]'}}}
        rows.append(fiducial.cut_flow(data, 0.0)["steps"][2])
    for key, err in (("fraction", "fraction_err"), ("rate_ab", "rate_err_ab")):
        values = np.array([r[key] for r in rows])
        assert np.mean([r[err] for r in rows]) == pytest.approx(values.std(ddof=1), rel=0.15), key
