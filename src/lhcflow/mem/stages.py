"""The ML-MEM chain (thesis §6.2-6.5) as workflow stages.

Networks train on the ``train`` split of a dataset's α-uniform paired sample (accepted events only for
the transfer and sampling networks, all events for the acceptance), validate on ``val``; the MEM is
evaluated on the accepted events of the fixed-α test samples, which no network has seen. The acceptance and
multiplicity classifiers train and are evaluated by the hard-classifier stages
(:func:`lhcflow.classifier.stages.train_hard_stage`, :func:`~lhcflow.classifier.stages.evaluate_hard_stage`)
on the dataset of :func:`hard_dataset_stage`.

Every stage takes one frozen settings object (built once from the validated ``mem`` config by its
``from_config``) and its files as keyword-only arguments, reads and writes files only, and returns a frozen
result.

* :func:`hard_dataset_stage` — every showered event of the α-uniform sample with its acceptance label.
* :func:`train_transfer_stage` — p_θ(x_reco|x_hard) (Eq 6.21) on accepted training pairs.
* :func:`train_sampling_stage` — q_φ(x_hard|x_reco, α) on true pairs (Eq 6.36) or the transfer (Eq 6.38).
* :func:`transfer_plots_stage` — forward-simulated reco distributions vs the test samples (Figs 6.5, 6.16).
* :func:`integrate_stage` — single-pass MEM integrals of a test sample (Eqs 6.35, 6.39), resumable per chunk.
* :func:`diagnostics_stage` — samplers and VEGAS refinement compared on the same events (Fig 6.13).
* :func:`likelihood_stage` — scans, calibration and pulls against the hard-level truth (Figs 6.7-6.14).
* :func:`closure_stage` — the analytic closure test of the integration machinery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.errors import reject_unknown
from lhcflow.mem.data import read_paired_events, read_test_events, training_split, write_hard_dataset
from lhcflow.mem.features import hard_features
from lhcflow.mem.integration import MemSettings
from lhcflow.mem.sampling import SAMPLING_VARIANTS, SamplingNetwork
from lhcflow.mem.setup import integrate_setup, load_mem_setup
from lhcflow.mem.transfer import (
    TransferNetwork,
    build_transfer,
    flat_reco_features,
    layout_of,
    outside_selection,
    reco_rows,
    sampled_outside_selection,
    selection_bounds,
    true_extra_jets,
)
from lhcflow.settings import Settings
from lhcflow.training import trainer
from lhcflow.training.trainer import TrainingConfig, TrainingData

log = logging.getLogger("lhcflow")

# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class IntegrationSettings(Settings):
    """``mem.integration``: the integration of one event (:class:`~lhcflow.mem.integration.MemSettings`; each
    stage sets its seed) and ``chunk_size`` events per checkpoint."""

    config_key = "mem.integration"

    mem: MemSettings = field(default_factory=MemSettings)
    chunk_size: int = 256

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> IntegrationSettings:
        """From the ``mem.integration`` block: ``chunk_size`` and the MemSettings keys (``alpha_grid_deg`` in
        degrees); an unknown key raises :class:`~lhcflow.errors.UnknownSettingError`."""
        known = {"chunk_size", "alpha_grid_deg", *(f.name for f in fields(MemSettings) if f.name != "seed")}
        reject_unknown(cls.config_key, cfg, known)
        mem = MemSettings.from_dict({k: v for k, v in cfg.items() if k != "chunk_size"})
        return cls(mem, int(cfg.get("chunk_size", 256)))


@dataclass(frozen=True)
class AnalysisSettings(Settings):
    """``mem.analysis``: events of the two likelihood scans, events per set, calibration and pull sets."""

    config_key = "mem.analysis"

    small_set: int
    large_set: int
    events_per_set: int
    calibration_sets: int
    pull_sets: int


@dataclass(frozen=True)
class HardDatasetSettings(Settings):
    """The on-shell (m_t, m_H) ``masses`` [GeV] of the hard particles."""

    masses: Sequence[float]


@dataclass(frozen=True)
class TransferSettings(Settings):
    """A ``mem.transfers`` entry ``transfer`` (kind, network, training, ...; ``n_extra_max`` for variable
    jets), the hard ``masses`` (m_t, m_H), ``seed``; ``device`` replaces the training's device (None: keep
    it)."""

    transfer: Mapping[str, Any]
    masses: Sequence[float]
    seed: int
    device: str | None = None


@dataclass(frozen=True)
class SamplingSettings(Settings):
    """``mem.sampling``: the ``variant`` (``transfer``: Eq 6.38, ``true_pairs``: Eq 6.36), network and
    training; ``seed``."""

    seed: int
    variant: str = "transfer"
    network: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferPlotsSettings(Settings):
    """The true α (degrees) of each test sample, ``seed`` of the forward simulation, figures in ``fmt``."""

    alpha_deg: Mapping[str, float]
    seed: int
    fmt: str = "png"


@dataclass(frozen=True)
class IntegrateSettings(Settings):
    """``thj.process``, ``mem.integration``, ``seed``; ``replicas`` Bayesian transfer replicas folded into the
    bootstrap, the first ``max_events`` accepted events (all: None), on ``device``."""

    process: Mapping[str, Any]
    integration: IntegrationSettings
    seed: int
    replicas: int = 0
    max_events: int | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class DiagnosticsSettings(Settings):
    """``thj.process``, ``mem.integration``, the first ``n_events`` accepted events, ``seed``, on
    ``device``."""

    process: Mapping[str, Any]
    integration: IntegrationSettings
    n_events: int
    seed: int
    device: str = "cpu"


@dataclass(frozen=True)
class LikelihoodSettings(Settings):
    """The true α (degrees) of each test sample, ``mem.analysis``, the MEM's ``label`` (its transfer),
    ``seed``."""

    alpha_deg: Mapping[str, float]
    analysis: AnalysisSettings
    label: str
    seed: int


@dataclass(frozen=True)
class ClosureSettings(Settings):
    """``mem.closure`` (without ``enabled``, with the ``figure_format``) and ``seed``."""

    closure: Mapping[str, Any]
    seed: int


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class HardDatasetResult:
    """Events written."""

    n_events: int


@dataclass(frozen=True)
class TrainResult:
    """Training events, the kept (best validation) epoch and the written history (for the transfer also its
    parameters and the forward-simulated validation mass outside the selection)."""

    n_train: int
    best_epoch: int
    history: Mapping[str, Any]

    @property
    def best_val_loss(self) -> float:
        """The validation loss of the kept epoch."""
        return self.history["val_loss"][self.best_epoch - 1]


@dataclass(frozen=True)
class TransferPlotsResult:
    """Worst transfer/simulation ratios, the forward-simulated mass outside the selection and events per test
    sample, and the written metrics."""

    worst_ratio: Mapping[str, Any]
    outside_selection: Mapping[str, Any]
    events: Mapping[str, int]
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class IntegrateResult:
    """Events integrated, wall time, device, median iterations, converged fraction and the written
    statistics."""

    n_events: int
    wall_time_s: float
    device: str
    median_iterations: float
    converged_fraction: float
    stats: Mapping[str, Any]


@dataclass(frozen=True)
class DiagnosticsResult:
    """Events and the row of each integration setup."""

    n_events: int
    setups: Mapping[str, Any]


@dataclass(frozen=True)
class LikelihoodResult:
    """The MEM's label, the per-sample metrics and all written metrics."""

    label: str
    samples: Mapping[str, Any]
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class ClosureResult:
    """The written closure metrics."""

    metrics: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- networks


