"""The autoregressive chain of conditional generators for Z+{1,2,3} jets (thesis Fig. 4.1).

Network 1 generates μμ + j1 (9 standardised inputs, see ``preprocessing``) conditioned on the
one-hot jet multiplicity and is trained on all events; network 2 generates j2 conditioned on
μμ j1 and the one-hot multiplicity (2 or 3) and is trained on events with ≥ 2 jets; network 3
generates j3 conditioned on μμ j1 j2 and is trained on 3-jet events. Each network is one
``ConditionalGenerator`` of any kind (INN, Bayesian INN, CFM), trained separately; sampling
draws a multiplicity with the training fractions and runs the networks in turn. With the magic
transformation the events carry the weights ``⟨f⟩_n f̄`` of :func:`lhcflow.zjets.magic.generated_weights`,
so the weighted multiplicity fractions are the training ones.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.atomic import save_torch, scratch_path, write_json
from lhcflow.data.events import EventBatch, EventWriter, ObjectType, SampleInfo, iter_events
from lhcflow.models import bayesian_mode, build_generator
from lhcflow.settings import Settings
from lhcflow.training.trainer import TrainingData
from lhcflow.zjets import magic
from lhcflow.zjets.preprocessing import MAX_JETS, ZJETS_SLOTS, ZJetsPreprocessing, by_multiplicity, n_dims

NETWORKS = (1, 2, 3)


@dataclass(frozen=True)
class MagicSettings(Settings):
    """The magic transformation (``zjets.magic``, Eqs 4.7-4.9): training weights from the jet-pair ΔR
    between ``r_minus`` and ``r_plus``, generated weights zero below ``r_min``."""

    config_key = "zjets.magic"

    enabled: bool
    r_minus: float
    r_plus: float
    r_min: float

    def as_dict(self) -> dict[str, Any]:
        """The block as the chain functions and the provenance of generated files take it."""
        return asdict(self)


@dataclass(frozen=True)
class ModelSettings(Settings):
    """One generator of ``zjets.models``: its ``kind`` (inn, binn, cfm), network and training settings."""

    config_key = "zjets.models"

    kind: str
    network: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)


def network_dims(net: int) -> tuple[int, int]:
    """(generated dimensions, condition dimensions) of network ``net``."""
    if net == 1:
        return n_dims(1), MAX_JETS
    dims_c = n_dims(net - 1) + (MAX_JETS - net + 1 if net < MAX_JETS else 0)
    return n_dims(net) - n_dims(net - 1), dims_c


def multiplicity_code(n_jets: np.ndarray, net: int) -> np.ndarray:
    """One-hot multiplicity condition for network ``net`` (over the multiplicities ≥ net)."""
    choices = np.arange(net, MAX_JETS + 1)
    if net == MAX_JETS:
        return np.zeros((len(n_jets), 0))
    return (np.asarray(n_jets)[:, None] == choices[None, :]).astype(np.float64)


def network_inputs(x: np.ndarray, n_jets: np.ndarray, net: int) -> tuple[np.ndarray, np.ndarray]:
    """Split full preprocessed events ``x`` (padded to 3 jets) into (inputs, conditions) of ``net``."""
    lo, hi = (0, n_dims(1)) if net == 1 else (n_dims(net - 1), n_dims(net))
    previous = x[:, :lo]
    return x[:, lo:hi], np.concatenate([previous, multiplicity_code(n_jets, net)], axis=1)


@dataclass
class ChainData:
    """Preprocessed training events of all multiplicities, padded to 3 jets with zeros."""

    x: np.ndarray
    n_jets: np.ndarray
    weight: np.ndarray

    def for_network(self, net: int) -> TrainingData:
        keep = self.n_jets >= net
        inputs, cond = network_inputs(self.x[keep], self.n_jets[keep], net)
        return TrainingData(x=inputs, c=cond, weight=self.weight[keep], group=self.n_jets[keep])


def chain_data(batch: EventBatch, pre: ZJetsPreprocessing, magic_cfg: Mapping | None = None) -> ChainData:
    """Preprocess canonical events for the chain; event weights times the magic-transformation
    training weights of Eq. 4.7–4.8 when ``magic_cfg['enabled']``."""
    xs, ns, ws = [], [], []
    for n, sub in by_multiplicity(batch).items():
        if not len(sub):
            continue
        x = np.zeros((len(sub), n_dims(MAX_JETS)))
        x[:, :n_dims(n)] = pre.forward(sub, n)
        w = sub.weight.astype(np.float64)
        if magic_cfg and magic_cfg.get("enabled"):
            w = w * magic.training_weights(sub, magic_cfg["r_minus"], magic_cfg["r_plus"])
        xs.append(x)
        ns.append(np.full(len(sub), n))
        ws.append(w)
    return ChainData(np.concatenate(xs), np.concatenate(ns), np.concatenate(ws))


def multiplicity_fractions(batch: EventBatch) -> dict[int, float]:
    """Weighted fractions of 1, 2 and 3 stored jets."""
    return {n: f for n, (f, _) in fraction_errors(batch).items()}


def fraction_errors(batch: EventBatch) -> dict[int, tuple[float, float]]:
    """``(F_n, σ_n)``: weighted fraction ``F_n = S_n / S`` of n stored jets (``S_n`` the n-jet
    weight sum, S over 1 to 3 jets) and its statistical error from the linearised ratio,
    ``σ_n² = Σ_i w_i² (δ_{n n_i} − F_n)² / S²`` (``F_n(1−F_n)/N`` for unit weights)."""
    counts = batch.multiplicity(ObjectType.JET)
    w = np.where((counts >= 1) & (counts <= MAX_JETS), batch.weight.astype(np.float64), 0.0)
    total = float(w.sum())
    if not total > 0:
        raise ValueError(f"multiplicity fractions need a positive total weight, got {total}")
    out = {}
    for n in range(1, MAX_JETS + 1):
        is_n = counts == n
        frac = float(w[is_n].sum() / total)
        out[n] = (frac, float(np.sqrt(np.sum(w**2 * (is_n - frac) ** 2)) / total))
    return out


@dataclass(frozen=True)
class StreamedSample:
    """What :meth:`GeneratorChain.sample_to_file` wrote: events generated and written (fewer after
    unweighting), the magic-weight closure, the fraction of zero weights (ΔR_jj < R_min), the mean
    normalised weight per multiplicity and the unweighting ``w_max`` (None: weighted events)."""

    n_generated: int
    n_written: int
    closure: dict[int, magic.MagicClosure] | None = None
    zero_weight_fraction: float = 0.0
    mean_weight: dict[int, float] | None = None
    w_max: float | None = None


class GeneratorChain:
    """Three trained networks, the preprocessing, the multiplicity fractions and, with the magic
    transformation, the training means ``mean_f = {n: ⟨f⟩_n}`` that normalise the Eq 4.9 weights."""

    def __init__(self, kind: str, hyper: Mapping, pre: ZJetsPreprocessing, fractions: Mapping[int, float],
                 magic_cfg: Mapping | None = None, mean_f: Mapping[int, float] | None = None):
        self.kind, self.hyper, self.pre = kind, dict(hyper), pre
        self.fractions = {int(k): float(v) for k, v in fractions.items()}
        self.magic_cfg = dict(magic_cfg or {"enabled": False})
        if self.magic_cfg.get("enabled") and mean_f is None:
            raise ValueError("the magic transformation is enabled but ⟨f⟩_n ('magic_mean_f') is missing: "
                             "f̄ of Eq 4.9 alone mis-normalises the jet multiplicities; fit it with "
                             "lhcflow.zjets.magic.mean_training_weight on the training events")
        self.mean_f = None if mean_f is None else {int(k): float(v) for k, v in mean_f.items()}
        self.networks = {net: build_generator(kind, *network_dims(net), **self.hyper) for net in NETWORKS}

    # ----------------------------------------------------------------- persistence
    def metadata(self) -> dict:
        return {"kind": self.kind, "hyper": self.hyper, "preprocessing": self.pre.state_dict(),
                "fractions": self.fractions, "magic": self.magic_cfg, "magic_mean_f": self.mean_f}

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for net, model in self.networks.items():
            save_network(model, directory / f"net{net}.pt")
        write_json(directory / "chain.json", self.metadata())

    @classmethod
    def from_metadata(cls, meta: Mapping) -> GeneratorChain:
        return cls(meta["kind"], meta["hyper"], ZJetsPreprocessing.from_state(meta["preprocessing"]),
                   meta["fractions"], meta.get("magic"), meta.get("magic_mean_f"))

    @classmethod
    def load(cls, meta_path: str | Path, network_paths: Mapping[int, str | Path]) -> GeneratorChain:
        chain = cls.from_metadata(json.loads(Path(meta_path).read_text()))
        for net, path in network_paths.items():
            chain.networks[int(net)].load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return chain

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n_events: int, rng: np.random.Generator | int, batch_size: int = 50_000,
               device: str | torch.device = "cpu", bayesian: str = "map") -> EventBatch:
        """``n_events`` events with multiplicities drawn from the training fractions; with the
        magic transformation their weights are ``⟨f⟩_n f̄`` (Eq. 4.9) normalised per multiplicity to
        the training fractions (:func:`~lhcflow.zjets.magic.normalise_multiplicities`).

        Bayesian networks sample with their posterior means (``bayesian="map"``) or with the
        weight draw fixed by :func:`~lhcflow.models.resample_weights` (``"fixed"``, one replica).
        """
        batch, _ = self.sample_with_closure(n_events, rng, batch_size, device, bayesian)
        return batch

    @torch.no_grad()
    def sample_with_closure(self, n_events: int, rng: np.random.Generator | int, batch_size: int = 50_000,
                            device: str | torch.device = "cpu", bayesian: str = "map"
                            ) -> tuple[EventBatch, dict[int, magic.MagicClosure] | None]:
        """:meth:`sample` and, with the magic transformation, the mean ``⟨f⟩_n f̄`` per multiplicity
        before the normalisation (:class:`~lhcflow.zjets.magic.MagicClosure`; None without it).
        Holds the whole sample in memory; :meth:`sample_to_file` streams the same events."""
        with contextlib.ExitStack() as stack:
            for model in self.networks.values():
                stack.enter_context(bayesian_mode(model, bayesian))
            batch = EventBatch.concatenate(list(self._blocks(n_events, rng, batch_size, device)))
        if not self.magic_cfg.get("enabled"):
            return batch, None
        batch.weight[:], closure = magic.normalise_multiplicities(
            batch.weight, batch.multiplicity(ObjectType.JET), self.fractions)
        return batch, closure

    @torch.no_grad()
    def sample_to_file(self, path: str | Path, n_events: int, rng: np.random.Generator | int, info: SampleInfo,
                       *, batch_size: int = 50_000, device: str | torch.device = "cpu", bayesian: str = "map",
                       unweight_rng: np.random.Generator | None = None) -> StreamedSample:
        """The events of :meth:`sample_with_closure` (same ``rng``, same events and weights) written to
        the canonical file ``path`` block by block, in memory bounded by ``batch_size`` whatever
        ``n_events``. With the magic transformation the blocks first go to a scratch file beside
        ``path`` with their weights ``⟨f⟩_n f̄``; once the per-multiplicity sums are known a second pass
        writes them normalised (:func:`~lhcflow.zjets.magic.multiplicity_scales`) and, with
        ``unweight_rng``, unweighted by rejection with one ``w_max`` for all multiplicities (which keeps
        their fractions). The closure goes into ``info.provenance['magic_closure']``."""
        with contextlib.ExitStack() as stack:
            for model in self.networks.values():
                stack.enter_context(bayesian_mode(model, bayesian))
            blocks = self._blocks(n_events, rng, batch_size, device)
            tally = magic.MultiplicityTally()
            if not self.magic_cfg.get("enabled"):
                with EventWriter(path, info) as out:
                    for block in blocks:
                        tally.add(block.weight, block.n_jets_all)
                        out.write(block)
                return StreamedSample(n_generated=n_events, n_written=out.n_written,
                                      mean_weight={n: tally.sum[n] / tally.events[n] for n in tally.events})
            with EventWriter(path, info) as out, scratch_path(path) as raw_path:
                with EventWriter(raw_path, info) as raw:
                    for block in blocks:
                        tally.add(block.weight, block.n_jets_all)
                        raw.write(block)
                scales = magic.multiplicity_scales(tally, self.fractions)
                lookup = np.zeros(MAX_JETS + 1)
                for n, scale in scales.items():
                    lookup[n] = scale
                w_max = max(tally.max[n] * scales[n] for n in scales)
                closure = tally.closure()
                info.provenance["magic_closure"] = {n: c.to_dict() for n, c in closure.items()}
                for block in iter_events(raw_path, chunk_size=batch_size):
                    block.weight[:] = block.weight * lookup[block.n_jets_all]
                    if unweight_rng is not None:
                        block = block.select(magic.unweight(block.weight, unweight_rng, w_max=w_max))
                        block.weight[:] = 1.0
                    out.write(block)
        return StreamedSample(n_generated=n_events, n_written=out.n_written, closure=closure,
                              zero_weight_fraction=tally.zeros / max(tally.total, 1),
                              mean_weight={n: tally.sum[n] * scales[n] / tally.events[n] for n in scales},
                              w_max=w_max if unweight_rng is not None else None)

    def _blocks(self, n_events: int, rng: np.random.Generator | int, batch_size: int,
                device) -> Iterator[EventBatch]:
        """Blocks of at most ``batch_size`` generated events: multiplicities drawn from the training
        fractions, events shuffled within the block, weights ``⟨f⟩_n f̄`` before normalisation (1
        without the magic transformation)."""
        rng = np.random.default_rng(rng)
        probs = np.array([self.fractions[n] for n in range(1, MAX_JETS + 1)])
        for model in self.networks.values():
            model.to(device).eval()
        for start in range(0, n_events, batch_size):
            counts = rng.multinomial(min(batch_size, n_events - start), probs / probs.sum())
            parts = [self._sample_multiplicity(n, int(count), rng, device)
                     for n, count in zip(range(1, MAX_JETS + 1), counts) if count]
            block = EventBatch.concatenate(parts)
            yield block.select(rng.permutation(len(block)))

    def _sample_multiplicity(self, n: int, count: int, rng: np.random.Generator, device) -> EventBatch:
        x = np.zeros((count, n_dims(MAX_JETS)))
        n_jets = np.full(count, n)
        for net in range(1, n + 1):
            _, cond = network_inputs(x, n_jets, net)
            c = torch.as_tensor(cond, dtype=torch.float32, device=device)
            lo = 0 if net == 1 else n_dims(net - 1)
            x[:, lo:n_dims(net)] = self.networks[net].sample(c).double().cpu().numpy()
        events = self.pre.inverse(x[:, :n_dims(n)], n, rng=rng)
        padded = EventBatch.empty(count, len(ZJETS_SLOTS))
        for name in ("type", "pt", "eta", "phi", "mass", "charge", "btag"):
            getattr(padded, name)[:, :events.n_slots] = getattr(events, name)
        padded.n_jets_all[:] = n
        padded.weight[:] = 1.0
        if self.magic_cfg.get("enabled"):
            cfg = self.magic_cfg
            padded.weight[:] = magic.generated_weights(padded, self.mean_f, cfg["r_min"], cfg["r_minus"],
                                                       cfg["r_plus"])
        return padded

    @torch.no_grad()
    def log_prob(self, batch: EventBatch, bayesian: str = "map") -> np.ndarray:
        """Log density of each event in the standardised network coordinates: the sum of the
        chain's conditional log densities (the preprocessing Jacobian, equal for every network
        replica, is left out). Bayesian networks use ``bayesian`` as in :meth:`sample`."""
        out = np.full(len(batch), np.nan)
        counts = batch.multiplicity(ObjectType.JET)
        with contextlib.ExitStack() as stack:
            for model in self.networks.values():
                stack.enter_context(bayesian_mode(model, bayesian))
                model.eval()
            for n in range(1, MAX_JETS + 1):
                idx = np.flatnonzero(counts == n)
                if not len(idx):
                    continue
                x = np.zeros((len(idx), n_dims(MAX_JETS)))
                x[:, :n_dims(n)] = self.pre.forward(batch.select(idx), n)
                n_jets = np.full(len(idx), n)
                total = np.zeros(len(idx))
                for net in range(1, n + 1):
                    inputs, cond = network_inputs(x, n_jets, net)
                    total += self.networks[net].log_prob(torch.as_tensor(inputs, dtype=torch.float32),
                                                         torch.as_tensor(cond, dtype=torch.float32)).double().numpy()
                out[idx] = total
        return out

    def sample_info(self, seed: int, sources: list[str]) -> SampleInfo:
        return SampleInfo(slots=list(ZJETS_SLOTS), generator=f"lhcflow {self.kind} chain", seed=seed,
                          sources=sources, split="generated",
                          provenance={"kind": self.kind, "hyper": self.hyper, "magic": self.magic_cfg,
                                      "magic_mean_f": self.mean_f, "fractions": self.fractions})


def save_network(model: torch.nn.Module, path: str | Path) -> None:
    save_torch(path, model.state_dict())


def load_preprocessing(path: str | Path) -> tuple[ZJetsPreprocessing, dict[int, float]]:
    """The fitted preprocessing and the multiplicity fractions of a preprocessing file."""
    state = json.loads(Path(path).read_text())
    return ZJetsPreprocessing.from_state(state["preprocessing"]), {int(k): v for k, v in state["fractions"].items()}


def load_mean_f(path: str | Path, magic_cfg: Mapping) -> dict[int, float] | None:
    """``⟨f⟩_n`` stored in the preprocessing file ``path`` for the radii of ``magic_cfg``
    (``None`` without the magic transformation); a file without them, or fitted with other
    R₋, R₊, is refused rather than giving mis-normalised weights."""
    if not magic_cfg.get("enabled"):
        return None
    stored = json.loads(Path(path).read_text()).get("magic") or {}
    if "mean_f" not in stored:
        raise ValueError(f"{path}: no field 'magic.mean_f' (⟨f⟩_n of the training events, which "
                         "normalises the Eq 4.9 weights per jet multiplicity); the file predates it or was "
                         "fitted without the magic transformation: delete it and rerun zjets_preprocess "
                         "with the magic config")
    fitted = (stored.get("r_minus"), stored.get("r_plus"))
    if fitted != (magic_cfg["r_minus"], magic_cfg["r_plus"]):
        raise ValueError(f"{path}: 'magic.mean_f' was fitted for (R_-, R_+) = {fitted}, the config has "
                         f"({magic_cfg['r_minus']}, {magic_cfg['r_plus']}): rerun zjets_preprocess")
    return {int(k): float(v) for k, v in stored["mean_f"].items()}


def load_chain(model: ModelSettings, magic_settings: MagicSettings, pre_path: str | Path,
               net_paths: Sequence[str | Path]) -> GeneratorChain:
    """The trained chain of ``model`` from its preprocessing file and network weights."""
    pre, fractions = load_preprocessing(pre_path)
    magic_cfg = magic_settings.as_dict()
    chain = GeneratorChain(model.kind, model.network, pre, fractions, magic_cfg,
                           load_mean_f(pre_path, magic_cfg))
    for net, path in zip(sorted(chain.networks), net_paths):
        chain.networks[net].load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return chain
