"""Workflow stages of the tHj chain (thesis §6.1): each a function of config + paths, run by a thin script."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.physics.kinematics import mass, pt_eta_phi_mass
from lhcflow.thj import hard, thesis
from lhcflow.thj.cross_section import ThjCrossSection
from lhcflow.thj.heavy import DEFAULT_HEAVY, kinds
from lhcflow.thj.matrix_element import ThjParameters, cp_factors

PARAMETER_KEYS = ("mt", "mh", "mz", "alpha_inv", "gf", "w_width", "kappa_a", "kappa_b")


def cross_section_from_config(process: Mapping[str, Any], device: str | None = None) -> ThjCrossSection:
    """:class:`ThjCrossSection` from the ``thj.process`` config block."""
    params = ThjParameters(**{k: float(process[k]) for k in PARAMETER_KEYS if k in process})
    return ThjCrossSection(params=params, pdf_name=process.get("pdf", "NNPDF23_lo_as_0119_qed"),
                           scale=process.get("scale", "ht2"), fixed_scale=float(process.get("fixed_scale", 173.0)),
                           sqrt_s=float(process.get("sqrt_s", 13000.0)),
                           heavy=process.get("heavy", DEFAULT_HEAVY), device=device)


def read_cross_sections(path: str | Path) -> dict[str, Any]:
    """The record written by :func:`run_cross_sections`."""
    return json.loads(Path(path).read_text())


def _factorized(payload: Mapping[str, Any]) -> hard.FactorizedCrossSection:
    return hard.FactorizedCrossSection(np.asarray(payload["sigma_i_pb"]), np.asarray(payload["covariance_pb2"]),
                                       int(payload["n_calls"]))


def _ratio(result: hard.FactorizedCrossSection, num_rad: float, den_rad: float) -> tuple[float, float]:
    """σ(num)/σ(den) and its error (the two are correlated through the σ_i)."""
    f = cp_factors(torch.tensor([num_rad, den_rad], dtype=torch.float64)).numpy()
    (a, b), cov = f @ result.sigma, f @ result.covariance @ f.T
    r = a / b
    return float(r), float(math.sqrt(max(cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1], 0.0)) / abs(b))


def heavy_summary(result: hard.FactorizedCrossSection) -> dict[str, Any]:
    """σ(0°), σ(180°) with errors, σ(180°)/σ(0°) and the σ_i of one heavy choice, in pb."""
    values, errors = result.at(np.radians([0.0, 180.0]))
    ratio, ratio_err = _ratio(result, math.pi, 0.0)
    return {"sigma_0_pb": float(values[0]), "sigma_0_err_pb": float(errors[0]), "sigma_180_pb": float(values[1]),
            "sigma_180_err_pb": float(errors[1]), "ratio_180_0": ratio, "ratio_180_0_err": ratio_err,
            "sigma_i_pb": result.sigma.tolist(), "covariance_pb2": result.covariance.tolist()}


def top_share(by_heavy: Mapping[str, Mapping[str, float]]) -> tuple[float, float]:
    """σ_t(0°)/σ_{t+t̄}(0°) and its error; cov(σ_t, σ_t̄) from var(σ_t + σ_t̄) = var σ_t + var σ_t̄ + 2 cov."""
    t, tbar, both = (by_heavy[k] for k in ("top", "antitop", "top_antitop"))
    share = t["sigma_0_pb"] / both["sigma_0_pb"]
    var_t, var_a, var_s = (d["sigma_0_err_pb"] ** 2 for d in (t, tbar, both))
    cov = (var_s - var_t - var_a) / 2
    var = (1 - share) ** 2 * var_t + share**2 * var_a - 2 * share * (1 - share) * cov
    return share, math.sqrt(max(var, 0.0)) / both["sigma_0_pb"]


def run_cross_sections(thj: Mapping[str, Any], out_json: str | Path, seed: int, progress: bool = False) -> dict:
    """σ_i (Eq 6.33) of the ``thj.process.heavy`` choice, σ(α) at the fit angles, the Eq 6.3 parameters, and
    σ(0°), σ(180°)/σ(0°) for t, t̄ and t + t̄ whatever the choice (one sample of all eight subprocesses)."""
    choice = thj["process"].get("heavy", DEFAULT_HEAVY)
    kinds(choice)  # an unknown choice raises naming thj.process.heavy
    xs = cross_section_from_config({**thj["process"], "heavy": "top_antitop"}, thj.get("device"))
    both = hard.factorized_cross_sections(xs, int(thj["n_eval_sigma"]), thj["integrator"], seed=seed,
                                          progress=progress)
    results = {**both.parts, "top_antitop": both}
    result = results[choice]
    record: dict[str, Any] = {"heavy": choice, **result.to_dict(), **both.meta}
    angles = np.radians(thj["fit_angles_deg"])
    values, errors = result.at(angles)
    record["fit_angles_deg"] = list(thj["fit_angles_deg"])
    record["sigma_alpha_pb"], record["sigma_alpha_err_pb"] = values.tolist(), errors.tolist()
    record["fit"] = hard.fit_cp_parameters(angles, values, errors)
    summary = {name: heavy_summary(r) for name, r in results.items()}
    record.update({k: summary[choice][k] for k in ("sigma_0_pb", "sigma_0_err_pb", "ratio_180_0", "ratio_180_0_err")})
    record["by_heavy"] = summary
    record["top_fraction_alpha0"], record["top_fraction_alpha0_err"] = top_share(summary)
    record["process"] = {**thj["process"], "heavy": choice}
    record["reference"] = {"sigma_0_pb_thesis_mg5": thesis.TOTAL_SIGMA_FB * 1e-3, "note": thesis.TOTAL_SIGMA_NOTE}
    write_json(out_json, record)
    return record


def sample_alpha(name: str, samples: Mapping[str, Any]) -> float | None:
    """α in radians of a sample, None for an α-uniform sample."""
    spec = samples[name]
    return None if spec.get("alpha_deg") is None else math.radians(float(spec["alpha_deg"]))


def run_hard_sample(thj: Mapping[str, Any], sample: str, shard: int, sigma_json: str | Path,
                    out_lhe: str | Path, out_h5: str | Path, seed: int, progress: bool = False) -> dict:
    """One shard of hard events of sample ``sample`` (fixed α or α uniform), written as LHE + HDF5."""
    spec = thj["samples"][sample]
    n_total, n_shards = int(spec["n_events"]), int(spec.get("shards", 1))
    n = n_total // n_shards + (1 if shard < n_total % n_shards else 0)
    xs = cross_section_from_config(thj["process"], thj.get("device"))
    record = read_cross_sections(sigma_json)
    if record.get("heavy") != xs.heavy:
        raise ValueError(f"{sigma_json}: cross sections of heavy = {record.get('heavy')!r}, but thj.process.heavy is "
                         f"{xs.heavy!r}; rerun the thj_cross_sections stage")
    sigma_i = _factorized(record)
    events, stats = hard.generate_hard_events(xs, n, sample_alpha(sample, thj["samples"]), sigma_i, thj["integrator"],
                                              seed=seed, progress=progress)
    events.attrs.update(sample=sample, shard=int(shard), n_shards=n_shards)
    if len(events) < n:
        raise RuntimeError(f"sample {sample} shard {shard}: only {len(events)} of {n} events were generated")
    hard.write_hard_events(events, out_lhe, out_h5)
    return stats


def fixed_alpha_integrals(stats_paths: Sequence[str | Path]) -> tuple[float, float]:
    """Inverse-variance mean of the shards' own integrals σ(α) (pb) and its error."""
    stats = [json.loads(Path(p).read_text()) for p in stats_paths]
    values = np.array([s["integral"] for s in stats])
    weights = 1.0 / np.array([max(s["integral_error"], 1e-300) for s in stats]) ** 2
    return float((values * weights).sum() / weights.sum()), float(weights.sum() ** -0.5)


