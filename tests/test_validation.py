"""The validation report's logic on synthetic run outputs: targets, the matching of runs with thesis rows,
unit conversions checked against Monte Carlo, paired pull errors, and the written report."""

import json
import math

import numpy as np
import pytest

from lhcflow.validation import Row, Target, collect, validate
from lhcflow.validation import mem as mem_rows
from lhcflow.validation import nis as nis_rows
from lhcflow.validation.__main__ import main
from lhcflow.nis.thesis import TABLE_5_1


# ----------------------------------------------------------------------------------------------- targets

@pytest.mark.parametrize("target, value, error, ref, ref_error, expected", [
    (Target.sigma(3), 1.0, 0.3, 2.0, 0.4, True),         # |Δ| = 1 ≤ 3 · 0.5
    (Target.sigma(1), 1.0, 0.3, 2.0, 0.4, False),
    (Target.relative(0.02), 4398.0, 1.0, 4349.7, 0.3, True),
    (Target.relative(0.02), 4913.0, 1.0, 4349.7, 0.3, False),
    (Target.at_most_times(2), 0.15, None, 0.08, None, True),
    (Target.at_most_times(2), 1.0, None, 0.08, None, False),
    (Target.interval(0.8, 1.25), 1.3, 0.1, None, None, False),
    (Target.abs_at_most(0.25), -0.2, 0.1, None, None, True),
    (Target.at_least(1.0), 0.9, 0.1, None, None, False),
])
def test_target_verdicts(target, value, error, ref, ref_error, expected):
    assert target.passes(value, error, ref, ref_error) is expected
    status = Row("x", "g", "q", value, target, "s", error=error, reference=ref, reference_error=ref_error).status
    assert status == ("pass" if expected else "fail")


def test_rows_without_a_value_or_verdict():
    assert Row("x", "g", "q", float("nan"), Target.sigma(3), "s", reference=1.0).status == "missing"
    assert Row("x", "g", "q", 1.0, Target.sigma(3), "s", reference=None).status == "missing"
    assert Row("x", "g", "q", 1.0, Target.info(), "s").status == "info"
    with pytest.raises(ValueError, match="unknown target kind"):
        Target("close enough", 1.0)
    with pytest.raises(ValueError, match="needs a limit"):
        Target("sigma")


# ----------------------------------------------------------------------------------------------- NIS

def _stat(mean, std):
    return {"mean": mean, "std": std, "min": mean - std, "max": mean + std}


def _nis_row(variant, method, prior, rel_std, spread=0.006, channels=("peak1", "peak2"), scan=None, seeds=10, **extra):
    metrics = {"rel_std": _stat(rel_std, spread), "rel_error": _stat(rel_std / 100, spread / 100), **extra}
    return {"variant": variant, "method": method, "label": variant, "scan_value": scan, "n_seeds": seeds,
            "config": {}, "integrand_meta": {"channels": list(channels), "prior": prior, "pdf": None},
            "metrics": metrics}


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_percent_at_thesis_size_is_the_relative_error_of_a_1e4_event_integral():
    """rel_std (σ/I per event) turned into the Table 5.1 number must equal the spread of 10^4-event MC
    integrals, measured here by repeating them (the reference), within that measurement's error."""
    rng = np.random.default_rng(1)
    weights = rng.gamma(2.0, size=2_000_000)  # any positive weights
    rel_std = weights.std() / weights.mean()
    value, _ = nis_rows._percent_at_thesis_events({"rel_std": _stat(rel_std, 0.0)})
    means = rng.gamma(2.0, size=(400, 10_000)).mean(axis=1)
    measured = 100 * means.std(ddof=1) / means.mean()
    assert value == pytest.approx(measured, rel=3 / math.sqrt(2 * 399))  # 3σ of a std from 400 integrals


