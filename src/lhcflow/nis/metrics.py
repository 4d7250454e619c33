"""Performance metrics of importance samplers (thesis §2.2.5 and §5.3.2).

All functions take the event weights w_i = p(x_i)/q(x_i) of one weighted sample (Eq 2.64),
normalised such that ⟨w⟩ estimates the integral I.

* :func:`relative_std` — σ/I, the spread of the weights per event (independent of the sample size).
* :func:`unweighting_efficiency` — ε = ⟨w⟩/w_max (Eq 2.67) with the robust w_max of the
  replica/bootstrap prescription of Ref. [47] quoted in the thesis, line 539 of
  ``thesis_flow_of_lhc_events.txt``: "from a set of n·N events with weights w_i, m replicas with
  N events each are resampled. For each replica r, the maximum weight w_max^r is computed. Next,
  the value of w_max is defined as the median over the w_max^r of the replicas. The unweighting
  efficiency is then computed using Eq. (2.67), averaging over all replicas and events."
* :func:`effective_sample_size` — Kish's (Σw)²/Σw².
* :func:`summarize` — mean ± std of repeated runs (different seeds), as in Tabs 5.1/5.2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import torch

# Upper bound on the number of resampled weights held in memory at once.
_MAX_RESAMPLED = 1 << 24


def _as_tensor(weights: torch.Tensor | Any) -> torch.Tensor:
    w = torch.as_tensor(weights)
    if not w.is_floating_point():
        w = w.to(torch.float64)
    return w.reshape(-1)


def relative_std(weights: torch.Tensor) -> float:
    """σ/I = std(w)/⟨w⟩ of the weights; 0 for a constant weight (perfect mapping)."""
    w = _as_tensor(weights).to(torch.float64)
    mean = w.mean()
    if len(w) < 2 or mean == 0:
        return float("nan") if mean == 0 else 0.0
    return (w.std(correction=1) / mean.abs()).item()


def effective_sample_size(weights: torch.Tensor) -> float:
    """Kish effective sample size (Σw)²/Σw²; equals N for constant weights."""
    w = _as_tensor(weights).to(torch.float64)
    sq = w.square().sum()
    return 0.0 if sq == 0 else (w.sum().square() / sq).item()


def _generator(device: torch.device, seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else int(seed))
    return g


def replica_maxima(weights: torch.Tensor, n_replicas: int = 100, replica_size: int | None = None, *,
                   seed: int | None = 0, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-replica maxima w_max^r and means ⟨w⟩_r of m = ``n_replicas`` bootstrap replicas.

    Each replica draws N = ``replica_size`` weights with replacement (default N = all weights,
    the convention of the MadNIS code that produced the thesis numbers; choose N = len(w)/n to
    follow the n·N wording of line 539 literally). Memory stays bounded by resampling in chunks.
    """
    w = _as_tensor(weights).to(torch.float64)
    n = len(w)
    if n == 0:
        raise ValueError("no weights given")
    size = n if replica_size is None else int(replica_size)
    if not 0 < size:
        raise ValueError(f"replica_size must be positive, got {replica_size}")
    gen = _generator(w.device, seed, generator)
    rows = max(1, _MAX_RESAMPLED // size)
    maxima, means = [], []
    for start in range(0, n_replicas, rows):
        m = min(rows, n_replicas - start)
        idx = torch.randint(n, (m, size), generator=gen, device=w.device)
        sample = w[idx]
        maxima.append(sample.amax(dim=1))
        means.append(sample.mean(dim=1))
    return torch.cat(maxima), torch.cat(means)


def robust_w_max(weights: torch.Tensor, n_replicas: int = 100, replica_size: int | None = None, *,
                 seed: int | None = 0, generator: torch.Generator | None = None) -> float:
    """w_max = median over replicas of the per-replica maximum weight (thesis line 539)."""
    maxima, _ = replica_maxima(weights, n_replicas, replica_size, seed=seed, generator=generator)
    return torch.quantile(maxima, 0.5).item()


@dataclass
class UnweightingStats:
    """Robust unweighting metrics of one weighted sample (thesis §2.2.5, Eqs 2.66-2.67)."""

    efficiency: float               # ε = ⟨w⟩/w_max, zero weights (cuts) included: the acceptance rate
    efficiency_after_cuts: float    # ε restricted to events with w ≠ 0
    cut_efficiency: float           # fraction of events with w ≠ 0
    w_max: float                    # median of the replica maxima
    overweight_fraction: float      # fraction of events with w > w_max (kept with weight w/w_max)
    partial_efficiency: float       # ⟨min(w/w_max, 1)⟩: acceptance rate of partial unweighting (Eq 2.66)


def unweighting_stats(weights: torch.Tensor, n_replicas: int = 100, replica_size: int | None = None, *,
                      seed: int | None = 0, generator: torch.Generator | None = None) -> UnweightingStats:
    """ε = ⟨w⟩/w_max (Eq 2.67) with w_max the median of the replica maxima, averaged over replicas."""
    w = _as_tensor(weights).to(torch.float64)
    if (w < 0).any():
        raise ValueError("unweighting metrics need non-negative weights")
    nonzero = w[w != 0]
    cut_eff = len(nonzero) / len(w) if len(w) else 0.0
    if len(nonzero) == 0:
        return UnweightingStats(0.0, 0.0, cut_eff, 0.0, 0.0, 0.0)
    maxima, means = replica_maxima(w, n_replicas, replica_size, seed=seed, generator=generator)
    w_max = torch.quantile(maxima, 0.5).item()
    eff = (means.mean() / w_max).item()
    return UnweightingStats(
        efficiency=eff,
        efficiency_after_cuts=eff / cut_eff,
        cut_efficiency=cut_eff,
        w_max=w_max,
        overweight_fraction=(w > w_max).double().mean().item(),
        partial_efficiency=(w / w_max).clamp(max=1.0).mean().item(),
    )


def unweighting_efficiency(weights: torch.Tensor, n_replicas: int = 100, replica_size: int | None = None, *,
                           seed: int | None = 0, generator: torch.Generator | None = None) -> float:
    """ε = ⟨w⟩/w_max (Eq 2.67) with the robust replica w_max (thesis line 539); 1 for constant w."""
    return unweighting_stats(weights, n_replicas, replica_size, seed=seed, generator=generator).efficiency


# --------------------------------------------------------------------------- repeated runs

def weight_histogram(weights: torch.Tensor, n_bins: int = 60, low: float = 1e-4,
                     high: float = 1e2) -> list[list[float]]:
    """[edges, counts] of w/⟨w⟩ on log bins (Fig 5.12 right); the outer bins hold under- and overflow."""
    w = _as_tensor(weights).double()
    edges = torch.logspace(math.log10(low), math.log10(high), n_bins + 1, dtype=torch.float64)
    if not len(w):
        return [edges.tolist(), [0] * n_bins]
    mean = w.mean()
    ratio = (w / mean if mean > 0 else w).clamp(low, high).cpu()
    index = (torch.bucketize(ratio, edges, right=True) - 1).clamp(0, n_bins - 1)
    return [edges.tolist(), torch.bincount(index, minlength=n_bins).tolist()]


def _record(result: Any) -> Mapping[str, Any]:
    if is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in fields(result)}
    if isinstance(result, Mapping):
        return result
    raise TypeError(f"cannot summarise {type(result).__name__}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(results: Iterable[Any], keys: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """Mean ± std over repeated runs (e.g. ten seeds, as for Tabs 5.1/5.2).

    ``results`` are result dataclasses or dicts; every numeric scalar field (or only ``keys``)
    present in all of them is aggregated into ``{"mean", "std", "min", "max", "n"}`` with the
    sample standard deviation (ddof = 1; 0 for a single run). NaNs are ignored.
    """
    records = [_record(r) for r in results]
    if not records:
        return {}
    names = list(keys) if keys is not None else [
        k for k, v in records[0].items() if _is_number(v) and all(_is_number(r.get(k)) for r in records)]
    out = {}
    for name in names:
        values = [float(r[name]) for r in records if r.get(name) is not None and not math.isnan(float(r[name]))]
        if not values:
            out[name] = {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
            continue
        t = torch.tensor(values, dtype=torch.float64)
        out[name] = {"mean": t.mean().item(), "std": t.std(correction=1).item() if len(values) > 1 else 0.0,
                     "min": t.min().item(), "max": t.max().item(), "n": len(values)}
    return out


def summarize_by(results: Iterable[Any], key: str = "method",
                 keys: Iterable[str] | None = None) -> dict[Any, dict[str, dict[str, float]]]:
    """:func:`summarize` separately for each value of ``key`` (e.g. per integration method)."""
    groups: dict[Any, list] = {}
    for r in results:
        groups.setdefault(_record(r)[key], []).append(r)
    return {k: summarize(v, keys) for k, v in groups.items()}
