"""Likelihood scans of the CP angle: −2Δlog L, point estimates, 68 % intervals and pulls (§6.3-6.4).

The per-event log p(x|α) (reco level from :class:`MemResult`, hard level from
:func:`hard_log_likelihood`) is summed over a set of events and scanned on a fine, periodic α grid
(:func:`scan_grid`: 721 points on [−π, π]). :func:`estimate_alpha` finds the minimum (refined by a
parabola through three points) and the asymmetric 68 % interval where −2Δlog L = 1 on each side,
"assuming an approximately Gaussian likelihood on each side of the minimum" (§6.3.1). Pulls
(α̂ − α_true)/σ use the error on the side that faces the truth (Fig 6.14).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.physics.kinematics import wrap_angle

SCAN_POINTS = 721


def scan_grid(n: int = SCAN_POINTS) -> np.ndarray:
    """α scan grid: n points on [−π, π] (both ends included; the likelihood is periodic)."""
    return np.linspace(-np.pi, np.pi, n)


def neg2_log_likelihood(log_p: np.ndarray) -> np.ndarray:
    """−2 Σ_events log p(x|α), shifted so that its minimum is 0: (E, A) -> (A,); (E, M, A) -> (M, A)."""
    total = -2.0 * np.sum(log_p, axis=0)
    with np.errstate(invalid="ignore"):
        return total - np.nanmin(total, axis=-1, keepdims=True)


def likelihood_band(log_p_replicas: np.ndarray) -> np.ndarray:
    """Bootstrap band of −2Δlog L: std over replicas (each normalised to its own minimum), (E, M, A) -> (A,)."""
    if log_p_replicas.shape[1] < 2:
        return np.zeros(log_p_replicas.shape[-1])
    return np.std(neg2_log_likelihood(log_p_replicas), axis=0, ddof=1)


def hard_log_likelihood(g: np.ndarray | torch.Tensor, f_terms: Callable, sigma_fid: Callable, alpha) -> np.ndarray:
    """Hard-scattering ("truth") log p_fid(x_hard|α) = log Σ_i f_i(α) g_i(x_hard) − log σ_fid(α), (E, A).

    The α-independent acceptance ε(x_hard) of Eq 6.18 is dropped (it cancels in −2Δlog L).
    """
    a = torch.as_tensor(np.atleast_1d(np.asarray(alpha, dtype=np.float64)))
    f = f_terms(a).detach().cpu().double().numpy()
    sig = sigma_fid(a).detach().cpu().double().numpy()
    g = torch.as_tensor(g).detach().cpu().double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(g @ f.T) - np.log(sig)


# =========================================================================== point estimate and interval

@dataclass(frozen=True)
class Estimate:
    """α̂ with its asymmetric 68 % interval [lower, upper] = [α̂ − σ₋, α̂ + σ₊] (radians, not wrapped).

    ``lower_at_edge``/``upper_at_edge``: −2Δlog L never reached 1 within π of α̂ on that side; the
    bound is then α̂ ∓ π.
    """

    alpha_hat: float
    lower: float
    upper: float
    sigma_minus: float
    sigma_plus: float
    lower_at_edge: bool = False
    upper_at_edge: bool = False

    @property
    def at_edge(self) -> bool:
        return self.lower_at_edge or self.upper_at_edge


def estimate_alpha(alpha: np.ndarray, neg2ll: np.ndarray, periodic: bool = True, level: float = 1.0) -> Estimate:
    """Minimum and 68 % interval (−2Δlog L = ``level``) of a scan on a uniform grid.

    Periodic scans (default) may span [−π, π] with a duplicated end point; the interval walks up to
    π away from α̂ on each side, wrapping around. Non-periodic scans stop at the grid ends.
    """
    alpha, y = np.asarray(alpha, dtype=float), np.asarray(neg2ll, dtype=float)
    if periodic and np.isclose(alpha[-1] - alpha[0], 2 * np.pi):
        alpha, y = alpha[:-1], y[:-1]
    n = len(alpha)
    h = alpha[1] - alpha[0]
    y = np.where(np.isfinite(y), y, np.inf)
    i0 = int(np.argmin(y))

    def value(i):   # grid value with periodic / clamped index
        return y[i % n] if periodic else (y[i] if 0 <= i < n else np.inf)

    # parabola through the three points around the minimum
    ym, y0, yp = value(i0 - 1), y[i0], value(i0 + 1)
    curv = ym - 2 * y0 + yp
    if np.isfinite(curv) and curv > 0:
        shift = float(np.clip(0.5 * (ym - yp) / curv, -0.5, 0.5))
        y_min = y0 - 0.125 * (ym - yp) ** 2 / curv
    else:
        shift, y_min = 0.0, y0
    a_hat = alpha[i0] + shift * h

    def crossing(direction: int) -> tuple[float, bool]:
        """Distance from α̂ to the first crossing of ``level`` above the minimum on one side."""
        prev_dist, prev_val = 0.0, 0.0
        max_steps = n // 2 + 1 if periodic else (n - 1 - i0 if direction > 0 else i0)
        for k in range(1, max_steps + 1):
            dist = k * h - direction * shift * h
            if dist <= 0:
                continue
            if dist > np.pi:
                break
            val = value(i0 + direction * k) - y_min
            if val >= level:
                frac = (level - prev_val) / (val - prev_val) if np.isfinite(val) else 0.0
                return prev_dist + frac * (dist - prev_dist), False
            prev_dist, prev_val = dist, val
        if periodic:
            return np.pi, True
        end = alpha[-1] if direction > 0 else alpha[0]
        return abs(end - a_hat), True

    s_plus, up_edge = crossing(+1)
    s_minus, low_edge = crossing(-1)
    return Estimate(float(a_hat), float(a_hat - s_minus), float(a_hat + s_plus), float(s_minus), float(s_plus),
                    low_edge, up_edge)


def pulls(estimates: Sequence[Estimate], alpha_true: float) -> np.ndarray:
    """(α̂ − α_true)/σ, σ = σ₊ if α̂ < α_true else σ₋ (the side facing the truth), angles wrapped."""
    a_hat = np.array([e.alpha_hat for e in estimates])
    diff = wrap_angle(a_hat - alpha_true)
    sigma = np.where(diff < 0, [e.sigma_plus for e in estimates], [e.sigma_minus for e in estimates])
    with np.errstate(divide="ignore", invalid="ignore"):
        return diff / sigma


def at_mirror(estimates: Sequence[Estimate], alpha_true: float) -> np.ndarray:
    """Per estimate: α̂ lies nearer the CP mirror −α_true than α_true itself.

    σ(α) and every CP-even observable are even in α (Eq 6.3 with D = E = 0 up to the small CP-odd
    terms), so only the CP-odd information separates α from −α: a set of 100 events can have its global
    minimum at −α_true, and its "pull" is then ~2α/σ, not a Gaussian tail. Never for α_true = 0 or π,
    which are their own mirrors."""
    a_hat = np.array([e.alpha_hat for e in estimates])
    if np.isclose(abs(wrap_angle(alpha_true)), 0.0) or np.isclose(abs(wrap_angle(alpha_true)), np.pi):
        return np.zeros(len(a_hat), dtype=bool)
    return np.abs(wrap_angle(a_hat + alpha_true)) < np.abs(wrap_angle(a_hat - alpha_true))


def bias(estimate: Estimate, alpha_true: float) -> float:
    """α̂ − α_true of (e.g.) the all-event maximum, wrapped to (−π, π]."""
    return float(wrap_angle(estimate.alpha_hat - alpha_true))


# =========================================================================== event sets and pull statistics

@dataclass(frozen=True)
class EventSets:
    """Indices (n_sets, set_size) of event sets; ``disjoint`` False when there were too few events and
    sets overlap (each set still without repeated events, unless ``set_size`` exceeds the pool)."""

    indices: np.ndarray
    disjoint: bool


def split_event_sets(n_events: int, set_size: int, n_sets: int, seed: int = 0) -> EventSets:
    """20 × 100 (calibration, Fig 6.8) or 100 × 100 (pulls, Fig 6.14) events: disjoint random sets if
    n_sets · set_size ≤ n_events, else independently drawn (overlapping) sets, flagged."""
    rng = np.random.default_rng(seed)
    if n_sets * set_size <= n_events:
        return EventSets(rng.permutation(n_events)[:n_sets * set_size].reshape(n_sets, set_size), True)
    replace = set_size > n_events
    idx = np.stack([rng.choice(n_events, set_size, replace=replace) for _ in range(n_sets)])
    return EventSets(idx, False)


def set_estimates(log_p: np.ndarray, alpha: np.ndarray, sets: EventSets | np.ndarray) -> list[Estimate]:
    """One :class:`Estimate` per event set from per-event log p (E, A) on the scan grid ``alpha``."""
    idx = sets.indices if isinstance(sets, EventSets) else np.asarray(sets)
    return [estimate_alpha(alpha, neg2_log_likelihood(log_p[row])) for row in idx]


def pull_summary(values: np.ndarray) -> dict[str, float]:
    """Mean ± std/√n and width (std) ± std/√(2(n−1)) of the finite pulls."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    n = len(finite)
    if n < 2:
        return {"n": n, "n_nonfinite": int(len(v) - n), "mean": float("nan"), "mean_error": float("nan"),
                "width": float("nan"), "width_error": float("nan")}
    width = float(np.std(finite, ddof=1))
    return {"n": n, "n_nonfinite": int(len(v) - n), "mean": float(finite.mean()), "mean_error": width / math.sqrt(n),
            "width": width, "width_error": width / math.sqrt(2 * (n - 1))}


