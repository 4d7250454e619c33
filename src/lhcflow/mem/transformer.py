"""Transformer transfer networks p_θ(x_reco | x_hard): Transfermer and Transfusion (Sec. 6.5.2).

The transfer probability is factorised autoregressively over the reco objects (Eq. 6.40),

    p(x_reco | x_hard) = Π_i p(x_reco^(i) | c^(i)(e_reco^(0), ..., e_reco^(i-1), e_hard)),

where c^(i) is the i-th output of a transformer: an encoder over the hard-object embeddings
e_hard and a decoder with causal (triangular) self-attention over the reco embeddings shifted by
a start token e_reco^(0), cross-attending to the encoder output. Embeddings are the preprocessed
momentum components concatenated with the one-hot position, zero-padded to the embedding
dimension (no linear layer needed, Sec. 6.5.2). φ enters the embeddings as (cos φ, sin φ), so
that they are continuous across ±π.

Per-object densities p(x^(i) | c^(i)):

* ``kind="cinn"`` (Transfermer, Table A.10): the minimal autoregressive cINN of Eq. (6.42),
  ``ObjectSplineFlow``: standardised log(pT − pT_min) -> Gaussian (Eq 4.4: the reco pT cut at −∞),
  η / η_max -> uniform on [-1, 1],
  φ -> uniform on [-π, π) with a periodic spline, then (jets only) standardised log m -> Gaussian.
  Each component is transformed once by an RQ spline whose parameters an MLP computes from
  c^(i) and the earlier components of the same object. Massless objects (photons, muons) skip
  the mass factor.
* ``kind="cfm"`` (Transfusion, Table A.11, Eq. 6.44): one ``ConditionalCFM`` for on-shell
  (3-dim) and one for jet (4-dim) momenta, both over per-slot standardised (log(pT − pT_min), η, φ, log m)
  and conditioned on c^(i). Densities via RK4 and the exact divergence (Eq. 3.55); the
  transformer is evaluated once since c^(i) does not depend on t. Samples are mapped back into
  the acceptance (φ wrapped into [-π, π), η clamped inside ±η_max), which is exact only in the
  limit of a perfectly trained CFM.

Variable jet number (Eq. 6.45): with ``variable_jets=True`` the number n of extra jets
(0..n_extra_max) is appended one-hot to every hard embedding; ``log_prob`` adds a given
log p(n | x_hard) from a separate multiplicity classifier.

All densities refer to the physical coordinates (pT, η, φ[, m]) of the present objects, i.e.
they include the Jacobians of the log / standardisation / η scaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from madnis.nn.splines import unconstrained_rational_quadratic_spline
from torch import Tensor

from lhcflow.models.base import standard_normal_log_prob, weighted_mean
from lhcflow.models.bayesian import BayesianLinear, kl_divergence
from lhcflow.models.cfm import ConditionalCFM
from lhcflow.models.inn import identity_subnet
from lhcflow.physics.kinematics import wrap_angle

from .splines import bounded_rq_spline, periodic_rq_spline

SLOT_TYPES = ("photon", "muon", "bjet", "jet")
MASSLESS_TYPES = ("photon", "muon")
KINDS = ("cinn", "cfm")
N_FEATURES = 5  # per-object embedding features: log pT, η, cos φ, sin φ, (log) m
LOG_2PI = math.log(2 * math.pi)


Linear = Callable[[int, int], nn.Module]


class ObjectSplineFlow(nn.Module):
    """Minimal autoregressive cINN for one reco object, Eq. (6.42).

    Flow coordinates x = (x_pt, x_eta, φ[, x_m]) with x_pt, x_m standardised log(pT − pT_min), log m and
    x_eta = η / η_max ∈ [-1, 1]. Component k is transformed once by an RQ spline with parameters
    MLP_k(c, earlier components):

    * x_pt, x_m: spline on [-B, B] with identity tails, latent N(0, 1);
    * x_eta: bounded spline on [-1, 1], latent uniform on [-1, 1];
    * φ: periodic spline (with a learned rotation) on [-π, π), latent uniform on [-π, π).

    Earlier φ values enter the conditioning as (cos φ, sin φ).
    """

    def __init__(
        self, dims_c: int, hidden: int, layers: int, bins: int, tail_bound: float, linear: Linear
    ):
        super().__init__()
        self.bins = int(bins)
        self.tail_bound = float(tail_bound)
        k = self.bins
        self.net_pt = identity_subnet(dims_c, 3 * k - 1, hidden, layers, linear)
        self.net_eta = identity_subnet(dims_c + 1, 3 * k + 1, hidden, layers, linear)
        self.net_phi = identity_subnet(dims_c + 2, 3 * k + 1, hidden, layers, linear)  # + rotation
        self.net_mass = identity_subnet(dims_c + 4, 3 * k - 1, hidden, layers, linear)

    @staticmethod
    def _context(x: Tensor, k: int) -> Tensor:
        """Conditioning features of the components before component k."""
        if k < 3:
            return x[:, :k]
        return torch.stack([x[:, 0], x[:, 1], torch.cos(x[:, 2]), torch.sin(x[:, 2])], dim=1)

    def _gaussian(self, net: nn.Module, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k, b = self.bins, self.tail_bound
        w, h, d = net(inp).split([k, k, k - 1], dim=-1)
        d = nn.functional.pad(d, (1, 1))  # boundary derivative 1: smooth join to the tails
        # madnis reduces its inside-the-interval mask over the last input axis: give each row its own
        y, logdet = unconstrained_rational_quadratic_spline(
            x[:, None], w[:, None], h[:, None], d[:, None],
            inverse=inverse, left=-b, right=b, bottom=-b, top=b,
        )
        return y[:, 0], logdet[:, 0]

    def _eta(self, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.bins
        w, h, d = self.net_eta(inp).split([k, k, k + 1], dim=-1)
        return bounded_rq_spline(x, w, h, d, -1.0, 1.0, inverse=inverse)

    def _phi(self, inp: Tensor, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.bins
        w, h, d, shift = self.net_phi(inp).split([k, k, k, 1], dim=-1)
        return periodic_rq_spline(x, w, h, d, shift[:, 0], inverse=inverse)

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """log p(x | c) in flow coordinates; x (n, 3) for massless objects or (n, 4) for jets."""
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

    def sample(self, c: Tensor, with_mass: bool) -> Tensor:
        """One object per row of c, in flow coordinates, shape (n, 4 if with_mass else 3)."""
        n = c.shape[0]
        x = c.new_zeros(n, 4 if with_mass else 3)
        x[:, 0] = self._gaussian(self.net_pt, c, torch.randn_like(x[:, 0]), inverse=True)[0]
        u = 2 * torch.rand_like(x[:, 1]) - 1
        x[:, 1] = self._eta(torch.cat([c, self._context(x, 1)], dim=1), u, inverse=True)[0]
        u = math.pi * (2 * torch.rand_like(x[:, 2]) - 1)
        x[:, 2] = self._phi(torch.cat([c, self._context(x, 2)], dim=1), u, inverse=True)[0]
        if with_mass:
            inp = torch.cat([c, self._context(x, 3)], dim=1)
            x[:, 3] = self._gaussian(self.net_mass, inp, torch.randn_like(x[:, 3]), inverse=True)[0]
        return x


class TransferTransformer(nn.Module):
    """Autoregressive transformer transfer network (Transfermer / Transfusion), Eq. (6.40-6.45).

    Args:
        slot_types: type of each reco slot ("photon", "muon", "bjet", "jet"), length S.
        eta_max: |η| acceptance of each slot, length S.
        pt_min: reco pT threshold of each slot (Table 6.1), length S; default 0 (plain log pT).
        n_hard: number of hard-process objects H.
        n_required: number of always-present leading slots (default: all S).
        kind: "cinn" (Transfermer) or "cfm" (Transfusion).
        variable_jets: model up to ``n_extra_max`` optional extra jets after the required slots
            (Eq. 6.45); otherwise the slots after ``n_required`` are ignored. Present jets beyond
            ``n_required + n_extra_max`` are ignored too, i.e. the multiplicity n is counted up to
            n_extra_max (the multiplicity classifier must clip its labels the same way).
        n_extra_max: largest number of extra jets k (default: all remaining slots).
        heads, encoder_layers, decoder_layers, embed_dim, feedforward_dim, dropout: transformer.
        subnet_layers, subnet_hidden, bins, tail_bound: per-object cINN (``kind="cinn"``).
        cfm_layers, cfm_hidden, cfm_step, cfm_time_embedding: per-object CFMs (``kind="cfm"``);
            ``cfm_step`` is the RK4 step size.
        mass_floor: jet masses below this value [GeV] are raised to it before the logarithm.
        bayesian, prior_sigma, init_log_sigma: ``BayesianLinear`` layers in the cINN subnets.
    Defaults follow Tables A.10 / A.11.
    """

    def __init__(
        self,
        slot_types: Sequence[str],
        eta_max: Sequence[float],
        n_hard: int = 3,
        n_required: int | None = None,
        kind: str = "cinn",
        variable_jets: bool = False,
        n_extra_max: int | None = None,
        heads: int = 8,
        encoder_layers: int = 6,
        decoder_layers: int = 8,
        embed_dim: int = 64,
        feedforward_dim: int = 256,
        dropout: float = 0.0,
        subnet_layers: int = 5,
        subnet_hidden: int = 256,
        bins: int = 16,
        tail_bound: float = 5.0,
        cfm_layers: int = 6,
        cfm_hidden: int = 400,
        cfm_step: float = 0.05,
        cfm_time_embedding: int = 8,
        mass_floor: float = 1e-3,
        bayesian: bool = False,
        prior_sigma: float = 1.0,
        init_log_sigma: float = -9.0,
        pt_min: Sequence[float] | None = None,
    ):
        super().__init__()
        slot_types = [str(s) for s in slot_types]
        n_slots_in = len(slot_types)
        unknown = sorted(set(slot_types) - set(SLOT_TYPES))
        if unknown:
            raise ValueError(f"unknown slot types {unknown}; expected some of {SLOT_TYPES}")
        if len(eta_max) != n_slots_in:
            raise ValueError(f"eta_max has {len(eta_max)} entries for {n_slots_in} slots")
        if any(float(e) <= 0 for e in eta_max):
            raise ValueError("eta_max must be positive")
        pt_min = [0.0] * n_slots_in if pt_min is None else [float(p) for p in pt_min]
        if len(pt_min) != n_slots_in or any(p < 0 for p in pt_min):
            raise ValueError(f"pt_min needs {n_slots_in} non-negative entries, got {pt_min}")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        if bayesian and kind != "cinn":
            raise ValueError("bayesian=True is only implemented for kind='cinn'")
        n_required = n_slots_in if n_required is None else int(n_required)
        if not 1 <= n_required <= n_slots_in:
            raise ValueError(f"n_required={n_required} must lie in [1, {n_slots_in}]")
        if variable_jets:
            n_extra_max = n_slots_in - n_required if n_extra_max is None else int(n_extra_max)
            if not 0 <= n_extra_max <= n_slots_in - n_required:
                raise ValueError(
                    f"n_extra_max={n_extra_max} must lie in [0, {n_slots_in - n_required}]"
                    " (the slots after n_required)"
                )
            extra_types = slot_types[n_required : n_required + n_extra_max]
            if any(t in MASSLESS_TYPES for t in extra_types):
                raise ValueError(f"extra slots must be jets, got {extra_types}")
        else:
            n_extra_max = 0
        if n_hard < 1:
            raise ValueError("n_hard must be >= 1")
        n_model = n_required + n_extra_max
        n_mult = n_extra_max + 1 if variable_jets else 0
        need = max(N_FEATURES + n_hard + n_mult, N_FEATURES + n_model)
        if embed_dim < need:
            raise ValueError(
                f"embed_dim={embed_dim} is smaller than features + one-hot positions"
                f"{' + multiplicity' if variable_jets else ''} = {need}"
            )
        if embed_dim % heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by heads={heads}")
        if bins < 2:
            raise ValueError("bins must be >= 2")
        if kind == "cfm" and not 0 < cfm_step <= 1:
            raise ValueError("cfm_step must lie in (0, 1]")

        self.kind = kind
        self.slot_types = slot_types
        self.n_slots_in = n_slots_in
        self.n_hard = int(n_hard)
        self.n_required = n_required
        self.variable_jets = bool(variable_jets)
        self.n_extra_max = int(n_extra_max)
        self.n_slots = n_model  # modelled slots
        self.embed_dim = int(embed_dim)
        self.mass_floor = float(mass_floor)
        self.bayesian = bool(bayesian)
        self.massive = [t not in MASSLESS_TYPES for t in slot_types[:n_model]]
        self.register_buffer("eta_max", torch.tensor([float(e) for e in eta_max[:n_model]]))
        self.register_buffer("pt_min", torch.tensor(pt_min[:n_model]))
        # (log pT, η, φ, m) of the hard objects; (log(pT − pT_min), η, φ, log m) of the reco slots
        self.register_buffer("hard_mean", torch.zeros(n_hard, 4))
        self.register_buffer("hard_std", torch.ones(n_hard, 4))
        self.register_buffer("reco_mean", torch.zeros(n_model, 4))
        self.register_buffer("reco_std", torch.ones(n_model, 4))

        enc_layer = nn.TransformerEncoderLayer(embed_dim, heads, feedforward_dim, dropout, batch_first=True)
        dec_layer = nn.TransformerDecoderLayer(embed_dim, heads, feedforward_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, decoder_layers)

        if kind == "cinn":
            if bayesian:

                def linear(i: int, o: int) -> nn.Module:
                    return BayesianLinear(i, o, prior_sigma=prior_sigma, init_log_sigma=init_log_sigma)
            else:
                linear = nn.Linear
            self.object_flow = ObjectSplineFlow(
                embed_dim, subnet_hidden, subnet_layers, bins, tail_bound, linear
            )
        else:
            steps = max(1, round(1.0 / cfm_step))
            cfm = dict(hidden=cfm_hidden, layers=cfm_layers, time_embedding=cfm_time_embedding, steps=steps)
            self.cfm_onshell = ConditionalCFM(3, embed_dim, **cfm)
            self.cfm_jet = ConditionalCFM(4, embed_dim, **cfm)

    # ------------------------------------------------------------------ preprocessing
    @property
    def _dtype(self) -> torch.dtype:
        return self.hard_mean.dtype

    def _slot_groups(self, device: torch.device) -> list[tuple[Tensor, bool]]:
        """Indices of the modelled massless and massive slots, with the mass flag."""
        groups = []
        for massive in (False, True):
            idx = [i for i, m in enumerate(self.massive) if m == massive]
            if idx:
                groups.append((torch.tensor(idx, device=device), massive))
        return groups

    def _hard_raw(self, x_hard: Tensor) -> Tensor:
        """(log pT, η, φ, m) of the hard objects."""
        return torch.stack([x_hard[..., 0].log(), x_hard[..., 1], x_hard[..., 2], x_hard[..., 3]], dim=-1)

    def _reco_raw(self, x_reco: Tensor) -> Tensor:
        """(log(pT − pT_min), η, φ, log m) of reco objects (mass floored; 0 for massless slots)."""
        s = x_reco.shape[1]
        massive = torch.tensor(self.massive[:s], device=x_reco.device)
        mass = x_reco[..., 3]
        log_m = torch.where(massive, mass.clamp_min(self.mass_floor).log(), torch.zeros_like(mass))
        log_pt = (x_reco[..., 0] - self.pt_min[:s].to(x_reco.dtype)).log()
        return torch.stack([log_pt, x_reco[..., 1], x_reco[..., 2], log_m], dim=-1)

    def _safe(self, x_reco: Tensor, present: Tensor) -> Tensor:
        """Absent slots replaced by an object inside the cuts (their terms are masked later)."""
        s = x_reco.shape[1]
        safe = torch.ones_like(x_reco)
        safe[..., 0] = self.pt_min[:s].to(x_reco.dtype) + 1
        return torch.where(present[..., None], x_reco, safe)

    @torch.no_grad()
    def fit_preprocessing(self, x_hard: Tensor, x_reco: Tensor, present: Tensor | None = None) -> None:
        """Store the means / standard deviations of the hard and reco features (buffers).

        Hard: (log pT, η, φ, m) per hard object; reco: (log(pT − pT_min), η, φ, log m) per modelled slot
        over the events where the slot is present. Zero spread (or no entries) gives std 1.
        """
        dtype, device = self._dtype, self.hard_mean.device
        x_hard = x_hard.to(device=device, dtype=dtype)
        x_reco = x_reco[:, : self.n_slots].to(device=device, dtype=dtype)
        present = self._present(x_reco, present)
        outside = present & ((x_reco[..., 0] <= self.pt_min) | (x_reco[..., 1].abs() >= self.eta_max))
        if bool(outside.any()):
            raise ValueError(f"{int(outside.any(1).sum())} of {len(x_reco)} training events have reco objects outside "
                             f"the selection (pt_min {self.pt_min.tolist()}, eta_max {self.eta_max.tolist()}): the "
                             "paired file's 'selection' attribute does not describe its accepted events")
        hard = self._hard_raw(x_hard)
        mean, std = hard.mean(dim=0), hard.std(dim=0, unbiased=False)
        self.hard_mean.copy_(mean)
        self.hard_std.copy_(torch.where(std > 1e-6 * (1 + mean.abs()), std, torch.ones_like(std)))
        reco = self._reco_raw(self._safe(x_reco, present))
        w = present.to(dtype)[..., None]
        count = w.sum(dim=0)
        mean = (w * reco).sum(dim=0) / count.clamp_min(1)
        var = (w * (reco - mean).pow(2)).sum(dim=0) / count.clamp_min(1)
        std = var.sqrt()
        ok = (count > 1) & (std > 1e-6 * (1 + mean.abs()))
        self.reco_mean.copy_(torch.where(count > 0, mean, torch.zeros_like(mean)))
        self.reco_std.copy_(torch.where(ok, std, torch.ones_like(std)))

    def _present(self, x_reco: Tensor, present: Tensor | None) -> Tensor:
        """Presence mask of the modelled slots, validated (required slots, prefix of extra jets)."""
        n = x_reco.shape[0]
        if present is None:
            return torch.ones(n, self.n_slots, dtype=torch.bool, device=x_reco.device)
        present = present[:, : self.n_slots].to(device=x_reco.device, dtype=torch.bool)
        if not bool(present[:, : self.n_required].all()):
            raise ValueError("a required slot is absent")
        extra = present[:, self.n_required :]
        if extra.shape[1] > 1 and bool((extra[:, 1:] & ~extra[:, :-1]).any()):
            raise ValueError("present extra jets must fill a prefix of the extra slots")
        return present

    def _flow_coordinates(self, x_reco: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """Per-object flow coordinates (n, S, 4) and log|d coordinates / d(pT, η, φ[, m])| (n, S).

        cINN: (std. log(pT − pT_min), η / η_max, φ, std. log m); CFM: all four standardised. Absent slots
        are replaced by harmless values (their terms are masked later).
        """
        mean, std = self.reco_mean.to(x_reco.dtype), self.reco_std.to(x_reco.dtype)
        safe_values = torch.stack(
            [mean[:, 0].exp() + self.pt_min.to(x_reco.dtype), torch.zeros_like(mean[:, 0]),
             torch.zeros_like(mean[:, 0]), mean[:, 3].exp()],
            dim=-1,
        )
        x_reco = torch.where(present[..., None], x_reco, safe_values.expand_as(x_reco))
        raw = self._reco_raw(x_reco)
        massive = torch.tensor(self.massive, device=x_reco.device, dtype=x_reco.dtype)
        if self.kind == "cinn":
            eta_max = self.eta_max.to(x_reco.dtype)
            coords = torch.stack(
                [(raw[..., 0] - mean[:, 0]) / std[:, 0], raw[..., 1] / eta_max, wrap_angle(raw[..., 2]),
                 (raw[..., 3] - mean[:, 3]) / std[:, 3]],
                dim=-1,
            )
            log_jac = -std[:, 0].log() - raw[..., 0] - eta_max.log()
        else:
            coords = (raw - mean) / std
            log_jac = -std[:, :3].log().sum(dim=-1) - raw[..., 0]
        log_jac = log_jac + massive * (-std[:, 3].log() - raw[..., 3])
        return coords, log_jac

    def _physical(self, coords: Tensor, slots: Tensor) -> Tensor:
        """Inverse of ``_flow_coordinates`` for objects in the given slots: (..., d) -> (..., 4)."""
        mean, std = self.reco_mean[slots].to(coords.dtype), self.reco_std[slots].to(coords.dtype)
        eta_max = self.eta_max[slots].to(coords.dtype)
        pt = (coords[..., 0] * std[..., 0] + mean[..., 0]).exp() + self.pt_min[slots].to(coords.dtype)
        if self.kind == "cinn":
            eta, phi = coords[..., 1] * eta_max, coords[..., 2]
        else:
            eta = coords[..., 1] * std[..., 1] + mean[..., 1]
            eta = torch.maximum(torch.minimum(eta, eta_max * (1 - 1e-6)), -eta_max * (1 - 1e-6))
            phi = wrap_angle(coords[..., 2] * std[..., 2] + mean[..., 2])
        if coords.shape[-1] == 4:
            mass = (coords[..., 3] * std[..., 3] + mean[..., 3]).exp()
        else:
            mass = torch.zeros_like(pt)
        return torch.stack([pt, eta, phi, mass], dim=-1)

    # ------------------------------------------------------------------ transformer
    def _features(self, raw: Tensor, mean: Tensor, std: Tensor, eta_scale: Tensor) -> Tensor:
        """Embedding features (std. log pT, scaled η, cos φ, sin φ, std. (log) m), shape (..., 5)."""
        return torch.stack(
            [(raw[..., 0] - mean[..., 0]) / std[..., 0], raw[..., 1] / eta_scale, torch.cos(raw[..., 2]),
             torch.sin(raw[..., 2]), (raw[..., 3] - mean[..., 3]) / std[..., 3]],
            dim=-1,
        )

    def _pad(self, parts: list[Tensor]) -> Tensor:
        emb = torch.cat(parts, dim=-1)
        return nn.functional.pad(emb, (0, self.embed_dim - emb.shape[-1]))

    def _hard_embedding(self, x_hard: Tensor, n_extra: Tensor | None) -> Tensor:
        """e_hard: features, one-hot position and (variable jets) one-hot multiplicity, (n, H, E)."""
        n = x_hard.shape[0]
        mean, std = self.hard_mean.to(x_hard.dtype), self.hard_std.to(x_hard.dtype)
        feats = self._features(self._hard_raw(x_hard), mean, std, std[:, 1])
        eye = torch.eye(self.n_hard, dtype=x_hard.dtype, device=x_hard.device)
        parts = [feats, eye.expand(n, -1, -1)]
        if self.variable_jets:
            mult = nn.functional.one_hot(n_extra.long(), self.n_extra_max + 1).to(x_hard.dtype)
            parts.append(mult[:, None, :].expand(-1, self.n_hard, -1))
        return self._pad(parts)

    def _reco_tokens(self, x_reco: Tensor, present: Tensor) -> Tensor:
        """Decoder input: start token e^(0), then e^(1..S-1) of objects 0..S-2, shape (n, S, E)."""
        n, s = x_reco.shape[:2]
        mean, std = self.reco_mean.to(x_reco.dtype), self.reco_std.to(x_reco.dtype)
        feats = self._features(self._reco_raw(self._safe(x_reco, present)), mean[:s], std[:s],
                               self.eta_max[:s].to(x_reco.dtype))
        feats = feats * present[..., None].to(x_reco.dtype)
        feats = torch.cat([feats.new_zeros(n, 1, N_FEATURES), feats[:, : self.n_slots - 1]], dim=1)
        eye = torch.eye(self.n_slots, dtype=x_reco.dtype, device=x_reco.device)
        return self._pad([feats, eye.expand(n, -1, -1)])

    def _decode(self, tokens: Tensor, memory: Tensor) -> Tensor:
        length = tokens.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        return self.decoder(tokens, memory, tgt_mask=causal, tgt_is_causal=True)

    def _n_extra(self, present: Tensor) -> Tensor | None:
        if not self.variable_jets:
            return None
        return present[:, self.n_required :].sum(dim=1)

    def conditions(self, x_reco: Tensor, x_hard: Tensor, present: Tensor | None = None) -> Tensor:
        """Transformer outputs c^(i) for all modelled slots (one evaluation), shape (n, S_model, E)."""
        x_reco, x_hard, present = self._inputs(x_reco, x_hard, present)
        return self._conditions(x_reco, x_hard, present)

    def _conditions(self, x_reco: Tensor, x_hard: Tensor, present: Tensor) -> Tensor:
        memory = self.encoder(self._hard_embedding(x_hard, self._n_extra(present)))
        return self._decode(self._reco_tokens(x_reco, present), memory)

    def _inputs(
        self, x_reco: Tensor, x_hard: Tensor, present: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Validated inputs on the module's device / dtype and the presence mask of the modelled slots."""
        ref = self.hard_mean
        if x_hard.shape[1:] != (self.n_hard, 4):
            raise ValueError(f"x_hard must have shape (n, {self.n_hard}, 4), got {tuple(x_hard.shape)}")
        if x_reco.ndim != 3 or x_reco.shape[1] < self.n_slots or x_reco.shape[2] != 4:
            raise ValueError(f"x_reco must have shape (n, >= {self.n_slots}, 4), got {tuple(x_reco.shape)}")
        x_reco = x_reco[:, : self.n_slots].to(device=ref.device, dtype=ref.dtype)
        x_hard = x_hard.to(device=ref.device, dtype=ref.dtype)
        return x_reco, x_hard, self._present(x_reco, present)

    # ------------------------------------------------------------------ densities
    def log_prob_terms(self, x_reco: Tensor, x_hard: Tensor, present: Tensor | None = None) -> Tensor:
        """Per-object log p(x^(i) | c^(i)) in physical coordinates, shape (n, S); 0 for absent or
        unmodelled slots. Their sum over slots is Eq. (6.40)."""
        if self.kind == "cfm":
            with torch.no_grad():
                return self._log_prob_terms(x_reco, x_hard, present)
        return self._log_prob_terms(x_reco, x_hard, present)

    def _log_prob_terms(self, x_reco: Tensor, x_hard: Tensor, present: Tensor | None) -> Tensor:
        n = x_reco.shape[0]
        x_reco, x_hard, present = self._inputs(x_reco, x_hard, present)
        cond = self._conditions(x_reco, x_hard, present)
        coords, log_jac = self._flow_coordinates(x_reco, present)
        terms = x_reco.new_zeros(n, self.n_slots_in)
        for idx, massive in self._slot_groups(x_reco.device):
            mask = present[:, idx]
            dims = 4 if massive else 3
            x_obj, c_obj = coords[:, idx, :dims][mask], cond[:, idx][mask]
            if self.kind == "cinn":
                lp = self.object_flow.log_prob(x_obj, c_obj)
            else:
                lp = (self.cfm_jet if massive else self.cfm_onshell).log_prob(x_obj, c_obj)
            group = x_reco.new_zeros(n, len(idx))
            group[mask] = lp + log_jac[:, idx][mask]
            terms[:, idx] = group
        return terms

    def log_prob(
        self,
        x_reco: Tensor,
        x_hard: Tensor,
        present: Tensor | None = None,
        multiplicity_log_prob: Tensor | None = None,
    ) -> Tensor:
        """log p(x_reco | x_hard), Eq. (6.40), shape (n,); with ``multiplicity_log_prob`` (n, k + 1)
        the entry log p(n | x_hard) of each event's extra-jet number n is added (Eq. 6.45)."""
        out = self.log_prob_terms(x_reco, x_hard, present).sum(dim=1)
        if multiplicity_log_prob is not None:
            if not self.variable_jets:
                raise ValueError("multiplicity_log_prob needs variable_jets=True")
            if multiplicity_log_prob.shape[1:] != (self.n_extra_max + 1,):
                raise ValueError(f"multiplicity_log_prob must have shape (n, {self.n_extra_max + 1})")
            x_reco_m = x_reco[:, : self.n_slots]
            n_extra = self._n_extra(self._present(x_reco_m, present).to(out.device))
            mult = multiplicity_log_prob.to(device=out.device, dtype=out.dtype)
            out = out + mult.gather(1, n_extra[:, None].long())[:, 0]
        return out

    def loss(
        self, x_reco: Tensor, x_hard: Tensor, present: Tensor | None = None, weight: Tensor | None = None
    ) -> Tensor:
        """Transfermer: negative log-likelihood, Eq. (6.43). Transfusion: flow-matching loss of the
        per-object CFMs (Eq. 3.58, see ``ConditionalCFM``), summed over the present objects.
        Weighted with Eq. (4.8); no KL term (the training loop adds kl() / N_train)."""
        if self.kind == "cinn":
            return weighted_mean(-self.log_prob(x_reco, x_hard, present), weight)
        n = x_reco.shape[0]
        x_reco, x_hard, present = self._inputs(x_reco, x_hard, present)
        cond = self._conditions(x_reco, x_hard, present)
        coords, _ = self._flow_coordinates(x_reco, present)
        per_event = x_reco.new_zeros(n)
        for idx, massive in self._slot_groups(x_reco.device):
            cfm = self.cfm_jet if massive else self.cfm_onshell
            mask = present[:, idx]
            x1 = coords[:, idx, : cfm.dims_in][mask]
            x0 = torch.randn_like(x1)
            t = torch.rand(x1.shape[0], 1, dtype=x1.dtype, device=x1.device)
            err = cfm.velocity((1 - t) * x0 + t * x1, t, cond[:, idx][mask]) - (x1 - x0)
            group = x_reco.new_zeros(n, len(idx))
            group[mask] = err.pow(2).mean(dim=1)
            per_event = per_event + group.sum(dim=1)
        return weighted_mean(per_event, weight)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, x_hard: Tensor, n_extra: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Autoregressive sampling, Eq. (6.41): one decoder evaluation per reco object.

        Returns x_reco (n, S, 4) and present (n, S); absent and unmodelled slots are zero. With
        ``variable_jets`` the extra-jet numbers ``n_extra`` (n,) are required (sample them from
        the multiplicity classifier first, Eq. 6.45).
        """
        ref = self.hard_mean
        x_hard = x_hard.to(device=ref.device, dtype=ref.dtype)
        if x_hard.shape[1:] != (self.n_hard, 4):
            raise ValueError(f"x_hard must have shape (n, {self.n_hard}, 4), got {tuple(x_hard.shape)}")
        n = x_hard.shape[0]
        if self.variable_jets:
            if n_extra is None:
                raise ValueError("variable_jets=True: sample needs n_extra")
            n_extra = torch.as_tensor(n_extra, device=ref.device).long().reshape(n)
            if bool((n_extra < 0).any()) or bool((n_extra > self.n_extra_max).any()):
                raise ValueError(f"n_extra must lie in [0, {self.n_extra_max}]")
            n_steps = self.n_required + (int(n_extra.max()) if n > 0 else 0)
        elif n_extra is not None:
            raise ValueError("n_extra is only used with variable_jets=True")
        else:
            n_steps = self.n_slots
        slot = torch.arange(self.n_slots, device=ref.device)
        present = slot[None, :] < self.n_required
        if self.variable_jets:
            present = present | (slot[None, :] < self.n_required + n_extra[:, None])
        x_reco = x_hard.new_zeros(n, self.n_slots, 4)
        memory = self.encoder(self._hard_embedding(x_hard, n_extra))
        for i in range(n_steps):
            # tokens 0..i only use objects < i, which are already sampled
            tokens = self._reco_tokens(x_reco, present & (slot[None, :] < i))[:, : i + 1]
            c = self._decode(tokens, memory)[:, i]
            massive = self.massive[i]
            if self.kind == "cinn":
                coords = self.object_flow.sample(c, massive)
            else:
                coords = (self.cfm_jet if massive else self.cfm_onshell).sample(c)
            obj = self._physical(coords, slot[i].expand(n))
            x_reco[:, i] = torch.where(present[:, i, None], obj, torch.zeros_like(obj))
        out = x_hard.new_zeros(n, self.n_slots_in, 4)
        out[:, : self.n_slots] = x_reco
        mask = torch.zeros(n, self.n_slots_in, dtype=torch.bool, device=ref.device)
        mask[:, : self.n_slots] = present
        return out, mask

    def kl(self) -> Tensor:
        """KL of the Bayesian subnet weights (Eq. 3.65); 0 without Bayesian layers."""
        return kl_divergence(self)
