"""The thesis' published tHj numbers (Tables 6.1 and 6.2, §6.1 text) and their comparison with our records.

Source: T. Heimel, "The Flow of LHC Events" (dissertation), §6.1: Table 6.1 (cut flow for
pp → tHj, H → γγ, α = 0°), Table 6.2 (Eq 6.3 fit parameters of the fiducial cross sections) and
the sentence "We always combine top and anti-top production, resulting in a total cross section of
43.6 fb" (MG5aMC v3.1.0, LO NNPDF, α_s = 0.119). The numbers below are transcribed exactly as printed
(three significant digits); they carry no errors.

Normalisation. Eq 6.4 has a μ⁺, i.e. top production, and Table 6.1's σ × BR = 7.38 ab (leptonic)
and 44.28 ab (hadronic) are 43.6 fb × BR(H → γγ) × BR(t → b W → b X) × 0.671 with the LO W branching
ratios 1/9 and 6/9 and BR(H → γγ) = 2.27·10⁻³ in both cases: σ = 43.6 fb is read as t + t̄ while the
datasets hold top events only, a share of 0.671. :func:`compare` reports both readings of the 43.6 fb
(top only and t + t̄) next to our σ(0°) and the top share the table implies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from lhcflow.thj import hard

PB_TO_FB, PB_TO_AB = 1e3, 1e6
#: σ(0°) of §6.1, "We always combine top and anti-top production, resulting in a total cross section of 43.6 fb"
TOTAL_SIGMA_FB = 43.6
TOTAL_SIGMA_NOTE = "thesis §6.1: 43.6 fb, 'we always combine top and anti-top production', MG5aMC v3.1.0"
#: BR(H → γγ) at m_H = 125 GeV (LHC Higgs cross section working group) and LO W branching ratios (1/9 per
#: lepton flavour, 3 × 2/9 to quarks), the inputs under which Table 6.1 implies the same top share for both decays
BR_H_GAMMA_GAMMA = 2.27e-3
BR_W_LO = {"leptonic": 1.0 / 9.0, "hadronic": 6.0 / 9.0}

#: our dataset names (config/paper.yaml) → (Table 6.1/6.2 row label, W decay)
DATASETS = {"leptonic": ("leptonic", "leptonic"), "hadronic": ("hadronic, no ISR", "hadronic"),
            "hadronic_isr": ("hadronic, with ISR", "hadronic")}

#: Table 6.1: σ and σ × BR [ab], then (cut of lhcflow.thj.reco, rate [ab], fraction of σ × BR) per cut
TABLE_6_1 = {
    "leptonic": {"sigma_ab": 43.6e3, "sigma_x_br_ab": 7.38,
                 "steps": (("photons", 3.58, 0.485), ("muons", 2.29, 0.310), ("jets", 1.69, 0.230),
                           ("b_jet", 1.00, 0.136), ("light_jets", 0.41, 0.055))},
    "hadronic": {"sigma_ab": 43.6e3, "sigma_x_br_ab": 44.28,
                 "steps": (("photons", 19.56, 0.442), ("jets", 7.09, 0.160), ("b_jet", 3.93, 0.089),
                           ("light_jets", 1.23, 0.028))},
    "hadronic_isr": {"sigma_ab": 43.6e3, "sigma_x_br_ab": 44.26,
                     "steps": (("photons", 18.37, 0.415), ("jets", 12.67, 0.286), ("b_jet", 6.44, 0.146),
                               ("light_jets", 3.06, 0.069))},
}
#: Table 6.2: A–E of Eq 6.3 for the fiducial cross sections [fb]
TABLE_6_2 = {
    "leptonic": {"A": 4.07e-4, "B": 2.37e-3, "C": -1.22e-3, "D": 1.86e-6, "E": -2.90e-7},
    "hadronic": {"A": 1.23e-3, "B": 7.59e-3, "C": -3.78e-3, "D": 1.24e-5, "E": -7.96e-6},
    "hadronic_isr": {"A": 3.06e-3, "B": 2.05e-2, "C": -9.50e-3, "D": 1.90e-5, "E": -5.77e-6},
}


@dataclass(frozen=True)
class Comparison:
    """One of our numbers (± its statistical error) next to the thesis' value."""

    name: str
    value: float
    error: float
    reference: float
    reference_source: str
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.reference if self.reference else math.nan

    @property
    def ratio_error(self) -> float:
        return abs(self.error / self.reference) if self.reference else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "ratio_error": self.ratio_error}


def table_6_1(dataset: str) -> dict[str, Any]:
    """Table 6.1 of one dataset (our name), with its label and source."""
    label, _ = _dataset(dataset)
    return {"dataset": label, "reference_source": "Table 6.1", **TABLE_6_1[dataset]}