def test_camel_rows_are_matched_by_method_and_prior_not_by_variant_name(tmp_path):
    summary = {"experiment": "my_camel", "integrand": {"name": "camel"}, "scan": None, "rows": [
        _nis_row("a", "flat", "uniform", 5.46, 0.05, channels=("flat",)),
        _nis_row("half", "flat", "uniform", 5.6, 0.2),       # α = 1/2 on the Cauchy channels: no row
        _nis_row("b", "flat", "optimal", 0.778, 0.006),
        _nis_row("c", "madnis", "uniform", 0.80, 0.02),
        _nis_row("d", "madnis", "optimal", 0.74, 0.001),
        _nis_row("e", "vegas", "optimal", 0.9),
    ]}
    _write(tmp_path / "nis/my_camel/summary.json", summary)
    rows = {r.quantity.split("(")[0].strip(): r for r in nis_rows.rows(tmp_path)}
    assert len(rows) == 4  # neither VEGAS nor α = 1/2 has a Table 5.1 row
    ref = TABLE_5_1["camel"]
    uniform, optimal = rows["rel. error at 10⁴ events, α: uniform"], rows["rel. error at 10⁴ events, α: optimal"]
    assert (uniform.reference, optimal.reference) == (ref["uniform"].value, ref["optimal"].value)
    assert uniform.status == "fail"                       # 5.46 % against 2.553 ± 0.017 %
    assert optimal.status == "pass"                       # 0.778 vs 0.769: 1.1 combined spreads
    assert rows["rel. error at 10⁴ events, α: nn flat prior"].status == "pass"
    assert rows["rel. error at 10⁴ events, α: nn optimal prior"].status == "fail"  # 0.74 ± 0.001 vs 0.767 ± 0.006: 4.4σ


def test_drell_yan_cross_section_and_efficiency_ratio(tmp_path):
    rows_ = [_nis_row("v", "vegas", "mg5", 0.2, channels=("photon", "z", "zprime"),
                      integral=_stat(4398.0, 3.0), unweighting_efficiency=_stat(0.10, 0.01),
                      n_calls_train=_stat(1e6, 0)),
             _nis_row("m", "madnis", "mg5", 0.1, channels=("photon", "z", "zprime"),
                      integral=_stat(4910.0, 3.0), unweighting_efficiency=_stat(0.30, 0.03),
                      n_calls_train=_stat(1e6, 0))]
    _write(tmp_path / "nis/dy/summary.json",
           {"experiment": "dy", "integrand": {"name": "drell_yan"}, "scan": None, "unit": "pb", "rows": rows_})
    rows = nis_rows.rows(tmp_path)
    sigma = [r for r in rows if r.quantity.startswith("σ")]
    assert [r.status for r in sigma] == ["pass", "fail"]   # +1.1 % and +12.9 % against 4349.7 pb
    assert sigma[0].error == pytest.approx(3.0 / math.sqrt(10))
    ratio = next(r for r in rows if r.quantity.startswith("ε"))
    assert ratio.value == pytest.approx(3.0) and ratio.status == "pass"


def test_flat_prior_sigma_has_no_verdict_and_rows_name_the_training_length(tmp_path):
    """§5.2.3: the flat-prior training "only converges slowly", so its σ is information; every MadNIS row
    run from a thesis preset says how much of the thesis's training it had (Table A.5: 60 × 50 steps)."""
    flat = _nis_row("f", "madnis", "flat", 20.0, channels=("photon", "z", "zprime"), integral=_stat(2900.0, 300.0))
    flat["config"] = {"preset": "table_a5", "batch_size": 1000, "epochs": 12}
    mg5 = _nis_row("m", "madnis", "mg5", 0.1, channels=("photon", "z", "zprime"), integral=_stat(4395.0, 1.0))
    mg5["config"] = {"preset": "table_a5", "batch_size": 1000, "epochs": 12}
    _write(tmp_path / "nis/dy/summary.json",
           {"experiment": "dy", "integrand": {"name": "drell_yan"}, "scan": None, "unit": "pb", "rows": [flat, mg5]})
    sigma = [r for r in nis_rows.rows(tmp_path) if r.quantity.startswith("σ")]
    assert [r.status for r in sigma] == ["info", "pass"]
    assert all("trained 600 of Table A.5's 3000 steps, batches of 1000 (thesis 10000)" in r.note for r in sigma)


# ----------------------------------------------------------------------------------------------- MEM

def _estimate(alpha, lo, hi):
    return {"alpha_hat_deg": alpha, "sigma_minus_deg": lo, "sigma_plus_deg": hi, "bias_deg": 0.0, "at_edge": False}