def read_hard_samples(paths: Sequence[str | Path]) -> hard.HardEvents:
    """Concatenate hard-event shards of one sample (weights rescaled so they sum to σ of the sample)."""
    parts = [hard.read_hard_events(p) for p in paths]
    n_total = sum(len(p) for p in parts)
    fields = {name: np.concatenate([getattr(p, name) for p in parts]) for name in hard.HARD_FIELDS}
    fields["weight"] = np.concatenate([p.weight * len(p) / n_total for p in parts])
    return hard.HardEvents(**fields, attrs=dict(parts[0].attrs))


def hard_observables(events: hard.HardEvents) -> dict[str, np.ndarray]:
    """pT, η of t, H and the light quark, m_tH and |Δη(t, j)| (Fig 6.3 analogues)."""
    p = np.moveaxis(np.asarray(events.momenta), -1, 0)  # (E, px, py, pz), each (n, 5)
    out = {}
    for slot, name in ((2, "t"), (3, "H"), (4, "j")):
        kin = pt_eta_phi_mass(*p[..., slot])
        out[f"pt_{name}"], out[f"eta_{name}"] = kin["pt"], kin["eta"]
    out["m_tH"] = mass(*(p[..., 2] + p[..., 3]))
    out["deta_tj"] = np.abs(out["eta_t"] - out["eta_j"])
    return out
