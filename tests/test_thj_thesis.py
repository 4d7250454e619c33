"""The thesis' tHj tables (lhcflow.thj.thesis): transcription, the normalisation they imply, the comparison rows."""

from __future__ import annotations

import numpy as np
import pytest

from lhcflow.thj import hard, thesis


@pytest.mark.parametrize("dataset", sorted(thesis.TABLE_6_1))
def test_table_6_1_fractions_are_its_rates_over_sigma_x_br(dataset):
    """Transcription check: each printed fraction is the printed rate / σ × BR, up to the printed rounding
    (fractions to 1e-3, rates to 1e-2 ab)."""
    table = thesis.table_6_1(dataset)
    assert table["reference_source"] == "Table 6.1"
    for name, rate, fraction in table["steps"]:
        tolerance = 0.5e-3 + 0.5e-2 / table["sigma_x_br_ab"]
        assert abs(rate / table["sigma_x_br_ab"] - fraction) <= tolerance, name


@pytest.mark.parametrize("dataset", sorted(thesis.TABLE_6_2))
def test_table_6_2_a_is_the_fiducial_rate_of_table_6_1(dataset):
    """A = σ_fid(α = 0) (Eq 6.3): Table 6.2's A [fb] equals Table 6.1's last rate [ab] up to rounding."""
    a_ab = thesis.table_6_2(dataset)["A"] * 1e3
    assert abs(a_ab - thesis.TABLE_6_1[dataset]["steps"][-1][1]) <= 0.5e-2 + 0.5e-2 * a_ab


def test_table_6_1_implies_one_top_share_for_both_decays():
    """σ × BR / (43.6 fb · BR(H → γγ) · BR_LO(W)) is the same 0.671 for the leptonic and both hadronic
    datasets (rounding of 7.38 ab, 44.28 ab and 43.6 fb: < 0.2 %): σ is t + t̄, the datasets are top only."""
    shares = [t["sigma_x_br_ab"] / (t["sigma_ab"] * thesis.BR_H_GAMMA_GAMMA * thesis.BR_W_LO[thesis.DATASETS[d][1]])
              for d, t in thesis.TABLE_6_1.items()]
    assert np.ptp(shares) < 0.002 and shares[0] == pytest.approx(0.671, abs=0.001)


def _record(dataset="leptonic", seed=0):
    rng = np.random.default_rng(seed)
    steps = [{"name": "sigma", "rate_ab": 4.1e4, "rate_err_ab": 100.0},
             {"name": "sigma_x_br", "rate_ab": 10.0, "rate_err_ab": 0.1}]
    steps += [{"name": name, "events": 10, "fraction": fraction * 1.1, "fraction_err": 0.01, "rate_ab": rate * 1.3,
               "rate_err_ab": 0.02} for name, rate, fraction in thesis.TABLE_6_1[dataset]["steps"]]
    root = rng.normal(size=(5, 5)) * 1e-8
    return {"dataset": dataset, "heavy": "top", "sigma_i_pb": (rng.normal(size=5) * 1e-6).tolist(),
            "covariance_pb2": (root @ root.T).tolist(),
            "cut_flow_alpha0": {"branching_ratio": 2.478e-4, "steps": steps}}


def test_cp_parameter_errors_match_sampling():
    """A–E errors by linear propagation of the σ_i covariance agree with the spread of A–E of σ_i drawn
    from that covariance (20 000 draws: the sample std is within 4 × 1/√(2·20 000) = 2 % of the truth)."""
    record = _record()
    values, errors = thesis.cp_parameters_with_errors(record)
    draws = np.random.default_rng(1).multivariate_normal(record["sigma_i_pb"], record["covariance_pb2"], 20_000)
    sampled = np.array([list(hard.FactorizedCrossSection(d, np.zeros((5, 5)), 0).cp_parameters().values())
                        for d in draws])
    for k, key in enumerate(hard.CP_PARAMETERS):
        assert sampled[:, k].std() == pytest.approx(errors[key], rel=0.02)
        assert sampled[:, k].mean() == pytest.approx(values[key], abs=4 * errors[key] / np.sqrt(len(draws)))


def test_comparison_rows_carry_the_published_numbers():
    cross_sections = {"by_heavy": {"top": {"sigma_0_pb": 0.0405, "sigma_0_err_pb": 2e-4},
                                   "top_antitop": {"sigma_0_pb": 0.0600, "sigma_0_err_pb": 3e-4}},
                      "top_fraction_alpha0": 0.675, "top_fraction_alpha0_err": 0.002}
    rows = {row.name: row for row in thesis.compare(_record(), cross_sections)}
    assert rows["sigma_0_top_antitop"].value == pytest.approx(60.0) and rows["sigma_0_top"].reference == 43.6
    assert rows["sigma_0_top_antitop"].ratio == pytest.approx(60.0 / 43.6)
    assert rows["top_share_alpha0_lo_br"].reference == pytest.approx(7.38 / (43.6e3 * 2.27e-3 / 9))
    assert rows["top_share_alpha0"].reference == pytest.approx(7.38 / 43.6e3 / 2.478e-4)
    assert rows["rate_sigma_x_br"].reference == 7.38 and rows["rate_sigma"].reference == 43.6e3
    assert rows["fraction_muons"].reference == 0.310 and rows["fraction_muons"].ratio == pytest.approx(1.1)
    assert rows["rate_light_jets"].ratio == pytest.approx(1.3) and rows["rate_light_jets"].unit == "ab"
    assert rows["A"].reference == 4.07e-4 and rows["E"].reference_source == "Table 6.2" and rows["A"].unit == "fb"
    assert all(set(row.to_dict()) >= {"name", "value", "error", "reference", "reference_source", "unit", "ratio"}
               for row in rows.values())
    hadronic = {row.name for row in thesis.compare(_record("hadronic_isr"))}
    assert "fraction_muons" not in hadronic and "sigma_0_top" not in hadronic and "fraction_jets" in hadronic


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="'semileptonic' has no thesis counterpart"):
        thesis.compare({**_record(), "dataset": "semileptonic"})
