"""Flat MC, multi-channel VEGAS and MadNIS for any :class:`MultiChannelIntegrand` (thesis §2.2, Ch. 5).

All three integrators estimate the multi-channel integral (Eq 2.50/5.4)

    I = Σ_i ⟨ α_i(x) f(x) / (g_i(x) q_i(r)) ⟩_{r ~ q_i},   x = G_i(r),

where G_i is the analytic channel mapping of the integrand, q_i a density on the unit hypercube
(flat: q_i = 1; VEGAS: the adapted grid; MadNIS: a normalising flow, Eq 5.9) and α_i the channel
weights (the integrand's prior, optionally corrected by the MadNIS channel-weight network, Eq 5.8).
Channel i receives N_i of the N evaluation calls: N/n_c each, or N_i ∝ σ_i (Eq 2.55, stratified
sampling) from the variances measured during training. The shared estimator gives

    integral, error = sqrt(Σ_i σ_i²/N_i) (Eq 2.53), rel_std = sqrt(N)·error/I (σ/I per event),

and the combined event weights w = (N/N_i)·α_i f/(g_i q_i), whose mean is I, feed the unweighting
efficiency (Eq 2.67, robust w_max of §2.2.5) and hit-or-miss unweighting.

Entry points: :func:`run_flat`, :func:`run_vegas`, :func:`run_madnis` (or :func:`run_integrator`
with a method name) return an :class:`IntegrationResult`; the trained integrator is attached as
``result.integrator`` for :meth:`BaseIntegrator.sample_weighted` / ``sample_unweighted``.
:class:`MadnisIntegrator` saves and reloads its trained state (:meth:`MadnisIntegrator.save`,
:meth:`MadnisIntegrator.load`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.metrics import (
    effective_sample_size,
    relative_std,
    robust_w_max,
    unweighting_stats,
    weight_histogram,
)
from lhcflow.nis.settings import (
    DEFAULT_MADNIS_CONFIG,
    DEFAULT_VEGAS_CONFIG,
    madnis_steps,
    merge_settings,
    vegas_init_settings,
)
from lhcflow.nis.unweighting import unweight
from lhcflow.seeds import derive_seed
from lhcflow.training.checkpoint import fingerprint, read_checkpoint, restore_rng_state, write_checkpoint

log = logging.getLogger(__name__)

METHODS = ("flat", "vegas", "madnis")


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
}


# =========================================================================== helpers

def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run a block with the global torch RNG seeded (madnis draws from it), restoring it afterwards."""
    if seed is None:
        yield
        return
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def _subseed(seed: int | None, *labels: object) -> int | None:
    return None if seed is None else derive_seed(int(seed), *labels, modulus=2**31 - 1)


def _generator(seed: int | None, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _buffer_tensors(buffer) -> dict[str, torch.Tensor] | None:
    """Contents of a madnis replay buffer, which its state_dict leaves out (persistent=False)."""
    if buffer is None:
        return None
    names = [k for k in buffer.keys if getattr(buffer, k) is not None] + ["_size", "_store_index"]
    return {name: getattr(buffer, name).detach().cpu().clone() for name in names}


def allocate(n: int, sigmas: torch.Tensor | None, n_channels: int, uniform_ratio: float = 0.0,
             active: torch.Tensor | None = None) -> list[int]:
    """Split n calls over channels: a share ``uniform_ratio`` evenly, the rest ∝ σ_i (Eq 2.55).

    ``sigmas=None`` (or non-positive/NaN everywhere) gives the even split N/n_c. Inactive
    (dropped) channels get no calls. Counts are integers summing to n (largest remainder).
    """
    act = torch.ones(n_channels, dtype=torch.bool) if active is None else active.detach().cpu().bool()
    n_act = int(act.sum())
    even = act.double() / n_act
    if sigmas is None:
        share = even
    else:
        s = torch.nan_to_num(sigmas.detach().cpu().double(), nan=0.0).clamp(min=0) * act
        share = even if s.sum() <= 0 else uniform_ratio * even + (1 - uniform_ratio) * s / s.sum()
    exact = share * n
    counts = exact.floor().long()
    rest = n - int(counts.sum())
    if rest > 0:
        order = torch.argsort(exact - counts, descending=True)
        counts[order[:rest]] += 1
    return counts.tolist()


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


# =========================================================================== samples and results

@dataclass
class WeightedSample:
    """Weighted events of all channels, channel-ordered. ``weights.mean()`` estimates I."""

    x: torch.Tensor                 # (n, D) physical points, x = G_i(r)
    weights: torch.Tensor           # (n,) combined weights (N/N_i) α_i f/(g_i q_i)
    channels: torch.Tensor          # (n,) channel index
    r: torch.Tensor                 # (n, d) unit-hypercube points
    channel_counts: list[int]       # N_i

    @property
    def channel_weights(self) -> torch.Tensor:
        """α_i f/(g_i q_i): the per-channel estimator of I_i (without N/N_i)."""
        counts = torch.as_tensor(self.channel_counts, device=self.weights.device, dtype=self.weights.dtype)
        return self.weights * counts[self.channels] / len(self.weights)

    @staticmethod
    def from_channels(parts: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]], n_channels: int,
                      dim: int, unit_dim: int, device: torch.device) -> WeightedSample:
        """Build from per-channel pieces (channel, r, x, α_i f/(g_i q_i))."""
        counts = [0] * n_channels
        for c, r, _, _ in parts:
            counts[c] += len(r)
        n = sum(counts)
        if not parts:
            empty = torch.zeros((0,), dtype=torch.float64, device=device)
            return WeightedSample(empty.reshape(0, dim), empty, empty.long(), empty.reshape(0, unit_dim), counts)
        r = torch.cat([p[1] for p in parts])
        x = torch.cat([p[2] for p in parts])
        w_channel = torch.cat([p[3] for p in parts]).to(torch.float64)
        ch = torch.cat([torch.full((len(p[1]),), p[0], dtype=torch.long, device=r.device) for p in parts])
        factor = n / torch.as_tensor(counts, dtype=torch.float64, device=r.device).clamp(min=1)
        return WeightedSample(x=x, weights=w_channel * factor[ch], channels=ch, r=r, channel_counts=counts)