def _mem_sample(alpha, per_set, disjoint, mem_pulls, hard_pulls):
    def summary(p):
        p = np.asarray(p)
        return {"n": len(p), "n_nonfinite": 0, "mean": p.mean(), "mean_error": p.std(ddof=1) / math.sqrt(len(p)),
                "width": p.std(ddof=1), "width_error": p.std(ddof=1) / math.sqrt(2 * (len(p) - 1))}
    return {"alpha_true_deg": alpha, "n_events": 2000, "n_dropped_nonfinite": 0, "events_per_set": per_set,
            "pull_sets_disjoint": disjoint, "pulls": {"hard scattering": summary(hard_pulls), "MEM (cinn)": summary(mem_pulls)},
            "set_pulls": {"hard scattering": list(hard_pulls), "MEM": list(mem_pulls)},
            "small_set": {"n_events": 400, "reco": _estimate(13.3, 10.0, 10.0), "hard": _estimate(12.5, 6.0, 6.0)},
            "all_events": {"reco": _estimate(13.3, 4.5, 4.0), "hard": _estimate(12.5, 3.0, 3.0)},
            "median_iterations": 3.0, "converged_fraction": 0.6, "median_rel_error": 0.04}


def test_mem_pulls_are_judged_only_at_the_thesis_set_size_and_paired_with_the_hard_level(tmp_path):
    rng = np.random.default_rng(3)
    hard = rng.normal(0.0, 1.0, 20)
    mem = hard + rng.normal(0.0, 0.1, 20)  # nearly the same sets: the paired error is small
    metrics = {"label": "cinn", "samples": {
        "alpha0": _mem_sample(0.0, 100, True, mem, hard),
        "alpha90": _mem_sample(90.0, 100, True, mem, hard),
        "alpha45": _mem_sample(45.0, 10, False, mem + 0.5, hard)}}
    _write(tmp_path / "mem/leptonic/cinn/metrics.json", metrics)
    rows = mem_rows.rows(tmp_path)
    by = {(r.group.split("α = ")[1], r.quantity): r for r in rows}
    assert by[("0°", "MEM pull mean")].target.kind == "abs_at_most"
    assert by[("90°", "MEM pull mean")].target.kind == "info"      # the thesis finds 90° overconfident
    assert by[("45°", "MEM pull width")].target.kind == "info"     # 10-event overlapping sets
    paired = by[("0°", "MEM − hard-level pull mean")]
    assert paired.error == pytest.approx(np.std(mem - hard, ddof=1) / math.sqrt(20))
    assert paired.status == "pass"
    assert by[("45°", "MEM − hard-level pull mean")].status == "fail"  # shifted by 0.5 ≫ paired error
    alpha_hat = by[("0°", "reco-level α̂ of 400 events")]
    assert alpha_hat.error == pytest.approx(8.0)   # √(10² − 6²)
    assert alpha_hat.status == "pass"


# ----------------------------------------------------------------------------------------------- report

def test_report_files_and_stale_outputs(tmp_path):
    run = tmp_path / "results/test"
    summary = {"experiment": "camel", "integrand": {"name": "camel"}, "scan": None,
               "rows": [_nis_row("a", "flat", "optimal", 0.778)]}
    _write(run / "nis/camel/summary.json", summary)
    _write(run / "nis/old_camel/summary.json", summary)  # left over from an older config
    _write(run / "run_info.json", {"config": {"run": "test"}, "git_commit": "abc123", "host": "node1",
                                   "machine": {"cpu": "cpu", "cores": 2, "gpu": None}, "packages": {"torch": "2.13.0"}})
    assert len(collect(run)) == 2
    assert len(collect(run, only=[run / "nis/camel/summary.json"])) == 1
    payload = validate(run, rst_path=run / "validation/front_page.rst", front_page="Title\n=====\n",
                       only=[run / "nis/camel/summary.json"])
    assert payload["summary"] == {"pass": 1, "fail": 0, "info": 0, "missing": 0}
    assert payload["meta"]["git_commit"] == "abc123"
    saved = json.loads((run / "validation/validation.json").read_text())
    assert saved["rows"][0]["reference"] == TABLE_5_1["camel"]["optimal"].value
    html = (run / "validation/validation.html").read_text()
    assert "Table 5.1" in html and "commit abc123" in html
    rst = (run / "validation/front_page.rst").read_text()
    assert rst.startswith("Title\n=====") and ".. raw:: html" in rst


