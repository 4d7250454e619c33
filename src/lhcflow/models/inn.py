"""Conditional invertible neural network (cINN) with rational-quadratic spline couplings.

Sec. 3.2.2-3.2.3: the forward map G(x|c) -> z is a chain of coupling blocks. Each block keeps
the first half of the features, feeds it together with the condition into a sub-network, and
transforms the second half with a monotonic rational-quadratic spline (Eq. 3.49-3.51) on
[-B, B], linear (identity) tails outside. After every block a fixed random rotation (a
"soft permutation", Sec. 3.2.2) mixes all features; it has log|det| = 0. The latent space is
N(0, 1), so log g(x|c) = log N(G(x|c)) + log|dG/dx| (Eq. 3.34).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .base import standard_normal_log_prob, weighted_mean
from .bayesian import BayesianLinear, kl_divergence
from .splines import rq_spline


def identity_subnet(n_in: int, n_out: int, hidden: int, layers: int, linear) -> nn.Sequential:
    """ReLU MLP with ``layers`` linear layers; the last one is zero-initialised, so that a flow whose
    transformation parameters it predicts starts as the identity."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers - 1):
        mods += [linear(width, hidden), nn.ReLU()]
        width = hidden
    last = linear(width, n_out)
    with torch.no_grad():
        for name in ("weight", "weight_mu", "bias"):
            if getattr(last, name, None) is not None:
                getattr(last, name).zero_()
    mods.append(last)
    return nn.Sequential(*mods)


