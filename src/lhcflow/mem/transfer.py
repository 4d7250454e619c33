"""Transfer networks p_θ(x_reco | x_hard) (thesis Eq 6.21), swappable by ``transfer.kind``:

* ``cinn`` / ``binn``: conditional spline INN (deterministic / Bayesian) on the flat reco features of
  §6.3 (17 or 22 numbers) mapped by :class:`~lhcflow.mem.features.SelectionMap` (log(pT − pT_min),
  atanh(η/η_max), φ, log m per object: the reco cuts sit at infinity, Eq 4.4), conditioned on the seven
  hard features of Eq 6.31 (Table A.7);
* ``cfm``: Transfer-CFM on the same inputs, density via Eq 3.55 with RK4 (Table A.9);
* ``transfermer`` / ``transfusion``: transformer over the hard and reco objects with a per-object cINN /
  CFM (Eq 6.40-6.42, Tables A.10 and A.11); ``variable_jets`` adds the extra jets (Eq 6.45).

Whatever the kind, the MEM sees one interface on physical quantities: :meth:`TransferNetwork.log_prob`
of per-event reco rows (:meth:`reco_rows`) given x_hard as the seven Eq 6.31 features in GeV. Densities
are in physical coordinates (the flat kinds in the (E, p⃗) reco features, the transformer kinds in
(pT, η, φ[, m]) per object); the two differ by a Jacobian that depends on x_reco only, i.e. by an
α-independent constant per event that drops out of every likelihood ratio. Both vanish outside the
dataset's reco selection (pT_min, η_max per slot from the paired file's ``selection``), and so do
their samples: :func:`outside_selection` measures what falls outside.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lhcflow.atomic import save_torch
from lhcflow.mem.features import RecoLayout, SelectionMap, Standardizer, hard_features, hard_momenta
from lhcflow.mem.heads import CFMHead, SplineHead
from lhcflow.mem.transformer import TransferTransformer
from lhcflow.models import build_generator, resample_weights, use_means
from lhcflow.physics.kinematics import to_four_momenta, to_ptetaphim

TRANSFER_KINDS = ("cinn", "binn", "cfm", "transfermer", "transfusion")
FLAT_KINDS = ("cinn", "binn", "cfm")

# The one place where a transformer kind's ``network`` block (config schema: transfermer_network,
# transfusion_network) becomes a composed TransferTransformer: network key -> constructor argument of the
# transformer (shared by both kinds) or of the kind's per-object head. ``n_extra_max`` is no config key: the
# MEM stages add it for variable jets (:func:`build_transfer`).
TRANSFORMER_KEYS = {"heads": "attention_heads", "encoder_layers": "encoder_layers",
                    "decoder_layers": "decoder_layers", "embed_dim": "embed_dim",
                    "feedforward_dim": "feedforward_dim", "dropout": "dropout", "mass_floor": "mass_floor",
                    "n_extra_max": "n_extra_max"}
TRANSFORMER_HEADS = {
    "transfermer": (SplineHead, {"subnet_layers": "layers", "subnet_hidden": "hidden", "bins": "bins",
                                 "tail_bound": "tail_bound", "bayesian": "bayesian",
                                 "prior_sigma": "prior_sigma", "init_log_sigma": "init_log_sigma"}),
    "transfusion": (CFMHead, {"cfm_layers": "layers", "cfm_hidden": "hidden", "cfm_step": "step",
                              "cfm_time_embedding": "time_embedding"}),
}


def build_transformer(kind: str, network: Mapping[str, Any], slot_types: Sequence[str],
                      eta_max: Sequence[float], pt_min: Sequence[float], n_required: int,
                      variable_jets: bool) -> TransferTransformer:
    """The ``transfermer`` / ``transfusion`` transfer of a config ``network`` block: a TransferTransformer
    over the three hard objects with the kind's head (:data:`TRANSFORMER_HEADS`) built from its own keys."""
    if kind not in TRANSFORMER_HEADS:
        raise ValueError(f"transformer transfer kind must be one of {tuple(TRANSFORMER_HEADS)}, got {kind!r}")
    head, head_keys = TRANSFORMER_HEADS[kind]
    unknown = sorted(set(network) - set(TRANSFORMER_KEYS) - set(head_keys))
    if unknown:
        raise ValueError(f"{kind} network: unknown keys {unknown}; the keys of a {kind} are "
                         f"{sorted(TRANSFORMER_KEYS) + sorted(head_keys)}")
    shared = {TRANSFORMER_KEYS[k]: v for k, v in network.items() if k in TRANSFORMER_KEYS}
    head_settings = {head_keys[k]: v for k, v in network.items() if k in head_keys}
    return TransferTransformer(slot_types, eta_max, n_hard=3, n_required=n_required,
                               variable_jets=variable_jets, pt_min=pt_min,
                               head=partial(head, **head_settings), **shared)


