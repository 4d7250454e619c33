"""Analytic closure test of the MEM machinery: a perfect transfer function and closed-form likelihoods.

A d-dimensional toy with the tHj amplitude structure (Eq 6.3/6.33),

    dσ(x|α)/dx = |a(x) + cos α b(x) + sin α d(x) + i sin α c(x)|²
               = (a² + b²) + sin α 2ad + cos α 2ab + sin α cos α 2bd + sin²α (d² + c² − b²),

with a, b, c, d unnormalised Gaussian bumps, so every g_i of f = (1, sin α, cos α, sin α cos α,
sin² α) is a finite sum of Gaussians (:class:`GaussianSum`). The detector smears x_reco = x_hard +
N(0, diag S²) and accepts with a Gaussian-shaped ε(x) ≤ 1 (or ε = 1). Then σ(α), σ_fid(α),
p(x_reco|α) = Σ f_i G_i(x_reco)/σ_fid(α) with G_i = (ε g_i) ⊛ N(0, S²) (Eq 6.17) and exact event
sampling (rejection from the envelope 4(a² + b² + c² + d²) ≥ dσ) are all closed-form.

:func:`run_closure` integrates the toy with :func:`integrate_events` using the exact transfer
density and an imperfect analytic Gaussian proposal, and compares likelihood scans and pulls of
the MEM, the analytic reco-level and the hard-level likelihoods.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lhcflow.atomic import write_json
from lhcflow.mem.integration import MemIntegrand, MemResult, MemSettings, integrate_events
from lhcflow.mem.likelihood import (SCAN_POINTS, estimate_alpha, hard_log_likelihood, likelihood_band,
                                    neg2_log_likelihood, pull_summary, pulls, scan_grid)
from lhcflow.seeds import derive_seed

LOG_2PI = math.log(2 * math.pi)


def cp_factors(alpha: Tensor) -> Tensor:
    """f_i(α) of Eq 6.33: (1, sin α, cos α, sin α cos α, sin² α), shape (..., 5)."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    s, c = torch.sin(alpha), torch.cos(alpha)
    return torch.stack([torch.ones_like(s), s, c, s * c, s * s], -1)


@dataclass
class GaussianSum:
    """Σ_k c_k exp(−½ Σ_j (x_j − μ_kj)² / v_kj): unnormalised Gaussians with diagonal covariance."""

    coef: np.ndarray   # (K,)
    mean: np.ndarray   # (K, d)
    var: np.ndarray    # (K, d)

    @classmethod
    def bump(cls, amplitude: float, mean, width) -> GaussianSum:
        mean = np.asarray(mean, dtype=float)
        return cls(np.array([amplitude], dtype=float), mean[None], (np.asarray(width, dtype=float) ** 2)[None])

    @property
    def dims(self) -> int:
        return self.mean.shape[1]

    def __call__(self, x: Tensor) -> Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        mean, var = torch.from_numpy(self.mean).to(x), torch.from_numpy(self.var).to(x)
        expo = -0.5 * ((x[:, None, :] - mean) ** 2 / var).sum(-1)          # (n, K)
        return torch.exp(expo) @ torch.from_numpy(self.coef).to(x)

    def integral(self) -> float:
        """∫ dx over R^d."""
        return float(np.sum(self.coef * np.prod(np.sqrt(2 * np.pi * self.var), axis=1)))

    def __add__(self, other: GaussianSum) -> GaussianSum:
        return GaussianSum(np.concatenate([self.coef, other.coef]), np.concatenate([self.mean, other.mean]),
                           np.concatenate([self.var, other.var]))

    def scaled(self, factor: float) -> GaussianSum:
        return GaussianSum(self.coef * factor, self.mean, self.var)

    def __mul__(self, other: GaussianSum) -> GaussianSum:
        """Pointwise product (products of Gaussians are Gaussians)."""
        m1, v1 = self.mean[:, None], self.var[:, None]
        m2, v2 = other.mean[None], other.var[None]
        vs = v1 + v2
        var = v1 * v2 / vs
        mean = (m1 * v2 + m2 * v1) / vs
        coef = self.coef[:, None] * other.coef[None] * np.exp(-0.5 * ((m1 - m2) ** 2 / vs).sum(-1))
        d = self.dims
        return GaussianSum(coef.reshape(-1), mean.reshape(-1, d), var.reshape(-1, d))

    def convolved(self, smear_var) -> GaussianSum:
        """y ↦ ∫ dx G(x) N(y − x; 0, diag smear_var)."""
        s = np.asarray(smear_var, dtype=float)[None]
        coef = self.coef * np.prod(np.sqrt(self.var / (self.var + s)), axis=1)
        return GaussianSum(coef, self.mean.copy(), self.var + s)


