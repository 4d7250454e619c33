"""Bayesian (variational-inference) linear layers, Sec. 3.3.

The weights follow an uncorrelated Gaussian posterior q(theta) = N(mu, sigma^2) with a Gaussian
prior N(0, prior_sigma^2). Their KL divergence is analytic (Eq. 3.65). The training loss of a
Bayesian network is (Eq. 3.64, 3.67)

    L = <per-event NLL>_batch + KL(q, p) / N_train ,

i.e. the training loop must add ``kl_divergence(model) / N_train`` (N_train = number of training
events, *not* the batch size) to the batch-mean NLL returned by ``model.loss``.

Each ``BayesianLinear`` is in one of three modes:

* ``"sample"``: fresh weights for every forward pass, via the local reparameterisation trick
  (Eq. 3.66 applied to the pre-activations), used in training;
* ``"fixed"``: one weight draw, kept until ``resample_weights`` is called again; used to draw
  K network replicas from the posterior;
* ``"map"``: the posterior means.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

MODES = ("sample", "fixed", "map")


class BayesianLinear(nn.Module):
    """Linear layer with mean-field Gaussian weights (deterministic bias).

    Args:
        in_features, out_features: layer shape.
        prior_sigma: width of the Gaussian weight prior.
        init_log_sigma: initial value of log sigma^2 (the weight *variance*), as in the usual
            Bayesian-INN implementations; -9 gives sigma ~ 0.011.
    """

    def __init__(
        self, in_features: int, out_features: int, prior_sigma: float = 1.0, init_log_sigma: float = -9.0
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.prior_sigma = float(prior_sigma)
        self.init_log_sigma = float(init_log_sigma)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_log_sigma2 = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.register_buffer("fixed_weight", None, persistent=False)
        self.mode = "sample"
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight_mu, 0.0, 1.0 / math.sqrt(max(self.in_features, 1)))
        nn.init.normal_(self.weight_log_sigma2, self.init_log_sigma, 1e-3)
        nn.init.zeros_(self.bias)
        self.fixed_weight = None

    def weight_sigma2(self) -> Tensor:
        # clamp for numerical safety, as is customary for log-variance parameters
        return self.weight_log_sigma2.clamp(-30.0, 11.0).exp()

    def resample(self) -> None:
        """Draw one weight set theta = mu + sigma * eps (Eq. 3.66) and switch to ``"fixed"``."""
        with torch.no_grad():
            eps = torch.randn_like(self.weight_mu)
            self.fixed_weight = self.weight_mu + self.weight_sigma2().sqrt() * eps
        self.mode = "fixed"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown Bayesian mode {mode!r}; expected one of {MODES}")
        if mode == "fixed" and self.fixed_weight is None:
            self.resample()
        self.mode = mode

    def map(self) -> None:
        """Use the posterior means from now on."""
        self.set_mode("map")

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "map":
            return F.linear(x, self.weight_mu, self.bias)
        if self.mode == "fixed":
            return F.linear(x, self.fixed_weight.to(x.dtype), self.bias)
        # local reparameterisation: sample the pre-activations instead of the weights
        mean = F.linear(x, self.weight_mu, self.bias)
        var = F.linear(x.pow(2), self.weight_sigma2())
        return mean + var.clamp_min(1e-30).sqrt() * torch.randn_like(mean)

    def kl(self) -> Tensor:
        """KL(q, p) summed over the weights, Eq. (3.65)."""
        sigma2 = self.weight_sigma2()
        p2 = self.prior_sigma**2
        return (
            0.5 * math.log(p2) - 0.5 * sigma2.log() + (sigma2 + self.weight_mu.pow(2)) / (2 * p2) - 0.5
        ).sum()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"prior_sigma={self.prior_sigma}, mode={self.mode}"
        )


def bayesian_layers(model: nn.Module) -> Iterator[BayesianLinear]:
    """All ``BayesianLinear`` layers of ``model``."""
    return (m for m in model.modules() if isinstance(m, BayesianLinear))


def kl_divergence(model: nn.Module) -> Tensor:
    """Sum of the layer KL terms (Eq. 3.65); a zero tensor if the model has no Bayesian layer."""
    terms = [layer.kl() for layer in bayesian_layers(model)]
    if not terms:
        p = next(model.parameters(), None)
        return torch.zeros(()) if p is None else p.new_zeros(())
    return torch.stack(terms).sum()


def set_bayesian_mode(model: nn.Module, mode: str) -> None:
    """Switch all Bayesian layers to ``"sample"``, ``"fixed"`` or ``"map"``."""
    for layer in bayesian_layers(model):
        layer.set_mode(mode)


def resample_weights(model: nn.Module) -> None:
    """Draw one new network replica from the posterior and keep it fixed (mode ``"fixed"``).

    Reproducible under ``torch.manual_seed``: layers are drawn in module order.
    """
    for layer in bayesian_layers(model):
        layer.resample()


def use_means(model: nn.Module) -> None:
    """Use the posterior means of all Bayesian layers (mode ``"map"``)."""
    set_bayesian_mode(model, "map")


@contextlib.contextmanager
def bayesian_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Context manager: temporarily put all Bayesian layers in ``mode``, restoring them after.

    ``mode="fixed"`` draws a fresh replica on entry.
    """
    layers = list(bayesian_layers(model))
    previous = [layer.mode for layer in layers]
    try:
        if mode == "fixed":
            resample_weights(model)
        else:
            set_bayesian_mode(model, mode)
        yield model
    finally:
        for layer, old in zip(layers, previous):
            layer.mode = old