def estimate(sample: WeightedSample) -> dict[str, Any]:
    """Multi-channel estimate (Eqs 2.50, 2.53): integral, error, σ/I per event, channel integrals."""
    n = len(sample.weights)
    n_ch = len(sample.channel_counts)
    w = sample.channel_weights
    ch = sample.channels
    counts = torch.as_tensor(sample.channel_counts, dtype=torch.float64, device=w.device)
    means = torch.bincount(ch, weights=w, minlength=n_ch) / counts.clamp(min=1)
    sq = torch.bincount(ch, weights=(w - means[ch]).square(), minlength=n_ch)
    variances = sq / (counts - 1).clamp(min=1)
    integral = means.sum().item()
    error = torch.sqrt((variances / counts.clamp(min=1) * (counts > 0)).sum()).item()
    return {
        "integral": integral,
        "error": error,
        "rel_error": error / abs(integral) if integral else float("nan"),
        "rel_std": math.sqrt(n) * error / abs(integral) if integral else float("nan"),
        "rel_std_weights": relative_std(sample.weights) if n > 1 else float("nan"),
        "channel_integrals": means.tolist(),
        "channel_stds": variances.sqrt().tolist(),
        "channel_counts": list(sample.channel_counts),
    }


@dataclass
class UnweightedSample:
    """Unweighted events from hit-or-miss (§2.2.5) with the weighted pass that produced them."""

    x: torch.Tensor                 # (n, D) physical points
    channels: torch.Tensor          # (n,) channel that generated the event
    weights: torch.Tensor           # (n,) w̃: 1, or w/w_max > 1 for kept overweights (Eq 2.66)
    w_max: float
    n_weighted: int                 # weighted events (= integrand calls) spent
    n_overweight: int
    cross_section: float            # ⟨w⟩ of all weighted events drawn
    cross_section_error: float
    n_accepted: int = -1            # events hit-or-miss kept from all batches (≥ n, before truncation)

    @property
    def efficiency(self) -> float:
        """Kept over drawn events, counting every event kept before the last batch was truncated to n."""
        kept = self.n_accepted if self.n_accepted >= 0 else len(self.weights)
        return kept / self.n_weighted if self.n_weighted else 0.0


@dataclass
class IntegrationResult:
    """One integration run; the metrics of Tabs 5.1/5.2 and Figs 5.10/5.13."""

    method: str
    integrand: str
    seed: int | None
    integral: float
    error: float
    rel_error: float
    rel_std: float                  # σ/I per event = sqrt(N)·error/I (thesis §5.3.2)
    rel_std_weights: float          # std/mean of the combined event weights
    unweighting_efficiency: float   # ε = ⟨w⟩/w_max, robust w_max (Eq 2.67, line 539)
    unweighting_efficiency_after_cuts: float
    w_max: float
    ess_fraction: float             # (Σw)²/Σw² / N
    n_calls_train: int
    n_calls_eval: int
    n_calls_monitor: int            # calls spent only on the variance history
    time_train: float               # seconds
    time_eval: float
    exact: float | None = None
    pull: float | None = None       # (I - exact)/error
    channel_integrals: list[float] = field(default_factory=list)
    channel_counts: list[int] = field(default_factory=list)
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    variance_history: list[tuple[int, float]] = field(default_factory=list)   # (step, σ²/I² mean)
    variance_spread: list[tuple[int, float, float]] = field(default_factory=list)  # (step, q05, q95)
    weight_histogram: list[list[float]] = field(default_factory=list)  # [edges, counts] of w/⟨w⟩ (evaluation)
    extra: dict[str, Any] = field(default_factory=dict)
    integrator: BaseIntegrator | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (without the integrator object)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "integrator"}


# =========================================================================== integrators

