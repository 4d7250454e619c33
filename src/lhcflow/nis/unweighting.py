"""Hit-or-miss unweighting of weighted events (thesis §2.2.5, Eqs 2.64-2.67).

An event with weight w is kept if r < w/w_max with r uniform in [0, 1). Events with w > w_max
(*overweights*, possible because w_max is the robust replica estimate of
:func:`lhcflow.nis.metrics.robust_w_max`, not the true maximum) are always kept. They are
counted, and, in the default ``mode="partial"``, keep the weight w̃ = max(w/w_max, 1) of partial
unweighting (Eq 2.66) so that the sample stays unbiased. ``mode="cap"`` sets w̃ = 1 for them
instead (classic hit-or-miss with a truncated w_max: biased by the reported overweight excess).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from lhcflow.nis.metrics import robust_w_max


@dataclass
class UnweightingResult:
    """Outcome of one hit-or-miss pass."""

    accepted: torch.Tensor       # indices of the kept events into the input weights, ascending
    weights: torch.Tensor        # w̃ of the kept events: 1, or w/w_max > 1 for overweights (Eq 2.66)
    w_max: float
    n_input: int
    n_overweight: int            # kept events with w > w_max
    overweight_excess: float     # Σ(w̃ - 1) / Σ w̃: share of the cross section above unit weight

    @property
    def n_accepted(self) -> int:
        return len(self.accepted)

    @property
    def efficiency(self) -> float:
        """Acceptance rate, the empirical ε of Eq 2.67."""
        return self.n_accepted / self.n_input if self.n_input else 0.0

    @property
    def overweight_fraction(self) -> float:
        """Fraction of the kept events that are overweights."""
        return self.n_overweight / self.n_accepted if self.n_accepted else 0.0


def unweight(weights: torch.Tensor, w_max: float | None = None, *, seed: int | None = None,
             generator: torch.Generator | None = None, mode: Literal["partial", "cap"] = "partial",
             n_replicas: int = 100, replica_size: int | None = None) -> UnweightingResult:
    """Hit-or-miss unweighting of non-negative ``weights`` with threshold ``w_max``.

    ``w_max=None`` uses the robust replica median (thesis line 539) of these weights. The
    uniform numbers come from ``generator`` or, if None, a generator seeded with ``seed``
    (default 0) on the weights' device, so the result is reproducible.
    """
    w = torch.as_tensor(weights)
    if not w.is_floating_point():
        w = w.to(torch.float64)
    w = w.reshape(-1)
    if (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError("hit-or-miss unweighting needs finite, non-negative weights")
    if generator is None:
        generator = torch.Generator(device=w.device)
        generator.manual_seed(0 if seed is None else int(seed))
    if w_max is None:
        w_max = robust_w_max(w, n_replicas, replica_size, generator=generator) if (w > 0).any() else 1.0
    if not w_max > 0:
        raise ValueError(f"w_max must be positive, got {w_max}")
    ratio = w / w_max
    r = torch.rand(len(w), generator=generator, device=w.device, dtype=w.dtype)
    keep = r < ratio
    accepted = torch.nonzero(keep).reshape(-1)
    kept_ratio = ratio[accepted]
    over = kept_ratio > 1
    if mode == "partial":
        w_tilde = kept_ratio.clamp(min=1.0)
    elif mode == "cap":
        w_tilde = torch.ones_like(kept_ratio)
    else:
        raise ValueError(f"unknown unweighting mode {mode!r}")
    total = kept_ratio.clamp(min=1.0).sum()
    excess = ((kept_ratio.clamp(min=1.0) - 1).sum() / total).item() if len(accepted) else 0.0
    return UnweightingResult(accepted=accepted, weights=w_tilde, w_max=float(w_max), n_input=len(w),
                             n_overweight=int(over.sum()), overweight_excess=excess)
