"""Exact error of the multi-channel MC estimator for 1D integrands, by quadrature (thesis Eqs 2.50-2.55).

With fixed channel weights α_i and flat sampling through the mappings (q_i = 1), channel i
contributes w_i = α_i f / g_i at x ~ g_i; its raw moments are one-dimensional integrals,

    m_{k,i} = E[w_i^k] = ∫ dx (α_i f)^k g_i^{1-k},   I_i = m_{1,i},   σ_i² = m_{2,i} - I_i²,

so the error of an estimate from N events follows without sampling, for each way of sharing the
events among channels (``ALLOCATIONS``):

* ``equal``: N_i = N/n_c (the flat integrator; `eval_channel_mode: uniform` of MadNIS):
  σ_I² = Σ_i σ_i² / N_i (Eq 2.53);
* ``stratified``: N_i ∝ σ_i (Eq 2.55; madnis 1.0 once it has an integration history):
  σ_I = Σ_i σ_i / √N;
* ``mixture``: every event picks channel i with probability p_i and carries w_i / p_i:
  σ_I² = (Σ_i m_{2,i}/p_i - I²) / N (for α_i = p_i g_i / Σ_j p_j g_j this is sampling the mixture
  Σ_j p_j g_j, which with p = 1/2 is the optimal α of Eq 5.27).

``rel_error_spread`` is the run-to-run standard deviation of the *estimated* relative error
σ̂_I/Î (delta method at leading order in 1/N, from the third and fourth central moments; the
correlation of σ̂_I with Î matters), the analogue of the ± of Tab 5.1.

Tab 5.1 at 10^4 events against candidate conventions (relative error ± rel_error_spread, in %):

=======================================  =============  =============  =============
convention                               camel          cut, a1=0.35   cut, a1=1/2
=======================================  =============  =============  =============
thesis "Uniform"                         2.553 ± 0.017  3.412 ± 0.048
x uniform on [0, 6], one channel         2.562 ± 0.023  3.665 ± 0.058  3.436 ± 0.049
x uniform on [-1, 7]                     3.015 ± 0.031  4.271 ± 0.078  4.009 ± 0.066
x uniform on [0, 10]                     3.407 ± 0.039  4.801 ± 0.098  4.510 ± 0.082
α_i = 1/2, γ = √2σ, N_i = N/2            5.623 ± 0.156  7.135 ± 0.202  6.786 ± 0.200
α_i = 1/2, γ = √2σ, N_i ∝ σ_i            5.369 ± 0.101  5.650 ± 0.126  5.714 ± 0.149
α_i = 1/2, γ = √2σ, mixture p_i = 1/2    5.623 ± 0.157  7.135 ± 0.205  6.786 ± 0.202
α_i = 1/2, γ = σ, N_i = N/2              6.628 ± 0.212  8.376 ± 0.278  7.970 ± 0.274
thesis "Optimal"                         0.769 ± 0.006  1.031 ± 0.006
α_opt (Eq 5.27), γ = √2σ, N_i = N/2      0.773 ± 0.008  1.018 ± 0.012  1.031 ± 0.011
α_opt, γ = √2σ, N_i ∝ σ_i                0.743 ± 0.007  0.913 ± 0.010  0.992 ± 0.010
α_opt, γ = √2σ, mixture p_i = 1/2        0.826 ± 0.007  1.308 ± 0.012  1.253 ± 0.012
α_opt, γ = σ, N_i = N/2                  0.589 ± 0.007  0.801 ± 0.011  0.854 ± 0.010
=======================================  =============  =============  =============

(madnis-tf, which made the table, draws evaluation channels with probabilities ∝ σ_i², which for
any α gives the same σ_I as N_i = N/n_c: Σ_i σ_i²/(N σ_i²/Σ_j σ_j²) = n_c Σ_j σ_j²/N.)

Only flat sampling on [0, 6] reproduces the "Uniform" row: the "naive integration" of
experiments/toy/camel/train_camel.py in madgraph-ml/madnis-tf. For the cut camel it does so only with
a1 = 1/2, the peak ratio of that code's cut camel (CuttedCamel without peak_ratios), which also turns
the optimal cut row from 1.018 % into the thesis 1.031 %. α_i = 1/2 cannot give 2.553 % under any
allocation: each Cauchy channel puts 1.5 % of its events within ±3σ of the other channel's peak, with
weights up to 55 I (channel 1) and 28 I (channel 2), which fixes σ_i at 3.5 and 1.9 (σ_I/I ≥ 5.37 % at 10^4 events, the
stratified optimum; a mixture with any p is no better, by Minkowski's inequality).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.integrate import tanhsinh

from lhcflow.nis.integrand import MultiChannelIntegrand

ALLOCATIONS = ("equal", "stratified", "mixture")


@dataclass(frozen=True)
class ErrorPrediction:
    """Closed-form error of an N-event multi-channel estimate."""

    n_events: int
    allocation: str
    integral: float
    error: float                    # σ_I
    rel_error: float                # σ_I / I
    rel_std: float                  # √N σ_I / I, σ/I per event (as `sampling.estimate`)
    rel_error_spread: float         # std of the estimated σ̂_I/Î over runs (delta method)
    channel_integrals: list[float] = field(default_factory=list)
    channel_stds: list[float] = field(default_factory=list)      # σ_i per event of channel i
    channel_counts: list[float] = field(default_factory=list)    # N_i (expected N p_i for mixture)


def channel_moments(integrand: MultiChannelIntegrand,
                    channel_weights: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    support: Sequence[float] | None = None, breakpoints: Sequence[float] | None = None,
                    rtol: float = 1e-11, accept: float = 1e-7) -> np.ndarray:
    """m_{k,i} = ∫ dx (α_i f)^k g_i^{1-k} for k = 1..4, shape (n_channels, 4), by tanh-sinh quadrature.

    The range is `support` (default ``integrand.meta["support"]``, else the real line), cut at
    `breakpoints` (default ``meta["breakpoints"]``: peaks, widths and discontinuities of f).
    Points outside a channel's image (g_i = 0) are never sampled and contribute nothing.
    `channel_weights` replaces the integrand's α (e.g. a trained `MadnisIntegrator.channel_weights`).
    The quadrature aims at relative error `rtol` and fails above `accept`.
    """
    if integrand.dim != 1 or any(c.dim != 1 for c in integrand.channels):
        raise ValueError(f"channel_moments needs a 1D integrand with 1D mappings, {integrand.name!r} has dim "
                         f"{integrand.dim}")
    alpha = channel_weights or integrand.channel_weights
    lower, upper = support if support is not None else integrand.meta.get("support", (-math.inf, math.inf))
    points = breakpoints if breakpoints is not None else integrand.meta.get("breakpoints", ())
    edges = np.array([lower, *sorted(p for p in points if lower < p < upper), upper], dtype=float)

    def log_term(x: np.ndarray, channel: np.ndarray, power: np.ndarray) -> np.ndarray:
        """log[(α_i f)^k g_i^{1-k}] at x for the channel i and power k of each element."""
        xt = torch.as_tensor(np.ravel(x), dtype=torch.float64).reshape(-1, 1)
        with torch.no_grad():
            log_f = torch.log(integrand.function(xt).to(torch.float64))[:, None]
            log_af = (torch.log(alpha(xt).to(torch.float64)) + log_f).numpy()
            log_g = torch.stack([c.log_density(xt) for c in integrand.channels], dim=-1).numpy()
        rows = np.arange(xt.shape[0])
        channel = np.ravel(np.broadcast_to(channel, np.shape(x)))
        power = np.ravel(np.broadcast_to(power, np.shape(x)))
        log_af, log_g = log_af[rows, channel], log_g[rows, channel]
        inside = np.isfinite(log_g) & (log_af > -np.inf)
        out = power * log_af - (power - 1.0) * np.where(inside, log_g, 0.0)
        return np.where(inside, out, -np.inf).reshape(np.shape(x))

    shape = (len(edges) - 1, integrand.n_channels, 4)
    channel = np.broadcast_to(np.arange(integrand.n_channels)[None, :, None], shape)
    power = np.broadcast_to(np.arange(1.0, 5.0)[None, None, :], shape)
    a = np.broadcast_to(edges[:-1, None, None], shape)
    b = np.broadcast_to(edges[1:, None, None], shape)
    result = tanhsinh(log_term, a, b, args=(channel, power), log=True, rtol=math.log(rtol), maxlevel=14)
    # kinks (a cut, a ReLU network's α) slow tanh-sinh down: accept an error estimate below `accept`
    relative = np.exp(result.error - result.integral)
    bad = ~(result.success | (relative < accept) | (result.integral == -np.inf))
    if bad.any():
        raise RuntimeError(f"quadrature of the channel moments of {integrand.name!r} did not converge for "
                           f"(segment, channel, power) {np.argwhere(bad)[:3].tolist()}: relative error "
                           f"{relative[bad].max():.1e} > {accept:.0e}; add breakpoints at the kinks")
    return np.exp(result.integral).sum(axis=0)


def _central(raw: Sequence) -> tuple:
    """(mean, variance, μ3, μ4) from the raw moments E[w], E[w²], E[w³], E[w⁴]."""
    m1, m2, m3, m4 = raw
    return (m1, m2 - m1**2, m3 - 3 * m1 * m2 + 2 * m1**3, m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4)


def _spread(n: np.ndarray, mean: np.ndarray, var: np.ndarray, mu3: np.ndarray, mu4: np.ndarray) -> float:
    """Std of sqrt(V̂)/Î with V̂ = Σ s_i²/N_i, Î = Σ Î_i (delta method, leading order in 1/N_i)."""
    integral, v = mean.sum(), (var / n).sum()
    var_v = ((mu4 - var**2) / n**3).sum()          # Var(s_i²) = (μ4 - σ⁴)/N_i
    cov = (mu3 / n**2).sum()                        # Cov(s_i², Î_i) = μ3/N_i
    var_ratio = (var_v - 4.0 * v / integral * cov + 4.0 * v**3 / integral**2) / integral**4
    return math.sqrt(max(var_ratio, 0.0)) / (2.0 * math.sqrt(v) / integral)


def predict_error(integrand: MultiChannelIntegrand, n_events: int, allocation: str = "equal",
                  probabilities: Sequence[float] | None = None,
                  channel_weights: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  **quadrature) -> ErrorPrediction:
    """The error of an `n_events` estimate with flat sampling through the channel mappings.

    allocation: "equal", "stratified" or "mixture" (module docstring); `probabilities` are the p_i of
    "mixture" (default 1/n_c). `quadrature` goes to :func:`channel_moments`.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"unknown allocation {allocation!r}; choose from {ALLOCATIONS}")
    m = channel_moments(integrand, channel_weights, **quadrature)
    mean, var, mu3, mu4 = _central(m.T)
    var = np.maximum(var, 0.0)
    n_c = integrand.n_channels
    if allocation == "mixture":
        p = np.full(n_c, 1.0 / n_c) if probabilities is None else np.asarray(probabilities, dtype=float)
        if p.shape != (n_c,) or (p <= 0).any() or not math.isclose(p.sum(), 1.0, rel_tol=1e-9):
            raise ValueError(f"mixture probabilities must be {n_c} positive numbers summing to 1, "
                             f"got {probabilities}")
        # E[W^k] = Σ_i p_i m_{k,i} / p_i^k for W = w_c / p_c, c ~ p (column j holds k = j + 1)
        moments = _central([np.array([(m[:, j] / p**j).sum()]) for j in range(4)])
        error = math.sqrt(moments[1][0] / n_events)
        spread = _spread(np.array([float(n_events)]), *moments)
        counts = n_events * p
    else:
        sigma = np.sqrt(var)
        if allocation == "equal" or sigma.sum() <= 0:
            counts = np.full(n_c, n_events / n_c)
        else:
            counts = n_events * sigma / sigma.sum()
        active = counts > 0
        error = math.sqrt((var[active] / counts[active]).sum())
        spread = _spread(counts[active], mean[active], var[active], mu3[active], mu4[active])
    integral = float(mean.sum())
    return ErrorPrediction(
        n_events=n_events, allocation=allocation, integral=integral, error=error,
        rel_error=error / abs(integral), rel_std=math.sqrt(n_events) * error / abs(integral),
        rel_error_spread=spread, channel_integrals=mean.tolist(), channel_stds=np.sqrt(var).tolist(),
        channel_counts=counts.tolist())
