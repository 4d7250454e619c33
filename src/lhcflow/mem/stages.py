"""Workflow stages of the ML-MEM chain (thesis §6.2-6.5), each a function of config + paths run by a thin script.

Networks train on the ``train`` split of a dataset's α-uniform paired sample (accepted events only for
the transfer and sampling networks, all events for the acceptance), validate on ``val``; the MEM is
evaluated on the accepted events of the fixed-α test samples, which no network has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.mem.data import read_paired_events, split_mask
from lhcflow.mem.features import RecoLayout, hard_features
from lhcflow.mem.sampling import SAMPLING_VARIANTS, SamplingNetwork
from lhcflow.mem.transfer import TransferNetwork, outside_selection, sampled_outside_selection
from lhcflow.physics.kinematics import to_four_momenta
from lhcflow.training.trainer import TrainingConfig, TrainingData, train

log = logging.getLogger("lhcflow")


def layout_of(data: Mapping[str, Any]) -> RecoLayout:
    return RecoLayout.from_slots(data["attrs"]["x_reco_slots"], data["attrs"]["decay"])


def selection_bounds(data: Mapping[str, Any], layout: RecoLayout) -> tuple[list[float], list[float]]:
    """(pT_min, |η|_max) per slot from the selection the paired file was made with (Table 6.1)."""
    return layout.selection_bounds(data["attrs"].get("selection"))


def _subset(data: Mapping[str, Any], mask: np.ndarray) -> dict[str, Any]:
    return {k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in data.items()}


def _split_data(paired: Sequence[str | Path]) -> tuple[dict, dict]:
    data = read_paired_events(paired, accepted_only=True)
    train_data, val_data = _subset(data, split_mask(data, "train")), _subset(data, split_mask(data, "val"))
    if len(train_data["alpha"]) < 10:
        raise ValueError(f"{list(map(str, paired))}: only {len(train_data['alpha'])} accepted training events; "
                         "generate a larger tHj training sample (thj.samples)")
    return train_data, val_data


def _rows(net: TransferNetwork, data: Mapping[str, Any]) -> np.ndarray:
    return net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"])


def build_transfer(spec: Mapping[str, Any], data: Mapping[str, Any], masses: tuple[float, float]) -> TransferNetwork:
    layout = layout_of(data)
    network = dict(spec.get("network", {}))
    if spec.get("variable_jets"):  # as many extra jets as the multiplicity classifier has classes (Eq 6.45)
        network["n_extra_max"] = int(spec.get("n_extra_max", 2))
    return TransferNetwork(spec["kind"], layout, masses, network, *selection_bounds(data, layout),
                           bool(spec.get("variable_jets", False)))


def train_transfer_stage(paired: Sequence[str | Path], spec: Mapping[str, Any], masses: tuple[float, float],
                         seed: int, out_model: str | Path, out_history: str | Path, checkpoint: str | Path,
                         progress: bool = True) -> dict:
    """Train p_θ(x_reco|x_hard) (Eq 6.21) of kind ``spec['kind']`` on accepted training pairs; the summary
    holds the mass of forward-simulated validation events outside the selection (``outside_selection``)."""
    train_data, val_data = _split_data(paired)
    torch.manual_seed(seed)
    net = build_transfer(spec, train_data, masses)
    rows, hard = _rows(net, train_data), hard_features(train_data["x_hard"])
    net.fit_preprocessing(rows, hard)
    cfg = TrainingConfig.from_dict({**spec.get("training", {}), "seed": seed})
    x, c = net.training_arrays(rows, hard)
    xv, cv = net.training_arrays(_rows(net, val_data), hard_features(val_data["x_hard"]))
    history = train(net.training_view(), TrainingData(x, c), cfg, checkpoint, val_data=TrainingData(xv, cv),
                    progress=progress, name=f"transfer {spec['kind']}")
    net.save(out_model, extra={"seed": seed})
    net.eval()
    leak = None if not len(val_data["alpha"]) else sampled_outside_selection(
        net, hard_features(val_data["x_hard"]), *selection_bounds(val_data, net.layout), seed,
        true_extra_jets(net, val_data))
    summary = {**history.as_dict(), "kind": spec["kind"], "n_train": len(x), "n_val": len(xv),
               "parameters": sum(p.numel() for p in net.parameters()), "outside_selection": leak}
    write_json(out_history, summary)
    return summary


def train_sampling_stage(paired: Sequence[str | Path], spec: Mapping[str, Any], seed: int, out_model: str | Path,
                         out_history: str | Path, checkpoint: str | Path, transfer_path: str | Path | None = None,
                         progress: bool = True) -> dict:
    """Train q_φ(x_hard | x_reco, α) on true pairs (Eq 6.36) or on x̃_reco from the transfer network (Eq 6.38)."""
    variant = spec.get("variant", "transfer")
    if variant not in SAMPLING_VARIANTS:
        raise ValueError(f"sampling variant must be one of {SAMPLING_VARIANTS}, got {variant!r}")
    if variant == "transfer" and transfer_path is None:
        raise ValueError("sampling variant 'transfer' needs a trained transfer network")
    train_data, val_data = _split_data(paired)
    layout = layout_of(train_data)

    def condition(data: Mapping[str, Any], reco_features: np.ndarray | None = None) -> np.ndarray:
        reco = layout.reco_features(data["x_reco"]) if reco_features is None else reco_features
        return np.concatenate([reco, layout.extra_jets(data["x_reco"], data["x_reco_present"])], 1)

    hard, hard_val = hard_features(train_data["x_hard"]), hard_features(val_data["x_hard"])
    torch.manual_seed(seed)
    net = SamplingNetwork(condition(train_data).shape[1], spec.get("network", {}))
    net.fit_preprocessing(condition(train_data), hard)
    cfg = TrainingConfig.from_dict({**spec.get("training", {}), "seed": seed})
    x, c = net.training_arrays(condition(train_data), hard, train_data["alpha"])
    xv, cv = net.training_arrays(condition(val_data), hard_val, val_data["alpha"])
    epoch_data = None
    if variant == "transfer":
        transfer, _ = TransferNetwork.load(transfer_path)
        hard_t = torch.as_tensor(hard, dtype=torch.float64)

        def epoch_data(epoch: int) -> TrainingData:
            # Eq 6.38: x̃_reco ~ p_θ(x_reco | x_hard), drawn anew every epoch (seeded by the epoch)
            torch.manual_seed(seed * 7919 + epoch)
            reco = transfer.sample(hard_t.to(next(transfer.parameters()).dtype),
                                   true_extra_jets(transfer, train_data)).to(torch.float64).numpy()
            if not transfer.flat:
                reco = flat_reco_features(transfer, reco)
            ok = np.isfinite(reco).all(1)
            reco = np.where(ok[:, None], reco, layout.reco_features(train_data["x_reco"]))
            return TrainingData(*net.training_arrays(condition(train_data, reco), hard, train_data["alpha"]))

    history = train(net.inn, TrainingData(x, c), cfg, checkpoint, val_data=TrainingData(xv, cv), progress=progress,
                    name=f"sampling ({variant})", epoch_data=epoch_data)
    net.save(out_model, extra={"seed": seed, "variant": variant})
    summary = {**history.as_dict(), "variant": variant, "n_train": len(x), "n_val": len(xv)}
    write_json(out_history, summary)
    return summary


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


def transfer_plots_stage(model_path: str | Path, test_paired: Mapping[str, Sequence[str | Path]],
                         alpha_deg: Mapping[str, float], out_dir: str | Path, out_metrics: str | Path, seed: int,
                         fmt: str = "png") -> dict:
    """Reco pT and η of every required object, forward-simulated from the test samples' hard events by the
    transfer network, against the simulated reco events, per α (Figs 6.5, 6.16); metrics JSON with the worst
    ratios and, per test sample, the forward-simulated mass outside the reco selection."""
    from lhcflow.plots.mem_transfer import RECO_QUANTITIES, SLOT_LABELS, plot_transfer_distribution

    net, _ = TransferNetwork.load(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth, generated, metrics = {}, {}, {"outside_selection": {}, "events": {}}
    dtype = next(net.parameters()).dtype
    for sample, paths in test_paired.items():
        data = read_paired_events(paths, accepted_only=True)
        label = rf"$\alpha = {alpha_deg[sample]:g}^\circ$"
        torch.manual_seed(seed)
        rows = net.sample(torch.as_tensor(hard_features(data["x_hard"]), dtype=dtype),
                          true_extra_jets(net, data)).to(torch.float64).numpy()
        truth[label] = net.reco_objects(_rows(net, data))
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
    return metrics


# ----------------------------------------------------------------------------------------- MEM integration


def test_events(paths: Sequence[str | Path], max_events: int | None = None) -> dict[str, Any]:
    """The accepted events of a fixed-α test sample the MEM measures (the first ``max_events``)."""
    data = read_paired_events(paths, accepted_only=True)
    if max_events is not None:
        data = _subset(data, np.arange(len(data["alpha"])) < max_events)
    if len(data["alpha"]) == 0:
        raise ValueError(f"{list(map(str, paths))}: no accepted test events")
    return data


def sampling_context(layout: RecoLayout, data: Mapping[str, Any]) -> np.ndarray:
    """Reco condition of the Sampling-cINN: §6.3 features and the extra jets (before standardisation)."""
    return np.concatenate([layout.reco_features(data["x_reco"]), layout.extra_jets(data["x_reco"], data["x_reco_present"])], 1)


def _digest(paths: Sequence[str | Path], *arrays: np.ndarray, settings: Any = None) -> str:
    import hashlib
    import json

    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).read_bytes())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass
class MemSetup:
    """Everything one MEM integration of a test sample needs, loaded from the trained stages."""

    data: dict[str, Any]
    transfer: TransferNetwork
    sampler: SamplingNetwork
    integrand: Any
    reco: torch.Tensor
    context: torch.Tensor
    device: torch.device
    models: list[str | Path]


def load_mem_setup(test_paired: Sequence[str | Path], transfer_path: str | Path, sampling_path: str | Path,
                   fiducial_json: str | Path, process: Mapping[str, Any], *, acceptance_path: str | Path | None = None,
                   multiplicity_path: str | Path | None = None, replicas: int = 0, max_events: int | None = None,
                   device: str = "cpu", seed: int = 0) -> MemSetup:
    """Test events, networks and the Eq 6.35 / 6.39 integrand (three-network with an acceptance path)."""
    from lhcflow.mem.acceptance import LearnedAcceptance, LearnedMultiplicity
    from lhcflow.mem.thj_integrand import build_integrand
    from lhcflow.thj.heavy import check_mem_inputs
    from lhcflow.thj.cross_section import cross_section_from_config

    check_mem_inputs(test_paired, fiducial_json, process)  # one thj.process.heavy for data, σ_fid and density
    dev = torch.device("cuda" if device == "cuda" and torch.cuda.is_available() else "cpu")
    data = test_events(test_paired, max_events)
    transfer, _ = TransferNetwork.load(transfer_path)
    sampler, _ = SamplingNetwork.load(sampling_path)
    transfer.to(dev), sampler.to(dev)
    xs = cross_section_from_config(process, str(dev))
    masses = (xs.params.mt, xs.params.mh)
    if replicas:
        transfer.draw_replicas(replicas, seed)
    if transfer.variable_jets:
        if multiplicity_path is None:
            raise ValueError("a variable-jet transfer needs the multiplicity classifier")
        transfer.multiplicity = LearnedMultiplicity(multiplicity_path, masses)
    acceptance = LearnedAcceptance(acceptance_path, masses) if acceptance_path else None
    integrand = build_integrand(xs, transfer, fiducial_json, float(data["attrs"]["branching_ratio"]), acceptance)
    reco = torch.as_tensor(_rows(transfer, data), dtype=torch.float64)
    context = sampler.context(sampling_context(transfer.layout, data))
    models = [transfer_path, sampling_path, fiducial_json] + [p for p in (acceptance_path, multiplicity_path) if p]
    return MemSetup(data, transfer, sampler, integrand, reco, context, dev, models)


def _integrate(setup: MemSetup, integration: Mapping[str, Any], seed: int, checkpoint_dir: str | Path,
               fingerprint_extra: Mapping[str, Any], progress: bool):
    from lhcflow.mem.integration import MemSettings, integrate_in_chunks

    cfg = dict(integration)
    chunk_size = int(cfg.pop("chunk_size", 256))
    settings = MemSettings.from_dict({**cfg, "seed": seed})
    fingerprint = _digest(setup.models, setup.data["x_reco"], settings=dict(fingerprint_extra))
    result = integrate_in_chunks(setup.integrand, setup.sampler, setup.reco, setup.context, settings,
                                 chunk_size=chunk_size, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint,
                                 progress=progress, device=setup.device)
    # the fingerprint hashes the model files' bytes (resume bookkeeping of the checkpoints only)
    result.attrs.pop("fingerprint", None)
    return result, settings, chunk_size


def integrate_stage(test_paired: Sequence[str | Path], transfer_path: str | Path, sampling_path: str | Path,
                    fiducial_json: str | Path, process: Mapping[str, Any], integration: Mapping[str, Any],
                    seed: int, out_h5: str | Path, out_stats: str | Path, checkpoint_dir: str | Path, *,
                    acceptance_path: str | Path | None = None, multiplicity_path: str | Path | None = None,
                    replicas: int = 0, max_events: int | None = None, device: str = "cpu",
                    progress: bool = True) -> dict:
    """Single-pass MEM integrals (Eq 6.35 / 6.39) of every accepted test event, resumable per event chunk."""
    import time

    setup = load_mem_setup(test_paired, transfer_path, sampling_path, fiducial_json, process,
                           acceptance_path=acceptance_path, multiplicity_path=multiplicity_path, replicas=replicas,
                           max_events=max_events, device=device, seed=seed)
    start = time.perf_counter()
    result, settings, chunk_size = _integrate(setup, integration, seed, checkpoint_dir,
                                              {"process": dict(process), "replicas": replicas}, progress)
    wall = time.perf_counter() - start
    result.attrs.update({"transfer": setup.transfer.kind, "acceptance": acceptance_path is not None,
                         "replicas": replicas})
    result.save(out_h5)
    stats = {"n_events": len(result), "wall_time_s": wall, "device": str(setup.device),
             "median_iterations": float(np.median(result.iterations)),
             "converged_fraction": float(np.mean(result.converged)),
             "median_rel_error": float(np.median(result.rel_error.max(1))),
             "samples_per_event": float(np.mean(result.n_samples)), "settings": settings.to_dict(),
             "chunk_size": chunk_size}
    write_json(out_stats, stats)
    return stats


def diagnostics_stage(test_paired: Sequence[str | Path], transfer_path: str | Path,
                      samplers: Mapping[str, str | Path], fiducial_json: str | Path, process: Mapping[str, Any],
                      integration: Mapping[str, Any], n_events: int, seed: int, out_json: str | Path,
                      out_figure: str | Path, checkpoint_dir: str | Path, *, acceptance_path: str | Path | None = None,
                      multiplicity_path: str | Path | None = None, device: str = "cpu", progress: bool = True) -> dict:
    """Fig 6.13: the same events integrated with the Sampling-cINN trained on true pairs or on the learned
    transfer (Eq 6.36 vs 6.38), each without and with VEGAS latent refinement; iterations needed and the
    relative error after ten iterations (or the last)."""
    import time

    from lhcflow.plots.mem import plot_integration_diagnostics

    results, summary = {}, {"n_events": None, "setups": {}}
    for variant, sampling_path in samplers.items():
        setup = load_mem_setup(test_paired, transfer_path, sampling_path, fiducial_json, process,
                               acceptance_path=acceptance_path, multiplicity_path=multiplicity_path,
                               max_events=n_events, device=device, seed=seed)
        for vegas in (False, True):
            label = f"sampler: {variant.replace('_', ' ')}" + (", VEGAS" if vegas else "")
            start = time.perf_counter()
            result, settings, _ = _integrate(setup, {**integration, "vegas": vegas}, seed,
                                             Path(checkpoint_dir) / f"{variant}_vegas{int(vegas)}",
                                             {"process": dict(process), "variant": variant, "vegas": vegas}, progress)
            wall = time.perf_counter() - start
            results[label] = result
            after = min(10, settings.max_iterations)
            history = result.rel_error_history[np.arange(len(result)), np.minimum(result.iterations, after) - 1]
            summary["n_events"] = len(result)
            summary["setups"][label] = {
                "sampling_variant": variant, "vegas": vegas, "median_iterations": float(np.median(result.iterations)),
                "reached_target": float(np.mean(result.converged)),
                f"median_rel_error_after_{after}": float(np.nanmedian(history)), "wall_time_s": wall}
    max_it = int(integration.get("max_iterations", 15))
    plot_integration_diagnostics(results, out_figure, max_iterations=max_it, after=min(10, max_it))
    write_json(out_json, summary)
    return summary


# ----------------------------------------------------------------------------------------- likelihoods


def likelihood_stage(integrals: Sequence[str | Path], stats_paths: Sequence[str | Path],
                     test_paired: Mapping[str, Sequence[str | Path]], alpha_deg: Mapping[str, float],
                     fiducial_json: str | Path, analysis: Mapping[str, Any], label: str, seed: int,
                     out_metrics: str | Path, out_likelihood: str | Path, out_calibration: str | Path,
                     out_diagnostics: str | Path, *, cross_sections_json: str | Path | None = None) -> dict:
    """−2Δlog L scans (small and large set), calibration and pulls per true α, against the hard-scattering
    truth likelihood on the same events (Figs 6.7, 6.8, 6.13, 6.14); metrics JSON.

    With the ``cross_sections_json`` record of the hard process, also α̂ of the hard-level likelihood of every
    showered event of the sample, accepted or not, normalised by σ(α)·BR: a closure of dσ and σ(α) that
    needs neither the selection, nor σ_fid(α), nor any network."""
    import json
    import math

    from lhcflow.mem import likelihood as lk
    from lhcflow.mem.integration import MemResult
    from lhcflow.mem.thj_integrand import fiducial_sigma, hard_level_terms
    from lhcflow.plots.mem import LikelihoodCurve, ScanColumn, plot_calibration, plot_integration_diagnostics, \
        plot_likelihood_scans
    from lhcflow.thj.heavy import check_mem_inputs
    from lhcflow.thj.matrix_element import cp_factors

    check_mem_inputs([p for paths in test_paired.values() for p in paths], fiducial_json)
    _, sigma_fid = fiducial_sigma(fiducial_json)
    alpha = lk.scan_grid()
    columns, hard_sets, reco_sets, truths, results = [], [], [], [], []
    metrics: dict[str, Any] = {"label": label, "samples": {}}
    small, large, per_set = int(analysis["small_set"]), int(analysis["large_set"]), int(analysis["events_per_set"])
    for (sample, paths), h5, stats_path in zip(test_paired.items(), integrals, stats_paths):
        result = MemResult.load(h5, cp_factors, sigma_fid)
        stats = json.loads(Path(stats_path).read_text())
        data = test_events(paths, len(result))
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

        pull_sets = lk.split_event_sets(n, min(per_set, n), int(analysis["pull_sets"]), seed)
        cal_sets = lk.split_event_sets(n, min(per_set, n), int(analysis["calibration_sets"]), seed + 1)
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
        no_selection = None if cross_sections_json is None else _hard_without_selection(
            paths, cross_sections_json, float(data["attrs"]["branching_ratio"]), alpha, a_true)
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
            "small_set": {"n_events": m_small, "reco": _estimate_deg(small_reco, a_true),
                          "hard": _estimate_deg(small_hard, a_true)},
            "all_events": {"reco": _estimate_deg(all_reco, a_true), "hard": _estimate_deg(all_hard, a_true)},
            "hard_no_selection": no_selection,
            "median_iterations": float(np.median(result.iterations)),
            "converged_fraction": float(np.mean(result.converged)),
            "median_rel_error": float(np.median(np.nanmax(result.rel_error, 1))),
            "events_per_second": stats["n_events"] / max(stats["wall_time_s"], 1e-9), "device": stats["device"]}
    plot_likelihood_scans(alpha, columns, out_likelihood, small_title=f"first {small} events (or all)",
                          large_title=f"first {large} events (or all)")
    plot_calibration(truths, hard_sets, reco_sets, out_calibration, reco_label=f"MEM ({label})")
    max_it = max(int(r.rel_error_history.shape[1]) for r in results)
    plot_integration_diagnostics({f"MEM ({label})": MemResult.concatenate(results)}, out_diagnostics,
                                 max_iterations=max_it, after=min(10, max_it))
    write_json(out_metrics, metrics)
    return metrics


def _hard_without_selection(paths: Sequence[str | Path], cross_sections_json: str | Path, branching_ratio: float,
                            alpha: np.ndarray, alpha_true: float) -> dict[str, Any]:
    """α̂ of p(x_hard|α) = dσ(x_hard|α)/σ(α) over all showered events of a fixed-α sample (Eq 6.33 for both)."""
    import json

    from lhcflow.mem import likelihood as lk
    from lhcflow.mem.thj_integrand import hard_level_terms
    from lhcflow.thj.matrix_element import cp_factors

    record = json.loads(Path(cross_sections_json).read_text())
    sigma_i = torch.as_tensor(record["sigma_i_pb"], dtype=torch.float64) * branching_ratio
    data = read_paired_events(paths)

    def sigma_total(a: torch.Tensor) -> torch.Tensor:
        return cp_factors(a) @ sigma_i

    log_p = lk.hard_log_likelihood(hard_level_terms(data, branching_ratio), cp_factors, sigma_total, alpha)
    good = np.isfinite(log_p).all(1)
    estimate = lk.estimate_alpha(alpha, lk.neg2_log_likelihood(log_p[good]))
    return {"n_events": int(good.sum()), **_estimate_deg(estimate, alpha_true)}


def _estimate_deg(estimate, alpha_true: float) -> dict[str, float]:
    from lhcflow.mem.likelihood import bias

    return {"alpha_hat_deg": float(np.degrees(estimate.alpha_hat)), "sigma_minus_deg": float(np.degrees(estimate.sigma_minus)),
            "sigma_plus_deg": float(np.degrees(estimate.sigma_plus)), "bias_deg": float(np.degrees(bias(estimate, alpha_true))),
            "at_edge": bool(estimate.at_edge)}
