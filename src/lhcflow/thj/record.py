"""The cross-section record of the tHj chain (``thj/cross_sections.json``): σ_i of Eq 6.33 with their
covariance for every heavy-line choice, σ(0°), σ(180°)/σ(0°) and the t share of σ(0°); and the fixed-α
integrals of the hard-event shards."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.thj.hard import FactorizedCrossSection
from lhcflow.thj.matrix_element import cp_factors


def read_cross_sections(path: str | Path) -> dict[str, Any]:
    """The record written by :func:`lhcflow.thj.stages.cross_sections_stage`."""
    return json.loads(Path(path).read_text())


def factorized_of(record: Mapping[str, Any]) -> FactorizedCrossSection:
    """The σ_i, their covariance and the integrand calls of a record."""
    return FactorizedCrossSection(np.asarray(record["sigma_i_pb"]), np.asarray(record["covariance_pb2"]),
                                  int(record["n_calls"]))


def ratio(result: FactorizedCrossSection, num_rad: float, den_rad: float) -> tuple[float, float]:
    """σ(num)/σ(den) and its error (the two are correlated through the σ_i)."""
    f = cp_factors(torch.tensor([num_rad, den_rad], dtype=torch.float64)).numpy()
    (a, b), cov = f @ result.sigma, f @ result.covariance @ f.T
    r = a / b
    return float(r), float(math.sqrt(max(cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1], 0.0)) / abs(b))


def heavy_summary(result: FactorizedCrossSection) -> dict[str, Any]:
    """σ(0°), σ(180°) with errors, σ(180°)/σ(0°) and the σ_i of one heavy choice, in pb."""
    values, errors = result.at(np.radians([0.0, 180.0]))
    r, r_err = ratio(result, math.pi, 0.0)
    return {"sigma_0_pb": float(values[0]), "sigma_0_err_pb": float(errors[0]), "sigma_180_pb": float(values[1]),
            "sigma_180_err_pb": float(errors[1]), "ratio_180_0": r, "ratio_180_0_err": r_err,
            "sigma_i_pb": result.sigma.tolist(), "covariance_pb2": result.covariance.tolist()}


def top_share(by_heavy: Mapping[str, Mapping[str, float]]) -> tuple[float, float]:
    """σ_t(0°)/σ_{t+t̄}(0°) and its error; cov(σ_t, σ_t̄) from var(σ_t + σ_t̄) = var σ_t + var σ_t̄ + 2 cov."""
    t, tbar, both = (by_heavy[k] for k in ("top", "antitop", "top_antitop"))
    share = t["sigma_0_pb"] / both["sigma_0_pb"]
    var_t, var_a, var_s = (d["sigma_0_err_pb"] ** 2 for d in (t, tbar, both))
    cov = (var_s - var_t - var_a) / 2
    var = (1 - share) ** 2 * var_t + share**2 * var_a - 2 * share * (1 - share) * cov
    return share, math.sqrt(max(var, 0.0)) / both["sigma_0_pb"]


def fixed_alpha_integrals(stats_paths: Sequence[str | Path]) -> tuple[float, float]:
    """Inverse-variance mean of the shards' own integrals σ(α) (pb) and its error."""
    stats = [json.loads(Path(p).read_text()) for p in stats_paths]
    values = np.array([s["integral"] for s in stats])
    weights = 1.0 / np.array([max(s["integral_error"], 1e-300) for s in stats]) ** 2
    return float((values * weights).sum() / weights.sum()), float(weights.sum() ** -0.5)
