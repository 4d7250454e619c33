"""Rational-quadratic spline transform with linear tails (thesis Eq. 3.49-3.51; Durkan et al. 2019).

The same map as madnis' ``unconstrained_rational_quadratic_spline`` (same parametrisation: softmax bin
widths and heights with a minimum of 1e-3, derivatives (1e-3 + softplus(θ)) / (1e-3 + log 2), identity
outside [left, right]), written for throughput because it is the hot path of every spline INN and of the
MEM integrand (issue 18). madnis' generic version selects the points inside the interval with boolean
masks (copies of all K·3 parameters per point), pads and normalises all K + 1 derivatives and gathers
seven per-bin tensors; here

* every point is transformed (clamped into the interval) and the identity is selected afterwards with
  ``torch.where``, so no parameter tensor is copied;
* only the cumulative widths and heights are normalised over all bins: the bin is found by counting the
  inner knots below the point, and the bin's edges, heights and its two knot derivatives are gathered
  before anything else is computed on them (the softplus of the derivatives acts on two numbers per
  point, not on K + 1).

Differentiable (used for training too); results agree with madnis' to float rounding
(tests/test_models.py compares forward, inverse and log-determinants).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(unnormalized: Tensor, low: float, high: float, minimum: float) -> Tensor:
    """Knot positions (..., K) of K softmax bins on [low, high], each at least ``minimum`` of it: the K − 1
    inner knots and the last one, ≈ high (madnis' order of operations, so that both round alike; contiguous
    and in place where no gradient is needed: a cumulative sum over a strided slice is several times slower)."""
    k = unnormalized.shape[-1]
    size = torch.softmax(unnormalized, dim=-1)
    if torch.is_grad_enabled() and unnormalized.requires_grad:
        return (high - low) * torch.cumsum(minimum + (1 - minimum * k) * size, dim=-1) + low
    return torch.cumsum(size.mul_(1 - minimum * k).add_(minimum), dim=-1).mul_(high - low).add_(low)


def _edges(knots: Tensor, idx: Tensor, low: float, high: float) -> tuple[Tensor, Tensor]:
    """Lower and upper edge (...,) of bin ``idx``; the outer edges are exactly low and high."""
    k = knots.shape[-1]
    lower, upper = knots.gather(-1, torch.stack([(idx - 1).clamp(min=0), idx], -1)).unbind(-1)
    return torch.where(idx == 0, low, lower), torch.where(idx == k - 1, high, upper)


def _derivative(unnormalized: Tensor) -> Tensor:
    return (MIN_DERIVATIVE + torch.nn.functional.softplus(unnormalized)) / (MIN_DERIVATIVE + math.log(2))


def _knot_derivatives(unnormalized: Tensor, idx: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Slopes at the lower and upper knot of bin ``idx``."""
    if unnormalized.shape[-1] == k + 1:
        return _derivative(unnormalized.gather(-1, torch.stack([idx, idx + 1], -1))).unbind(-1)
    if unnormalized.shape[-1] != k - 1:
        raise ValueError(f"{k} bins need K + 1 or K - 1 knot derivatives, got {unnormalized.shape[-1]}")
    inner = unnormalized.gather(-1, torch.stack([(idx - 1).clamp(min=0), idx.clamp(max=k - 2)], -1))
    d0, d1 = _derivative(inner).unbind(-1)
    edge = _derivative(torch.zeros((), dtype=inner.dtype, device=inner.device))
    return torch.where(idx == 0, edge, d0), torch.where(idx == k - 1, edge, d1)


def rq_spline(
    x: Tensor,
    unnormalized_widths: Tensor,
    unnormalized_heights: Tensor,
    unnormalized_derivatives: Tensor,
    inverse: bool = False,
    left: float = 0.0,
    right: float = 1.0,
    bottom: float = 0.0,
    top: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Monotonic RQ spline [left, right] -> [bottom, top], identity outside; returns y and log|dy/dx|
    (inverse: x of y and log|dx/dy|).

    Shapes: x (...,), widths and heights (..., K), derivatives (..., K + 1) (unnormalised network outputs),
    or (..., K − 1) for the inner knots only, the outer ones then having the unnormalised value 0, i.e.
    slope 1: a smooth join to the identity tails (Eq. 3.50).
    """
    k = unnormalized_widths.shape[-1]
    lo_in, hi_in = (bottom, top) if inverse else (left, right)
    inside = (x >= lo_in) & (x <= hi_in)
    xc = x.clamp(lo_in, hi_in)
    cw = _knots(unnormalized_widths, left, right, MIN_BIN_WIDTH)
    ch = _knots(unnormalized_heights, bottom, top, MIN_BIN_HEIGHT)
    # bin: the number of inner knots <= x (the last knot, high up to rounding, only counts for x ≈ high)
    idx = torch.searchsorted(ch if inverse else cw, xc[..., None], right=True)[..., 0].clamp_(max=k - 1)
    x0, x1 = _edges(cw, idx, left, right)
    y0, y1 = _edges(ch, idx, bottom, top)
    d0, d1 = _knot_derivatives(unnormalized_derivatives, idx, k)
    width, height = x1 - x0, y1 - y0
    delta = height / width
    slope_sum = d0 + d1 - 2 * delta
    if inverse:
        dy = xc - y0
        a = dy * slope_sum + height * (delta - d0)
        b = height * d0 - dy * slope_sum
        c = -delta * dy
        theta = (2 * c) / (-b - torch.sqrt(b * b - 4 * a * c))
        out = theta * width + x0
    else:
        theta = (xc - x0) / width
    theta_one_minus_theta = theta * (1 - theta)
    denominator = delta + slope_sum * theta_one_minus_theta
    if not inverse:
        out = y0 + height * (delta * theta.square() + d0 * theta_one_minus_theta) / denominator
    slopes = d1 * theta.square() + 2 * delta * theta_one_minus_theta + d0 * (1 - theta).square()
    numerator = delta.square() * slopes
    logdet = torch.log(numerator) - 2 * torch.log(denominator)
    if inverse:
        logdet = -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))