class TransferNetwork(nn.Module):
    """A trained or trainable p_θ(x_reco | x_hard) with its preprocessing.

    Args:
        kind: one of :data:`TRANSFER_KINDS`.
        layout: reco slots of the dataset (:class:`~lhcflow.mem.features.RecoLayout`).
        masses: (m_t, m_H) in GeV, to rebuild hard four-momenta from the Eq 6.31 features.
        network: hyperparameters of the generator (``ConditionalINN`` or ``ConditionalCFM`` keyword
            arguments; the transformer kinds' keys are mapped by :func:`build_transformer`).
        pt_min, eta_max: reco selection per slot (pT > pT_min, |η| < η_max; Table 6.1,
            :meth:`~lhcflow.mem.features.RecoLayout.selection_bounds`), mapped to infinity.
        variable_jets: transformer kinds only: model the extra jets too (Eq 6.45).
    """

    def __init__(self, kind: str, layout: RecoLayout, masses: tuple[float, float], network: Mapping[str, Any],
                 pt_min: Sequence[float], eta_max: Sequence[float], variable_jets: bool = False):
        super().__init__()
        if kind not in TRANSFER_KINDS:
            raise ValueError(f"transfer kind must be one of {TRANSFER_KINDS}, got {kind!r}")
        if variable_jets and kind in FLAT_KINDS:
            raise ValueError(f"variable_jets needs a transformer transfer (transfermer/transfusion), not {kind!r}")
        self.kind, self.layout, self.masses = kind, layout, (float(masses[0]), float(masses[1]))
        self.variable_jets = bool(variable_jets)
        if len(pt_min) != len(layout.slots) or len(eta_max) != len(layout.slots):
            raise ValueError(f"pt_min and eta_max need one entry per slot {list(layout.slots)}")
        self.spec = {"kind": kind, "slots": list(layout.slots), "n_required": layout.n_required,
                     "masses": list(self.masses), "network": dict(network),
                     "pt_min": [float(p) for p in pt_min], "eta_max": [float(e) for e in eta_max],
                     "variable_jets": self.variable_jets}
        if kind in FLAT_KINDS:
            dims_reco = len(layout.columns())
            self.reco_map = SelectionMap(layout, pt_min, eta_max)
            self.reco_scaler, self.hard_scaler = Standardizer(dims_reco), Standardizer(7)
            self.generator = build_generator("inn" if kind == "cinn" else kind, dims_reco, 7, **network)
        else:
            n = len(layout.slots) if variable_jets else layout.n_required
            self.generator = build_transformer(kind, network, layout.slot_types()[:n], list(eta_max)[:n],
                                               list(pt_min)[:n], layout.n_required, variable_jets)
        self.replicas: list[nn.Module] = []
        self.multiplicity = None  # Eq 6.45: callable x_hard (n, 7) -> log p(n_extra | x_hard) (n, k + 1)

    @property
    def flat(self) -> bool:
        return self.kind in FLAT_KINDS

    @property
    def bayesian(self) -> bool:
        return bool(getattr(self.generator, "bayesian", False))

    # ---------------------------------------------------------------- inputs
    def reco_rows(self, x_reco: np.ndarray, x_reco_ptetaphim: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Per-event reco input: flat kinds the §6.3 features (n, 17|22); transformer kinds
        (n, S, 5) of (pT, η, φ, m, present)."""
        if self.flat:
            return self.layout.reco_features(x_reco)
        n_slots = len(self.layout.slots) if self.variable_jets else self.layout.n_required
        rows = np.concatenate([x_reco_ptetaphim[:, :n_slots], present[:, :n_slots, None]], axis=-1)
        return np.where(present[:, :n_slots, None], rows, 0.0)

    def _hard(self, x_hard: torch.Tensor) -> torch.Tensor:
        """Conditioning of the generator from the Eq 6.31 features."""
        if self.flat:
            return self.hard_scaler(x_hard)
        return to_ptetaphim(hard_momenta(x_hard.to(torch.float64), *self.masses)).to(x_hard.dtype)

    def _mapped(self, reco_rows: np.ndarray) -> np.ndarray:
        """Training rows through the selection map; rows outside the selection are refused."""
        y, _, inside = self.reco_map(torch.as_tensor(reco_rows, dtype=torch.float64))
        if not bool(inside.all()):
            bad = int((~inside).sum())
            raise ValueError(f"{bad} of {len(inside)} reco events lie outside the selection the transfer maps to "
                             f"infinity (pt_min {self.spec['pt_min']}, eta_max {self.spec['eta_max']}): the paired "
                             "file's 'selection' attribute does not describe its accepted events")
        return y.numpy()

    def fit_preprocessing(self, reco_rows: np.ndarray, x_hard: np.ndarray) -> None:
        """Feature-wise standardisation from the training data."""
        if self.flat:
            self.reco_scaler.fit(self._mapped(reco_rows))
            self.hard_scaler.fit(x_hard)
        else:
            hard = self._hard(torch.as_tensor(x_hard, dtype=torch.float64)).numpy()
            self.generator.fit_preprocessing(torch.as_tensor(hard), torch.as_tensor(reco_rows[..., :4]),
                                             torch.as_tensor(reco_rows[..., 4] > 0.5))

    # ---------------------------------------------------------------- density and sampling
    def _log_prob_with(self, generator: nn.Module, reco: torch.Tensor, x_hard: torch.Tensor) -> torch.Tensor:
        if self.flat:  # density in the (E, p⃗) features: Jacobians of the selection map and the scaler
            y, log_det, inside = self.reco_map(reco)
            z = self.reco_scaler(y).to(x_hard.dtype)
            log_p = generator.log_prob(z, self.hard_scaler(x_hard)) + self.reco_scaler.log_det().to(z.dtype)
            log_p = log_p.to(torch.float64) + log_det
            return torch.where(inside, log_p, -torch.inf).to(reco.dtype)
        multiplicity = None if self.multiplicity is None else self.multiplicity(x_hard)
        present, n = reco[..., 4] > 0.5, reco.shape[1]
        pt_min = torch.tensor(self.spec["pt_min"][:n], dtype=reco.dtype, device=reco.device)
        eta_max = torch.tensor(self.spec["eta_max"][:n], dtype=reco.dtype, device=reco.device)
        outside = present & ((reco[..., 0] <= pt_min) | (reco[..., 1].abs() >= eta_max))
        safe = reco[..., :4].clone()  # objects outside the cuts replaced by harmless ones, their events −inf
        safe[..., 0] = torch.where(outside, pt_min + 1, safe[..., 0])
        safe[..., 1] = torch.where(outside, torch.zeros_like(safe[..., 1]), safe[..., 1])
        log_p = generator.log_prob(safe, self._hard(x_hard), present, multiplicity)
        return torch.where(outside.any(1), -torch.inf, log_p)

    def log_prob(self, reco: torch.Tensor, x_hard: torch.Tensor) -> torch.Tensor:
        """log p_θ(x_reco | x_hard), shape (n,), −inf outside the selection; Bayesian networks use their
        weight means."""
        return self._log_prob_with(self.generator, reco, x_hard)

    def draw_replicas(self, n: int, seed: int) -> None:
        """Fix ``n`` Bayesian network replicas (weights drawn from the posterior) for :meth:`log_prob_replicas`."""
        if not self.bayesian:
            raise ValueError(f"{self.kind} transfer is not Bayesian: no replicas to draw")
        self.replicas = []
        for b in range(n):
            torch.manual_seed(seed * 1_000_003 + b)
            replica = copy.deepcopy(self.generator)
            resample_weights(replica)
            self.replicas.append(replica)
        use_means(self.generator)

    def log_prob_replicas(self, reco: torch.Tensor, x_hard: torch.Tensor) -> torch.Tensor:
        """(B, n): log p_θ for each drawn replica, or (1, n) with the central network."""
        if not self.replicas:
            return self.log_prob(reco, x_hard)[None]
        return torch.stack([self._log_prob_with(r, reco, x_hard) for r in self.replicas])

    @property
    def n_extra_max(self) -> int:
        return int(getattr(self.generator, "n_extra_max", 0) or 0) if self.variable_jets else 0

    @torch.no_grad()
    def sample(self, x_hard: torch.Tensor, n_extra: torch.Tensor | None = None) -> torch.Tensor:
        """One x̃_reco ~ p_θ(x_reco | x_hard) per row (Eq 6.38), in the format of :meth:`reco_rows`.

        With variable jets the extra-jet multiplicity is ``n_extra`` (n,) or, if None, drawn from
        :attr:`multiplicity` (Eq 6.45: p(n | x_hard) first, then the momenta)."""
        if self.flat:  # float64 rows, so that the selection the map guarantees survives the rounding
            z = self.generator.sample(self.hard_scaler(x_hard))
            return self.reco_map.inverse(self.reco_scaler.inverse(z.to(torch.float64)))
        if self.variable_jets and n_extra is None:
            if self.multiplicity is None:
                raise ValueError("sampling a variable-jet transfer needs n_extra or a multiplicity classifier")
            n_extra = torch.multinomial(self.multiplicity(x_hard).exp().float(), 1)[:, 0]
        reco, present = self.generator.sample(self._hard(x_hard), n_extra)
        return torch.cat([reco, present[..., None].to(reco.dtype)], -1)

    def reco_objects(self, rows: np.ndarray) -> np.ndarray:
        """(n, n_required, 4) (pT, η, φ, m) of the required reco objects from :meth:`reco_rows` output."""
        rows = np.asarray(rows, dtype=np.float64)
        if not self.flat:
            return rows[:, : self.layout.n_required, :4]
        momenta = np.zeros((len(rows), self.layout.n_required, 4))
        for col, (slot, comp) in enumerate(self.layout.columns()):
            momenta[:, slot, comp] = rows[:, col]
        p = np.linalg.norm(momenta[..., 1:], axis=-1)
        massless = np.array([s.startswith(("a", "mu")) for s in self.layout.required])
        momenta[..., 0] = np.where(massless, p, momenta[..., 0])
        return to_ptetaphim(momenta)

    # ---------------------------------------------------------------- training view and persistence
    def training_view(self) -> nn.Module:
        """The module the generic trainer optimises: loss(x, c, w), kl() on flat arrays (see :func:`training_arrays`)."""
        return self.generator if self.flat else _FlatTransformer(self.generator, self._n_rows_slots())

    def _n_rows_slots(self) -> int:
        return len(self.layout.slots) if self.variable_jets else self.layout.n_required

    def training_arrays(self, reco_rows: np.ndarray, x_hard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, c) arrays for :class:`~lhcflow.training.trainer.TrainingData`."""
        hard = torch.as_tensor(x_hard, dtype=torch.float64)
        if self.flat:
            x = self.reco_scaler(torch.as_tensor(self._mapped(reco_rows))).numpy()
            return x.astype(np.float32), self.hard_scaler(hard).numpy().astype(np.float32)
        return (np.asarray(reco_rows, np.float32).reshape(len(reco_rows), -1),
                self._hard(hard).numpy().reshape(len(hard), -1).astype(np.float32))

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        save_torch(path, {"spec": self.spec, "state": self.state_dict(), "extra": dict(extra or {})})

    @classmethod
    def load(cls, path: str | Path) -> tuple["TransferNetwork", dict]:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        spec = payload["spec"]
        if spec.get("pt_min") is None or spec.get("eta_max") is None:
            raise ValueError(f"{path}: transfer network saved without the reco selection (spec fields 'pt_min', "
                             "'eta_max') that its features map to infinity; it comes from an older lhcflow: "
                             "retrain it (delete the file and rerun mem_transfer_train)")
        layout = RecoLayout(tuple(spec["slots"]), int(spec["n_required"]))
        network, state = spec["network"], payload["state"]
        if spec["kind"] in TRANSFORMER_HEADS:
            network, state = _composed_transformer(spec["kind"], network, state)
        net = cls(spec["kind"], layout, tuple(spec["masses"]), network, spec["pt_min"], spec["eta_max"],
                  spec["variable_jets"])
        net.load_state_dict(state)
        net.eval()
        return net, payload["extra"]


# Transformer transfers saved before the per-object head was passed in (one constructor branching on its
# kind): state-dict prefixes then and now.
_HEAD_PREFIXES = (("generator.object_flow.", "generator.head."),
                  ("generator.cfm_onshell.", "generator.head.onshell."),
                  ("generator.cfm_jet.", "generator.head.jet."))


def _composed_transformer(kind: str, network: Mapping[str, Any], state: Mapping[str, torch.Tensor]):
    """A saved transformer transfer's (network, state dict) in the composed form; files from before the
    heads were composed load unchanged: their head weights are renamed, and network keys of the other
    transformer kind, which that constructor accepted without using them, are dropped."""
    unused = {k for name, (_, keys) in TRANSFORMER_HEADS.items() if name != kind for k in keys}
    network = {k: v for k, v in network.items() if k not in unused - set(TRANSFORMER_HEADS[kind][1])}

    def renamed(key: str) -> str:
        for old, new in _HEAD_PREFIXES:
            if key.startswith(old):
                return new + key[len(old):]
        return key

    return network, {renamed(k): v for k, v in state.items()}


class _FlatTransformer(nn.Module):
    """Adapter: the transformer's loss on flattened (reco rows, hard objects) for the generic trainer."""

    def __init__(self, transformer: nn.Module, n_slots: int):
        super().__init__()
        self.transformer, self.n_slots = transformer, n_slots

    def loss(self, x: torch.Tensor, c: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        rows = x.reshape(len(x), self.n_slots, 5)
        return self.transformer.loss(rows[..., :4], c.reshape(len(c), 3, 4), rows[..., 4] > 0.5, weight)

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(len(x), self.n_slots, 5)
        return self.transformer.log_prob(rows[..., :4], c.reshape(len(c), 3, 4), rows[..., 4] > 0.5)

    def kl(self) -> torch.Tensor:
        return self.transformer.kl()


def hard_features_of(paired: Mapping[str, np.ndarray]) -> np.ndarray:
    """Eq 6.31 features of paired events (their ``x_hard`` four-momenta)."""
    return hard_features(np.asarray(paired["x_hard"], dtype=np.float64))


def outside_selection(objects: np.ndarray, pt_min: Sequence[float], eta_max: Sequence[float],
                      slots: Sequence[str]) -> dict[str, Any]:
    """Probability mass outside the reco selection (Table 6.1) of reco events ``objects`` (n, k, ≥2) in
    (pT, η, …): the fraction with pT ≤ pT_min or |η| ≥ η_max (non-finite counts as outside), per object
    and for any of them. Simulated events give exactly 0; a transfer network should too."""
    objects = np.asarray(objects, dtype=np.float64)
    k = objects.shape[1]
    pt, eta = objects[..., 0], objects[..., 1]
    low_pt = ~(pt > np.asarray(pt_min[:k], np.float64))
    wide = ~(np.abs(eta) < np.asarray(eta_max[:k], np.float64))
    out = low_pt | wide
    return {"events": len(objects), "any": float(out.any(1).mean()) if len(objects) else 0.0,
            "objects": {slot: {"any": float(out[:, i].mean()), "pt": float(low_pt[:, i].mean()),
                               "eta": float(wide[:, i].mean())} for i, slot in enumerate(slots[:k])}}


def sampled_outside_selection(net: TransferNetwork, x_hard: np.ndarray, pt_min: Sequence[float],
                              eta_max: Sequence[float], seed: int, n_extra: torch.Tensor | None = None) -> dict:
    """:func:`outside_selection` of one x̃_reco ~ p_θ(x_reco | x_hard) per Eq 6.31 row of ``x_hard``."""
    torch.manual_seed(seed)
    rows = net.sample(torch.as_tensor(x_hard, dtype=next(net.parameters()).dtype), n_extra)
    return outside_selection(net.reco_objects(rows.to(torch.float64).numpy()), pt_min, eta_max, net.layout.required)


# ----------------------------------------------------------------------------------------- paired data


def layout_of(data: Mapping[str, Any]) -> RecoLayout:
    """The reco layout (slots, W decay) of paired data."""
    return RecoLayout.from_slots(data["attrs"]["x_reco_slots"], data["attrs"]["decay"])


def selection_bounds(data: Mapping[str, Any], layout: RecoLayout) -> tuple[list[float], list[float]]:
    """(pT_min, |η|_max) per slot from the selection the paired file was made with (Table 6.1)."""
    return layout.selection_bounds(data["attrs"].get("selection"))


def reco_rows(net: TransferNetwork, data: Mapping[str, Any]) -> np.ndarray:
    """The reco rows of paired data in the layout of the transfer network ``net``."""
    return net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"])


def build_transfer(spec: Mapping[str, Any], data: Mapping[str, Any], masses: tuple[float, float]) -> TransferNetwork:
    """An untrained transfer network of kind ``spec['kind']`` in the layout and selection of paired data."""
    layout = layout_of(data)
    network = dict(spec.get("network", {}))
    if spec.get("variable_jets"):  # as many extra jets as the multiplicity classifier has classes (Eq 6.45)
        network["n_extra_max"] = int(spec.get("n_extra_max", 2))
    return TransferNetwork(spec["kind"], layout, masses, network, *selection_bounds(data, layout),
                           bool(spec.get("variable_jets", False)))


def true_extra_jets(transfer: TransferNetwork, data: Mapping[str, Any]) -> torch.Tensor | None:
    """The simulated extra-jet multiplicity (clipped to what the transfer models), to sample x̃_reco at it."""
    if not transfer.variable_jets:
        return None
    return torch.as_tensor(np.clip(data["n_extra_jets"], 0, transfer.n_extra_max), dtype=torch.long)


def flat_reco_features(transfer: TransferNetwork, rows: np.ndarray) -> np.ndarray:
    """§6.3 reco features of transformer-format rows (pT, η, φ, m, present)."""
    momenta = to_four_momenta(np.asarray(rows, np.float64)[:, : transfer.layout.n_required, :4])
    padded = np.zeros((len(rows), len(transfer.layout.slots), 4))
    padded[:, : transfer.layout.n_required] = momenta
    return transfer.layout.reco_features(padded)
