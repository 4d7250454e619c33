"""Fully connected classifier (thesis §3.1.3, Table A.2; Table A.8 for §6.4.2/§6.5.2).

The network returns logits: one column for a binary classifier (``D = sigmoid``, Eq 3.14,
so that the weight of Eq 4.16 is ``exp(logit)``) or ``n_classes`` columns for a categorical
one (``softmax``). ``layers`` counts the linear layers (input, hidden→hidden and output),
which reproduces the 266k parameters of Table A.8 for 6 layers of 256 nodes. With
``bayesian=True`` every linear layer is a :class:`~lhcflow.models.bayesian.BayesianLinear`
and :meth:`Classifier.kl` returns the KL term to add (divided by N_train) to the loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lhcflow.models.bayesian import BayesianLinear, kl_divergence


class Classifier(nn.Module):
    """MLP with leaky ReLU and dropout after every hidden layer."""

    def __init__(self, dims_in: int, n_classes: int = 1, hidden: int = 256, layers: int = 5,
                 dropout: float = 0.1, bayesian: bool = False, prior_sigma: float = 1.0,
                 negative_slope: float = 0.01):
        super().__init__()
        if layers < 2:
            raise ValueError("a classifier needs at least 2 linear layers")
        self.hparams = {"dims_in": dims_in, "n_classes": n_classes, "hidden": hidden, "layers": layers,
                        "dropout": dropout, "bayesian": bayesian, "prior_sigma": prior_sigma,
                        "negative_slope": negative_slope}
        self.bayesian = bayesian
        self.n_classes = n_classes

        def linear(n_in: int, n_out: int) -> nn.Module:
            return BayesianLinear(n_in, n_out, prior_sigma=prior_sigma) if bayesian else nn.Linear(n_in, n_out)

        blocks: list[nn.Module] = []
        width = dims_in
        for _ in range(layers - 1):
            blocks += [linear(width, hidden), nn.LeakyReLU(negative_slope)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = hidden
        blocks.append(linear(width, n_classes))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(n,)`` for binary and ``(n, n_classes)`` for categorical networks."""
        out = self.net(x)
        return out[:, 0] if self.n_classes == 1 else out

    def kl(self) -> torch.Tensor:
        """KL(q, p) of the Bayesian weights (Eq 3.65); zero for a deterministic network."""
        return kl_divergence(self)