def hard_dataset_stage(settings: HardDatasetSettings, *, paired: Sequence[str | Path],
                       out: str | Path) -> HardDatasetResult:
    """Every showered event of the ``paired`` shards in the hard-classifier layout (acceptance labels)."""
    return HardDatasetResult(write_hard_dataset(list(paired), out, tuple(settings.masses)))


def train_transfer_stage(settings: TransferSettings, *, paired: Sequence[str | Path], out_model: str | Path,
                         out_history: str | Path, checkpoint: str | Path,
                         progress: bool = True) -> TrainResult:
    """Train p_θ(x_reco|x_hard) (Eq 6.21) of the transfer's kind on accepted training pairs; the summary
    holds the mass of forward-simulated validation events outside the selection (``outside_selection``)."""
    spec, seed, masses = dict(settings.transfer), settings.seed, tuple(settings.masses)
    if settings.device is not None:
        spec["training"] = {**spec.get("training", {}), "device": settings.device}
    train_data, val_data = training_split(paired)
    torch.manual_seed(seed)
    net = build_transfer(spec, train_data, masses)
    rows, hard = reco_rows(net, train_data), hard_features(train_data["x_hard"])
    net.fit_preprocessing(rows, hard)
    cfg = TrainingConfig.from_dict({**spec.get("training", {}), "seed": seed})
    x, c = net.training_arrays(rows, hard)
    xv, cv = net.training_arrays(reco_rows(net, val_data), hard_features(val_data["x_hard"]))
    history = trainer.train(net.training_view(), TrainingData(x, c), cfg, checkpoint,
                            val_data=TrainingData(xv, cv), progress=progress, name=f"transfer {spec['kind']}")
    net.save(out_model, extra={"seed": seed})
    net.eval()
    leak = None if not len(val_data["alpha"]) else sampled_outside_selection(
        net, hard_features(val_data["x_hard"]), *selection_bounds(val_data, net.layout), seed,
        true_extra_jets(net, val_data))
    summary = {**history.as_dict(), "kind": spec["kind"], "n_train": len(x), "n_val": len(xv),
               "parameters": sum(p.numel() for p in net.parameters()), "outside_selection": leak}
    write_json(out_history, summary)
    return TrainResult(summary["n_train"], summary["best_epoch"], summary)


