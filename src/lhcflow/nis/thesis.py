"""The thesis' published importance-sampling numbers (Ch. 5), each with where it is printed.

T. Heimel, *The Flow of LHC Events* (Heidelberg 2024): Tables 5.1 and 5.2 and the Drell-Yan cross
section of §5.2.3, transcribed as printed; a ``±`` is what the thesis quotes (for Tables 5.1 and 5.2 the
standard deviation over ten runs, not the error of the mean).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    value: float
    error: float | None
    source: str
    unit: str = ""


# Table 5.1: relative error [%] of the camel-back integrals from 10^4 events, mean ± std of ten runs.
# Rows by channel-weight choice (Eq 5.27 "optimal"; "nn_*": trained weights from a flat / optimal prior).
TABLE_5_1 = {
    "camel": {
        "uniform": Published(2.553, 0.017, "Table 5.1", "%"),
        "optimal": Published(0.769, 0.006, "Table 5.1", "%"),
        "nn_flat_prior": Published(0.770, 0.005, "Table 5.1", "%"),
        "nn_optimal_prior": Published(0.767, 0.006, "Table 5.1", "%"),
    },
    "cut_camel": {
        "uniform": Published(3.412, 0.048, "Table 5.1", "%"),
        "optimal": Published(1.031, 0.006, "Table 5.1", "%"),
        "nn_flat_prior": Published(1.032, 0.017, "Table 5.1", "%"),
        "nn_optimal_prior": Published(1.030, 0.009, "Table 5.1", "%"),
    },
}

# Table 5.2: relative error [%] of the crossed ring (Eq 5.29) from 10^4 events, MadNIS with affine
# coupling blocks (Tab A.4), by the analytic mappings of the channels; mean ± std of ten trainings.
TABLE_5_2 = {
    ("flat",): Published(1.17, 0.13, "Table 5.2", "%"),
    ("flat", "flat"): Published(0.71, 0.15, "Table 5.2", "%"),
    ("flat", "flat", "flat"): Published(0.50, 0.15, "Table 5.2", "%"),
    ("ring", "flat"): Published(0.30, 0.11, "Table 5.2", "%"),
    ("ring", "line"): Published(0.14, 0.06, "Table 5.2", "%"),
    ("ring", "line", "flat"): Published(0.29, 0.14, "Table 5.2", "%"),
}

# §5.2.3: pp -> γ/Z/Z' -> e+e-, m_ee > 15 GeV, 13 TeV, MG5aMC (NNPDF4.0 LO).
DRELL_YAN_SIGMA_PB = Published(4349.7, 0.32, "§5.2.3", "pb")