class BaseIntegrator:
    """Common sampling, evaluation and unweighting for the three methods."""

    method = "base"

    def __init__(self, integrand: MultiChannelIntegrand, device: str | torch.device | None = None,
                 seed: int | None = 0):
        self.integrand = integrand
        self.device = _device(device)
        self.seed = seed
        self.evaluator = ChannelEvaluator(integrand, self.device)
        self.n_channels = integrand.n_channels
        self.unit_dim = self.evaluator.unit_dim
        self._rng = _generator(_subseed(seed, "sampling"), self.device)
        self.n_calls_train = 0
        self.time_train = 0.0
        self.loss_history: list[tuple[int, float]] = []
        self.variance_history: list[tuple[int, float]] = []
        self.variance_spread: list[tuple[int, float, float]] = []
        self.n_calls_monitor = 0

    # ------------------------------------------------------------------ to implement
    def channel_allocation(self, n: int) -> list[int]:
        """N_i for an evaluation with n calls."""
        return allocate(n, None, self.n_channels)

    def _sample_channel(self, channel: int, n: int, generator: torch.Generator | None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(r, x, α_i f/(g_i q_i)) for n points of one channel."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _random_state(self, seed: int | None) -> Iterator[torch.Generator]:
        yield self._rng if seed is None else _generator(seed, self.device)

    # ------------------------------------------------------------------ sampling
    def sample_weighted(self, n: int, seed: int | None = None, batch_size: int = 100_000) -> WeightedSample:
        """n weighted events, N_i per channel from :meth:`channel_allocation`; x in physical space."""
        parts = []
        with self._random_state(seed) as gen:
            with torch.no_grad():
                for c, n_c in enumerate(self.channel_allocation(n)):
                    for start in range(0, n_c, batch_size):
                        m = min(batch_size, n_c - start)
                        r, x, w = self._sample_channel(c, m, gen)
                        parts.append((c, r, x, w))
        return WeightedSample.from_channels(parts, self.n_channels, self.integrand.dim, self.unit_dim, self.device)

    def sample_unweighted(self, n: int, seed: int | None = None, w_max: float | None = None, *,
                          batch_size: int = 100_000, max_calls: int | None = None, mode: str = "partial",
                          n_replicas: int = 100) -> UnweightedSample:
        """n unweighted events by hit-or-miss on weighted batches (§2.2.5).

        ``w_max=None`` takes the robust replica median (line 539) of a first weighted batch of
        ``batch_size`` events, which is then unweighted too. Overweights are kept with w̃ > 1
        (``mode="partial"``, Eq 2.66) or set to 1 (``mode="cap"``) and counted. Stops with fewer
        events if ``max_calls`` weighted events have been drawn.
        """
        gen_hm = _generator(_subseed(seed, "hit-or-miss"), self.device)
        xs, chs, ws, overs = [], [], [], []
        n_acc = n_weighted = batch = 0
        w_sum = w_sq = 0.0
        while n_acc < n and (max_calls is None or n_weighted < max_calls):
            sample = self.sample_weighted(batch_size, seed=_subseed(seed, "unweighted-batch", batch))
            batch += 1
            w = sample.weights
            n_weighted += len(w)
            w_sum += w.sum().item()
            w_sq += w.square().sum().item()
            if w_max is None:
                w_max = robust_w_max(w, n_replicas, generator=gen_hm)
            res = unweight(w, w_max, generator=gen_hm, mode=mode)
            # events are channel-ordered: shuffle so that truncating the last batch is unbiased
            perm = torch.randperm(res.n_accepted, generator=gen_hm, device=w.device)
            idx = res.accepted[perm]
            xs.append(sample.x[idx])
            chs.append(sample.channels[idx])
            ws.append(res.weights[perm])
            overs.append(w[idx] > w_max)
            n_acc += len(idx)
        mean = w_sum / max(n_weighted, 1)
        var = max(w_sq / max(n_weighted, 1) - mean**2, 0.0)
        return UnweightedSample(x=torch.cat(xs)[:n], channels=torch.cat(chs)[:n], weights=torch.cat(ws)[:n],
                                w_max=float(w_max), n_weighted=n_weighted,
                                n_overweight=int(torch.cat(overs)[:n].sum()), cross_section=mean,
                                cross_section_error=math.sqrt(var / max(n_weighted - 1, 1)), n_accepted=n_acc)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, n: int, seed: int | None = None, *, n_replicas: int = 100,
                 batch_size: int = 100_000) -> dict[str, Any]:
        """Integral, errors, σ/I, unweighting efficiency from n fresh evaluation calls."""
        calls0 = self.evaluator.calls
        _sync(self.device)
        t0 = time.perf_counter()
        sample = self.sample_weighted(n, seed=seed, batch_size=batch_size)
        _sync(self.device)
        t_eval = time.perf_counter() - t0
        out = estimate(sample)
        w = sample.weights
        if len(w) and (w >= 0).all() and (w > 0).any():
            stats = unweighting_stats(w, n_replicas, seed=_subseed(seed, "replicas") if seed is not None else 0)
            out.update(unweighting_efficiency=stats.efficiency,
                       unweighting_efficiency_after_cuts=stats.efficiency_after_cuts, w_max=stats.w_max)
        else:
            out.update(unweighting_efficiency=float("nan"), unweighting_efficiency_after_cuts=float("nan"),
                       w_max=float("nan"))
        out.update(ess_fraction=effective_sample_size(w) / len(w) if len(w) else float("nan"),
                   n_calls_eval=self.evaluator.calls - calls0, time_eval=t_eval, weight_histogram=weight_histogram(w))
        return out

    def result(self, evaluation: dict[str, Any], seed: int | None, extra: dict | None = None) -> IntegrationResult:
        exact = self.integrand.exact
        pull = (evaluation["integral"] - exact) / evaluation["error"] \
            if exact is not None and evaluation["error"] > 0 else None
        keep = {f.name for f in fields(IntegrationResult)}
        values = {k: v for k, v in evaluation.items() if k in keep}
        return IntegrationResult(
            method=self.method, integrand=self.integrand.name, seed=seed, exact=exact, pull=pull,
            n_calls_train=self.n_calls_train, n_calls_monitor=self.n_calls_monitor, time_train=self.time_train,
            loss_history=list(self.loss_history), variance_history=list(self.variance_history),
            variance_spread=list(self.variance_spread),
            extra={"channel_stds": evaluation["channel_stds"], "n_nonfinite": self.evaluator.n_nonfinite,
                   **(extra or {})},
            integrator=self, **values)


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
        self._cpu_rng = _generator(_subseed(seed, "vegas-cpu"), torch.device("cpu"))

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
        yield self._cpu_rng if seed is None else _generator(seed, torch.device("cpu"))

    def channel_allocation(self, n: int) -> list[int]:
        sig = self.channel_sigmas if self.config["eval_channel_mode"] == "variance" else None
        return allocate(n, sig, self.n_channels, self.config["eval_uniform_ratio"])

    def train(self, seed: int | None = None, progress: bool = False) -> None:
        """VEGAS adaptation: ``iterations`` × ``samples_per_iteration`` calls, evenly over channels."""
        from tqdm.auto import tqdm

        cfg = self.config
        gen = _generator(_subseed(self.seed if seed is None else seed, "vegas-train"), torch.device("cpu"))
        calls0 = self.evaluator.calls
        _sync(self.device)
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
        _sync(self.device)
        self.time_train += time.perf_counter() - t0
        self.n_calls_train += self.evaluator.calls - calls0


