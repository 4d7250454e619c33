"""Config-driven integration experiments: runs, summaries, tables, LHE events, config checks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pylhe
import pytest
from madnis.integrator import Integrator

from lhcflow.config import ConfigError, validate_config
from lhcflow.generation.pythia import count_lhe_events, read_lhe_header
from lhcflow.nis.experiments import run_setup, summarize_experiment, write_tables
from lhcflow.nis.stages import (
    EventsSettings,
    ExperimentSettings,
    PlotsSettings,
    RunSettings,
    events_stage,
    plots_stage,
    run_stage,
    summary_stage,
)

TINY_MADNIS = {"batch_size": 256, "epochs": 2, "batches_per_epoch": 10, "history_every": 5, "history_batches": 2,
               "history_batch_size": 256}
CAMEL = {
    "integrand": {"name": "camel"},
    "variants": {
        "flat_optimal": {"method": "flat", "integrand": {"prior": "optimal"}},
        "vegas": {"method": "vegas", "integrand": {"prior": "optimal"},
                  "config": {"iterations": 3, "samples_per_iteration": 1000}},
        "learned": {"method": "madnis", "label": "learned α", "integrand": {"prior": "uniform"},
                    "config": {"preset": "table_a3", **TINY_MADNIS}},
    },
    "scan": None,
}


def run_point(experiment, name, variant, seed, n_eval, out_json, out_state=None, checkpoint=None):
    """One run of ``variant`` without a scan, through the workflow's run stage."""
    settings = RunSettings(ExperimentSettings(name, experiment), variant, 0, seed, n_eval)
    return run_stage(settings, out_json=out_json, out_state=out_state, checkpoint=checkpoint)


def test_run_setup_applies_overrides_and_scans():
    exp = {"integrand": {"name": "drell_yan", "prior": "mg5"},
           "variants": {"m": {"method": "madnis", "integrand": {"channels": ["photon", "z"]}, "config": {"epochs": 1}}},
           "scan": {"parameter": "zprime_width", "target": "integrand", "values": [0.05, 5.0]}}
    spec, method, config = run_setup(exp, "m", 1)
    assert spec == {"name": "drell_yan", "prior": "mg5", "channels": ["photon", "z"], "zprime_width": 5.0}
    assert method == "madnis" and config == {"epochs": 1}
    exp["scan"] = {"parameter": "replay_factor", "target": "config", "values": [1, 3]}
    assert run_setup(exp, "m", 1)[2] == {"epochs": 1, "replay_factor": 3}
    assert "replay_factor" not in exp["variants"]["m"]["config"]  # the config is not mutated


def test_camel_experiment_summary_and_tables(tmp_path, monkeypatch):
    files = []
    for variant in CAMEL["variants"]:
        for seed in (0, 1):
            path = tmp_path / f"{variant}_{seed}.json"
            record = run_point(CAMEL, "camel", variant, seed, 4000, path, tmp_path / f"{variant}_{seed}.pt",
                               checkpoint=tmp_path / f"{variant}_{seed}.ckpt")
            assert abs(record.integral - 1.0) < 4 * record.error, record  # exact camel integral = 1
            assert json.loads(path.read_text())["integral"] == record.integral
            files.append(path)
            # only MadNIS trainings checkpoint; a rerun resumes the finished training and repeats the result
            assert (tmp_path / f"{variant}_{seed}.ckpt").exists() == (CAMEL["variants"][variant]["method"] == "madnis")
    with monkeypatch.context() as m:  # the finished training is resumed, not repeated
        m.setattr(Integrator, "train_step", lambda self: pytest.fail("MadNIS trained again instead of resuming"))
        again = run_point(CAMEL, "camel", "learned", 1, 4000, tmp_path / "again.json",
                          checkpoint=tmp_path / "learned_1.ckpt")
    assert again.integral == record.integral and again.n_calls_train == record.n_calls_train
    summary = summarize_experiment("camel", CAMEL, files)
    rows = {r["variant"]: r for r in summary["rows"]}
    assert list(rows) == list(CAMEL["variants"]) and all(r["n_seeds"] == 2 for r in rows.values())
    assert rows["learned"]["label"] == "learned α"
    assert summary["exact"] == pytest.approx(1.0)
    # VEGAS adapts to the optimal-prior channels: smaller σ/I than no adaptation at equal evaluation calls
    assert rows["vegas"]["metrics"]["rel_std"]["mean"] < rows["flat_optimal"]["metrics"]["rel_std"]["mean"]
    assert "learned" in summary["histories"] and len(summary["histories"]["learned"]) == 2
    counts = np.asarray(summary["weights"]["vegas|"][1])
    assert counts.sum() == 2 * 4000  # w/<w> of every event of both seeds, under/overflow in the outer bins
    write_tables(summary, tmp_path / "t.csv", tmp_path / "t.html")
    table = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["variant"] for r in table] == list(CAMEL["variants"])
    assert float(table[0]["integral_mean"]) == pytest.approx(rows["flat_optimal"]["metrics"]["integral"]["mean"])
    assert "learned α" in (tmp_path / "t.html").read_text()
    # the workflow's summary and plot stages: the same summary, the figures the report lists
    staged = summary_stage(ExperimentSettings("camel", CAMEL), runs=files, out_summary=tmp_path / "s.json",
                           out_csv=tmp_path / "s.csv", out_html=tmp_path / "s.html")
    assert staged.rows == json.loads((tmp_path / "s.json").read_text())["rows"] == summary["rows"]
    figures = plots_stage(PlotsSettings(), summary_json=tmp_path / "s.json", out_dir=tmp_path / "plots").figures
    assert [f.name for f in figures] == ["metrics.png", "weights.png", "variance_history.png"]
    assert all(f.stat().st_size > 0 for f in figures)


