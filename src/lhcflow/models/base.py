"""Common interface of the conditional generative networks.

Every generator models a conditional density g(x|c) of event features x (``dims_in``) given a
condition c (``dims_c``, may be 0). The training loop and the Z+jets chain only rely on this
protocol, so INN, Bayesian INN and CFM are interchangeable.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import math

from torch import Tensor


@runtime_checkable
class ConditionalGenerator(Protocol):
    """Protocol implemented by all generators (they are also ``torch.nn.Module`` objects).

    ``loss`` is the per-event training objective only (negative log-likelihood, Eq. 3.34, or
    the CFM regression loss, Eq. 3.58); for Bayesian models the training loop adds
    ``kl() / N_train`` itself (Eq. 3.64/3.67).
    """

    dims_in: int
    dims_c: int

    def loss(self, x: Tensor, c: Tensor, weight: Tensor | None = None) -> Tensor:
        """Scalar batch loss; with ``weight`` the batch-normalised weighted mean of Eq. (4.8)."""
        ...

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log g(x|c), shape (n,)."""
        ...

    def sample(self, c: Tensor) -> Tensor:
        """One sample per condition row, shape (n, dims_in)."""
        ...

    def kl(self) -> Tensor:
        """KL divergence of the weight posterior to the prior; 0 for non-Bayesian models."""
        ...


def weighted_mean(per_event: Tensor, weight: Tensor | None = None) -> Tensor:
    """Batch mean of a per-event loss, optionally with batch-normalised weights (Eq. 4.8).

    With weights, ``sum_i w_i l_i / sum_j w_j`` is returned. Eq. (4.8) carries an extra
    constant 1/B; it is dropped here so that equal weights reproduce the unweighted mean.
    """
    if weight is None:
        return per_event.mean()
    weight = weight.reshape(per_event.shape).to(per_event.dtype)
    return (weight * per_event).sum() / weight.sum()


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, 1) summed over the feature dimension, shape (n,)."""
    return -0.5 * (z.pow(2).sum(dim=-1) + z.shape[-1] * math.log(2 * math.pi))