def table_6_2(dataset: str) -> dict[str, Any]:
    """Table 6.2 of one dataset (our name), A–E in fb, with its label and source."""
    label, _ = _dataset(dataset)
    return {"dataset": label, "reference_source": "Table 6.2", "unit": "fb", **TABLE_6_2[dataset]}


def _dataset(name: str) -> tuple[str, str]:
    if name not in DATASETS:
        raise ValueError(f"dataset {name!r} has no thesis counterpart; Tables 6.1/6.2 have {sorted(DATASETS)} "
                         "(pass thesis_dataset= to compare under another name)")
    return DATASETS[name]


def cp_parameters_with_errors(record: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """A–E (pb) of a record with σ_i and their covariance, exact (Eq 6.33), errors from the covariance."""
    sigma = hard.FactorizedCrossSection(np.asarray(record["sigma_i_pb"]), np.asarray(record["covariance_pb2"]), 0)
    # A–E are linear in the σ_i: the Jacobian column j is cp_parameters of the j-th unit vector
    jac = np.array([list(hard.FactorizedCrossSection(e, sigma.covariance, 0).cp_parameters().values())
                    for e in np.eye(5)]).T
    errors = np.sqrt(np.diag(jac @ sigma.covariance @ jac.T))
    return sigma.cp_parameters(), dict(zip(hard.CP_PARAMETERS, errors.tolist()))


def compare(fiducial: Mapping[str, Any], cross_sections: Mapping[str, Any] | None = None,
            thesis_dataset: str | None = None) -> list[Comparison]:
    """Our fiducial record (and, if given, the cross-section record) against Tables 6.1 and 6.2.

    Rows: σ(0°) of t and of t + t̄ against the 43.6 fb of §6.1, the top share against the one
    Table 6.1 implies, σ, σ × BR, the rate and the fraction after each cut at α = 0 (Table 6.1),
    and A–E (Table 6.2).
    """
    dataset = thesis_dataset or fiducial["dataset"]
    label, decay = _dataset(dataset)
    t61, t62 = TABLE_6_1[dataset], TABLE_6_2[dataset]
    flow = fiducial["cut_flow_alpha0"]
    rows: list[Comparison] = []
    if cross_sections is not None:
        by_heavy = cross_sections["by_heavy"]
        for heavy, reading in (("top_antitop", "as stated (t + t̄)"), ("top", "read as top only")):
            rows.append(Comparison(f"sigma_0_{heavy}", by_heavy[heavy]["sigma_0_pb"] * PB_TO_FB,
                                   by_heavy[heavy]["sigma_0_err_pb"] * PB_TO_FB, TOTAL_SIGMA_FB, "§6.1 text", "fb",
                                   f"hard σ(α = 0); thesis 43.6 fb {reading}"))
        implied = t61["sigma_x_br_ab"] / t61["sigma_ab"]
        share, share_err = cross_sections["top_fraction_alpha0"], cross_sections["top_fraction_alpha0_err"]
        rows.append(Comparison("top_share_alpha0", share, share_err, implied / flow["branching_ratio"],
                               "Table 6.1", "", f"σ_t/σ_(t+t̄) vs (σ × BR)/(σ · BR) of {label}, BR = ours "
                               f"({flow['branching_ratio']:.4g}, Pythia)"))
        rows.append(Comparison("top_share_alpha0_lo_br", share, share_err,
                               implied / (BR_H_GAMMA_GAMMA * BR_W_LO[decay]), "Table 6.1", "",
                               f"as top_share_alpha0 with BR(H→γγ) = {BR_H_GAMMA_GAMMA:g} and the LO "
                               f"BR(W) = {BR_W_LO[decay]:.4f}"))
    steps = {row["name"]: row for row in flow["steps"]}
    for name, reference in (("sigma", t61["sigma_ab"]), ("sigma_x_br", t61["sigma_x_br_ab"])):
        row = steps[name]
        rows.append(Comparison(f"rate_{name}", row["rate_ab"], row["rate_err_ab"], reference, "Table 6.1", "ab",
                               f"{label}, α = 0, heavy = {fiducial.get('heavy')}"))
    for name, rate, fraction in t61["steps"]:
        if name not in steps:
            raise ValueError(f"fiducial record of {dataset}: no cut {name!r} (cuts: {sorted(steps)})")
        row = steps[name]
        rows.append(Comparison(f"rate_{name}", row["rate_ab"], row["rate_err_ab"], rate, "Table 6.1", "ab", label))
        rows.append(Comparison(f"fraction_{name}", row["fraction"], row["fraction_err"], fraction, "Table 6.1", "",
                               f"{label}: fraction of σ × BR"))
    values, errors = cp_parameters_with_errors(fiducial)
    for key in hard.CP_PARAMETERS:
        rows.append(Comparison(key, values[key] * PB_TO_FB, errors[key] * PB_TO_FB, t62[key], "Table 6.2", "fb",
                               f"{label}: Eq 6.3 parameter of σ_fid(α)"))
    return rows