# --------------------------------------------------------------------------- MadNIS

class FiniteStepAdam(torch.optim.Adam):
    """Adam that skips a step whose gradients are not all finite (and counts it in ``skipped``).

    madnis skips a batch whose loss is NaN, but applies a step whose gradient is not finite, which turns
    every weight of the flow into NaN for the rest of the training and the channel's integral into NaN
    (seen in the crossed-ring validation, ring + flat, 1 of 10 seeds). The count is part of the saved
    state, so a resumed training reports the skips of the whole training."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr)
        self.skipped = 0

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            self.skipped += 1
            return None
        return super().step(closure)


def variance_loss(f_true: torch.Tensor, q_test: torch.Tensor, q_sample: torch.Tensor | None = None,
                  channels: torch.Tensor | None = None) -> torch.Tensor:
    """Variance loss Σ_i (N/N_i) σ_i² (Eq 5.12; buffered form Eq 5.13), divided by Î² (detached).

    ``f_true`` = α_iξ f/g_i (with gradients through the channel weights), ``q_test`` = g_iθ the
    flow density with gradients, ``q_sample`` the density the points were drawn from.
    """
    if q_sample is None:
        q_sample = q_test
    if channels is None:
        channels = torch.zeros(len(f_true), dtype=torch.long, device=f_true.device)
    n = len(f_true)
    loss = f_true.new_zeros(())
    integral = f_true.new_zeros(())
    for i in torch.unique(channels):
        m = channels == i
        fi, qt, qs = f_true[m], q_test[m], q_sample[m]
        mean = torch.mean(fi / qs)
        var = torch.mean((fi / qt - mean).square() * qt / qs)
        loss = loss + n / fi.shape[0] * var
        integral = integral + mean.detach()
    return loss / integral.abs().clamp(min=torch.finfo(f_true.dtype).tiny).square()


class _ZeroCWNet(nn.Module):
    """Δ = 0 'network' so that madnis applies the channel-dropping mask to fixed prior weights."""

    def __init__(self, n_channels: int):
        super().__init__()
        self.n_channels = n_channels

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.new_zeros((y.shape[0], self.n_channels))


class _CWNet(nn.Module):
    """Δ_iξ(x) of Eq 5.8 on standardised features asinh((φ(x) - loc)/scale); last layer zero-initialised."""

    def __init__(self, mlp: nn.Module, loc: torch.Tensor, scale: torch.Tensor,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None, squash: bool = True):
        super().__init__()
        self.mlp = mlp
        self.features = features
        self.squash = squash
        self.register_buffer("loc", loc)
        self.register_buffer("scale", scale)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = y if self.features is None else self.features(y)
        z = (z - self.loc) / self.scale
        return self.mlp(torch.asinh(z) if self.squash else z)


class MadnisIntegrator(BaseIntegrator):
    """MadNIS (Ch. 5) through ``madnis.integrator.Integrator``.

    * flows per channel on the unit hypercube after the analytic mapping (Eq 5.9): the madnis
      integrand receives the flow output r and channel i and returns (f/g_i, x, α^prior(x)), i.e.
      ``remapped_dim`` = dim x, ``has_channel_weight_prior`` = True; madnis' RQ-spline flow, or
      (``coupling: affine``) :class:`~lhcflow.nis.affine_flow.AffineCouplingFlow` for Tab A.4;
    * trainable channel weights α_iξ = softmax(log α_i^prior + Δ_iξ(x)) (Eq 5.8, madnis cwnet,
      zero-initialised so training starts at the prior);
    * variance loss (Eq 5.12/5.13) or the stratified MadNIS loss (Eq 5.20);
    * buffered training with replay factor R (§5.1.2, Eq 5.18), stratified training
      (``uniform_channel_ratio``), channel dropping, and VEGAS initialisation (§5.1.3).
    """

    method = "madnis"

    def __init__(self, integrand: MultiChannelIntegrand, config: dict[str, Any] | None = None,
                 device: str | torch.device | None = None, seed: int | None = 0,
                 cwnet_features: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__(integrand, device, seed)
        self.config = merge_settings(DEFAULT_MADNIS_CONFIG, config)
        self.dtype = getattr(torch, self.config["dtype"])
        self.evaluator.dtype = self.dtype
        self.cwnet_features = cwnet_features
        self._vegas_done = False
        with seeded(_subseed(seed, "madnis-init"), self.device):
            self.integrator = self._build()

    @property
    def steps(self) -> int:
        return madnis_steps(self.config)

    # ------------------------------------------------------------------ construction
    def _madnis_function(self, r: torch.Tensor, channels: torch.Tensor):
        return self.evaluator(r, channels)

    def _cwnet(self, activation: Callable[[], nn.Module]) -> nn.Module:
        from madnis.nn import MLP

        cfg = self.config
        # feature scale from mapped flat points: no integrand calls needed
        gen = _generator(_subseed(self.seed, "cwnet-scale"), self.device)
        with torch.no_grad():
            r = torch.rand((2048 * self.n_channels, self.unit_dim), generator=gen, device=self.device,
                           dtype=self.dtype)
            ch = torch.arange(self.n_channels, device=self.device).repeat_interleave(2048)
            x, _ = self.evaluator.map(r, ch)
            z = x if self.cwnet_features is None else self.cwnet_features(x)
            z = z[torch.isfinite(z).all(dim=1)]
        n_feat = z.shape[1]
        if cfg["cwnet_standardize"] and len(z) > 10:
            loc = z.median(dim=0).values
            q = torch.quantile(z, torch.tensor([0.16, 0.84], dtype=z.dtype, device=z.device), dim=0)
            scale = ((q[1] - q[0]) / 2).clamp(min=1e-12)
        else:
            loc, scale = torch.zeros(n_feat, dtype=self.dtype), torch.ones(n_feat, dtype=self.dtype)
        mlp = MLP(n_feat, self.n_channels, layers=int(cfg["cwnet_layers"]), units=int(cfg["cwnet_units"]),
                  activation=activation)
        return _CWNet(mlp, loc.to(self.device, self.dtype), scale.to(self.device, self.dtype),
                      self.cwnet_features, squash=bool(cfg["cwnet_standardize"]))

    def _loss(self):
        from madnis.integrator import kl_divergence, stratified_variance, variance

        name = self.config["loss"]
        losses = {"variance": variance_loss, "stratified_variance": stratified_variance,
                  "channel_variance": variance, "kl": kl_divergence}
        if name not in losses:
            raise ValueError(f"unknown MadNIS loss {name!r}; choose from {sorted(losses)}")
        return losses[name]

    def _scheduler(self):
        cfg = self.config
        if cfg["lr_schedule"] == "constant":
            return None
        if cfg["lr_schedule"] != "inverse_time":
            raise ValueError(f"unknown lr schedule {cfg['lr_schedule']!r}")
        if cfg["final_lr"] is not None:
            k = (cfg["lr"] / cfg["final_lr"] - 1.0) / max(self.steps, 1)
        else:
            k = float(cfg["decay_rate"]) / max(int(cfg["batches_per_epoch"]), 1)
        return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + k * step))

    def _blocks(self) -> int:
        blocks = self.config["blocks"]
        return int(blocks) if blocks is not None else 2 * max(1, math.ceil(math.log2(max(self.unit_dim, 2))))

    def _flow(self, activation: Callable[[], nn.Module]) -> nn.Module | None:
        """The affine-coupling flow for ``coupling: affine``; None for madnis' own RQ-spline flow."""
        from lhcflow.nis.affine_flow import PERMUTATIONS, AffineCouplingFlow

        cfg = self.config
        permutations = {"rqs": ("log", "exchange", "random"), "affine": PERMUTATIONS}
        if cfg["coupling"] not in permutations:
            raise ValueError(f"unknown MadNIS setting coupling={cfg['coupling']!r}; "
                             f"choose from {sorted(permutations)}")
        allowed = permutations[cfg["coupling"]]
        if cfg["permutations"] not in allowed:
            raise ValueError(f"unknown MadNIS setting permutations={cfg['permutations']!r} for coupling "
                             f"{cfg['coupling']!r}; choose from {list(allowed)}")
        if cfg["coupling"] == "rqs":
            return None
        if cfg["vegas_init"]:
            raise ValueError("MadNIS setting vegas_init needs coupling 'rqs': "
                             "VEGAS grids initialise RQ splines only")
        return AffineCouplingFlow(dims=self.unit_dim, channels=self.n_channels, blocks=self._blocks(),
                                  layers=int(cfg["layers"]), units=int(cfg["units"]), activation=activation,
                                  permutations=cfg["permutations"], clamp=float(cfg["clamp"]),
                                  seed=_subseed(self.seed, "affine-permutations"))

    def _build(self):
        from madnis.integrator import Integrand, Integrator

        cfg = self.config
        activation = _ACTIVATIONS[cfg["activation"]]
        integrand = Integrand(self._madnis_function, input_dim=self.unit_dim, channel_count=self.n_channels,
                              remapped_dim=self.integrand.dim, has_channel_weight_prior=True)
        flow, flow_kwargs = self._flow(activation), {}
        if flow is None:
            flow_kwargs = dict(permutations=cfg["permutations"], layers=int(cfg["layers"]),
                               units=int(cfg["units"]), bins=int(cfg["bins"]), activation=activation)
            if cfg["blocks"] is not None or cfg["permutations"] != "log":
                flow_kwargs["blocks"] = self._blocks()
        if cfg["cwnet"]:
            cwnet = self._cwnet(activation)
        elif cfg["channel_dropping_threshold"] > 0:
            cwnet = _ZeroCWNet(self.n_channels)  # madnis ignores the dropping mask without a cwnet
        else:
            cwnet = None
        replay = int(cfg["replay_factor"])
        if replay < 1:
            raise ValueError("replay_factor must be >= 1")
        buffer_capacity = int(cfg["buffer_batches"]) * int(cfg["batch_size"]) if replay > 1 else 0
        integrator = Integrator(
            integrand, flow=flow, flow_kwargs=flow_kwargs, train_channel_weights=False, cwnet=cwnet,
            loss=self._loss(), batch_size=int(cfg["batch_size"]),
            optimizer=lambda params: FiniteStepAdam(params, float(cfg["lr"])),
            scheduler=self._scheduler(),
            uniform_channel_ratio=float(cfg["uniform_channel_ratio"]),
            integration_history_length=int(cfg["integration_history_length"]),
            drop_zero_integrands=bool(cfg["drop_zero_integrands"]), buffer_capacity=buffer_capacity,
            minimum_buffer_size=int(cfg["batch_size"]) - 1, buffered_steps=replay - 1,
            max_stored_channel_weights=cfg["max_stored_channel_weights"],
            channel_dropping_threshold=float(cfg["channel_dropping_threshold"]),
            channel_dropping_interval=int(cfg["channel_dropping_interval"]),
            device=self.device, dtype=self.dtype)
        if not cfg["train_flow"]:
            for p in integrator.flow.parameters():
                p.requires_grad_(False)
        return integrator

    # ------------------------------------------------------------------ training
    def _vegas_init(self, seed: int | None) -> None:
        from madnis.integrator import VegasPreTraining

        vcfg = vegas_init_settings(self.config)
        if self.unit_dim < 2:
            raise ValueError("madnis VEGAS initialisation needs at least two dimensions")
        pre = VegasPreTraining(self.integrator, bins=int(vcfg["bins"]), damping=float(vcfg["damping"]))
        pre.rng = np.random.default_rng(_subseed(seed, "vegas-init"))
        pre.train([int(vcfg["samples_per_channel"])] * int(vcfg["iterations"]))
        pre.initialize_integrator()
        self._vegas_done = True

    def _monitor(self, step: int, seed: int | None) -> None:
        """σ²/I² from ``history_batches`` fresh batches (uniform N_i), as in Fig 5.10 left."""
        cfg = self.config
        calls0 = self.evaluator.calls
        values = []
        with seeded(_subseed(seed, "monitor", step), self.device), torch.no_grad():
            for _ in range(int(cfg["history_batches"])):
                parts = []
                for c, n_c in enumerate(allocate(int(cfg["history_batch_size"]), None, self.n_channels,
                                                 active=self.integrator.active_channels_mask)):
                    if n_c:
                        parts.append((c, *self._madnis_channel(c, n_c)))
                est = estimate(WeightedSample.from_channels(parts, self.n_channels, self.integrand.dim,
                                                            self.unit_dim, self.device))
                values.append(est["rel_std"] ** 2)
        t = torch.tensor(values, dtype=torch.float64)
        t = t[torch.isfinite(t)]
        if len(t):
            self.variance_history.append((step, t.mean().item()))
            self.variance_spread.append((step, torch.quantile(t, 0.05).item(), torch.quantile(t, 0.95).item()))
        self.n_calls_monitor += self.evaluator.calls - calls0

    def train(self, steps: int | None = None, seed: int | None = None, progress: bool = True,
              checkpoint: str | Path | None = None, checkpoint_settings: Mapping[str, Any] | None = None) -> None:
        """VEGAS initialisation (if configured, once) and ``steps`` madnis optimisation steps.

        With ``checkpoint``, the whole training state (flow, channel-weight network, optimizer,
        scheduler, replay buffer, integration history and channel mask, loss and variance
        histories, call counters and the RNG state) is written there atomically every
        ``batches_per_epoch`` steps and at the end. A rerun whose checkpoint comes from the same
        training (config, seed, ``steps``, ``checkpoint_settings`` such as the integrand, and network
        shapes) continues after it and ends in the state of an uninterrupted run; another
        training's checkpoint is ignored and overwritten.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        seed = self.seed if seed is None else seed
        steps = self.steps if steps is None else int(steps)
        start = self.integrator.step
        key = rng = None
        if checkpoint is not None:
            key = fingerprint(self.integrator, {"config": cfg, "seed": seed, "steps": steps, "start": start,
                                                **dict(checkpoint_settings or {})})
            rng = self._resume(checkpoint, key)
        done = self.integrator.step - start
        every = int(cfg["history_every"])
        checkpoint_every = max(int(cfg["batches_per_epoch"]), 1)
        counters = self._counters()
        with seeded(_subseed(seed, "madnis-train", start), self.device):
            if rng is not None:
                restore_rng_state(rng)
                log.info("MadNIS: resuming from %s after step %d of %d", checkpoint, done, steps)
            if cfg["vegas_init"] and not self._vegas_done:
                self._vegas_init(seed)
            if every and self.integrator.step == 0:
                self._monitor(0, seed)
            bar = tqdm(range(done, steps), initial=done, total=steps, disable=not progress, desc="MadNIS",
                       leave=False)
            for i in bar:
                status = self.integrator.train_step()
                self.loss_history.append((status.step + 1, status.loss))
                if every and (status.step + 1) % every == 0:
                    self._monitor(status.step + 1, seed)
                if progress and status.step % 20 == 0:
                    bar.set_postfix(loss=f"{status.loss:.3g}")
                if checkpoint is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
                    counters = self._count(counters)
                    self._save_checkpoint(checkpoint, key)
        self._count(counters)

    def _counters(self) -> tuple[float, int, int]:
        _sync(self.device)
        return time.perf_counter(), self.evaluator.calls, self.n_calls_monitor

    def _count(self, since: tuple[float, int, int]) -> tuple[float, int, int]:
        """Add the training time and calls (without monitoring calls) spent ``since``; new mark."""
        now = self._counters()
        self.time_train += now[0] - since[0]
        self.n_calls_train += (now[1] - since[1]) - (now[2] - since[2])
        return now

    def _save_checkpoint(self, path: str | Path, key: str) -> None:
        write_checkpoint(path, {**self.state(), "replay_buffer": _buffer_tensors(self.integrator.buffer)}, key)

    def _resume(self, path: str | Path, key: str) -> dict | None:
        """Restore a checkpoint of this training and return its RNG states; None if there is none."""
        state = read_checkpoint(path, key, "MadNIS")
        if state is None:
            return None
        self._restore(state)
        if self.integrator.buffer is not None:
            for name, tensor in state["replay_buffer"].items():
                getattr(self.integrator.buffer, name).copy_(tensor)
        return state["rng"]

    def _restore(self, state: Mapping[str, Any]) -> None:
        """Load networks, optimizer, scheduler, step, channel mask and histories from a :meth:`state`."""
        integ = self.integrator
        integ.load_state_dict(state["state_dict"])
        integ.optimizer.load_state_dict(state["optimizer"])
        if integ.scheduler is not None and state["scheduler"] is not None:
            integ.scheduler.load_state_dict(state["scheduler"])
        integ.step = int(state["step"])
        integ.step_type_count = int(state.get("step_type_count", 0))
        self._vegas_done = bool(state["vegas_done"])
        self.n_calls_train = int(state["n_calls_train"])
        self.n_calls_monitor = int(state.get("n_calls_monitor", 0))
        self.integrator.optimizer.skipped = int(state.get("skipped_steps", 0))
        self.time_train = float(state["time_train"])
        self.loss_history = [tuple(v) for v in state["loss_history"]]
        self.variance_history = [tuple(v) for v in state["variance_history"]]
        self.variance_spread = [tuple(v) for v in state["variance_spread"]]

    # ------------------------------------------------------------------ sampling
    def _madnis_channel(self, channel: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.integrator.sample(n, batch_size=max(n, 1), channel=channel)
        # with a single channel per call madnis' N/N_i normalisation is 1: weights = α_iξ f/(g_i q_i)
        return batch.x.to(torch.float64), batch.y.to(torch.float64), batch.weights.to(torch.float64)

    def _sample_channel(self, channel, n, generator):
        return self._madnis_channel(channel, n)

    @contextlib.contextmanager
    def _random_state(self, seed):
        with seeded(seed, self.device):
            yield self._rng

    def channel_allocation(self, n: int) -> list[int]:
        cfg = self.config
        active = self.integrator.active_channels_mask
        sig = None
        if cfg["eval_channel_mode"] == "variance" and self.integrator.integration_history.size > 0:
            sig = self.integrator._get_channel_contributions(False, "variance")
        return allocate(n, sig, self.n_channels, cfg["eval_uniform_ratio"], active=active)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Learned α_iξ(x) (Eq 5.8) at physical points x, shape (n, n_channels)."""
        from madnis.integrator import SampleBatch

        x = x.to(self.device, self.dtype)
        prior = self.integrand.channel_weights(x).to(self.dtype)
        ones = x.new_ones(x.shape[0])
        batch = SampleBatch(x=x.new_zeros((x.shape[0], self.unit_dim)), y=x, q_sample=ones, func_vals=ones,
                            channels=torch.zeros(x.shape[0], dtype=torch.long, device=self.device),
                            alphas_prior=prior)
        with torch.no_grad():
            return self.integrator._get_alphas(batch)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        integ = self.integrator
        return {
            "format": "lhcflow.nis.madnis/1",
            "integrand": self.integrand.name,
            "dim": self.integrand.dim,
            "unit_dim": self.unit_dim,
            "n_channels": self.n_channels,
            "config": self.config,
            "seed": self.seed,
            "state_dict": integ.state_dict(),
            "optimizer": integ.optimizer.state_dict(),
            "scheduler": None if integ.scheduler is None else integ.scheduler.state_dict(),
            "step": integ.step,
            "step_type_count": integ.step_type_count,
            "vegas_done": self._vegas_done,
            "n_calls_train": self.n_calls_train,
            "n_calls_monitor": self.n_calls_monitor,
            "skipped_steps": self.integrator.optimizer.skipped,
            "time_train": self.time_train,
            "loss_history": self.loss_history,
            "variance_history": self.variance_history,
            "variance_spread": self.variance_spread,
        }

    def save(self, path: str | Path) -> Path:
        """Write the trained state (torch state dicts + config + histories), atomically."""
        from lhcflow.atomic import save_torch

        save_torch(path, self.state())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, integrand: MultiChannelIntegrand, device: str | torch.device | None = None,
             cwnet_features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> MadnisIntegrator:
        """Rebuild a saved integrator for ``integrand`` (same name, dimensions and channels)."""
        state = torch.load(path, map_location=_device(device), weights_only=True)
        if state.get("format") != "lhcflow.nis.madnis/1":
            raise ValueError(f"{path}: not a saved lhcflow MadNIS state")
        if (state["dim"], state["unit_dim"], state["n_channels"]) != \
                (integrand.dim, integrand.channels[0].dim, integrand.n_channels):
            raise ValueError(f"{path}: saved for a different integrand layout ({state['integrand']})")
        obj = cls(integrand, state["config"], device=device, seed=state["seed"], cwnet_features=cwnet_features)
        obj._restore(state)
        return obj