def gaussian_log_density(x: Tensor, mean: Tensor, width: Tensor) -> Tensor:
    """log N(x; mean, diag width²) summed over the last axis."""
    z = (x - mean) / width
    return (-0.5 * z ** 2 - 0.5 * LOG_2PI - torch.log(width)).sum(-1)


class GaussianProposal:
    """Analytic stand-in for the Sampling-cINN: q(x_hard|x_reco, α) = N(x_reco + sin α · shift, diag width²)."""

    def __init__(self, width, shift):
        self.width = torch.as_tensor(np.asarray(width, dtype=float))
        self.shift = torch.as_tensor(np.asarray(shift, dtype=float))
        self.dims = len(self.width)

    def sample(self, r: Tensor, context: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        width, shift = self.width.to(r), self.shift.to(r)
        mean = context.to(r) + torch.sin(alpha.to(r))[:, None] * shift
        x = mean + width * r
        return x, gaussian_log_density(x, mean, width)


#: default toy (d = 2): amplitudes, centres and widths of the bumps a, b, c, d
DEFAULT_TOY = {
    "a": (1.0, (0.0, 0.0), (1.0, 1.0)),
    "b": (0.9, (0.9, -0.5), (0.8, 1.1)),
    "c": (0.7, (-0.8, 0.7), (0.9, 0.7)),
    "d": (0.8, (0.4, 1.0), (0.7, 0.9)),
}
DEFAULT_ACCEPTANCE = (0.9, (0.2, 0.0), (2.5, 2.0))   # ε(x) = 0.9 exp(−½ Σ (x − μ)²/w²)


class ToyProcess:
    """The closure toy: factorised dσ, Gaussian smearing and acceptance, all closed-form."""

    def __init__(self, smearing_width: float | tuple = 0.3, acceptance: bool = True,
                 bumps: Mapping[str, tuple] | None = None):
        bumps = dict(bumps or DEFAULT_TOY)
        a, b, c, d = (GaussianSum.bump(*bumps[k]) for k in "abcd")
        self.amplitudes = {"a": a, "b": b, "c": c, "d": d}
        self.dims = a.dims
        self.smearing = np.broadcast_to(np.asarray(smearing_width, dtype=float), (self.dims,)).copy()
        self.g = [a * a + b * b, (a * d).scaled(2), (a * b).scaled(2), (b * d).scaled(2),
                  d * d + c * c + (b * b).scaled(-1)]
        self.eps = GaussianSum.bump(*DEFAULT_ACCEPTANCE) if acceptance else None
        self.g_acc = [gi * self.eps for gi in self.g] if self.eps is not None else self.g
        self.reco_g = [gi.convolved(self.smearing ** 2) for gi in self.g_acc]
        self.sigma_terms = np.array([gi.integral() for gi in self.g])
        self.sigma_fid_terms = np.array([gi.integral() for gi in self.g_acc])
        self.envelope = (a * a + b * b + c * c + d * d).scaled(4.0)

    # --- factorised ingredients (torch, float64)
    f_terms = staticmethod(cp_factors)

    def hard_terms(self, x: Tensor) -> Tensor:
        return torch.stack([gi(x) for gi in self.g], -1)

    def dsigma(self, x: Tensor, alpha: float) -> Tensor:
        return self.hard_terms(x) @ cp_factors(torch.tensor(float(alpha), dtype=torch.float64))

    def acceptance(self, x: Tensor) -> Tensor:
        return self.eps(x) if self.eps is not None else torch.ones(len(x), dtype=torch.float64)

    def sigma(self, alpha: Tensor) -> Tensor:
        return cp_factors(alpha) @ torch.from_numpy(self.sigma_terms)

    def sigma_fid(self, alpha: Tensor) -> Tensor:
        return cp_factors(alpha) @ torch.from_numpy(self.sigma_fid_terms)

    def reco_terms(self, y: Tensor) -> Tensor:
        """G_i(y) = ∫ dx ε g_i p(y|x): p(y|α) = Σ f_i G_i / σ_fid (Eq 6.17)."""
        return torch.stack([gi(y) for gi in self.reco_g], -1)

    def reco_log_likelihood(self, y, alpha) -> np.ndarray:
        """Analytic log p(x_reco|α), shape (E, A)."""
        a = torch.as_tensor(np.atleast_1d(alpha), dtype=torch.float64)
        return (torch.log(self.reco_terms(torch.as_tensor(y)) @ cp_factors(a).T)
                - torch.log(self.sigma_fid(a))).numpy()

    def transfer_log_prob(self, width_factor: float = 1.0, n_replicas: int = 1, jitter: float = 0.0,
                          seed: int = 0):
        """log p_θ(x_reco|x_hard) = log N(x_reco − x_hard; 0, (factor·S)²) as (B, n); B > 1 replicas
        with widths jittered by ``jitter`` (a Bayesian-network stand-in)."""
        rng = np.random.default_rng(derive_seed(seed, "toy-transfer-replicas"))
        factors = width_factor * (1 + jitter * rng.standard_normal(n_replicas)) if n_replicas > 1 else np.array([width_factor])
        widths = torch.from_numpy(factors[:, None] * self.smearing[None])       # (B, d)

        def log_prob(reco: Tensor, x: Tensor) -> Tensor:
            return gaussian_log_density(reco[None].to(x), x[None], widths[:, None].to(x))
        return log_prob

    def integrand(self, transfer_width_factor: float = 1.0, n_transfer_replicas: int = 1,
                  jitter: float = 0.0) -> MemIntegrand:
        return MemIntegrand(hard_terms=self.hard_terms, f_terms=cp_factors,
                            transfer_log_prob=self.transfer_log_prob(transfer_width_factor, n_transfer_replicas, jitter),
                            sigma_fid=self.sigma_fid,
                            acceptance=self.acceptance if self.eps is not None else None)

    def proposal(self, width_factor: float = 1.3, shift: float = 0.05) -> GaussianProposal:
        return GaussianProposal(width_factor * self.smearing, shift * self.smearing)

    # --- exact event sampling
    def sample(self, n: int, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n accepted events at α: x_hard ~ p_fid(x|α) (Eq 6.18) by rejection, x_reco = x_hard + N(0, S²)."""
        env = self.envelope
        weights = torch.from_numpy(env.coef * np.prod(np.sqrt(2 * np.pi * env.var), axis=1))
        kept: list[Tensor] = []
        n_kept = 0
        while n_kept < n:
            m = max(4 * (n - n_kept), 1000)
            comp = torch.multinomial(weights, m, replacement=True, generator=generator)
            x = (torch.from_numpy(env.mean)[comp]
                 + torch.from_numpy(np.sqrt(env.var))[comp] * torch.randn((m, self.dims), generator=generator,
                                                                         dtype=torch.float64))
            target = self.dsigma(x, alpha) * self.acceptance(x)
            accept = torch.rand(m, generator=generator, dtype=torch.float64) * env(x) < target
            kept.append(x[accept])
            n_kept += int(accept.sum())
        x_hard = torch.cat(kept)[:n]
        x_reco = x_hard + torch.from_numpy(self.smearing) * torch.randn(x_hard.shape, generator=generator,
                                                                          dtype=torch.float64)
        return x_hard, x_reco


# =========================================================================== closure run

DEFAULT_CLOSURE_CONFIG: dict[str, Any] = {
    "alpha_true_deg": [0.0, 45.0, 90.0],
    "scan_events": 400,               # events of the likelihood-scan comparison
    "events_per_set": 100,            # pulls: sets of this many events ...
    "n_sets": 100,                    # ... this many sets (disjoint, freshly sampled)
    "smearing_width": 0.3,            # S per dimension
    "acceptance": True,               # Gaussian-shaped ε(x) (three-network form, Eq 6.39)
    "proposal_width_factor": 1.3,     # q width / S (1 = ideal for a flat prior)
    "proposal_shift": 0.05,           # α-dependent shift of q, × S
    "transfer_width_factor": 1.0,     # ≠ 1: a deliberately wrong transfer function
    "transfer_replicas": 1,           # B > 1: jittered "Bayesian" transfer replicas
    "transfer_replica_jitter": 0.02,
    "scan_points": SCAN_POINTS,
    "chunk_size": 2000,               # events per integrate_events call
    "figure_format": "png",
    "mem": {"batch_size": 1000, "min_iterations": 2, "max_iterations": 10, "target_rel_error": 0.02,
            "bootstrap_replicas": 100},
}


def closure_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults merged with ``cfg``; unknown keys are an error."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_CLOSURE_CONFIG))
    if unknown:
        raise KeyError(f"unknown closure settings {unknown}; known: {sorted(DEFAULT_CLOSURE_CONFIG)}")
    merged = {**DEFAULT_CLOSURE_CONFIG, **cfg}
    merged["mem"] = {**DEFAULT_CLOSURE_CONFIG["mem"], **dict(cfg.get("mem") or {})}
    return merged


def integrate_toy(toy: ToyProcess, x_reco: Tensor, settings: MemSettings, cfg: Mapping[str, Any], *,
                  chunk_offset: int = 0):
    """MEM integrals of the toy events in chunks of ``cfg['chunk_size']`` (one random stream per chunk)."""
    integrand = toy.integrand(cfg["transfer_width_factor"], cfg["transfer_replicas"], cfg["transfer_replica_jitter"])
    proposal = toy.proposal(cfg["proposal_width_factor"], cfg["proposal_shift"])
    size = int(cfg["chunk_size"])
    parts = [integrate_events(integrand, proposal, x_reco[i:i + size], x_reco[i:i + size], settings,
                              chunk_index=chunk_offset + i // size)
             for i in range(0, len(x_reco), size)]
    return MemResult.concatenate(parts)


def set_pulls(log_p: np.ndarray, alpha_scan: np.ndarray, set_size: int, alpha_true: float) -> np.ndarray:
    """Pulls of consecutive disjoint sets of ``set_size`` events of log p (E, A)."""
    n_sets = len(log_p) // set_size
    ests = [estimate_alpha(alpha_scan, neg2_log_likelihood(log_p[k * set_size:(k + 1) * set_size]))
            for k in range(n_sets)]
    return pulls(ests, alpha_true)


def run_closure(cfg: Mapping[str, Any] | None, out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Closure of the MEM machinery on the analytic toy; writes ``closure.json`` and two figures."""
    from lhcflow.plots.mem import LikelihoodCurve, ScanColumn, plot_likelihood_comparison, plot_pull_histograms

    cfg = closure_config(cfg)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    toy = ToyProcess(cfg["smearing_width"], cfg["acceptance"])
    mem_cfg = dict(cfg["mem"])
    mem_cfg.setdefault("seed", derive_seed(seed, "closure-mem"))
    settings = MemSettings.from_dict(mem_cfg)
    settings_pulls = replace(settings, bootstrap_replicas=0)
    alpha_scan = scan_grid(int(cfg["scan_points"]))
    n_scan, set_size, n_sets = int(cfg["scan_events"]), int(cfg["events_per_set"]), int(cfg["n_sets"])

    metrics: dict[str, Any] = {"config": cfg, "seed": seed, "alpha_true": {}}
    columns, pull_columns = [], []
    for k, alpha_deg in enumerate(cfg["alpha_true_deg"]):
        alpha_true = math.radians(alpha_deg)
        gen = torch.Generator().manual_seed(derive_seed(seed, "closure-events", alpha_deg))
        x_hard, x_reco = toy.sample(n_scan + set_size * n_sets, alpha_true, gen)
        scan_res = integrate_toy(toy, x_reco[:n_scan], replace(settings, seed=derive_seed(settings.seed, k, "scan")), cfg)
        pull_res = integrate_toy(toy, x_reco[n_scan:], replace(settings_pulls, seed=derive_seed(settings.seed, k, "pulls")), cfg)

        mem_scan = neg2_log_likelihood(scan_res.log_likelihood(alpha_scan))
        mem_band = likelihood_band(scan_res.log_likelihood_replicas(alpha_scan))
        ana_scan = neg2_log_likelihood(toy.reco_log_likelihood(x_reco[:n_scan], alpha_scan))
        hard_scan = neg2_log_likelihood(hard_log_likelihood(toy.hard_terms(x_hard[:n_scan]), cp_factors,
                                                            toy.sigma_fid, alpha_scan))
        inside = ana_scan <= 1.0
        diff = mem_scan - ana_scan
        worst = int(np.flatnonzero(inside)[np.argmax(np.abs(diff[inside]))])
        est_mem, est_ana = estimate_alpha(alpha_scan, mem_scan), estimate_alpha(alpha_scan, ana_scan)

        pulls_by = {
            "MEM": set_pulls(pull_res.log_likelihood(alpha_scan), alpha_scan, set_size, alpha_true),
            "analytic reco": set_pulls(toy.reco_log_likelihood(x_reco[n_scan:], alpha_scan), alpha_scan, set_size, alpha_true),
            "hard truth": set_pulls(hard_log_likelihood(toy.hard_terms(x_hard[n_scan:]), cp_factors, toy.sigma_fid,
                                                        alpha_scan), alpha_scan, set_size, alpha_true),
        }
        iters = np.concatenate([scan_res.iterations, pull_res.iterations])
        metrics["alpha_true"][f"{alpha_deg:g}"] = {
            "pulls": {label: pull_summary(p) for label, p in pulls_by.items()},
            "scan": {
                "n_events": n_scan,
                "alpha_hat_mem_deg": math.degrees(est_mem.alpha_hat),
                "alpha_hat_analytic_deg": math.degrees(est_ana.alpha_hat),
                "sigma_mem_deg": [math.degrees(est_mem.sigma_minus), math.degrees(est_mem.sigma_plus)],
                "sigma_analytic_deg": [math.degrees(est_ana.sigma_minus), math.degrees(est_ana.sigma_plus)],
                "max_abs_diff_1sigma": float(abs(diff[worst])),
                "bootstrap_std_at_max": float(mem_band[worst]),
                "max_bootstrap_std_1sigma": float(mem_band[inside].max()),
                "max_abs_diff_over_std_1sigma": float(np.max(np.abs(diff[inside]) / np.where(
                    mem_band[inside] > 0, mem_band[inside], np.inf))),
            },
            "median_iterations": float(np.median(iters)),
            "fraction_converged": float(np.mean(np.concatenate([scan_res.converged, pull_res.converged]))),
        }
        columns.append(ScanColumn(alpha_true, small=[
            LikelihoodCurve("analytic reco", ana_scan, color="k", linestyle="--"),
            LikelihoodCurve("MEM", mem_scan, mem_band, color="C4"),
            LikelihoodCurve("hard truth", hard_scan, color="C2", linestyle=":"),
        ], pulls=pulls_by))
    fmt = cfg["figure_format"]
    plot_likelihood_comparison(alpha_scan, columns, out_dir / f"closure_likelihood.{fmt}", reference="analytic reco",
                               title=f"{n_scan} events")
    plot_pull_histograms(columns, out_dir / f"closure_pulls.{fmt}",
                         title=f"{n_sets} sets of {set_size} events")
    metrics["runtime_s"] = time.perf_counter() - t0
    write_json(out_dir / "closure.json", json.loads(json.dumps(metrics, default=float)))
    return metrics