def test_a_diverged_seed_is_counted_and_left_out_of_the_means(tmp_path):
    """One seed with a NaN integral (a diverged training) must not remove the metric from the summary
    (the validation's crossed-ring run lost its whole row that way): the means are those of the finite
    seeds, computed here with numpy, and ``n_failed`` counts the other."""
    files, integrals = [], []
    for seed in range(3):
        path = tmp_path / f"flat_{seed}.json"
        integrals.append(run_point(CAMEL, "camel", "flat_optimal", seed, 2000, path).integral)
        files.append(path)
    broken = json.loads(files[1].read_text())
    broken.update(integral=float("nan"), error=float("nan"), rel_std=float("nan"), pull=None)
    files[1].write_text(json.dumps(broken))
    row = summarize_experiment("camel", {**CAMEL, "variants": {"flat_optimal": CAMEL["variants"]["flat_optimal"]}},
                               files)["rows"][0]
    assert row["n_seeds"] == 3 and row["n_failed"] == 1
    finite = [integrals[0], integrals[2]]
    assert row["metrics"]["integral"]["mean"] == pytest.approx(np.mean(finite), rel=1e-12)
    assert row["metrics"]["integral"]["std"] == pytest.approx(np.std(finite, ddof=1), rel=1e-12)
    assert row["metrics"]["integral"]["n"] == 2


def test_drell_yan_events_as_lhe(tmp_path):
    exp = {"integrand": {"name": "drell_yan", "prior": "mg5"},
           "variants": {"m": {"method": "madnis", "config": {"preset": "table_a5", **TINY_MADNIS}}}}
    record = run_point(exp, "dy", "m", 0, 2000, tmp_path / "r.json", tmp_path / "m.pt")
    assert 4000 < record.integral < 6000  # σ(m_ee > 15 GeV) ≈ 4.4 nb with NNPDF2.3 LO (tiny training)
    settings = EventsSettings.from_config({"experiment": {"name": "dy", "experiment": exp}, "variant": "m",
                                           "n_events": 300, "seed": 1})
    meta = events_stage(settings, state=tmp_path / "m.pt", out_lhe=tmp_path / "dy.lhe", out_meta=tmp_path / "dy.json").meta
    assert meta["n_events"] == 300 and count_lhe_events(tmp_path / "dy.lhe") == 300
    assert abs(meta["cross_section_pb"] - record.integral) < 5 * (meta["cross_section_err_pb"] + record.error)
    header = read_lhe_header(tmp_path / "dy.lhe")
    assert any("e+ e-" in line for line in header.proc_lines)
    events = list(pylhe.LHEFile.fromfile(str(tmp_path / "dy.lhe")).events)
    p = np.array([[[q.e, q.px, q.py, q.pz] for q in ev.particles] for ev in events])
    ids = np.array([[q.id for q in ev.particles] for ev in events])
    assert (ids[:, 2] == 11).all() and (ids[:, 3] == -11).all()
    assert np.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), atol=1e-6 * p[:, :, 0].max())  # momentum conservation
    mee = np.sqrt(np.maximum((p[:, 2:, 0].sum(1)) ** 2 - (p[:, 2:, 1:].sum(1) ** 2).sum(1), 0))
    assert (mee > 15.0 - 1e-6).all()
    assert json.loads((tmp_path / "dy.json").read_text())["n_events"] == 300


def test_nis_config_errors_name_the_key():
    base = {"samples": {"s": {"kind": "pythia", "n_events": 10}}}
    bad_key = {"nis": {"experiments": {"camel": {"integrand": {"name": "camel"}, "variants": {
        "m": {"method": "madnis", "config": {"epoch": 3}}}}}}}
    with pytest.raises(ConfigError, match=r"variants.m.config: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        validate_config({**base, **bad_key})
    bad_figure = {"nis": {"experiments": {"camel": {"integrand": {"name": "camel"}, "channel_figures": ["f"],
                                                    "variants": {"f": {"method": "flat"}}}}}}
    with pytest.raises(ConfigError, match="channel_figures: 'f' is not a madnis variant"):
        validate_config({**base, **bad_figure})
    with pytest.raises(ConfigError, match="integrand.name"):
        validate_config({**base, "nis": {"experiments": {"x": {"integrand": {"name": "camle"},
                                                               "variants": {"f": {"method": "flat"}}}}}})
