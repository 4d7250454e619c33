"""Transformer transfer networks p_θ(x_reco | x_hard): Transfermer and Transfusion (Sec. 6.5.2).

The transfer probability is factorised autoregressively over the reco objects (Eq. 6.40),

    p(x_reco | x_hard) = Π_i p(x_reco^(i) | c^(i)(e_reco^(0), ..., e_reco^(i-1), e_hard)),

where c^(i) is the i-th output of a transformer: an encoder over the hard-object embeddings
e_hard and a decoder with causal (triangular) self-attention over the reco embeddings shifted by
a start token e_reco^(0), cross-attending to the encoder output. Embeddings are the preprocessed
momentum components concatenated with the one-hot position, zero-padded to the embedding
dimension (no linear layer needed, Sec. 6.5.2). φ enters the embeddings as (cos φ, sin φ), so
that they are continuous across ±π.

Per-object densities p(x^(i) | c^(i)) come from a head passed as ``head=`` (``lhcflow.mem.heads``), the
way a zuko flow takes its ``univariate`` transformation: ``SplineHead`` (Transfermer, Table A.10, the
minimal autoregressive cINN of Eq. 6.42) or ``CFMHead`` (Transfusion, Table A.11, Eq. 6.44). The
conditions of all objects come from one decoder pass (the causal mask keeps c^(i) blind to objects ≥ i),
however often the head evaluates its own network (the CFM's RK4 steps).

Variable jet number (Eq. 6.45): with ``variable_jets=True`` the number n of extra jets
(0..n_extra_max) is appended one-hot to every hard embedding; ``log_prob`` adds a given
log p(n | x_hard) from a separate multiplicity classifier.

All densities refer to the physical coordinates (pT, η, φ[, m]) of the present objects, i.e.
they include the Jacobians of the log / standardisation / η scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from lhcflow.models.base import weighted_mean
from lhcflow.models.bayesian import bayesian_layers, kl_divergence

from .heads import ObjectHead, SplineHead

SLOT_TYPES = ("photon", "muon", "bjet", "jet")
MASSLESS_TYPES = ("photon", "muon")
N_FEATURES = 5  # per-object embedding features: log pT, η, cos φ, sin φ, (log) m


class TransferTransformer(nn.Module):
    """Autoregressive transformer transfer network (Transfermer / Transfusion), Eq. (6.40-6.45).

    Args:
        slot_types: type of each reco slot ("photon", "muon", "bjet", "jet"), length S.
        eta_max: |η| acceptance of each slot, length S.
        pt_min: reco pT threshold of each slot (Table 6.1), length S; default 0 (plain log pT).
        n_hard: number of hard-process objects H.
        n_required: number of always-present leading slots (default: all S).
        variable_jets: model up to ``n_extra_max`` optional extra jets after the required slots
            (Eq. 6.45); otherwise the slots after ``n_required`` are ignored. Present jets beyond
            ``n_required + n_extra_max`` are ignored too, i.e. the multiplicity n is counted up to
            n_extra_max (the multiplicity classifier must clip its labels the same way).
        n_extra_max: largest number of extra jets k (default: all remaining slots).
        attention_heads, encoder_layers, decoder_layers, embed_dim, feedforward_dim, dropout: transformer.
        mass_floor: jet masses below this value [GeV] are raised to it before the logarithm.
        head: per-object density head, called as ``head(embed_dim)`` (an ``ObjectHead`` class or a
            ``functools.partial`` of one with its settings); default ``SplineHead`` (Transfermer).
    Defaults follow Tables A.10 / A.11.
    """

    def __init__(
        self,
        slot_types: Sequence[str],
        eta_max: Sequence[float],
        *,
        n_hard: int = 3,
        n_required: int | None = None,
        variable_jets: bool = False,
        n_extra_max: int | None = None,
        attention_heads: int = 8,
        encoder_layers: int = 6,
        decoder_layers: int = 8,
        embed_dim: int = 64,
        feedforward_dim: int = 256,
        dropout: float = 0.0,
        mass_floor: float = 1e-3,
        pt_min: Sequence[float] | None = None,
        head: Callable[[int], ObjectHead] = SplineHead,
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
        if embed_dim % attention_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by attention_heads={attention_heads}")

        self.slot_types = slot_types
        self.n_slots_in = n_slots_in
        self.n_hard = int(n_hard)
        self.n_required = n_required
        self.variable_jets = bool(variable_jets)
        self.n_extra_max = int(n_extra_max)
        self.n_slots = n_model  # modelled slots
        self.embed_dim = int(embed_dim)
        self.mass_floor = float(mass_floor)
        self.massive = [t not in MASSLESS_TYPES for t in slot_types[:n_model]]
        self.register_buffer("eta_max", torch.tensor([float(e) for e in eta_max[:n_model]]))
        self.register_buffer("pt_min", torch.tensor(pt_min[:n_model]))
        # (log pT, η, φ, m) of the hard objects; (log(pT − pT_min), η, φ, log m) of the reco slots
        self.register_buffer("hard_mean", torch.zeros(n_hard, 4))
        self.register_buffer("hard_std", torch.ones(n_hard, 4))
        self.register_buffer("reco_mean", torch.zeros(n_model, 4))
        self.register_buffer("reco_std", torch.ones(n_model, 4))

        enc_layer = nn.TransformerEncoderLayer(
            embed_dim, attention_heads, feedforward_dim, dropout, batch_first=True)
        dec_layer = nn.TransformerDecoderLayer(
            embed_dim, attention_heads, feedforward_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, decoder_layers)
        self.head = head(embed_dim)

    @property
    def bayesian(self) -> bool:
        """Whether the head has Bayesian weights (``BayesianLinear``, Sec. 4.3)."""
        return any(True for _ in bayesian_layers(self.head))

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

    def _coordinates(self, x_reco: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """Per-object head coordinates (n, S, 4) and log|d coordinates / d(pT, η, φ[, m])| (n, S).

        Absent slots are replaced by harmless values (their terms are masked later).
        """
        mean, std = self.reco_mean.to(x_reco.dtype), self.reco_std.to(x_reco.dtype)
        safe_values = torch.stack(
            [mean[:, 0].exp() + self.pt_min.to(x_reco.dtype), torch.zeros_like(mean[:, 0]),
             torch.zeros_like(mean[:, 0]), mean[:, 3].exp()],
            dim=-1,
        )
        x_reco = torch.where(present[..., None], x_reco, safe_values.expand_as(x_reco))
        massive = torch.tensor(self.massive, device=x_reco.device, dtype=x_reco.dtype)
        eta_max = self.eta_max.to(x_reco.dtype)
        return self.head.to_coordinates(self._reco_raw(x_reco), mean, std, eta_max, massive)

    def _physical(self, coords: Tensor, slots: Tensor) -> Tensor:
        """Inverse of ``_coordinates`` for objects in the given slots: (..., d) -> (..., 4)."""
        mean, std = self.reco_mean[slots].to(coords.dtype), self.reco_std[slots].to(coords.dtype)
        raw = self.head.from_coordinates(coords, mean, std, self.eta_max[slots].to(coords.dtype))
        pt = raw[..., 0].exp() + self.pt_min[slots].to(coords.dtype)
        mass = raw[..., 3].exp() if raw.shape[-1] == 4 else torch.zeros_like(pt)
        return torch.stack([pt, raw[..., 1], raw[..., 2], mass], dim=-1)

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
        unmodelled slots. Their sum over slots is Eq. (6.40). Without gradients if the head's
        density has none (``ObjectHead.differentiable``)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.head.differentiable):
            n = x_reco.shape[0]
            x_reco, x_hard, present = self._inputs(x_reco, x_hard, present)
            cond = self._conditions(x_reco, x_hard, present)
            coords, log_jac = self._coordinates(x_reco, present)
            terms = x_reco.new_zeros(n, self.n_slots_in)
            for idx, mask, x_obj, c_obj in self._objects(coords, cond, present):
                group = x_reco.new_zeros(n, len(idx))
                group[mask] = self.head.log_prob(x_obj, c_obj) + log_jac[:, idx][mask]
                terms[:, idx] = group
        return terms

    def _objects(self, coords: Tensor, cond: Tensor, present: Tensor):
        """Per slot group (massless, then massive): slot indices, presence mask (n, k) and the present
        objects' head coordinates (m, 3 | 4) and conditions (m, E)."""
        for idx, massive in self._slot_groups(coords.device):
            mask = present[:, idx]
            yield idx, mask, coords[:, idx, : 4 if massive else 3][mask], cond[:, idx][mask]

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
        """Negative log-likelihood, Eq. (6.43), for a ``differentiable`` head (Transfermer); otherwise
        the head's per-object loss (Transfusion: flow matching, Eq. 3.58) summed over the present objects.
        Weighted with Eq. (4.8); no KL term (the training loop adds kl() / N_train)."""
        if self.head.differentiable:
            return weighted_mean(-self.log_prob(x_reco, x_hard, present), weight)
        n = x_reco.shape[0]
        x_reco, x_hard, present = self._inputs(x_reco, x_hard, present)
        cond = self._conditions(x_reco, x_hard, present)
        coords, _ = self._coordinates(x_reco, present)
        per_event = x_reco.new_zeros(n)
        for idx, mask, x_obj, c_obj in self._objects(coords, cond, present):
            group = x_reco.new_zeros(n, len(idx))
            group[mask] = self.head.loss(x_obj, c_obj)
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
            obj = self._physical(self.head.sample(c, self.massive[i]), slot[i].expand(n))
            x_reco[:, i] = torch.where(present[:, i, None], obj, torch.zeros_like(obj))
        out = x_hard.new_zeros(n, self.n_slots_in, 4)
        out[:, : self.n_slots] = x_reco
        mask = torch.zeros(n, self.n_slots_in, dtype=torch.bool, device=ref.device)
        mask[:, : self.n_slots] = present
        return out, mask

    def kl(self) -> Tensor:
        """KL of the Bayesian head weights (Eq. 3.65); 0 without Bayesian layers."""
        return kl_divergence(self)
