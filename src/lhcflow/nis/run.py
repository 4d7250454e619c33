"""Run one integration by method name: flat MC, VEGAS or MadNIS on a :class:`MultiChannelIntegrand`.

:func:`run_flat`, :func:`run_vegas`, :func:`run_madnis` (or :func:`run_integrator` with a method
name) train, evaluate with ``n_eval`` fresh calls and return an
:class:`~lhcflow.nis.base_integrator.IntegrationResult`; the trained integrator is attached as
``result.integrator`` for ``sample_weighted`` / ``sample_unweighted``. :func:`training_calls`
gives the nominal training budget of a method's config, for equal-budget comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lhcflow.nis.base_integrator import IntegrationResult
from lhcflow.nis.baselines import FlatIntegrator, VegasIntegrator
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.nis.sampling import subseed
from lhcflow.nis.settings import (
    DEFAULT_MADNIS_CONFIG,
    DEFAULT_VEGAS_CONFIG,
    madnis_steps,
    merge_settings,
    vegas_init_settings,
)

METHODS = ("flat", "vegas", "madnis")


def run_flat(integrand: MultiChannelIntegrand, n_eval: int, config: dict[str, Any] | None = None, *,
             seed: int = 0, device: str | torch.device | None = None, progress: bool = False) -> IntegrationResult:
    """Flat multi-channel MC with ``n_eval`` calls split evenly over the channels (no training)."""
    if config:
        raise KeyError(f"flat MC takes no options, got {sorted(config)}")
    integ = FlatIntegrator(integrand, device, seed)
    return integ.result(integ.evaluate(n_eval, seed=subseed(seed, "eval")), seed)


def run_vegas(integrand: MultiChannelIntegrand, n_eval: int, config: dict[str, Any] | None = None, *,
              seed: int = 0, device: str | torch.device | None = None, progress: bool = False) -> IntegrationResult:
    """Multi-channel VEGAS: adaptation (``iterations × samples_per_iteration`` calls), then ``n_eval``."""
    integ = VegasIntegrator(integrand, config, device, seed)
    integ.train(progress=progress)
    return integ.result(integ.evaluate(n_eval, seed=subseed(seed, "eval")), seed, {"config": integ.config})


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
    return integ.result(integ.evaluate(n_eval, seed=subseed(seed, "eval"), batch_size=integ.config["batch_size_eval"]),
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
