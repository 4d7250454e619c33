"""The integrators without a network, the baselines of thesis Tabs 5.1/5.2: flat MC and multi-channel VEGAS.

Both implement :class:`~lhcflow.nis.base_integrator.BaseIntegrator`: flat MC samples r uniformly in
every channel (q_i = 1), VEGAS one adaptive grid per channel (§2.2.2) whose last variances set
N_i ∝ σ_i for the evaluation (Eq 2.55).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import torch

from lhcflow.nis.base_integrator import BaseIntegrator
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.sampling import allocate, subseed, synchronize, torch_generator
from lhcflow.nis.settings import DEFAULT_VEGAS_CONFIG, merge_settings


class FlatIntegrator(BaseIntegrator):
    """No adaptation: r uniform in each channel, N/n_c calls per channel (Eq 2.50 with q_i = 1)."""

    method = "flat"

    def _sample_channel(self, channel, n, generator):
        r = torch.rand((n, self.unit_dim), generator=generator, device=self.device, dtype=torch.float64)
        w, x = self.evaluator.channel_integrand(r, channel)
        return r, x, w


class VegasIntegrator(BaseIntegrator):
    """MG5-style multi-channel VEGAS: one adaptive grid per channel on the unit hypercube (§2.2.2).

    Each iteration samples every channel with its grid (``vegas.AdaptiveMap``), accumulates the
    training data (α_i f/g_i · jac)² per increment (Eq 2.41) and adapts the increments with
    damping α. The variances of the last iteration fix N_i ∝ σ_i for the evaluation (Eq 2.55).
    """

    method = "vegas"

    def __init__(self, integrand: MultiChannelIntegrand, config: dict[str, Any] | None = None,
                 device: str | torch.device | None = None, seed: int | None = 0):
        super().__init__(integrand, device, seed)
        import vegas

        self.config = merge_settings(DEFAULT_VEGAS_CONFIG, config)
        self.grids = [vegas.AdaptiveMap(grid=[[0.0, 1.0]] * self.unit_dim, ninc=int(self.config["bins"]))
                      for _ in range(self.n_channels)]
        self.channel_sigmas: torch.Tensor | None = None
        self._cpu_rng = torch_generator(subseed(seed, "vegas-cpu"), torch.device("cpu"))

    def _map(self, channel: int, n: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = torch.rand((n, self.unit_dim), generator=generator, dtype=torch.float64).numpy()
        r = np.empty_like(u)
        jac = np.empty(n, dtype=np.float64)
        self.grids[channel].map(u, r, jac)
        return u, r, jac

    def _sample_channel(self, channel, n, generator):
        cpu_gen = generator if generator.device.type == "cpu" else self._cpu_rng
        _, r_np, jac = self._map(channel, n, cpu_gen)
        r = torch.from_numpy(r_np).to(self.device)
        w, x = self.evaluator.channel_integrand(r, channel)
        return r, x, w * torch.from_numpy(jac).to(w)

    @contextlib.contextmanager
    def _random_state(self, seed):
        yield self._cpu_rng if seed is None else torch_generator(seed, torch.device("cpu"))

    def channel_allocation(self, n: int) -> list[int]:
        sig = self.channel_sigmas if self.config["eval_channel_mode"] == "variance" else None
        return allocate(n, sig, self.n_channels, self.config["eval_uniform_ratio"])

    def train(self, seed: int | None = None, progress: bool = False) -> None:
        """VEGAS adaptation: ``iterations`` × ``samples_per_iteration`` calls, evenly over channels."""
        from tqdm.auto import tqdm

        cfg = self.config
        gen = torch_generator(subseed(self.seed if seed is None else seed, "vegas-train"), torch.device("cpu"))
        calls0 = self.evaluator.calls
        synchronize(self.device)
        t0 = time.perf_counter()
        per_channel = allocate(int(cfg["samples_per_iteration"]), None, self.n_channels)
        for it in tqdm(range(int(cfg["iterations"])), disable=not progress, desc="VEGAS", leave=False):
            means, variances = torch.zeros(self.n_channels, dtype=torch.float64), torch.zeros(self.n_channels, dtype=torch.float64)
            for c, n_c in enumerate(per_channel):
                if n_c == 0:
                    continue
                u, r_np, jac = self._map(c, n_c, gen)
                w, _ = self.evaluator.channel_integrand(torch.from_numpy(r_np).to(self.device), c)
                w = w.cpu().double() * torch.from_numpy(jac)
                self.grids[c].add_training_data(u, w.square().numpy())
                self.grids[c].adapt(alpha=float(cfg["damping"]))
                means[c] = w.mean()
                variances[c] = w.var(correction=1) if n_c > 1 else 0.0
            self.channel_sigmas = variances.sqrt()
            total = means.sum().item()
            counts = torch.as_tensor(per_channel, dtype=torch.float64).clamp(min=1)
            rel_var = (sum(per_channel) * (variances / counts).sum() / total**2).item() if total else float("nan")
            self.variance_history.append((it + 1, rel_var))
            self.loss_history.append((it + 1, rel_var))
        synchronize(self.device)
        self.time_train += time.perf_counter() - t0
        self.n_calls_train += self.evaluator.calls - calls0
