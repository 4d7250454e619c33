"""Multi-channel affine-coupling flow on the unit hypercube, for MadNIS (thesis §3.2.2-3.2.3, §5.2.2).

The crossed-ring study (Tab 5.2, Figs 5.7-5.8, Tab A.4) uses the less expressive affine coupling
blocks with soft permutations, since spline flows learn the crossed ring without needing channels.
``madnis`` only ships rational-quadratic spline flows (``madnis.nn.flow.Flow``), so this module
provides the affine variant with the same ``Distribution`` interface, for ``Integrator(flow=...)``.

Forward direction (density evaluation), per channel:

    x ∈ (0,1)^d  →  u = Φ⁻¹(x)  →  [affine coupling → fixed permutation] × blocks  →  z ~ N(0,1).

Each coupling keeps the first ⌊d/2⌋ features and transforms the rest as y = exp(r) x + s (Eq 3.47),
with the log-scale soft-clamped to r = (2α/π) arctan(r̃/α) (Eq 3.48); r̃ and s come from a
``StackedMLP`` (independent weights per channel, last layer zero: the flow starts at the identity,
i.e. uniform on the hypercube). The permutation after each block is a fixed, seeded random rotation
("soft", for a Gaussian latent space, ref. [170]), or a hard "exchange"/"random" permutation, all
stored as orthogonal matrices (log|det| = 0) in a buffer, so a saved state reproduces them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from madnis.nn.flow import Distribution
from madnis.nn.mlp import StackedMLP
from torch import Tensor, nn

from lhcflow.models.base import standard_normal_log_prob
from lhcflow.models.inn import random_rotation

PERMUTATIONS = ("soft", "exchange", "random")

Channel = Tensor | list[int] | int | None


def soft_clamp(r: Tensor, alpha: float) -> Tensor:
    """(2α/π) arctan(r/α): ≈ r for |r| ≪ α, bounded by ±α (Eq 3.48)."""
    return (2 * alpha / math.pi) * torch.atan(r / alpha)


def permutation_matrices(dims: int, blocks: int, kind: str, seed: int) -> Tensor:
    """(blocks, dims, dims) orthogonal matrices P_i, applied as x → x P_iᵀ after block i."""
    if kind not in PERMUTATIONS:
        raise ValueError(f"unknown permutations {kind!r}; choose from {PERMUTATIONS}")
    if kind == "soft":
        return torch.stack([random_rotation(dims, seed + i) for i in range(blocks)])
    eye = torch.eye(dims, dtype=torch.float64)
    if kind == "exchange":  # the transformed half becomes the condition of the next block
        order = torch.cat([torch.arange(dims // 2, dims), torch.arange(dims // 2)])
        return eye[order].expand(blocks, dims, dims).clone()
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([eye[torch.randperm(dims, generator=gen)] for _ in range(blocks)])


class AffineCouplingFlow(nn.Module, Distribution):
    """Multi-channel flow on [0,1]^d: inverse normal CDF, affine couplings, fixed permutations.

    Implements ``madnis.nn.flow.Distribution`` (``sample``, ``log_prob``, ``prob``) with madnis'
    meaning of ``channel``: a tensor of channel indices, a list of per-channel counts (samples
    ordered by channel), one channel index, or None (equal counts per channel). Unconditional.

    Args:
        dims: dimension d of the unit hypercube (d = 1 conditions the coupling on a constant).
        channels: number of independent flows.
        blocks: coupling blocks; layers, units, activation: their ``StackedMLP`` subnets.
        permutations: "soft" (random rotations), "exchange" or "random" (hard permutations).
        clamp: α of the soft clamping of the log-scale (Eq 3.48).
        seed: seed of the permutations; None draws it from the global torch RNG.
    """

    def __init__(self, dims: int, channels: int = 1, blocks: int = 6, layers: int = 3, units: int = 32,
                 activation: Callable[[], nn.Module] = nn.LeakyReLU, permutations: str = "soft",
                 clamp: float = 2.0, seed: int | None = 0):
        super().__init__()
        if dims < 1 or channels < 1 or blocks < 1:
            raise ValueError(f"need dims, channels, blocks >= 1, got {dims}, {channels}, {blocks}")
        if not clamp > 0:
            raise ValueError(f"clamp must be positive, got {clamp}")
        self.dims = dims
        self.channels = channels
        self.clamp = float(clamp)
        self.n_cond = dims // 2
        self.n_trans = dims - self.n_cond
        if seed is None:
            seed = int(torch.randint(2**31 - 1, ()))
        self.subnets = nn.ModuleList(
            StackedMLP(max(self.n_cond, 1), 2 * self.n_trans, channels, layers, units, activation)
            for _ in range(blocks)
        )
        self.register_buffer("rotations", permutation_matrices(dims, blocks, permutations, seed))

    # ------------------------------------------------------------------ transformation
    def _coupling(self, i: int, x: Tensor, channel: list[int] | int | None,
                  inverse: bool) -> tuple[Tensor, Tensor]:
        """Affine coupling i (Eq 3.47) and its log|det|."""
        x_cond, x_trans = x[:, : self.n_cond], x[:, self.n_cond:]
        net_in = x_cond if self.n_cond else x.new_ones((x.shape[0], 1))
        log_scale, shift = self.subnets[i](net_in, channel).reshape(-1, 2, self.n_trans).unbind(dim=1)
        log_scale = soft_clamp(log_scale, self.clamp)
        if inverse:
            y, log_det = (x_trans - shift) * torch.exp(-log_scale), -log_scale.sum(dim=1)
        else:
            y, log_det = x_trans * torch.exp(log_scale) + shift, log_scale.sum(dim=1)
        return torch.cat([x_cond, y], dim=1), log_det

    def transform(self, x: Tensor, channel: Channel = None, inverse: bool = False) -> tuple[Tensor, Tensor]:
        """x ∈ (0,1)^d → latent z (or z → x for ``inverse``) and log|det| of that direction."""
        order = None
        if isinstance(channel, Tensor):  # sort by channel, evaluate per channel, restore the order
            order = torch.argsort(channel, stable=True)
            x = x[order]
            channel = torch.bincount(channel, minlength=self.channels).tolist()
        elif channel is None:  # equal counts (madnis 1.0 StackedMLP's own None path is broken)
            if x.shape[0] % self.channels:
                raise ValueError(f"channel=None needs a multiple of {self.channels} points, got {x.shape[0]}")
            channel = [x.shape[0] // self.channels] * self.channels
        eps = torch.finfo(x.dtype).eps
        if inverse:
            log_det = x.new_zeros(x.shape[0])
            for i in reversed(range(len(self.subnets))):
                x = x @ self.rotations[i].to(x.dtype)
                x, block_log_det = self._coupling(i, x, channel, inverse=True)
                log_det = log_det + block_log_det
            # u → Φ(u), dΦ/du = N(u); the clamp keeps x strictly inside (0, 1) (it only acts for
            # |u| ≳ 8 in float64, where log|det| stays that of the unclamped point)
            log_det = log_det + standard_normal_log_prob(x)
            x = torch.special.ndtr(x).clamp(eps, 1 - eps)
        else:
            x = torch.special.ndtri(x.clamp(eps, 1 - eps))
            log_det = -standard_normal_log_prob(x)
            for i in range(len(self.subnets)):
                x, block_log_det = self._coupling(i, x, channel, inverse=False)
                x = x @ self.rotations[i].to(x.dtype).T
                log_det = log_det + block_log_det
        if order is not None:
            inverse_order = torch.argsort(order)
            x, log_det = x[inverse_order], log_det[inverse_order]
        return x, log_det

    # ------------------------------------------------------------------ Distribution protocol
    @staticmethod
    def _unconditional(c: Tensor | None) -> None:
        if c is not None:
            raise ValueError("AffineCouplingFlow is unconditional: c must be None")

    def log_prob(self, x: Tensor, c: Tensor | None = None, channel: Channel = None) -> Tensor:
        """log q(x) = log N(z) + log|dz/dx|, shape (n,)."""
        self._unconditional(c)
        z, log_det = self.transform(x, channel)
        return standard_normal_log_prob(z) + log_det

    def prob(self, x: Tensor, c: Tensor | None = None, channel: Channel = None) -> Tensor:
        return self.log_prob(x, c, channel).exp()

    def sample(self, n: int, c: Tensor | None = None, channel: Channel = None, return_log_prob: bool = False,
               return_prob: bool = False, device: torch.device | None = None,
               dtype: torch.dtype | None = None) -> Tensor | tuple[Tensor, ...]:
        """n points in (0,1)^d (global torch RNG), optionally with their log q and q."""
        self._unconditional(c)
        weight = self.subnets[0].weights[0]
        z = torch.randn((n, self.dims), device=device or weight.device, dtype=dtype or weight.dtype)
        x, log_det = self.transform(z, channel, inverse=True)
        log_prob = standard_normal_log_prob(z) - log_det
        extra = []
        if return_log_prob:
            extra.append(log_prob)
        if return_prob:
            extra.append(log_prob.exp())
        return (x, *extra) if extra else x
