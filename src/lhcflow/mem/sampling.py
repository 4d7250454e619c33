"""Sampling-cINN q_φ(x_hard | x_reco, α), the MEM importance-sampling density (thesis Eqs 6.25-6.28, 6.36-6.38).

A conditional spline INN (Table A.7) on the seven standardised hard features of Eq 6.31, conditioned on
the standardised reco features of §6.3, the zero-padded four-momenta of the extra jets and the CP phase
as (cos α, sin α). Two training variants:

* ``true_pairs`` (Eq 6.36): the paired simulation (α, x_hard, x_reco) as it is;
* ``transfer`` (Eqs 6.37-6.38): x_reco replaced every epoch by x̃_reco ~ p_θ(x_reco|x_hard) from the trained
  transfer network, so that q_φ learns the integrand the MEM actually evaluates.

As a :class:`~lhcflow.mem.integration.Proposal` it maps latent r ~ N(0, 1)⁷ to x_hard in GeV and returns
log q of Eq 6.28 in the physical Eq 6.31 variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from lhcflow.atomic import save_torch
from lhcflow.mem.features import RecoLayout, Standardizer
from lhcflow.models import ConditionalINN, standard_normal_log_prob

SAMPLING_VARIANTS = ("true_pairs", "transfer")


def alpha_condition(alpha: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """(n,) α [rad] -> (n, 2) (cos α, sin α): periodic and unique."""
    lib = torch if isinstance(alpha, torch.Tensor) else np
    return lib.stack([lib.cos(alpha), lib.sin(alpha)], -1)


class SamplingNetwork(nn.Module):
    """q_φ(x_hard | x_reco, α) with its preprocessing; ``dims_reco``: reco features + extra-jet components."""

    dims = 7

    def __init__(self, dims_reco: int, network: Mapping[str, Any]):
        super().__init__()
        self.spec = {"dims_reco": int(dims_reco), "network": dict(network)}
        self.hard_scaler = Standardizer(self.dims)
        self.reco_scaler = Standardizer(dims_reco)
        self.inn = ConditionalINN(self.dims, dims_reco + 2, **{**network, "bayesian": False})

    def fit_preprocessing(self, reco: np.ndarray, x_hard: np.ndarray) -> None:
        self.reco_scaler.fit(reco)
        self.hard_scaler.fit(x_hard)

    def context(self, reco: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Per-event standardised reco condition (without α), float64."""
        return self.reco_scaler(torch.as_tensor(np.asarray(reco), dtype=torch.float64))

    def training_arrays(self, reco: np.ndarray, x_hard: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, c) for the generic trainer: standardised x_hard, [reco condition, cos α, sin α]."""
        x = self.hard_scaler(torch.as_tensor(x_hard, dtype=torch.float64)).numpy()
        c = np.concatenate([self.context(reco).numpy(), alpha_condition(np.asarray(alpha, np.float64))], 1)
        return x.astype(np.float32), c.astype(np.float32)

    def sample(self, r: torch.Tensor, context: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent r (n, 7) -> x_hard (n, 7) [GeV] and log q_φ(x_hard | x_reco, α) (Eq 6.28)."""
        dtype = next(self.inn.parameters()).dtype
        c = torch.cat([context, alpha_condition(alpha.to(context.dtype))], 1).to(dtype)
        z, log_det = self.inn.inverse(r.to(dtype), c)
        log_q = standard_normal_log_prob(r.to(torch.float64)) - log_det.to(torch.float64)
        return self.hard_scaler.inverse(z.to(torch.float64)), log_q + self.hard_scaler.log_det()

    @torch.no_grad()
    def log_prob(self, x_hard: torch.Tensor, context: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """log q_φ(x_hard | x_reco, α) of given hard features (n, 7) [GeV]."""
        dtype = next(self.inn.parameters()).dtype
        c = torch.cat([context, alpha_condition(alpha.to(context.dtype))], 1).to(dtype)
        z = self.hard_scaler(x_hard.to(torch.float64)).to(dtype)
        return self.inn.log_prob(z, c).to(torch.float64) + self.hard_scaler.log_det()

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        save_torch(path, {"spec": self.spec, "state": self.state_dict(), "extra": dict(extra or {})})

    @classmethod
    def load(cls, path: str | Path) -> tuple["SamplingNetwork", dict]:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        net = cls(payload["spec"]["dims_reco"], payload["spec"]["network"])
        net.load_state_dict(payload["state"])
        net.eval()
        return net, payload["extra"]


def sampling_context(layout: RecoLayout, data: Mapping[str, Any]) -> np.ndarray:
    """Reco condition of the Sampling-cINN: §6.3 features and the extra jets (before standardisation)."""
    return np.concatenate([layout.reco_features(data["x_reco"]), layout.extra_jets(data["x_reco"], data["x_reco_present"])], 1)
