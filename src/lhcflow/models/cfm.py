"""Conditional flow matching (CFM), Sec. 3.2.4.

Convention (the boundary conditions of Eq. 3.53): t = 0 is the latent N(0, 1), t = 1 the data.
The linear (rectified / optimal-transport) path is

    x_t = (1 - t) x_0 + t x_1 ,   x_0 ~ N(0, 1),  x_1 ~ p_data ,

with target velocity x_1 - x_0. This is Eq. (3.58) with the time direction reversed
(there t = 0 is data and the target is eps - x_0); both describe the same family of paths.
The loss is the squared velocity error averaged over features (MSE). Sampling integrates
dx/dt = v_theta(x, t, c) from t = 0 to 1 with fixed-step RK4; the likelihood integrates the
same ODE backwards together with the exact divergence (instantaneous change of variables,
Eq. 3.55):  log p_1(x(1)) = log p_0(x(0)) - int_0^1 tr(dv/dx) dt.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
from torch import Tensor

from .base import standard_normal_log_prob, weighted_mean


class TimeEmbedding(nn.Module):
    """t -> (t, sin(pi k t), cos(pi k t)) for k = 1..n_freq (just t if n_freq = 0)."""

    def __init__(self, n_freq: int):
        super().__init__()
        self.register_buffer("freqs", math.pi * torch.arange(1, n_freq + 1, dtype=torch.get_default_dtype()))
        self.dims = 1 + 2 * n_freq

    def forward(self, t: Tensor) -> Tensor:
        arg = t * self.freqs.to(t.dtype)
        return torch.cat([t, torch.sin(arg), torch.cos(arg)], dim=1)


def rk4_step(f: Callable[[Tensor, float], Tensor], x: Tensor, t: float, h: float) -> Tensor:
    """One classical Runge-Kutta step of dx/dt = f(x, t)."""
    k1 = f(x, t)
    k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = f(x + h * k3, t + h)
    return x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


class ConditionalCFM(nn.Module):
    """Continuous flow with velocity MLP v_theta(x_t, t, c), trained by flow matching.

    Args:
        dims_in, dims_c: event and condition features (dims_c may be 0).
        hidden, layers: MLP width and number of linear layers (SiLU activations, smooth so
            that the ODE and its divergence are well behaved).
        time_embedding: number of sinusoidal time frequencies (see ``TimeEmbedding``).
        steps: RK4 steps for ``sample`` and ``log_prob``.
        chunk_size: batch chunk for the (memory-heavier) likelihood evaluation.
    """

    def __init__(
        self,
        dims_in: int,
        dims_c: int,
        hidden: int = 256,
        layers: int = 5,
        time_embedding: int = 8,
        steps: int = 50,
        chunk_size: int = 8192,
    ):
        super().__init__()
        self.dims_in = int(dims_in)
        self.dims_c = int(dims_c)
        self.steps = int(steps)
        self.chunk_size = int(chunk_size)
        self.time_embed = TimeEmbedding(time_embedding)
        mods: list[nn.Module] = []
        width = dims_in + self.time_embed.dims + dims_c
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        mods.append(nn.Linear(width, dims_in))
        self.net = nn.Sequential(*mods)

    def _cond(self, c: Tensor | None, n: int, ref: Tensor) -> Tensor:
        if c is None:
            return ref.new_zeros(n, 0)
        return c.reshape(n, self.dims_c).to(ref.dtype)

    def velocity(self, x: Tensor, t: Tensor | float, c: Tensor | None) -> Tensor:
        """v_theta(x, t, c); ``t`` is a float or a tensor of shape (n,) or (n, 1)."""
        n = x.shape[0]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(n, 1)
        return self.net(torch.cat([x, self.time_embed(t), self._cond(c, n, x)], dim=1))

    def loss(self, x: Tensor, c: Tensor | None, weight: Tensor | None = None) -> Tensor:
        """Flow-matching loss (Eq. 3.58, t = 0 latent convention); weighted with Eq. (4.8)."""
        x0 = torch.randn_like(x)
        t = torch.rand(x.shape[0], 1, dtype=x.dtype, device=x.device)
        xt = (1 - t) * x0 + t * x
        err = self.velocity(xt, t, c) - (x - x0)
        return weighted_mean(err.pow(2).mean(dim=1), weight)

    @torch.no_grad()
    def sample(self, c: Tensor, n: int | None = None, steps: int | None = None) -> Tensor:
        """Integrate x(0) ~ N(0, 1) to t = 1; one sample per row of ``c`` (or ``n``)."""
        n = c.shape[0] if n is None else n
        steps = steps or self.steps
        ref = next(self.parameters())
        x = torch.randn(n, self.dims_in, dtype=ref.dtype, device=ref.device)
        c = self._cond(c, n, x)
        h = 1.0 / steps
        for i in range(steps):
            x = rk4_step(lambda y, t: self.velocity(y, t, c), x, i * h, h)
        return x

    def _divergence(self, x: Tensor, t: float, c: Tensor) -> tuple[Tensor, Tensor]:
        """v and its exact divergence tr(dv/dx) with one backward pass per feature."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = self.velocity(x, t, c)
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for i in range(self.dims_in):
                (g,) = torch.autograd.grad(v[:, i].sum(), x, retain_graph=i < self.dims_in - 1)
                div = div + g[:, i]
        return v.detach(), div.detach()

    def _log_prob_chunk(self, x: Tensor, c: Tensor, steps: int) -> Tensor:
        h = -1.0 / steps  # backwards in time, t = 1 -> 0

        def f(state: Tensor, t: float) -> Tensor:
            v, div = self._divergence(state[:, :-1], t, c)
            return torch.cat([v, div[:, None]], dim=1)

        state = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
        for i in range(steps):
            state = rk4_step(f, state, 1.0 + i * h, h)
        # state[:, -1] = int_1^0 div dt = - int_0^1 div dt
        return standard_normal_log_prob(state[:, :-1]) + state[:, -1]

    @torch.no_grad()
    def log_prob(self, x: Tensor, c: Tensor | None, steps: int | None = None) -> Tensor:
        """log p(x|c) via Eq. (3.55), shape (n,). Not differentiable w.r.t. the weights."""
        steps = steps or self.steps
        c = self._cond(c, x.shape[0], x)
        out = [
            self._log_prob_chunk(xc, cc, steps)
            for xc, cc in zip(x.split(self.chunk_size), c.split(self.chunk_size))
        ]
        return torch.cat(out) if out else x.new_zeros(0)

    def kl(self) -> Tensor:
        """No Bayesian weights: 0."""
        return next(self.parameters()).new_zeros(())
