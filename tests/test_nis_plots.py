"""Figures of the neural-importance-sampling chain (lhcflow.plots.nis, thesis Figs 5.5-5.12)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.baselines import FlatIntegrator
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.nis.toys import toy_integrand
from lhcflow.plots.nis import (
    drell_yan_observables,
    plot_channel_maps,
    plot_channel_observables,
    plot_channel_weights_1d,
    plot_results,
    plot_scan,
    plot_variance_history,
    plot_weight_distributions,
)

TINY = {"batch_size": 256, "units": 8, "layers": 2, "bins": 8, "lr": 3e-3, "cwnet_units": 8}
NAN = float("nan")


# --------------------------------------------------------------------------- fake summaries

def _stat(mean, std=NAN, n=3):
    return {"mean": mean, "std": std, "min": mean, "max": mean, "n": n}


def _row(variant, label, integral, rel_error, scan_value=None, n_seeds=3, std=0.01):
    s = std if n_seeds > 1 else NAN
    return {"variant": variant, "method": variant.split("_")[0], "label": label, "scan_value": scan_value,
            "n_seeds": n_seeds,
            "metrics": {"integral": _stat(integral, s * integral, n_seeds),
                        "error": _stat(rel_error * integral, s), "rel_error": _stat(rel_error, s * rel_error),
                        "rel_std": _stat(100 * rel_error, s),
                        "unweighting_efficiency": _stat(0.3, s),
                        "pull": _stat(0.5, 1.0 if n_seeds > 1 else NAN),
                        "n_calls_train": _stat(1e5, 0.0), "time_train": _stat(2.0, s)}}


def results_summary():
    return {
        "experiment": "camel", "integrand": {"name": "camel"}, "exact": 1.0, "unit": "",
        "scan": None,
        "rows": [_row("flat", "flat MC", 1.01, 0.02), _row("vegas", "VEGAS", 1.0, 0.008),
                 _row("madnis", "MadNIS", 0.999, 0.007, n_seeds=1)],
        "histories": {
            "madnis": [{"variance": [[0, 1.0], [10, 0.5], [20, 0.2]],
                        "spread": [[0, 0.5, 2.0], [10, 0.2, 0.8], [20, 0.1, 0.3]]},
                       {"variance": [[0, 3.0], [10, 1.5], [20, 0.4]],
                        "spread": [[0, 1.5, 4.0], [10, 1.0, 2.0], [20, 0.3, 0.6]]}],
            "vegas": [{"variance": [[1, 0.3], [2, 0.2]], "spread": []}],
            "flat": [],
        },
        "weights": {"vegas|": [[1e-3, 1e-2, 1e-1, 1, 10], [0, 5, 50, 40]],
                    "madnis|": [[1e-3, 1e-2, 1e-1, 1, 10], [1, 4, 80, 15]]},
    }


def scan_summary():
    values = [1, 2, 3, 5]
    rows = []
    for v in values:
        rows.append(_row("madnis_r", "MadNIS", 100.0 * (1 + 0.01 * (v - 1)), 1e-3 * v, scan_value=v))
        rows.append(_row("vegas", "VEGAS", 50.0, 2e-3, scan_value=v, n_seeds=1))
    return {"experiment": "drell_yan_buffer", "integrand": {"name": "drell_yan_zprime"}, "exact": None,
            "unit": "pb",
            "scan": {"parameter": "replay_factor", "values": values, "label": "$R$", "log": False},
            "rows": rows, "histories": {},
            "weights": {f"madnis_r|{v}": [list(np.geomspace(1e-4, 1e2, 13)), list(range(12))]
                        for v in values}}


def _nonempty(path):
    return path.exists() and path.stat().st_size > 1000


# --------------------------------------------------------------------------- summary figures

def test_plot_results_with_pull_and_single_seed(tmp_path):
    out = plot_results(results_summary(), tmp_path / "results.png")
    assert _nonempty(tmp_path / "results.png")
    assert out["labels"] == ["flat MC", "VEGAS", "MadNIS"]
    np.testing.assert_allclose(out["rel_std"]["mean"], [2.0, 0.8, 0.7])
    assert math.isnan(out["rel_std"]["std"][2])  # single seed
    np.testing.assert_allclose(out["pull"]["mean"], 0.5)

    # no exact: no pull panel; missing pull metric: computed from integral and error
    summary = results_summary()
    summary["exact"] = None
    assert "pull" not in plot_results(summary, tmp_path / "no_exact.pdf", metrics=("rel_error",))
    summary = results_summary()
    del summary["rows"][0]["metrics"]["pull"]
    out = plot_results(summary, tmp_path / "computed_pull.png")
    assert out["pull"]["mean"][0] == pytest.approx(0.01 / (0.02 * 1.01))


def test_plot_results_uses_first_scan_value_without_plain_rows(tmp_path):
    out = plot_results(scan_summary(), tmp_path / "scan_results.png")
    assert out["labels"] == ["MadNIS", "VEGAS"]
    np.testing.assert_allclose(out["rel_std"]["mean"], [0.1, 0.2])
    # an empty summary still gives a figure
    empty = {"experiment": "none", "exact": None, "rows": []}
    assert plot_results(empty, tmp_path / "empty.png")["labels"] == []
    assert _nonempty(tmp_path / "empty.png")


def test_plot_variance_history_means_over_seeds(tmp_path):
    out = plot_variance_history(results_summary(), tmp_path / "variance.png")
    assert _nonempty(tmp_path / "variance.png")
    assert set(out) == {"madnis", "vegas"}  # "flat" has no history
    np.testing.assert_allclose(out["madnis"]["steps"], [0, 10, 20])
    np.testing.assert_allclose(out["madnis"]["mean"], [2.0, 1.0, 0.3])
    np.testing.assert_allclose(out["madnis"]["q05"], [1.0, 0.6, 0.2])
    np.testing.assert_allclose(out["madnis"]["q95"], [3.0, 1.4, 0.45])
    assert "q05" not in out["vegas"]
    empty = results_summary()
    empty["histories"] = {"madnis": [], "vegas": [{"variance": [], "spread": []}]}
    assert plot_variance_history(empty, tmp_path / "variance_empty.png") == {}
    assert _nonempty(tmp_path / "variance_empty.png")


def test_plot_scan_metric_and_deviation_from_first_value(tmp_path):
    summary = scan_summary()
    summary["rows"] = summary["rows"][::-1]  # order of the rows must not matter
    out = plot_scan(summary, tmp_path / "scan.png")
    assert _nonempty(tmp_path / "scan.png")
    np.testing.assert_allclose(out["madnis_r"]["values"], [1, 2, 3, 5])
    np.testing.assert_allclose(out["madnis_r"]["mean"], [1e-3, 2e-3, 3e-3, 5e-3])
    np.testing.assert_allclose(out["madnis_r"]["deviation"], [0.0, 0.01, 0.02, 0.04], atol=1e-12)
    np.testing.assert_allclose(out["madnis_r"]["deviation_std"], 0.01 * np.array([1.0, 1.01, 1.02, 1.04]))
    assert np.all(np.isnan(out["vegas"]["deviation_std"]))  # single seed
    # log-x width scan, metric panel only
    width = scan_summary()
    width["scan"] = {"parameter": "zprime_width", "values": [5e-4, 5e-3, 0.5],
                     "label": r"$\Gamma_{Z'}$ [GeV]", "log": True}
    width["rows"] = [_row("three", "3 channels", 10.0, 1e-3, scan_value=v) for v in (0.5, 5e-3, 5e-4)]
    out = plot_scan(width, tmp_path / "width.png", metric="rel_std", deviation=False)
    np.testing.assert_allclose(out["three"]["values"], [5e-4, 5e-3, 0.5])
    # no scan at all: an empty frame
    assert plot_scan(results_summary(), tmp_path / "noscan.png") == {}
    assert _nonempty(tmp_path / "noscan.png")


def test_plot_weight_distributions(tmp_path):
    out = plot_weight_distributions(results_summary(), tmp_path / "weights.png")
    assert _nonempty(tmp_path / "weights.png")
    assert list(out) == ["vegas|", "madnis|"]  # row order of the variants
    for entry in out.values():
        assert entry["fraction"].sum() == pytest.approx(1.0)
    out = plot_weight_distributions(scan_summary(), tmp_path / "weights_scan.png")
    assert list(out) == [f"madnis_r|{v}" for v in (1, 2, 3, 5)]
    assert plot_weight_distributions({"experiment": "x", "rows": []}, tmp_path / "weights_empty.png") == {}
    assert _nonempty(tmp_path / "weights_empty.png")


# --------------------------------------------------------------------------- integrator diagnostics

def test_channel_weights_1d_untrained_cwnet_equals_prior(tmp_path):
    for prior in ("optimal", "uniform"):
        camel = toy_integrand("camel", prior=prior)
        untrained = MadnisIntegrator(camel, {**TINY, "train_flow": False, "steps": 20}, seed=0)
        trained = MadnisIntegrator(camel, {**TINY, "train_flow": False, "steps": 20}, seed=1)
        trained.train(progress=False)
        path = tmp_path / f"camel_{prior}.png"
        out = plot_channel_weights_1d([untrained, trained], camel, path, (-1.0, 8.0))
        assert _nonempty(path)
        assert out["learned"].shape == (2, 400, 2) and out["prior"].shape == (400, 2)
        np.testing.assert_allclose(out["learned"][0], out["prior"], atol=1e-12)  # zero-initialised Δ
        assert np.abs(out["learned"][1] - out["prior"]).max() > 1e-4  # training moved α
        np.testing.assert_allclose(out["learned"].sum(axis=2), 1.0, atol=1e-12)
        assert np.trapezoid(out["f"], out["x"]) == pytest.approx(1.0, abs=1e-3)
        for g in out["g"]:  # Cauchy densities: ∫ over [-1, 8] < 1
            assert 0.8 < np.trapezoid(g, out["x"]) < 1.0
    # a flat integrator has no learned weights: the prior is drawn
    out = plot_channel_weights_1d(FlatIntegrator(camel), camel, tmp_path / "camel_flat.pdf", (0.0, 7.0),
                                  n_points=50)
    np.testing.assert_allclose(out["learned"][0], out["prior"])


def test_channel_maps_crossed_ring(tmp_path):
    ring = toy_integrand("crossed_ring", channels="ring_line")
    madnis = MadnisIntegrator(ring, {**TINY, "steps": 20}, seed=0)
    madnis.train(progress=False)
    out = plot_channel_maps(madnis, ring, tmp_path / "ring_madnis.png", n=20_000, bins=40)
    assert _nonempty(tmp_path / "ring_madnis.png")
    area = (3.0 / 40) ** 2
    assert out["channels"].shape == (2, 40, 40) and sum(out["channel_counts"]) == 20_000
    fractions = out["channels"].sum(axis=(1, 2)) * area  # share of each channel's points in the frame
    assert 0.3 < fractions[0] <= 1.0 + 1e-9  # ring channel: mostly on the ring
    assert 0.0 < fractions[1] < fractions[0]  # line channel: a wide Cauchy along the diagonal
    assert 0.3 < out["combined"].sum() * area <= 1.0 + 1e-9
    a = out["alpha0"][np.isfinite(out["alpha0"])]
    assert a.size and np.all((a >= 0) & (a <= 1))

    # flat integrator, uniform prior: α_1 = 1/2 in every filled bin; the weighted density is the
    # crossed ring: high on the ring, empty inside it away from the diagonal line
    flat = plot_channel_maps(FlatIntegrator(ring), ring, tmp_path / "ring_flat.png", n=20_000, bins=30)
    a = flat["alpha0"][np.isfinite(flat["alpha0"])]
    np.testing.assert_allclose(a, 0.5)
    centres = 0.5 * (flat["edges"][1:] + flat["edges"][:-1])
    c1, c2 = np.meshgrid(centres, centres, indexing="ij")
    r = np.hypot(c1, c2)
    inside_off_line = (r < 0.6) & (np.abs(c1 + c2) > 0.4)
    assert flat["combined"][np.abs(r - 1) < 0.1].mean() > 20 * flat["combined"][inside_off_line].mean()

    single = toy_integrand("crossed_ring", channels="flat")
    out = plot_channel_maps(FlatIntegrator(single), single, tmp_path / "ring_single.png", n=5_000, bins=20)
    assert out["alpha0"] is None and out["channels"].shape == (1, 20, 20)


@pytest.fixture(scope="module")
def drell_yan():
    integrand = drell_yan_integrand()
    madnis = MadnisIntegrator(integrand, {**TINY, "steps": 20}, seed=0)
    madnis.train(progress=False)
    return integrand, madnis


def test_drell_yan_observables(drell_yan):
    integrand, _ = drell_yan
    x = torch.tensor([[0.01, 0.02, 0.3, 1.0], [0.05, 0.004, -0.7, -2.0]], dtype=torch.float64)
    obs = {name: fn for name, fn, _, _ in drell_yan_observables(integrand)}
    m = torch.sqrt(x[:, 0] * x[:, 1]).numpy() * 13000.0
    np.testing.assert_allclose(obs["m_ee"](x).numpy(), m, rtol=1e-10)
    pt = 0.5 * m * np.sqrt(1 - x[:, 2].numpy() ** 2)
    np.testing.assert_allclose(obs["pt_e"](x).numpy(), pt, rtol=1e-10)


def test_channel_observables_drell_yan(tmp_path, drell_yan):
    integrand, madnis = drell_yan
    observables = drell_yan_observables(integrand)
    out = plot_channel_observables(madnis, integrand, observables, tmp_path / "dy.png", n=20_000)
    assert _nonempty(tmp_path / "dy.png")
    assert set(out) == {"pt_e", "m_ee"}
    for entry in out.values():
        filled = entry["total"] > 0
        assert entry["stacked"].shape == (3, len(entry["edges"]) - 1)
        np.testing.assert_allclose(entry["alpha"][:, filled].sum(axis=0), 1.0, rtol=1e-6)
        np.testing.assert_allclose(entry["prior"][:, filled].sum(axis=0), 1.0, rtol=1e-6)
    # weighted stacking reproduces the total exactly; the Z channel dominates near M_Z
    weighted = plot_channel_observables(madnis, integrand, observables[1:], tmp_path / "dy_w.pdf", n=20_000,
                                        stack="weighted", channel_names=["a", "b", "c"])
    m = weighted["m_ee"]
    # np.histogram with non-uniform edges differences cumulative weight sums: absolute round-off ~ eps·Σw per bin
    np.testing.assert_allclose(m["stacked"].sum(axis=0), m["total"], rtol=1e-9, atol=1e-12 * m["total"].sum())
    z_bin = np.searchsorted(m["edges"], 91.2) - 1
    assert m["prior"][1, z_bin] > 0.5
    with pytest.raises(ValueError):
        plot_channel_observables(madnis, integrand, observables, tmp_path / "bad.png", n=100, stack="nope")


def test_summary_is_not_modified(tmp_path):
    summary = results_summary()
    before = copy.deepcopy(summary)
    plot_results(summary, tmp_path / "a.png")
    plot_variance_history(summary, tmp_path / "b.png")
    plot_weight_distributions(summary, tmp_path / "c.png")
    assert repr(summary) == repr(before)
