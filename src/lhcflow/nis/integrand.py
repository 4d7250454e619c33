"""Multi-channel integrands: the common interface of the neural-importance-sampling chain.

An integral I = ∫ dx f(x) is split into channels (thesis Eq 2.55/5.26),

    I = Σ_i ∫_0^1 dr  α_i(x) f(x) / g_i(x)  |_{x = G_i(r)},

where each channel owns a phase-space mapping G_i from the unit hypercube to x with density g_i(x),
and the channel weights α_i(x) ≥ 0 sum to one. The toy integrands (camel, crossed ring) and the
Drell-Yan integrand all provide this interface; flat MC, VEGAS and MadNIS consume it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch


class ChannelMapping(Protocol):
    """A map G from the unit hypercube [0, 1]^dim to the integration space, with its density g."""

    dim: int

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map uniform points r, shape (n, dim), to x, shape (n, D); return (x, log g(x))."""

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log g(x) at arbitrary points x, shape (n, D) -> (n,) (-inf outside the image of G)."""


@dataclass
class MultiChannelIntegrand:
    """f(x) ≥ 0 with its channel mappings and an optional channel-weight prior α(x)."""

    name: str
    dim: int
    function: Callable[[torch.Tensor], torch.Tensor]
    channels: Sequence[ChannelMapping]
    prior: Callable[[torch.Tensor], torch.Tensor] | None = None
    exact: float | None = None
    unit: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """α_i(x), shape (n, n_channels); uniform 1/n_channels when no prior is set."""
        if self.prior is None:
            return torch.full((x.shape[0], self.n_channels), 1.0 / self.n_channels, dtype=x.dtype, device=x.device)
        return self.prior(x)


def uniform_prior(n_channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Constant channel weights α_i = 1/n_channels."""
    return lambda x: torch.full((x.shape[0], n_channels), 1.0 / n_channels, dtype=x.dtype, device=x.device)


def mapping_prior(channels: Sequence[ChannelMapping],
                  beta: Sequence[float] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """α_i(x) = β_i g_i(x) / Σ_j β_j g_j(x): Sherpa-like prior (Eq 2.63), optimal for the camel (Eq 5.27)."""
    log_beta = torch.log(torch.as_tensor(beta if beta is not None else [1.0] * len(channels), dtype=torch.float64))

    def prior(x: torch.Tensor) -> torch.Tensor:
        log_g = torch.stack([c.log_density(x) for c in channels], dim=-1) + log_beta.to(x)
        return torch.softmax(log_g, dim=-1)

    return prior
