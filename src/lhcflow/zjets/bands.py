"""Bayesian-INN uncertainty bands from K network replicas (thesis §4.3, Eq. 4.11-4.15).

Each replica is one draw of all network weights from the learned posterior; it generates a
sample whose histogram gives a bin count ``n_k``. Over the replicas, the bin mean ``⟨n⟩`` and
the total variance ``σ²_tot`` decompose into the Poisson noise of sampling ``σ²_stoch`` (Eq. 4.14;
for weighted events the mean of Σw²) and the predictive variance of the network ``σ²_pred``
(Eq. 4.15), estimated as ``σ²_tot − σ²_stoch`` (clipped at zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lhcflow.plots.style import save_figure  # noqa: E402
from lhcflow.physics.metrics import batch_histograms  # noqa: E402
from lhcflow.physics.observables import Observable  # noqa: E402
from lhcflow.zjets.chain import GeneratorChain  # noqa: E402


def replica_histograms(chain: GeneratorChain, observables: Sequence[Observable], n_replicas: int, n_events: int,
                       seed: int) -> dict[str, list]:
    """Histograms of ``observables`` for ``n_replicas`` independent weight draws of the chain."""
    out: dict[str, list] = {obs.name: [] for obs in observables}
    for k in range(n_replicas):
        torch.manual_seed(seed * 1_000 + k)
        batch = chain.sample(n_events, np.random.default_rng([seed, k]), bayesian="fixed")
        for name, h in batch_histograms(batch, observables).items():
            out[name].append(h)
    return out


def decompose(hists: Sequence) -> dict[str, np.ndarray]:
    """Per-bin ⟨n⟩, σ_tot, σ_stoch and σ_pred over replica histograms (Eq. 4.13-4.15)."""
    counts = np.stack([h.values() for h in hists])
    sumw2 = np.stack([h.variances() for h in hists])
    mean = counts.mean(axis=0)
    var_tot = counts.var(axis=0, ddof=1)
    var_stoch = sumw2.mean(axis=0)
    return {"mean": mean, "sigma_tot": np.sqrt(var_tot), "sigma_stoch": np.sqrt(var_stoch),
            "sigma_pred": np.sqrt(np.clip(var_tot - var_stoch, 0.0, None))}


def plot_uncertainty_scaling(parts: dict[str, np.ndarray], observable: Observable, path: str | Path) -> None:
    """Fig. 4.6 analogue: σ_tot against ⟨n⟩ per bin, with the Poisson line σ = √⟨n⟩."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ok = parts["mean"] > 0
    ax.loglog(parts["mean"][ok], parts["sigma_tot"][ok], "o", ms=3, label=r"$\sigma_\mathrm{tot}$ per bin")
    ax.loglog(parts["mean"][ok], parts["sigma_pred"][ok], "x", ms=3, label=r"$\sigma_\mathrm{pred}$ per bin")
    grid = np.geomspace(max(parts["mean"][ok].min(), 1e-3), parts["mean"][ok].max(), 50)
    ax.loglog(grid, np.sqrt(grid), "k-", lw=0.8, label=r"Poisson $\sqrt{\langle n\rangle}$")
    ax.set_xlabel(r"mean bin count $\langle n\rangle$")
    ax.set_ylabel("standard deviation over replicas")
    ax.set_title(observable.axis_label, fontsize="medium")
    ax.legend(fontsize="small")
    save_figure(fig, path)
