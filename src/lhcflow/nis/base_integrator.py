"""The estimator every integrator of thesis Ch. 5 shares (§2.2, Ch. 5): :class:`BaseIntegrator`.

Flat MC, VEGAS and MadNIS estimate the multi-channel integral (Eq 2.50/5.4)

    I = Σ_i ⟨ α_i(x) f(x) / (g_i(x) q_i(r)) ⟩_{r ~ q_i},   x = G_i(r),

where G_i is the analytic channel mapping of the integrand, q_i a density on the unit hypercube
(flat: q_i = 1; VEGAS: the adapted grid; MadNIS: a normalising flow, Eq 5.9) and α_i the channel
weights (the integrand's prior, optionally corrected by the MadNIS channel-weight network, Eq 5.8).
Channel i receives N_i of the N evaluation calls: N/n_c each, or N_i ∝ σ_i (Eq 2.55, stratified
sampling) from the variances measured during training. The shared estimator gives

    integral, error = sqrt(Σ_i σ_i²/N_i) (Eq 2.53), rel_std = sqrt(N)·error/I (σ/I per event),

and the combined event weights w = (N/N_i)·α_i f/(g_i q_i), whose mean is I, feed the unweighting
efficiency (Eq 2.67, robust w_max of §2.2.5) and hit-or-miss unweighting. A method implements how
one channel is sampled (``_sample_channel``) and how the calls are allocated
(``channel_allocation``); :meth:`BaseIntegrator.evaluate` and :meth:`BaseIntegrator.result` turn an
evaluation into an :class:`IntegrationResult`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from lhcflow.nis.integrand import ChannelEvaluator, MultiChannelIntegrand
from lhcflow.nis.metrics import effective_sample_size, robust_w_max, unweighting_stats, weight_histogram
from lhcflow.nis.sampling import (
    UnweightedSample,
    WeightedSample,
    allocate,
    as_device,
    estimate,
    subseed,
    synchronize,
    torch_generator,
)
from lhcflow.nis.unweighting import unweight


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


class BaseIntegrator:
    """Common sampling, evaluation and unweighting for the three methods."""

    method = "base"

    def __init__(self, integrand: MultiChannelIntegrand, device: str | torch.device | None = None,
                 seed: int | None = 0):
        self.integrand = integrand
        self.device = as_device(device)
        self.seed = seed
        self.evaluator = ChannelEvaluator(integrand, self.device)
        self.n_channels = integrand.n_channels
        self.unit_dim = self.evaluator.unit_dim
        self._rng = torch_generator(subseed(seed, "sampling"), self.device)
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
        yield self._rng if seed is None else torch_generator(seed, self.device)

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
        gen_hm = torch_generator(subseed(seed, "hit-or-miss"), self.device)
        xs, chs, ws, overs = [], [], [], []
        n_acc = n_weighted = batch = 0
        w_sum = w_sq = 0.0
        while n_acc < n and (max_calls is None or n_weighted < max_calls):
            sample = self.sample_weighted(batch_size, seed=subseed(seed, "unweighted-batch", batch))
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
        synchronize(self.device)
        t0 = time.perf_counter()
        sample = self.sample_weighted(n, seed=seed, batch_size=batch_size)
        synchronize(self.device)
        t_eval = time.perf_counter() - t0
        out = estimate(sample)
        w = sample.weights
        if len(w) and (w >= 0).all() and (w > 0).any():
            stats = unweighting_stats(w, n_replicas, seed=subseed(seed, "replicas") if seed is not None else 0)
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
