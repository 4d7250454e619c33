"""Multi-channel integrands: the common interface of the neural-importance-sampling chain.

An integral I = ∫ dx f(x) is split into channels (thesis Eq 2.55/5.26),

    I = Σ_i ∫_0^1 dr  α_i(x) f(x) / g_i(x)  |_{x = G_i(r)},

where each channel owns a phase-space mapping G_i from the unit hypercube to x with density g_i(x),
and the channel weights α_i(x) ≥ 0 sum to one. The toy integrands (camel, crossed ring) and the
Drell-Yan integrand all provide this interface; flat MC, VEGAS and MadNIS consume it through
:class:`ChannelEvaluator`, the per-channel integrand on the unit hypercube.
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


class ChannelEvaluator:
    """The per-channel integrand on the unit hypercube, α_i(x) f(x)/g_i(x) at x = G_i(r) (Eq 2.50).

    Counts integrand calls; points where the mapping or the integrand is not finite get weight 0
    (counted in ``n_nonfinite``) so that a stray r ∈ {0, 1} cannot poison a training batch.
    """

    def __init__(self, integrand: MultiChannelIntegrand, device: torch.device, dtype: torch.dtype = torch.float64):
        self.integrand = integrand
        self.device = device
        self.dtype = dtype
        self.calls = 0
        self.n_nonfinite = 0
        dims = {c.dim for c in integrand.channels}
        if len(dims) != 1:
            raise ValueError(f"all channel mappings need the same unit-hypercube dimension, got {dims}")
        self.unit_dim = dims.pop()

    def map(self, r: torch.Tensor, channels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = G_i(r) and log g_i(x) for points r of channels ``channels``."""
        x = r.new_zeros((r.shape[0], self.integrand.dim))
        log_g = r.new_zeros(r.shape[0])
        for i in torch.unique(channels).tolist():
            mask = channels == i
            xi, lgi = self.integrand.channels[i].sample(r[mask])
            x[mask] = xi.to(x)
            log_g[mask] = lgi.to(log_g)
        return x, log_g

    def __call__(self, r: torch.Tensor, channels: torch.Tensor | int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(α-free integrand f/g_i, x, prior α(x)) for unit points r; results on r's device."""
        out_device = r.device
        r = r.to(self.device, self.dtype)
        if isinstance(channels, int):
            channels = torch.full((r.shape[0],), channels, dtype=torch.long, device=self.device)
        channels = channels.to(self.device)
        x, log_g = self.map(r, channels)
        bad_x = ~torch.isfinite(x).all(dim=1) | ~torch.isfinite(log_g)
        x = torch.where(bad_x[:, None], torch.zeros_like(x), x)
        f = self.integrand.function(x).to(self.dtype).reshape(-1)
        self.calls += r.shape[0]
        f_over_g = f * torch.exp(-log_g)
        bad = bad_x | ~torch.isfinite(f_over_g)
        self.n_nonfinite += int(bad.sum())
        f_over_g = torch.where(bad, torch.zeros_like(f_over_g), f_over_g)
        alpha = self.integrand.channel_weights(x).to(self.dtype)
        bad_alpha = ~torch.isfinite(alpha).all(dim=1) | (alpha.sum(dim=1) <= 0)
        if bad_alpha.any():
            alpha = torch.where(bad_alpha[:, None], torch.full_like(alpha, 1.0 / alpha.shape[1]), alpha)
        return f_over_g.to(out_device), x.to(out_device), alpha.to(out_device)

    def channel_integrand(self, r: torch.Tensor, channel: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(α_i f/g_i, x) for points r of one channel i."""
        f_over_g, x, alpha = self(r, channel)
        return alpha[:, channel] * f_over_g, x
