"""Per-object density heads of the transformer transfers (Sec. 6.5.2): p(x^(i) | c^(i)) of one reco object.

:class:`~lhcflow.mem.transformer.TransferTransformer` computes one condition c^(i) per reco object
(Eq. 6.40); a head turns it into a density and samples. The transformer takes the head as
``head=``, a class or factory called as ``head(dims_c)`` (``functools.partial(SplineHead, bins=8)``),
the way a zuko flow takes its ``univariate`` transformation: each head owns its hyperparameters.

A head sees an object in the preprocessed coordinates of the transformer,
r = (log(pT − pT_min), η, φ, log m), with the per-slot means and standard deviations of r and the
slot's |η| acceptance η_max, and maps r into its own coordinates x (:meth:`ObjectHead.to_coordinates`,
with the log-Jacobian to (pT, η, φ[, m])). Massless objects (photons, muons) have x of 3 components,
jets of 4. Heads here:

* :class:`SplineHead` (Transfermer, Table A.10): the minimal autoregressive cINN of Eq. (6.42);
* :class:`CFMHead` (Transfusion, Table A.11): conditional flow matching, Eq. (6.44).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from lhcflow.models.base import standard_normal_log_prob
from lhcflow.models.bayesian import BayesianLinear
from lhcflow.models.cfm import ConditionalCFM
from lhcflow.models.inn import identity_subnet
from lhcflow.models.splines import rq_spline
from lhcflow.physics.kinematics import wrap_angle

from .splines import bounded_rq_spline, periodic_rq_spline

LOG_2PI = math.log(2 * math.pi)


def _log_mass_jacobian(raw: Tensor, std: Tensor, massive: Tensor) -> Tensor:
    """log|∂x_m/∂m| of a standardised log m for massive objects, 0 for massless ones."""
    return massive * (-std[..., 3].log() - raw[..., 3])


class ObjectHead(nn.Module):
    """Interface of a per-object head; subclasses are built as ``Head(dims_c, **settings)``.

    ``differentiable``: True if :meth:`log_prob` carries gradients, so that the transformer trains the
    head by the negative log-likelihood of Eq. (6.43); False if it does not (RK4 likelihoods), and the
    transformer trains by the head's own per-object :meth:`loss` instead.
    """

    differentiable = True

    def to_coordinates(self, raw: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor,
                       massive: Tensor) -> tuple[Tensor, Tensor]:
        """r (..., 4) -> head coordinates x (..., 4) and log|∂x/∂(pT, η, φ[, m])| (...); ``mean``, ``std``
        (..., 4) and ``eta_max`` (...) are the slot statistics, ``massive`` (...) 1 for jets, 0 else."""
        raise NotImplementedError

    def from_coordinates(self, x: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor) -> Tensor:
        """Inverse of :meth:`to_coordinates`: x (..., d) -> r (..., d), d = 3 (massless) or 4 (jets)."""
        raise NotImplementedError

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log p(x | c) in head coordinates, x (n, 3 | 4), c (n, dims_c) -> (n,)."""
        raise NotImplementedError

    def sample(self, c: Tensor, massive: bool) -> Tensor:
        """One object per row of c in head coordinates, shape (n, 4 if massive else 3)."""
        raise NotImplementedError

    def loss(self, x: Tensor, c: Tensor) -> Tensor:
        """Per-object training loss (n,) of a head that is not ``differentiable``."""
        raise NotImplementedError(f"{type(self).__name__} is trained by the negative log-likelihood")