def train_sampling_stage(settings: SamplingSettings, *, paired: Sequence[str | Path], out_model: str | Path,
                         out_history: str | Path, checkpoint: str | Path, transfer: str | Path | None = None,
                         progress: bool = True) -> TrainResult:
    """Train q_φ(x_hard | x_reco, α) on true pairs (Eq 6.36) or on x̃_reco from the ``transfer`` network
    (Eq 6.38)."""
    variant, seed = settings.variant, settings.seed
    if variant not in SAMPLING_VARIANTS:
        raise ValueError(f"sampling variant must be one of {SAMPLING_VARIANTS}, got {variant!r}")
    if variant == "transfer" and transfer is None:
        raise ValueError("sampling variant 'transfer' needs a trained transfer network")
    train_data, val_data = training_split(paired)
    layout = layout_of(train_data)

    def condition(data: Mapping[str, Any], reco_features: np.ndarray | None = None) -> np.ndarray:
        reco = layout.reco_features(data["x_reco"]) if reco_features is None else reco_features
        return np.concatenate([reco, layout.extra_jets(data["x_reco"], data["x_reco_present"])], 1)

    hard, hard_val = hard_features(train_data["x_hard"]), hard_features(val_data["x_hard"])
    torch.manual_seed(seed)
    net = SamplingNetwork(condition(train_data).shape[1], settings.network)
    net.fit_preprocessing(condition(train_data), hard)
    cfg = TrainingConfig.from_dict({**settings.training, "seed": seed})
    x, c = net.training_arrays(condition(train_data), hard, train_data["alpha"])
    xv, cv = net.training_arrays(condition(val_data), hard_val, val_data["alpha"])
    epoch_data = None
    if variant == "transfer":
        transfer_net, _ = TransferNetwork.load(transfer)
        hard_t = torch.as_tensor(hard, dtype=torch.float64)

        def epoch_data(epoch: int) -> TrainingData:
            # Eq 6.38: x̃_reco ~ p_θ(x_reco | x_hard), drawn anew every epoch (seeded by the epoch)
            torch.manual_seed(seed * 7919 + epoch)
            reco = transfer_net.sample(hard_t.to(next(transfer_net.parameters()).dtype),
                                       true_extra_jets(transfer_net, train_data)).to(torch.float64).numpy()
            if not transfer_net.flat:
                reco = flat_reco_features(transfer_net, reco)
            ok = np.isfinite(reco).all(1)
            reco = np.where(ok[:, None], reco, layout.reco_features(train_data["x_reco"]))
            return TrainingData(*net.training_arrays(condition(train_data, reco), hard, train_data["alpha"]))

    history = trainer.train(net.inn, TrainingData(x, c), cfg, checkpoint, val_data=TrainingData(xv, cv),
                            progress=progress, name=f"sampling ({variant})", epoch_data=epoch_data)
    net.save(out_model, extra={"seed": seed, "variant": variant})
    summary = {**history.as_dict(), "variant": variant, "n_train": len(x), "n_val": len(xv)}
    write_json(out_history, summary)
    return TrainResult(summary["n_train"], summary["best_epoch"], summary)