def test_markdown_table_of_the_cli_has_one_line_per_row(tmp_path, capsys):
    run = tmp_path / "results/test"
    _write(run / "nis/camel/summary.json", {"experiment": "camel", "integrand": {"name": "camel"}, "scan": None,
                                            "rows": [_nis_row("a", "flat", "optimal", 0.778),
                                                     _nis_row("b", "flat", "optimal", 5.0)]})
    assert main([str(run), "--markdown", str(tmp_path / "table.md")]) == 0
    text = (tmp_path / "table.md").read_text()
    body = [line for line in text.splitlines() if line.startswith("| ") and "Table 5.1" in line]
    assert len(body) == 2
    assert sum("**fail**" in line for line in body) == 1 and sum("| pass |" in line for line in body) == 1
    assert f"{TABLE_5_1['camel']['optimal'].value:g}" in body[0]
    assert "1 pass, 1 fail" in capsys.readouterr().out


def test_cli_names_a_missing_directory_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


# ----------------------------------------------------------------------------------------------- tHj

def test_fiducial_shape_ratios_against_sigma_alpha_and_their_error_against_toys(tmp_path):
    """(A + 2B)/A must be σ_fid(180°)/σ_fid(0°) evaluated from the σ_i with Eq 6.33 (another route than the
    A–E of Eq 6.3), and its delta-method error must match the spread of ratios of Gaussian toys of σ_i."""
    import torch

    from lhcflow.thj.matrix_element import combine
    from lhcflow.validation import thj as thj_rows

    sigma_i = np.array([4.0e-7, 1.0e-9, -2.0e-6, 2.0e-10, 2.4e-6])
    cov = np.diag((0.02 * np.abs(sigma_i) + 1e-9) ** 2)
    record = {"dataset": "leptonic", "sigma_i_pb": sigma_i.tolist(), "covariance_pb2": cov.tolist(),
              "thesis_comparison": []}
    _write(tmp_path / "thj/fiducial/leptonic.json", record)
    rows = {r.quantity: r for r in thj_rows.rows(tmp_path)}
    ratio = rows["α-shape of σ_fid: σ_fid(180°)/σ_fid(0°) = (A + 2B)/A"]
    direct = (combine(torch.tensor(sigma_i), math.pi) / combine(torch.tensor(sigma_i), 0.0)).item()
    assert ratio.value == pytest.approx(direct, rel=1e-12)
    toys = np.random.default_rng(0).multivariate_normal(sigma_i, cov, 20_000)
    t = torch.tensor(toys)
    spread = (combine(t, math.pi) / combine(t, 0.0)).std().item()
    assert ratio.error == pytest.approx(spread, rel=0.05)


def test_transfer_leak_rows_allow_only_what_a_zero_count_cannot_exclude(tmp_path):
    leak = {"events": 600, "any": 0.0, "objects": {"a1": {"any": 0.0, "pt": 0.0, "eta": 0.0}}}
    bad = {"events": 600, "any": 0.05, "objects": {"a1": {"any": 0.05, "pt": 0.05, "eta": 0.0}}}
    _write(tmp_path / "mem/leptonic/cinn/transfer_metrics.json",
           {"outside_selection": {"alpha0": leak, "alpha45": bad}, "events": {}})
    rows = mem_rows.rows(tmp_path)
    assert [r.status for r in rows] == ["pass", "fail"]
    assert rows[0].target.limit == pytest.approx(3 / 600)


# ----------------------------------------------------------------------------------------------- Z+jets

