"""Conditional generative networks: spline INN, Bayesian INN and CFM (thesis Sec. 3.2-3.3).

All implement ``ConditionalGenerator`` (``models.base``); ``build_generator`` builds one by name.
"""

from __future__ import annotations

from .base import ConditionalGenerator, standard_normal_log_prob, weighted_mean
from .bayesian import (
    BayesianLinear,
    bayesian_mode,
    kl_divergence,
    resample_weights,
    set_bayesian_mode,
    use_means,
)
from .cfm import ConditionalCFM
from .inn import ConditionalINN

GENERATOR_KINDS = ("inn", "binn", "cfm")


def build_generator(kind: str, dims_in: int, dims_c: int, **hyper) -> ConditionalGenerator:
    """Build a generator: ``"inn"`` (ConditionalINN), ``"binn"`` (ConditionalINN with
    ``bayesian=True``) or ``"cfm"`` (ConditionalCFM); ``hyper`` goes to the constructor."""
    kind = kind.lower()
    if kind == "inn":
        return ConditionalINN(dims_in, dims_c, **{**hyper, "bayesian": False})
    if kind == "binn":
        return ConditionalINN(dims_in, dims_c, **{**hyper, "bayesian": True})
    if kind == "cfm":
        return ConditionalCFM(dims_in, dims_c, **hyper)
    raise ValueError(f"unknown generator kind {kind!r}; expected one of {GENERATOR_KINDS}")


__all__ = [
    "GENERATOR_KINDS",
    "BayesianLinear",
    "ConditionalCFM",
    "ConditionalGenerator",
    "ConditionalINN",
    "bayesian_mode",
    "build_generator",
    "kl_divergence",
    "resample_weights",
    "set_bayesian_mode",
    "standard_normal_log_prob",
    "use_means",
    "weighted_mean",
]
