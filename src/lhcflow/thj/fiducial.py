"""Fiducial tHj cross section σ_fid(α) after decays and the Table 6.1 cuts, and its Eq 6.3 fit (Fig 6.2).

Every paired event carries the factorised g_i of its own subprocess (``g_event``), so a sample
generated at α_e reweights exactly to any α: an event contributes

    t_i = BR · w · accepted · g_i / Σ_k f_k(α_e) g_k · [σ(α_e) / σ_sample  for α-uniform samples]

and σ_fid(α) = Σ_i f_i(α) Σ_events t_i (Eq 6.33). One α-uniform training sample therefore gives the
whole curve and the parameters A–E of Eq 6.3 exactly; the fit over the thesis' nine angles is
reported as well, and the fixed-α test samples give independent points. The cut flow of Table 6.1
at α = 0 comes from the same reweighting (fractions of σ × BR after each cut, rates in ab). All
shards must come from hard events of one ``heavy`` choice, which the record states.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lhcflow.thj import hard, heavy, thesis
from lhcflow.thj.matrix_element import cp_factors
from lhcflow.thj.files import open_hard_file, read_paired_file

PB_TO_AB = 1e6


FIDUCIAL_FIELDS = ("alpha", "g_event", "weight", "accepted", "cuts_passed")


def read_paired(paired_paths: Sequence[str | Path], hard_paths: Sequence[str | Path]) -> dict[str, Any]:
    """α, g_event, weight, accepted, cuts_passed of paired shards, weights rescaled to the whole sample.

    Shard weights are σ/N_shard; each shard's weight is scaled by N_shard/N_total (N from ``hard.h5``,
    so hard events Pythia failed on still count in the denominator).
    """
    if len(paired_paths) != len(hard_paths):
        raise ValueError("one hard.h5 per paired shard is needed")
    sizes, parts, attrs, choices = [], [], {}, {}
    for paired, hard_path in zip(paired_paths, hard_paths):
        with open_hard_file(hard_path, fields=("alpha",), attrs=("heavy",)) as f:
            sizes.append(len(f))
            attrs.setdefault("hard", f.attrs)
            choices[str(hard_path)] = f.attrs["heavy"]
        part, paired_attrs = read_paired_file(paired, FIDUCIAL_FIELDS, ("branching_ratio", "cut_flow_steps"))
        parts.append(part)
        attrs.setdefault("paired", paired_attrs)
    total = sum(sizes)
    for part, size in zip(parts, sizes):
        part["weight"] = part["weight"] * size / total
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    data["attrs"] = attrs
    data["heavy"] = heavy.require_same(choices)
    return data


def event_terms(data: Mapping[str, Any], mask: np.ndarray | None = None) -> np.ndarray:
    """Per-event contributions t_i (N, 5) in pb to the σ_i of the selected events (``mask``; default: accepted)."""
    terms = hard.reweighting_terms(data["g_event"], data["alpha"], data["attrs"]["hard"])
    selected = data["accepted"].astype(bool) if mask is None else mask
    weight = float(data["attrs"]["paired"]["branching_ratio"]) * data["weight"] * selected
    return terms * weight[:, None]


def fiducial_cross_sections(data: Mapping[str, Any], mask: np.ndarray | None = None) -> hard.FactorizedCrossSection:
    """Σ_i of the fiducial σ (with BR) and their covariance, from per-event terms."""
    terms = event_terms(data, mask)
    n = len(terms)
    return hard.FactorizedCrossSection(terms.sum(0), np.cov(terms, rowvar=False) * n, n)


def cut_flow(data: Mapping[str, Any], alpha_rad: float = 0.0) -> dict[str, Any]:
    """Table 6.1 at α: σ, σ × BR, and after each cut the rate in ab and the fraction of σ × BR, with errors.

    Per-event contributions c at α; the error of a rate Σ c·pass is √(N var(c·pass)), that of a fraction
    F = Σ c·pass / Σ c is √(N var(c (pass − F))) / Σ c (the two sums are correlated).
    """
    steps = data["attrs"]["paired"]["cut_flow_steps"]
    contrib = event_terms(data, np.ones(len(data["alpha"]), dtype=bool)) @ cp_factors(float(alpha_rad)).numpy()
    n, total = len(contrib), float(contrib.sum())
    br = float(data["attrs"]["paired"]["branching_ratio"])

    def spread(values: np.ndarray) -> float:
        return float(np.sqrt(n * np.var(values, ddof=1))) if n > 1 else math.nan

    error = spread(contrib)
    rows = [{"name": "sigma", "rate_ab": total / br * PB_TO_AB, "rate_err_ab": error / br * PB_TO_AB},
            {"name": "sigma_x_br", "rate_ab": total * PB_TO_AB, "rate_err_ab": error * PB_TO_AB}]
    for k, name in enumerate(steps, start=1):
        passed = data["cuts_passed"] >= k
        value = float(contrib[passed].sum())
        fraction = value / total
        rows.append({"name": name, "events": int(passed.sum()), "fraction": fraction,
                     "fraction_err": spread(contrib * (passed - fraction)) / abs(total),
                     "rate_ab": value * PB_TO_AB, "rate_err_ab": spread(contrib * passed) * PB_TO_AB})
    return {"alpha_deg": float(np.degrees(alpha_rad)), "branching_ratio": br, "steps": rows}


def run_fiducial(dataset: str, train: tuple[Sequence[str], Sequence[str]],
                 tests: Mapping[str, tuple[float, Sequence[str], Sequence[str]]],
                 fit_angles_deg: Sequence[float], cross_sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """σ_fid(α) from the training sample, the Eq 6.3 fit, test-sample checks, the α = 0 cut flow, and for a
    thesis dataset the comparison with Tables 6.1 and 6.2 (:func:`lhcflow.thj.thesis.compare`; with the
    ``cross_sections`` record also σ(0°) of t and t + t̄ against §6.1)."""
    data = read_paired(*train)
    tests_data = {name: (alpha_deg, read_paired(paired, hard_paths))
                  for name, (alpha_deg, paired, hard_paths) in tests.items()}
    choice = heavy.require_same({"training sample": data["heavy"],
                                 **{f"test sample {name}": d["heavy"] for name, (_, d) in tests_data.items()},
                                 "cross sections": (cross_sections or {}).get("heavy")})
    sigma = fiducial_cross_sections(data)
    angles = np.radians(np.asarray(fit_angles_deg, dtype=float))
    values, errors = sigma.at(angles)
    record = {"dataset": dataset, "heavy": choice, **sigma.to_dict(),
              "fit_angles_deg": list(fit_angles_deg), "sigma_alpha_pb": values.tolist(),
              "sigma_alpha_err_pb": errors.tolist(), "fit": hard.fit_cp_parameters(angles, values, errors),
              "cut_flow_alpha0": cut_flow(data, 0.0), "n_events": len(data["alpha"]),
              "acceptance": float(data["accepted"].mean())}
    checks = {}
    for name, (alpha_deg, test) in tests_data.items():
        own = fiducial_cross_sections(test)
        value, error = own.at(np.radians(alpha_deg))
        predicted, predicted_error = sigma.at(np.radians(alpha_deg))
        checks[name] = {"alpha_deg": alpha_deg, "sigma_pb": float(value[0]), "error_pb": float(error[0]),
                        "predicted_pb": float(predicted[0]), "predicted_error_pb": float(predicted_error[0]),
                        "pull": float((value[0] - predicted[0]) / np.hypot(error[0], predicted_error[0]))}
    record["test_samples"] = checks
    if dataset in thesis.DATASETS:
        record["thesis_comparison"] = [row.to_dict() for row in thesis.compare(record, cross_sections)]
    return record