def test_zjets_fraction_rows_carry_the_training_error_and_the_closure_is_reported(tmp_path):
    """Normalised per multiplicity (a ``magic_closure`` in the metrics) the generated fraction is the
    training one, so its error is the training sample's alone; the closure rows give the mean magic
    weight per multiplicity against 1 with no verdict (the thesis quotes none). Without the magic
    transformation the generated fraction is a sample of its own and its error counts."""
    from lhcflow.validation import zjets as zjets_rows

    def part(fraction, error):
        return {"events": 1000, "weight": 1000.0, "mean_weight": 1.0, "fraction": fraction, "error": error}

    weights = {"generated": {"1": part(0.74, 0.004), "2": part(0.19, 0.003), "3": part(0.07, 0.002)},
               "truth": {"1": part(0.745, 0.0015), "2": part(0.1935, 0.0014), "3": part(0.0617, 0.0008)},
               "train": {"1": part(0.74, 0.0015), "2": part(0.19, 0.0014), "3": part(0.07, 0.0009)}}
    closure = {"1": {"events": 700, "mean": 1.0, "error": 0.0}, "2": {"events": 200, "mean": 1.02, "error": 0.01},
               "3": {"events": 70, "mean": 1.12, "error": 0.02}}
    for model, magic_closure in (("inn", closure), ("cfm", None)):
        _write(tmp_path / f"zjets/{model}/metrics.json",
               {"bulk_deviation": {}, "multiplicity_weights": weights, "magic_closure": magic_closure,
                "n_generated": 1000, "n_truth": 1000, "n_train": 1000})
    rows = {(r.group, r.quantity): r for r in zjets_rows.rows(tmp_path)}
    three = rows[("inn", "weighted fraction of Z + 3 jets")]
    assert three.error == pytest.approx(0.0009)
    assert three.status == "fail"  # |0.07 − 0.0617| > 3 √(0.0009² + 0.0008²)
    assert rows[("cfm", "weighted fraction of Z + 3 jets")].error == pytest.approx(math.hypot(0.002, 0.0009))
    c3 = rows[("inn", "magic-weight closure ⟨⟨f⟩_n f̄⟩, Z + 3 jets")]
    assert (c3.value, c3.error, c3.reference, c3.status) == (1.12, 0.02, 1.0, "info")
    assert not any("closure" in q and g == "inn" and "Z + 1 " in q for g, q in rows)
    assert not any("closure" in q for g, q in rows if g == "cfm")


def test_mem_sets_at_the_cp_mirror_are_counted_and_left_out_of_the_judged_pulls(tmp_path):
    """One of 20 MEM sets at α = 45° has its α̂ at −45° (pull −17): the judged width is that of the other
    19 sets, the mirror count is a row beside the hard level's, the paired MEM − hard rows skip that set,
    and the reco-vs-hard α̂ row takes its error from the spread of the per-set α̂ differences."""
    rng = np.random.default_rng(4)
    hard = rng.normal(0.0, 1.0, 20)
    mem = hard + rng.normal(0.0, 0.2, 20)
    mem[7] = -17.2
    sample = _mem_sample(45.0, 100, True, mem, hard)
    sigma = np.full(20, 5.0)
    sample["set_alpha_hat_deg"] = {"hard scattering": list(45 + 5 * hard), "MEM": list(45 + 5 * mem)}
    sample["set_alpha_hat_deg"]["MEM"][7] = -41.0
    sample["set_sigma_deg"] = {"hard scattering": list(sigma), "MEM": list(sigma)}
    flipped = np.zeros(20, bool)
    flipped[7] = True
    sample["set_at_mirror"] = {"hard scattering": [False] * 20, "MEM": flipped.tolist()}
    keep = ~flipped
    sample["pulls_true_mode"] = {
        "hard scattering": sample["pulls"]["hard scattering"],
        "MEM (cinn)": {"n": 19, "n_nonfinite": 0, "mean": mem[keep].mean(),
                       "mean_error": mem[keep].std(ddof=1) / math.sqrt(19), "width": mem[keep].std(ddof=1),
                       "width_error": mem[keep].std(ddof=1) / math.sqrt(36)}}
    _write(tmp_path / "mem/leptonic/cinn/metrics.json", {"label": "cinn", "samples": {"alpha45": sample}})
    by = {r.quantity: r for r in mem_rows.rows(tmp_path)}
    assert by["MEM pull width"].value == pytest.approx(mem[keep].std(ddof=1))
    assert by["MEM pull width"].status == "pass" and "1 of 20 sets" in by["MEM pull width"].note
    count = by["sets with α̂ at the CP mirror −α"]
    assert (count.value, count.reference, count.status) == (1, 0, "info")
    paired = by["MEM − hard-level pull width"]
    assert paired.value == pytest.approx(np.std(mem[keep], ddof=1) - np.std(hard[keep], ddof=1))
    alpha_hat = by["reco-level α̂ of 400 events"]
    assert alpha_hat.error == pytest.approx(5 * np.std(mem[keep] - hard[keep], ddof=1) * math.sqrt(100 / 400))