def transfer_plots_stage(settings: TransferPlotsSettings, *, model: str | Path,
                         test_paired: Mapping[str, Sequence[str | Path]], out_dir: str | Path,
                         out_metrics: str | Path) -> TransferPlotsResult:
    """Reco pT and η of every required object, forward-simulated from the test samples' hard events
    (``test_paired``: sample → paired shards) by the transfer network ``model``, against the simulated reco
    events, per α (Figs 6.5, 6.16); metrics JSON with the worst ratios and, per test sample, the
    forward-simulated mass outside the reco selection."""
    from lhcflow.plots.mem_transfer import RECO_QUANTITIES, SLOT_LABELS, plot_transfer_distribution

    seed, fmt = settings.seed, settings.fmt
    net, _ = TransferNetwork.load(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth, generated, metrics = {}, {}, {"outside_selection": {}, "events": {}}
    dtype = next(net.parameters()).dtype
    for sample, paths in test_paired.items():
        data = read_paired_events(paths, accepted_only=True)
        label = rf"$\alpha = {settings.alpha_deg[sample]:g}^\circ$"
        torch.manual_seed(seed)
        rows = net.sample(torch.as_tensor(hard_features(data["x_hard"]), dtype=dtype),
                          true_extra_jets(net, data)).to(torch.float64).numpy()
        truth[label] = net.reco_objects(reco_rows(net, data))
        generated[label] = net.reco_objects(rows)
        metrics["events"][sample] = len(data["alpha"])
        metrics["outside_selection"][sample] = outside_selection(
            generated[label], *selection_bounds(data, net.layout), net.layout.required)
    worst = {}
    for slot_index, slot in enumerate(net.layout.required):
        for q, name, symbol, unit, edges in RECO_QUANTITIES:
            xlabel = f"${symbol % SLOT_LABELS.get(slot, slot)}$" + (f" [{unit}]" if unit else "")
            worst[f"{name}_{slot}"] = plot_transfer_distribution(
                {k: v[:, slot_index, q] for k, v in truth.items()},
                {k: v[:, slot_index, q] for k, v in generated.items()}, edges, xlabel,
                out_dir / f"{name}_{slot}.{fmt}", f"{net.kind} transfer, test samples", generated_label=net.kind)
    metrics["worst_ratio"] = worst
    write_json(out_metrics, metrics)
    return TransferPlotsResult(worst, metrics["outside_selection"], metrics["events"], metrics)


# ----------------------------------------------------------------------------------------- MEM integration


def integrate_stage(settings: IntegrateSettings, *, paired: Sequence[str | Path], transfer: str | Path,
                    sampling: str | Path, fiducial: str | Path, acceptance: str | Path | None = None,
                    multiplicity: str | Path | None = None, out_h5: str | Path, out_stats: str | Path,
                    checkpoint_dir: str | Path, progress: bool = True) -> IntegrateResult:
    """Single-pass MEM integrals (Eq 6.35, or Eq 6.39 with the ``acceptance`` classifier) of every accepted
    event of the test sample's ``paired`` shards, resumable per event chunk from ``checkpoint_dir``."""
    seed, replicas = settings.seed, settings.replicas
    setup = load_mem_setup(paired, transfer, sampling, fiducial, settings.process, acceptance_path=acceptance,
                           multiplicity_path=multiplicity, replicas=replicas, max_events=settings.max_events,
                           device=settings.device, seed=seed)
    mem = replace(settings.integration.mem, seed=seed)
    chunk_size = settings.integration.chunk_size
    start = time.perf_counter()
    result = integrate_setup(setup, mem, chunk_size, checkpoint_dir,
                             {"process": dict(settings.process), "replicas": replicas}, progress)
    wall = time.perf_counter() - start
    result.attrs.update({"transfer": setup.transfer.kind, "acceptance": acceptance is not None,
                         "replicas": replicas})
    result.save(out_h5)
    stats = {"n_events": len(result), "wall_time_s": wall, "device": str(setup.device),
             "median_iterations": float(np.median(result.iterations)),
             "converged_fraction": float(np.mean(result.converged)),
             "median_rel_error": float(np.median(result.rel_error.max(1))),
             "samples_per_event": float(np.mean(result.n_samples)), "settings": mem.to_dict(),
             "chunk_size": chunk_size}
    write_json(out_stats, stats)
    return IntegrateResult(stats["n_events"], wall, stats["device"], stats["median_iterations"],
                           stats["converged_fraction"], stats)


def diagnostics_stage(settings: DiagnosticsSettings, *, paired: Sequence[str | Path], transfer: str | Path,
                      samplers: Mapping[str, str | Path], fiducial: str | Path,
                      acceptance: str | Path | None = None, multiplicity: str | Path | None = None,
                      out_json: str | Path, out_figure: str | Path,
                      checkpoint_dir: str | Path, progress: bool = True) -> DiagnosticsResult:
    """Fig 6.13: the same events integrated with the Sampling-cINN trained on true pairs or on the learned
    transfer (``samplers``: variant → model; Eq 6.36 vs 6.38), each without and with VEGAS latent refinement;
    iterations needed and the relative error after ten iterations (or the last)."""
    from lhcflow.plots.mem import plot_integration_diagnostics

    seed, process = settings.seed, settings.process
    results, summary = {}, {"n_events": None, "setups": {}}
    for variant, sampling_path in samplers.items():
        setup = load_mem_setup(paired, transfer, sampling_path, fiducial, process, acceptance_path=acceptance,
                               multiplicity_path=multiplicity, max_events=settings.n_events,
                               device=settings.device, seed=seed)
        for vegas in (False, True):
            label = f"sampler: {variant.replace('_', ' ')}" + (", VEGAS" if vegas else "")
            start = time.perf_counter()
            mem = replace(settings.integration.mem, vegas=vegas, seed=seed)
            result = integrate_setup(setup, mem, settings.integration.chunk_size,
                                     Path(checkpoint_dir) / f"{variant}_vegas{int(vegas)}",
                                     {"process": dict(process), "variant": variant, "vegas": vegas}, progress)
            wall = time.perf_counter() - start
            results[label] = result
            after = min(10, mem.max_iterations)
            history = result.rel_error_history[np.arange(len(result)), np.minimum(result.iterations, after) - 1]
            summary["n_events"] = len(result)
            summary["setups"][label] = {
                "sampling_variant": variant, "vegas": vegas, "median_iterations": float(np.median(result.iterations)),
                "reached_target": float(np.mean(result.converged)),
                f"median_rel_error_after_{after}": float(np.nanmedian(history)), "wall_time_s": wall}
    max_it = settings.integration.mem.max_iterations
    plot_integration_diagnostics(results, out_figure, max_iterations=max_it, after=min(10, max_it))
    write_json(out_json, summary)
    return DiagnosticsResult(summary["n_events"], summary["setups"])


# ----------------------------------------------------------------------------------------- likelihoods


def likelihood_stage(settings: LikelihoodSettings, *, integrals: Sequence[str | Path],
                     stats: Sequence[str | Path], test_paired: Mapping[str, Sequence[str | Path]],
                     fiducial: str | Path, cross_sections: str | Path | None = None, out_metrics: str | Path,
                     out_likelihood: str | Path, out_calibration: str | Path,
                     out_diagnostics: str | Path) -> LikelihoodResult:
    """−2Δlog L scans (small and large set), calibration and pulls per true α, against the hard-scattering
    truth likelihood on the same events (Figs 6.7, 6.8, 6.13, 6.14), from the ``integrals`` (and their
    ``stats``) of each test sample in ``test_paired`` (sample → paired shards); metrics JSON.

    With the ``cross_sections`` record of the hard process, also α̂ of the hard-level likelihood of every
    showered event of the sample, accepted or not, normalised by σ(α)·BR: a closure of dσ and σ(α) that
    needs neither the selection, nor σ_fid(α), nor any network."""
    import json
    import math

    from lhcflow.mem import likelihood as lk
    from lhcflow.mem.integration import MemResult
    from lhcflow.mem.thj_integrand import fiducial_sigma, hard_level_terms
    from lhcflow.plots.mem import (
        LikelihoodCurve,
        ScanColumn,
        plot_calibration,
        plot_integration_diagnostics,
        plot_likelihood_scans,
    )
    from lhcflow.thj.heavy import check_mem_inputs
    from lhcflow.thj.matrix_element import cp_factors

    label, seed, analysis, alpha_deg = settings.label, settings.seed, settings.analysis, settings.alpha_deg
    check_mem_inputs([p for paths in test_paired.values() for p in paths], fiducial)
    _, sigma_fid = fiducial_sigma(fiducial)
    alpha = lk.scan_grid()
    columns, hard_sets, reco_sets, truths, results = [], [], [], [], []
    metrics: dict[str, Any] = {"label": label, "samples": {}}
    small, large, per_set = int(analysis.small_set), int(analysis.large_set), int(analysis.events_per_set)
    for (sample, paths), h5, stats_path in zip(test_paired.items(), integrals, stats):
        result = MemResult.load(h5, cp_factors, sigma_fid)
        sample_stats = json.loads(Path(stats_path).read_text())
        data = read_test_events(paths, len(result))
        if len(data["alpha"]) != len(result):
            raise ValueError(f"{h5}: {len(result)} integrated events but {len(data['alpha'])} test events in {paths}")
        log_reco = result.log_likelihood(alpha)
        log_reco_rep = result.log_likelihood_replicas(alpha)
        log_hard = lk.hard_log_likelihood(hard_level_terms(data, float(data["attrs"]["branching_ratio"])), cp_factors,
                                          sigma_fid, alpha)
        good = np.isfinite(log_reco).all(1) & np.isfinite(log_hard).all(1)
        log_reco, log_reco_rep, log_hard = log_reco[good], log_reco_rep[good], log_hard[good]
        n = int(good.sum())
        a_true = math.radians(alpha_deg[sample])
        truths.append(a_true)
        results.append(result)

        def curves(m: int) -> list[LikelihoodCurve]:
            return [LikelihoodCurve("hard scattering", lk.neg2_log_likelihood(log_hard[:m]), color="k", linestyle="--"),
                    LikelihoodCurve(f"MEM ({label})", lk.neg2_log_likelihood(log_reco[:m]),
                                    lk.likelihood_band(log_reco_rep[:m]), color="C1")]

        pull_sets = lk.split_event_sets(n, min(per_set, n), int(analysis.pull_sets), seed)
        cal_sets = lk.split_event_sets(n, min(per_set, n), int(analysis.calibration_sets), seed + 1)
        set_estimates = {"hard scattering": lk.set_estimates(log_hard, alpha, pull_sets),
                         f"MEM ({label})": lk.set_estimates(log_reco, alpha, pull_sets)}
        pulls = {k: lk.pulls(v, a_true) for k, v in set_estimates.items()}
        mirror = {k: lk.at_mirror(v, a_true) for k, v in set_estimates.items()}
        hard_sets.append(lk.set_estimates(log_hard, alpha, cal_sets))
        reco_sets.append(lk.set_estimates(log_reco, alpha, cal_sets))
        columns.append(ScanColumn(a_true, curves(min(small, n)), curves(min(large, n)), pulls, mirror))
        all_reco = lk.estimate_alpha(alpha, lk.neg2_log_likelihood(log_reco))
        all_hard = lk.estimate_alpha(alpha, lk.neg2_log_likelihood(log_hard))
        m_small = min(small, n)
        small_reco = lk.estimate_alpha(alpha, lk.neg2_log_likelihood(log_reco[:m_small]))
        small_hard = lk.estimate_alpha(alpha, lk.neg2_log_likelihood(log_hard[:m_small]))
        no_selection = None if cross_sections is None else lk.hard_without_selection(
            paths, cross_sections, float(data["attrs"]["branching_ratio"]), alpha, a_true)
        metrics["samples"][sample] = {
            "alpha_true_deg": alpha_deg[sample], "n_events": n, "n_dropped_nonfinite": int((~good).sum()),
            "events_per_set": min(per_set, n), "pull_sets_disjoint": pull_sets.disjoint,
            "pulls": {k: lk.pull_summary(v) for k, v in pulls.items()},
            "set_pulls": {"hard scattering": pulls["hard scattering"].tolist(), "MEM": pulls[f"MEM ({label})"].tolist()},
            # per pull set: α̂ and its mean σ [deg], whether α̂ sits at the CP mirror −α_true (lk.at_mirror)
            "set_alpha_hat_deg": {k.split(" (")[0]: [float(np.degrees(e.alpha_hat)) for e in v]
                                  for k, v in set_estimates.items()},
            "set_sigma_deg": {k.split(" (")[0]: [float(np.degrees(0.5 * (e.sigma_minus + e.sigma_plus))) for e in v]
                              for k, v in set_estimates.items()},
            "set_at_mirror": {k.split(" (")[0]: v.tolist() for k, v in mirror.items()},
            "pulls_true_mode": {k: lk.pull_summary(pulls[k][~mirror[k]]) for k in pulls},
            "small_set": {"n_events": m_small, "reco": lk.estimate_deg(small_reco, a_true),
                          "hard": lk.estimate_deg(small_hard, a_true)},
            "all_events": {"reco": lk.estimate_deg(all_reco, a_true),
                           "hard": lk.estimate_deg(all_hard, a_true)},
            "hard_no_selection": no_selection,
            "median_iterations": float(np.median(result.iterations)),
            "converged_fraction": float(np.mean(result.converged)),
            "median_rel_error": float(np.median(np.nanmax(result.rel_error, 1))),
            "events_per_second": sample_stats["n_events"] / max(sample_stats["wall_time_s"], 1e-9),
            "device": sample_stats["device"]}
    plot_likelihood_scans(alpha, columns, out_likelihood, small_title=f"first {small} events (or all)",
                          large_title=f"first {large} events (or all)")
    plot_calibration(truths, hard_sets, reco_sets, out_calibration, reco_label=f"MEM ({label})")
    max_it = max(int(r.rel_error_history.shape[1]) for r in results)
    plot_integration_diagnostics({f"MEM ({label})": MemResult.concatenate(results)}, out_diagnostics,
                                 max_iterations=max_it, after=min(10, max_it))
    write_json(out_metrics, metrics)
    return LikelihoodResult(label, metrics["samples"], metrics)


def closure_stage(settings: ClosureSettings, *, out_dir: str | Path) -> ClosureResult:
    """The analytic closure of the MEM machinery (known smearing, exact reco likelihood, pulls):
    ``closure.json`` and its two figures in ``out_dir``."""
    from lhcflow.mem.closure import run_closure

    return ClosureResult(run_closure(dict(settings.closure), out_dir, settings.seed))
