"""The Z+jets generator chain (thesis Ch. 4) as workflow stages: preprocess, train, sample, evaluate, bands,
size scan.

Every stage takes one frozen settings object (built once from the validated ``zjets`` config by its
``from_config``) and its files as keyword-only arguments, reads and writes files only (so it runs the same in
a Snakemake job, a SLURM job or an interactive session) and returns a frozen result.

* :func:`preprocess_stage` — the standardisation (Eqs 4.3-4.6), multiplicity fractions and magic means ⟨f⟩_n.
* :func:`train_stage` — one network of the chain; checkpoints and resumes after a kill.
* :func:`sample_stage` — events of the trained chain (Eq 4.9 weights normalised per multiplicity).
* :func:`evaluate_stage` — Figs 4.2/4.4 analogues, loss curves, bulk deviations and the default checks.
* :func:`bands_stage` — Bayesian bands and their decomposition (Figs 4.5, 4.6, Eqs 4.13-4.15).
* :func:`size_scan_stage` — Bayesian uncertainty against the training-set size (Fig 4.7).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.data.events import count_events, read_events, read_info
from lhcflow.models import build_generator
from lhcflow.settings import Settings
from lhcflow.training import trainer
from lhcflow.training.trainer import TrainingConfig, pick_device
from lhcflow.zjets import magic
from lhcflow.zjets.chain import (
    MagicSettings,
    ModelSettings,
    chain_data,
    load_chain,
    load_preprocessing,
    multiplicity_fractions,
    network_dims,
    save_network,
)
from lhcflow.zjets.checks import default_checks, multiplicity_weights
from lhcflow.zjets.preprocessing import ZJetsPreprocessing

log = logging.getLogger("lhcflow")


# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PreprocessSettings(Settings):
    """The magic transformation whose ⟨f⟩_n are fitted; None: no ⟨f⟩_n are stored (and a chain with the magic
    transformation refuses the file)."""

    magic: MagicSettings | None = None


@dataclass(frozen=True)
class TrainSettings(Settings):
    """Network ``net`` (1, 2, 3) of generator ``model``, trained with ``seed`` on a seeded random
    ``train_fraction`` of the training events (the size scan of Fig 4.7)."""

    model: ModelSettings
    magic: MagicSettings
    net: int
    seed: int
    train_fraction: float = 1.0


@dataclass(frozen=True)
class SampleSettings(Settings):
    """``n_events`` from the chain of ``model`` with ``seed``, ``batch_size`` events per network call;
    ``unweight``: unit weights by rejection with one w_max (magic transformation only)."""

    model: ModelSettings
    magic: MagicSettings
    n_events: int
    seed: int
    batch_size: int = 50_000
    unweight: bool = False


@dataclass(frozen=True)
class EvaluateSettings(Settings):
    """Figures in format ``fmt``."""

    fmt: str = "png"


@dataclass(frozen=True)
class BandsSettings(Settings):
    """``n_replicas`` weight draws of the Bayesian chain ``model``, ``n_events`` each, ``seed``; figures in
    ``fmt``."""

    model: ModelSettings
    magic: MagicSettings
    n_replicas: int
    n_events: int
    seed: int
    fmt: str = "png"


@dataclass(frozen=True)
class SizeScanSettings(Settings):
    """The Bayesian chain ``model`` trained on each of the ``fractions`` of the training data, ``n_replicas``
    weight draws of ``n_events`` each, ``seed``."""

    model: ModelSettings
    magic: MagicSettings
    fractions: Sequence[float]
    n_replicas: int
    n_events: int
    seed: int


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PreprocessResult:
    """Training events fitted on, their weighted multiplicity fractions, and the written state."""

    n_train: int
    fractions: Mapping[int, float]
    state: Mapping[str, Any]


@dataclass(frozen=True)
class TrainResult:
    """Training events, throughput and the written history (losses per epoch, kept epoch, ...)."""

    n_train: int
    train_events_per_s: float
    history: Mapping[str, Any]


@dataclass(frozen=True)
class SampleResult:
    """Events written, throughput and the written sampling summary."""

    n_events: int
    events_per_s: float
    summary: Mapping[str, Any]


@dataclass(frozen=True)
class EvaluateResult:
    """The bulk deviations, the default checks and all written metrics."""

    bulk_deviation: Mapping[str, Any]
    checks: Mapping[str, Any]
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class BandsResult:
    """Per observable: bin edges and the σ decomposition (Eqs 4.13-4.15)."""

    n_replicas: int
    observables: Mapping[str, Any]


@dataclass(frozen=True)
class SizeScanResult:
    """Per observable and training fraction: bin edges and σ_pred/⟨n⟩."""

    observables: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- stages


def preprocess_stage(settings: PreprocessSettings, *, train: str | Path, out: str | Path) -> PreprocessResult:
    """Fit the standardisation (Eq. 4.6), the multiplicity fractions and, when the magic transformation is
    enabled, the training means ``⟨f⟩_n`` that normalise the generated weights
    (:func:`~lhcflow.zjets.magic.generated_weights`) on the training split ``train``."""
    batch = read_events(train)
    pre = ZJetsPreprocessing().fit(batch)
    state = {"preprocessing": pre.state_dict(), "fractions": multiplicity_fractions(batch),
             "train_file": str(train), "n_train": len(batch)}
    cfg = settings.magic
    if cfg is not None:
        state["magic"] = {"enabled": bool(cfg.enabled)}
        if cfg.enabled:
            state["magic"].update(r_minus=cfg.r_minus, r_plus=cfg.r_plus,
                                  mean_f=magic.mean_training_weight(batch, cfg.r_minus, cfg.r_plus))
    write_json(out, state)
    return PreprocessResult(len(batch), state["fractions"], state)


def train_stage(settings: TrainSettings, *, train: str | Path, val: str | Path, preprocessing: str | Path,
                out_model: str | Path, out_history: str | Path, checkpoint: str | Path,
                progress: bool = True) -> TrainResult:
    """Train network ``settings.net`` of the chain; a rerun after a kill resumes from ``checkpoint``."""
    model, net, seed, magic_cfg = settings.model, settings.net, settings.seed, settings.magic.as_dict()
    pre, _ = load_preprocessing(preprocessing)
    events = read_events(train)
    if settings.train_fraction < 1.0:
        events = events.select(np.random.default_rng([seed, 7]).random(len(events)) < settings.train_fraction)
    train_data = chain_data(events, pre, magic_cfg).for_network(net)
    val_data = chain_data(read_events(val), pre, magic_cfg).for_network(net) if count_events(val) else None
    torch.manual_seed(seed)
    generator = build_generator(model.kind, *network_dims(net), **model.network)
    cfg = TrainingConfig.from_dict({**model.training, "seed": seed})
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    history = trainer.train(generator, train_data, cfg, checkpoint, val_data=val_data, progress=progress,
                            name=f"{model.kind} net{net}")
    save_network(generator, out_model)
    summary = {**history.as_dict(), "net": net, "kind": model.kind, "n_train": len(train_data),
               "n_parameters": sum(p.numel() for p in generator.parameters()),
               "train_events_per_s": len(train_data) * len(history.epoch) / max(sum(history.seconds), 1e-9)}
    write_json(out_history, summary)
    return TrainResult(summary["n_train"], summary["train_events_per_s"], summary)


def sample_stage(settings: SampleSettings, *, preprocessing: str | Path, nets: Sequence[str | Path],
                 out_events: str | Path, out_summary: str | Path | None = None) -> SampleResult:
    """Generate ``n_events`` with the trained chain into a canonical file (weights ``⟨f⟩_n f̄`` of
    Eq. 4.9 normalised per multiplicity to the training fractions; the closure ``⟨⟨f⟩_n f̄⟩`` before
    that normalisation, 1 for a generator that learned p_f, goes into the summary and the file's
    provenance); ``unweight`` turns them into unit weights by rejection with one ``w_max``. Streams:
    memory is bounded by ``batch_size`` (:meth:`GeneratorChain.sample_to_file`). The summary (timing,
    weights) goes to ``out_summary``."""
    seed = settings.seed
    chain = load_chain(settings.model, settings.magic, preprocessing, nets)
    torch.manual_seed(seed)
    info = chain.sample_info(seed, [str(p) for p in nets])
    unweight = settings.unweight and settings.magic.enabled
    start = time.perf_counter()
    result = chain.sample_to_file(out_events, settings.n_events, np.random.default_rng(seed), info,
                                  batch_size=settings.batch_size, device=pick_device(),
                                  unweight_rng=np.random.default_rng([seed, 1]) if unweight else None)
    seconds = time.perf_counter() - start
    summary = {"n_events": result.n_written, "seconds": seconds, "events_per_s": result.n_generated / seconds,
               "zero_weight_fraction": result.zero_weight_fraction, "mean_weight": result.mean_weight}
    if result.closure is not None:
        summary["magic_closure"] = {n: c.to_dict() for n, c in result.closure.items()}
    if unweight:
        summary.update(unweighted=True, unweighting_efficiency=result.n_written / result.n_generated,
                       w_max=result.w_max)
    if out_summary is not None:
        write_json(out_summary, summary)
    return SampleResult(summary["n_events"], summary["events_per_s"], summary)


def evaluate_stage(settings: EvaluateSettings, *, train: str | Path, generated: str | Path, truth: str | Path,
                   histories: Sequence[str | Path], out_dir: str | Path,
                   out_metrics: str | Path) -> EvaluateResult:
    """Fig. 4.4 and Fig. 4.2 analogues, loss curves, the bulk-deviation table and the default checks."""
    from lhcflow.physics.metrics import deviation_table
    from lhcflow.plots.generator import plot_benchmark, plot_delta_eta_phi
    from lhcflow.plots.training import plot_loss_curves

    fmt = settings.fmt
    provenance = read_info(generated).provenance
    magic.require_normalised_weights(generated, provenance)
    train_events, generated_events, truth_events = (read_events(p) for p in (train, generated, truth))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_benchmark(train_events, generated_events, truth_events, out_dir, fmt=fmt)
    plot_delta_eta_phi(truth_events, generated_events, out_dir / f"delta_eta_phi_2j.{fmt}")
    history_data = [json.loads(Path(h).read_text()) for h in histories]
    plot_loss_curves(history_data, out_dir / f"loss.{fmt}")
    table = deviation_table(train_events, generated_events, truth_events)
    metrics = {"bulk_deviation": table,
               "multiplicity_weights": multiplicity_weights(generated_events, truth_events, train_events),
               "magic_closure": provenance.get("magic_closure"),
               "checks": default_checks(generated_events, truth_events, history_data, train_events),
               "generator": provenance, "n_generated": len(generated_events),
               "n_truth": len(truth_events), "n_train": len(train_events)}
    write_json(out_metrics, metrics)
    return EvaluateResult(table, metrics["checks"], metrics)


def bands_stage(settings: BandsSettings, *, preprocessing: str | Path, nets: Sequence[str | Path],
                train: str | Path, truth: str | Path, out_dir: str | Path,
                out_json: str | Path) -> BandsResult:
    """Fig. 4.5 (distributions with BINN bands) and Fig. 4.6 (uncertainty scaling) analogues and
    the per-bin decomposition σ²_tot = σ²_stoch + σ²_pred (Eq. 4.13-4.15) as JSON."""
    from lhcflow.physics.metrics import zjets_benchmark_observables
    from lhcflow.plots.generator import plot_benchmark, replica_band
    from lhcflow.zjets.bands import decompose, plot_uncertainty_scaling, replica_histograms

    n_replicas, n_events, seed, fmt = settings.n_replicas, settings.n_events, settings.seed, settings.fmt
    chain = load_chain(settings.model, settings.magic, preprocessing, nets)
    observables = zjets_benchmark_observables()
    replicas = replica_histograms(chain, observables, n_replicas, n_events, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bands = {name: replica_band(hists) for name, hists in replicas.items()}
    central = chain.sample(n_events, np.random.default_rng(seed), bayesian="map")
    plot_benchmark(read_events(train), central, read_events(truth), out_dir, observables, fmt, bands)
    result = {}
    for obs in observables:
        parts = decompose(replicas[obs.name])
        plot_uncertainty_scaling(parts, obs, out_dir / f"scaling_{obs.name}.{fmt}")
        result[obs.name] = {"edges": replicas[obs.name][0].axes[0].edges.tolist(),
                            **{k: v.tolist() for k, v in parts.items()}}
    write_json(out_json, {"n_replicas": n_replicas, "n_events": n_events, "observables": result})
    return BandsResult(n_replicas, result)


def size_scan_stage(settings: SizeScanSettings, *, preprocessing: str | Path, nets: Sequence[str | Path],
                    out_plot: str | Path, out_json: str | Path) -> SizeScanResult:
    """Fig. 4.7 analogue: the BINN's relative predictive uncertainty σ_pred/⟨n⟩ of the Z+1 jet
    p_T,j1 and p_T,μ1 distributions for networks trained on different fractions of the data; ``nets`` holds
    the three networks of each of ``settings.fractions`` in turn."""
    from lhcflow.physics.observables import control_observables, exclusive_jets
    from lhcflow.plots.training import plot_size_scan
    from lhcflow.zjets.bands import decompose, replica_histograms
    from lhcflow.zjets.preprocessing import ZJETS_SLOTS

    nets = list(nets)
    if len(nets) != 3 * len(settings.fractions):
        raise ValueError(f"the size scan needs 3 networks per training fraction {list(settings.fractions)}, "
                         f"got {len(nets)} files")
    nets_by_size = {f: nets[3 * i:3 * i + 3] for i, f in enumerate(settings.fractions)}
    named = {o.name: o for o in control_observables(ZJETS_SLOTS)}
    observables = [exclusive_jets(named["j1_pt"], 1), exclusive_jets(named["mu1_pt"], 1)]
    result: dict = {obs.name: {} for obs in observables}
    for fraction, paths in sorted(nets_by_size.items()):
        chain = load_chain(settings.model, settings.magic, preprocessing, paths)
        replicas = replica_histograms(chain, observables, settings.n_replicas, settings.n_events,
                                      settings.seed)
        for obs in observables:
            parts = decompose(replicas[obs.name])
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = np.where(parts["mean"] > 0, parts["sigma_pred"] / parts["mean"], np.nan)
            result[obs.name][str(fraction)] = {"edges": replicas[obs.name][0].axes[0].edges.tolist(),
                                               "relative_sigma_pred": relative.tolist()}
    plot_size_scan(result, observables, out_plot)
    write_json(out_json, {"n_replicas": settings.n_replicas, "n_events": settings.n_events,
                          "observables": result})
    return SizeScanResult(result)