# =========================================================================== entry points

def run_flat(integrand: MultiChannelIntegrand, n_eval: int, config: dict[str, Any] | None = None, *,
             seed: int = 0, device: str | torch.device | None = None, progress: bool = False) -> IntegrationResult:
    """Flat multi-channel MC with ``n_eval`` calls split evenly over the channels (no training)."""
    if config:
        raise KeyError(f"flat MC takes no options, got {sorted(config)}")
    integ = FlatIntegrator(integrand, device, seed)
    return integ.result(integ.evaluate(n_eval, seed=_subseed(seed, "eval")), seed)


def run_vegas(integrand: MultiChannelIntegrand, n_eval: int, config: dict[str, Any] | None = None, *,
              seed: int = 0, device: str | torch.device | None = None, progress: bool = False) -> IntegrationResult:
    """Multi-channel VEGAS: adaptation (``iterations × samples_per_iteration`` calls), then ``n_eval``."""
    integ = VegasIntegrator(integrand, config, device, seed)
    integ.train(progress=progress)
    return integ.result(integ.evaluate(n_eval, seed=_subseed(seed, "eval")), seed, {"config": integ.config})


def run_madnis(integrand: MultiChannelIntegrand, n_eval: int, config: dict[str, Any] | None = None, *,
               seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
               cwnet_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
               checkpoint: str | Path | None = None,
               checkpoint_settings: Mapping[str, Any] | None = None) -> IntegrationResult:
    """MadNIS training (config: :data:`DEFAULT_MADNIS_CONFIG`, ``preset`` = table_a3/a4/a5), then ``n_eval``.

    With ``checkpoint`` the training resumes from there (see :meth:`MadnisIntegrator.train`)."""
    integ = MadnisIntegrator(integrand, config, device, seed, cwnet_features)
    integ.train(progress=progress, checkpoint=checkpoint, checkpoint_settings=checkpoint_settings)
    dropped = int((~integ.integrator.active_channels_mask).sum())
    return integ.result(integ.evaluate(n_eval, seed=_subseed(seed, "eval"), batch_size=integ.config["batch_size_eval"]),
                        seed, {"config": integ.config, "dropped_channels": dropped, "steps": integ.integrator.step,
                               "skipped_steps": integ.integrator.optimizer.skipped})