class SplineHead(ObjectHead):
    """Minimal autoregressive cINN for one reco object (Transfermer), Eq. (6.42).

    Coordinates x = (x_pt, x_eta, φ[, x_m]): x_pt, x_m standardised log(pT − pT_min) (Eq 4.4: the reco pT cut
    at −∞) and log m, x_eta = η / η_max ∈ [-1, 1]. Component k is transformed once by an RQ spline with
    parameters MLP_k(c, earlier components):

    * x_pt, x_m: spline on [-B, B] with identity tails, latent N(0, 1);
    * x_eta: bounded spline on [-1, 1], latent uniform on [-1, 1];
    * φ: periodic spline (with a learned rotation) on [-π, π), latent uniform on [-π, π).

    Earlier φ values enter the conditioning as (cos φ, sin φ). Massless objects skip the mass factor.

    Args:
        dims_c: condition features (the transformer's embedding dimension).
        layers, hidden: layers and width of each subnet (Table A.10).
        bins: spline bins K; tail_bound: the interval [-B, B] of the pT and mass splines.
        bayesian, prior_sigma, init_log_sigma: ``BayesianLinear`` subnet layers (Sec. 4.3).
    """

    def __init__(self, dims_c: int, layers: int = 5, hidden: int = 256, bins: int = 16,
                 tail_bound: float = 5.0, bayesian: bool = False, prior_sigma: float = 1.0,
                 init_log_sigma: float = -9.0):
        super().__init__()
        if bins < 2:
            raise ValueError("bins must be >= 2")
        self.bins = int(bins)
        self.tail_bound = float(tail_bound)
        if bayesian:

            def linear(i: int, o: int) -> nn.Module:
                return BayesianLinear(i, o, prior_sigma=prior_sigma, init_log_sigma=init_log_sigma)
        else:
            linear = nn.Linear
        k = self.bins
        self.net_pt = identity_subnet(dims_c, 3 * k - 1, hidden, layers, linear)
        self.net_eta = identity_subnet(dims_c + 1, 3 * k + 1, hidden, layers, linear)
        self.net_phi = identity_subnet(dims_c + 2, 3 * k + 1, hidden, layers, linear)  # + rotation
        self.net_mass = identity_subnet(dims_c + 4, 3 * k - 1, hidden, layers, linear)

    def to_coordinates(self, raw: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor,
                       massive: Tensor) -> tuple[Tensor, Tensor]:
        coords = torch.stack(
            [(raw[..., 0] - mean[..., 0]) / std[..., 0], raw[..., 1] / eta_max, wrap_angle(raw[..., 2]),
             (raw[..., 3] - mean[..., 3]) / std[..., 3]],
            dim=-1,
        )
        log_jac = -std[..., 0].log() - raw[..., 0] - eta_max.log()
        return coords, log_jac + _log_mass_jacobian(raw, std, massive)

    def from_coordinates(self, x: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor) -> Tensor:
        parts = [x[..., 0] * std[..., 0] + mean[..., 0], x[..., 1] * eta_max, x[..., 2]]
        if x.shape[-1] == 4:
            parts.append(x[..., 3] * std[..., 3] + mean[..., 3])
        return torch.stack(parts, dim=-1)

    @staticmethod
    def _context(x: Tensor, k: int) -> Tensor:
        """Conditioning features of the components before component k."""
        if k < 3:
            return x[:, :k]
        return torch.stack([x[:, 0], x[:, 1], torch.cos(x[:, 2]), torch.sin(x[:, 2])], dim=1)

    def _gaussian(self, net: nn.Module, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k, b = self.bins, self.tail_bound
        w, h, d = net(inp).split([k, k, k - 1], dim=-1)  # boundary derivatives 1: smooth join to the tails
        return rq_spline(x, w, h, d, inverse=inverse, left=-b, right=b, bottom=-b, top=b)

    def _eta(self, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.bins
        w, h, d = self.net_eta(inp).split([k, k, k + 1], dim=-1)
        return bounded_rq_spline(x, w, h, d, -1.0, 1.0, inverse=inverse)

    def _phi(self, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.bins
        w, h, d, shift = self.net_phi(inp).split([k, k, k, 1], dim=-1)
        return periodic_rq_spline(x, w, h, d, shift[:, 0], inverse=inverse)

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        z, ld = self._gaussian(self.net_pt, c, x[:, 0], inverse=False)
        out = standard_normal_log_prob(z[:, None]) + ld
        _, ld = self._eta(torch.cat([c, self._context(x, 1)], dim=1), x[:, 1], inverse=False)
        out = out - math.log(2.0) + ld
        _, ld = self._phi(torch.cat([c, self._context(x, 2)], dim=1), x[:, 2], inverse=False)
        out = out - LOG_2PI + ld
        if x.shape[1] == 4:
            inp = torch.cat([c, self._context(x, 3)], dim=1)
            z, ld = self._gaussian(self.net_mass, inp, x[:, 3], inverse=False)
            out = out + standard_normal_log_prob(z[:, None]) + ld
        return out

    def sample(self, c: Tensor, massive: bool) -> Tensor:
        n = c.shape[0]
        x = c.new_zeros(n, 4 if massive else 3)
        x[:, 0] = self._gaussian(self.net_pt, c, torch.randn_like(x[:, 0]), inverse=True)[0]
        u = 2 * torch.rand_like(x[:, 1]) - 1
        x[:, 1] = self._eta(torch.cat([c, self._context(x, 1)], dim=1), u, inverse=True)[0]
        u = math.pi * (2 * torch.rand_like(x[:, 2]) - 1)
        x[:, 2] = self._phi(torch.cat([c, self._context(x, 2)], dim=1), u, inverse=True)[0]
        if massive:
            inp = torch.cat([c, self._context(x, 3)], dim=1)
            x[:, 3] = self._gaussian(self.net_mass, inp, torch.randn_like(x[:, 3]), inverse=True)[0]
        return x


class CFMHead(ObjectHead):
    """Conditional flow matching for one reco object (Transfusion), Eq. (6.44).

    One :class:`~lhcflow.models.ConditionalCFM` for on-shell (3-dim) and one for jet (4-dim) objects, both
    over all four components standardised per slot and conditioned on c^(i). Densities via RK4 and the exact
    divergence (Eq. 3.55), without gradients; training by the flow-matching loss (Eq. 3.58). Samples are
    mapped back into the acceptance (φ wrapped into [-π, π), η clamped inside ±η_max), which is exact only in
    the limit of a perfectly trained CFM.

    Args:
        dims_c: condition features (the transformer's embedding dimension).
        layers, hidden, time_embedding: velocity network (Table A.11, see ``ConditionalCFM``).
        step: RK4 step size in (0, 1] of sampling and likelihood.
    """

    differentiable = False

    def __init__(self, dims_c: int, layers: int = 6, hidden: int = 400, step: float = 0.05,
                 time_embedding: int = 8):
        super().__init__()
        if not 0 < step <= 1:
            raise ValueError(f"step={step} (cfm_step) must lie in (0, 1]")
        steps = max(1, round(1.0 / step))
        cfm = {"hidden": hidden, "layers": layers, "time_embedding": time_embedding, "steps": steps}
        self.onshell = ConditionalCFM(3, dims_c, **cfm)
        self.jet = ConditionalCFM(4, dims_c, **cfm)

    def _cfm(self, dims: int) -> ConditionalCFM:
        return self.jet if dims == 4 else self.onshell

    def to_coordinates(self, raw: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor,
                       massive: Tensor) -> tuple[Tensor, Tensor]:
        coords = (raw - mean) / std
        log_jac = -std[..., :3].log().sum(dim=-1) - raw[..., 0]
        return coords, log_jac + _log_mass_jacobian(raw, std, massive)

    def from_coordinates(self, x: Tensor, mean: Tensor, std: Tensor, eta_max: Tensor) -> Tensor:
        eta = x[..., 1] * std[..., 1] + mean[..., 1]
        eta = torch.maximum(torch.minimum(eta, eta_max * (1 - 1e-6)), -eta_max * (1 - 1e-6))
        phi = wrap_angle(x[..., 2] * std[..., 2] + mean[..., 2])
        parts = [x[..., 0] * std[..., 0] + mean[..., 0], eta, phi]
        if x.shape[-1] == 4:
            parts.append(x[..., 3] * std[..., 3] + mean[..., 3])
        return torch.stack(parts, dim=-1)

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        return self._cfm(x.shape[1]).log_prob(x, c)

    def sample(self, c: Tensor, massive: bool) -> Tensor:
        return self._cfm(4 if massive else 3).sample(c)

    def loss(self, x: Tensor, c: Tensor) -> Tensor:
        """Squared velocity error per object (Eq. 3.58, t = 0 latent convention of ``ConditionalCFM``)."""
        cfm = self._cfm(x.shape[1])
        x0 = torch.randn_like(x)
        t = torch.rand(x.shape[0], 1, dtype=x.dtype, device=x.device)
        err = cfm.velocity((1 - t) * x0 + t * x, t, c) - (x - x0)
        return err.pow(2).mean(dim=1)
