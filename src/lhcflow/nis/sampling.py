"""What the integrators of thesis Ch. 5 share below the method: random streams, call allocation, samples.

* Random streams: every run draws from streams derived from its seed and a label
  (:func:`subseed`), through a :func:`torch_generator` or, for madnis which draws from the global
  torch RNG, inside :func:`seeded`.
* Call allocation (:func:`allocate`): N_i of N calls per channel, N/n_c each or N_i ∝ σ_i
  (Eq 2.55, stratified sampling).
* Samples: :class:`WeightedSample` holds the combined weights w = (N/N_i)·α_i f/(g_i q_i) of all
  channels, whose mean is I; :func:`estimate` gives the multi-channel integral and its error
  (Eqs 2.50, 2.53); :class:`UnweightedSample` holds hit-or-miss events (§2.2.5).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from lhcflow.nis.metrics import relative_std
from lhcflow.seeds import derive_seed

# =========================================================================== random streams

def as_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch.device; None is the CPU."""
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


def subseed(seed: int | None, *labels: object) -> int | None:
    """The seed of the stream ``labels`` of a run with ``seed`` (None stays None: unseeded)."""
    return None if seed is None else derive_seed(int(seed), *labels, modulus=2**31 - 1)


def torch_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed`` (None: from the OS)."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that wall-clock times measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# =========================================================================== call allocation

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


# =========================================================================== samples

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