_RUNNERS = {"flat": run_flat, "vegas": run_vegas, "madnis": run_madnis}


def run_integrator(method: str, integrand: MultiChannelIntegrand, n_eval: int,
                   config: dict[str, Any] | None = None, **kwargs: Any) -> IntegrationResult:
    """Dispatch to :func:`run_flat`, :func:`run_vegas` or :func:`run_madnis` by name."""
    if method not in _RUNNERS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    return _RUNNERS[method](integrand, n_eval, config, **kwargs)


def training_calls(method: str, config: dict[str, Any] | None, n_channels: int) -> int:
    """Nominal integrand calls of a training (for equal-budget comparisons; actual counts are reported).

    MadNIS: online steps × batch size (+ VEGAS initialisation); buffered steps call nothing.
    May be exceeded by madnis when more than half of a batch has f = 0 (it then resamples).
    """
    if method == "flat":
        return 0
    if method == "vegas":
        cfg = merge_settings(DEFAULT_VEGAS_CONFIG, config)
        return int(cfg["iterations"]) * int(cfg["samples_per_iteration"])
    cfg = merge_settings(DEFAULT_MADNIS_CONFIG, config)
    online = math.ceil(madnis_steps(cfg) / int(cfg["replay_factor"]))
    calls = online * int(cfg["batch_size"])
    vegas_init = vegas_init_settings(cfg)
    if vegas_init is not None:
        calls += int(vegas_init["iterations"]) * int(vegas_init["samples_per_channel"]) * n_channels
    return calls