def pulls_consistent(summary: dict[str, float], n_sigma: float = 3.0) -> bool:
    """Pull mean 0 and width 1 within ``n_sigma`` statistical errors."""
    return (abs(summary["mean"]) <= n_sigma * summary["mean_error"]
            and abs(summary["width"] - 1.0) <= n_sigma * summary["width_error"])


# =========================================================================== the hard-level closure


def hard_without_selection(paths: Sequence[str | Path], cross_sections_json: str | Path,
                           branching_ratio: float, alpha: np.ndarray, alpha_true: float) -> dict[str, Any]:
    """α̂ of p(x_hard|α) = dσ(x_hard|α)/σ(α) over all showered events of a fixed-α sample (Eq 6.33 for both)."""
    import json

    from lhcflow.mem.data import read_paired_events
    from lhcflow.mem.thj_integrand import hard_level_terms
    from lhcflow.thj.matrix_element import cp_factors

    record = json.loads(Path(cross_sections_json).read_text())
    sigma_i = torch.as_tensor(record["sigma_i_pb"], dtype=torch.float64) * branching_ratio
    data = read_paired_events(paths)

    def sigma_total(a: torch.Tensor) -> torch.Tensor:
        return cp_factors(a) @ sigma_i

    log_p = hard_log_likelihood(hard_level_terms(data, branching_ratio), cp_factors, sigma_total, alpha)
    good = np.isfinite(log_p).all(1)
    estimate = estimate_alpha(alpha, neg2_log_likelihood(log_p[good]))
    return {"n_events": int(good.sum()), **estimate_deg(estimate, alpha_true)}


def estimate_deg(estimate: Estimate, alpha_true: float) -> dict[str, float]:
    """α̂, its errors and its bias in degrees, and whether α̂ sits at the edge of the scan."""
    return {"alpha_hat_deg": float(np.degrees(estimate.alpha_hat)), "sigma_minus_deg": float(np.degrees(estimate.sigma_minus)),
            "sigma_plus_deg": float(np.degrees(estimate.sigma_plus)), "bias_deg": float(np.degrees(bias(estimate, alpha_true))),
            "at_edge": bool(estimate.at_edge)}