def random_rotation(dims: int, seed: int) -> Tensor:
    """Haar-random orthogonal matrix from the QR decomposition of a seeded Gaussian matrix."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dims, dims, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class SplineCoupling(nn.Module):
    """One RQ-spline coupling block: x_a passive, x_b -> C(x_b | NN(x_a, c))."""

    def __init__(
        self, dims_in: int, dims_c: int, hidden: int, layers: int, bins: int, tail_bound: float, linear
    ):
        super().__init__()
        self.n_pass = dims_in // 2
        self.n_trans = dims_in - self.n_pass
        self.bins = bins
        self.tail_bound = float(tail_bound)
        n_cond = self.n_pass + dims_c
        self._const_input = n_cond == 0  # 1D without condition: learn a constant spline
        # per transformed feature: K widths, K heights, K-1 inner derivatives
        self.net = identity_subnet(max(n_cond, 1), self.n_trans * (3 * bins - 1), hidden, layers, linear)

    def _params(self, x_pass: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        inp = torch.cat([x_pass, c], dim=1)
        if self._const_input:
            inp = torch.ones(x_pass.shape[0], 1, dtype=x_pass.dtype, device=x_pass.device)
        theta = self.net(inp).reshape(-1, self.n_trans, 3 * self.bins - 1)
        # K widths, K heights, K - 1 inner derivatives; the boundary ones are fixed by rq_spline to
        # Theta^d = 0 -> d = 1 (Eq. 3.50): smooth join to the linear tails
        return theta.split([self.bins, self.bins, self.bins - 1], dim=-1)

    def _transform(self, x: Tensor, c: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        x_pass, x_trans = x[:, : self.n_pass], x[:, self.n_pass :]
        w, h, d = self._params(x_pass, c)
        b = self.tail_bound
        y, logdet = rq_spline(x_trans, w, h, d, inverse=inverse, left=-b, right=b, bottom=-b, top=b)
        return torch.cat([x_pass, y], dim=1), logdet.sum(dim=1)

    def forward(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """x -> y and log|det dy/dx|."""
        return self._transform(x, c, inverse=False)

    def inverse(self, y: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """y -> x and log|det dx/dy|."""
        return self._transform(y, c, inverse=True)


class ConditionalINN(nn.Module):
    """Conditional spline INN (``bayesian=True``: Bayesian INN, Sec. 3.3 / 4.3).

    Args:
        dims_in: number of event features; dims_c: number of condition features (may be 0).
        n_blocks: coupling blocks; hidden: sub-network width; layers_per_block: linear layers
            per sub-network; bins: spline bins; tail_bound: spline interval [-B, B].
        bayesian: use ``BayesianLinear`` layers in all sub-networks.
        prior_sigma, init_log_sigma: see ``BayesianLinear``.
        seed_rotations: seed of the fixed rotation matrices (block i uses seed_rotations + i).
    Defaults follow Table A.1 (INN, Sec. 4.2) where given.
    """

    def __init__(
        self,
        dims_in: int,
        dims_c: int,
        n_blocks: int = 25,
        hidden: int = 256,
        layers_per_block: int = 3,
        bins: int = 60,
        tail_bound: float = 10.0,
        bayesian: bool = False,
        prior_sigma: float = 1.0,
        init_log_sigma: float = -9.0,
        seed_rotations: int = 0,
    ):
        super().__init__()
        self.dims_in = int(dims_in)
        self.dims_c = int(dims_c)
        self.bayesian = bool(bayesian)
        if bayesian:

            def linear(i: int, o: int) -> nn.Module:
                return BayesianLinear(i, o, prior_sigma=prior_sigma, init_log_sigma=init_log_sigma)
        else:
            linear = nn.Linear
        self.blocks = nn.ModuleList(
            SplineCoupling(dims_in, dims_c, hidden, layers_per_block, bins, tail_bound, linear)
            for _ in range(n_blocks)
        )
        for i in range(n_blocks):
            self.register_buffer(f"rotation_{i}", random_rotation(dims_in, seed_rotations + i))

    def _apply(self, fn, recurse=True):
        # keep the rotations in float64 (moved between devices, never down-cast) so that
        # they stay orthogonal to machine precision whatever dtype the network uses
        rots = {f"rotation_{i}": getattr(self, f"rotation_{i}") for i in range(len(self.blocks))}
        out = super()._apply(fn, recurse)
        for name, rot in rots.items():
            self._buffers[name] = rot.to(device=self._buffers[name].device)
        return out

    def rotations(self, dtype: torch.dtype | None = None) -> list[Tensor]:
        """The fixed rotation matrices (float64 buffers, cast to ``dtype`` if given)."""
        rots = [getattr(self, f"rotation_{i}") for i in range(len(self.blocks))]
        return rots if dtype is None else [r.to(dtype) for r in rots]

    def _cond(self, c: Tensor | None, n: int, ref: Tensor) -> Tensor:
        if c is None:
            return ref.new_zeros(n, 0)
        return c.reshape(n, self.dims_c).to(ref.dtype)

    def forward(self, x: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        """Forward map z = G(x|c) and log|det dG/dx|, shapes (n, dims_in) and (n,)."""
        c = self._cond(c, x.shape[0], x)
        logdet = x.new_zeros(x.shape[0])
        for block, rot in zip(self.blocks, self.rotations(x.dtype)):
            x, ld = block(x, c)
            x = x @ rot.T
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        """Inverse map x = G^{-1}(z|c) and log|det dG^{-1}/dz|."""
        c = self._cond(c, z.shape[0], z)
        logdet = z.new_zeros(z.shape[0])
        for block, rot in zip(reversed(self.blocks), reversed(self.rotations(z.dtype))):
            z = z @ rot
            z, ld = block.inverse(z, c)
            logdet = logdet + ld
        return z, logdet

    def log_prob(self, x: Tensor, c: Tensor | None) -> Tensor:
        """log g(x|c) = log N(G(x|c); 0, 1) + log|dG/dx| (Eq. 3.34), shape (n,)."""
        z, logdet = self.forward(x, c)
        return standard_normal_log_prob(z) + logdet

    def loss(self, x: Tensor, c: Tensor | None, weight: Tensor | None = None) -> Tensor:
        """Negative log-likelihood, Eq. (3.34); weighted with Eq. (4.8). No KL term."""
        return weighted_mean(-self.log_prob(x, c), weight)

    def sample(self, c: Tensor, n: int | None = None) -> Tensor:
        """Draw z ~ N(0, 1) and invert; one sample per row of ``c`` (or ``n`` if dims_c = 0)."""
        n = c.shape[0] if n is None else n
        ref = next(self.parameters())
        z = torch.randn(n, self.dims_in, dtype=ref.dtype, device=ref.device)
        return self.inverse(z, c)[0]

    def kl(self) -> Tensor:
        """KL of the Bayesian weights (Eq. 3.65); 0 for the plain INN."""
        return kl_divergence(self)
