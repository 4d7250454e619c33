"""The Z+jets generator chain as workflow stages: preprocess, train, sample, evaluate.

Each function reads and writes files only, so it runs the same inside a Snakemake job, a
SLURM job or an interactive session.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.data.events import count_events, read_events, read_info
from lhcflow.models import build_generator
from lhcflow.physics.observables import pair_mass
from lhcflow.training.trainer import TrainingConfig, pick_device, train
from lhcflow.zjets import magic
from lhcflow.zjets.chain import (
    GeneratorChain,
    chain_data,
    fraction_errors,
    multiplicity_fractions,
    network_dims,
    save_network,
)
from lhcflow.zjets.preprocessing import ZJetsPreprocessing, by_multiplicity

log = logging.getLogger("lhcflow")


def fit_preprocessing(train_path: str | Path, out_path: str | Path, magic_cfg: Mapping | None = None) -> dict:
    """Fit the standardisation (Eq. 4.6), the multiplicity fractions and, when
    ``magic_cfg['enabled']``, the training means ``⟨f⟩_n`` that normalise the generated
    weights (:func:`~lhcflow.zjets.magic.generated_weights`) on the training split. Without
    ``magic_cfg`` no ``⟨f⟩_n`` is stored and a chain with the magic transformation refuses it."""
    batch = read_events(train_path)
    pre = ZJetsPreprocessing().fit(batch)
    state = {"preprocessing": pre.state_dict(), "fractions": multiplicity_fractions(batch),
             "train_file": str(train_path), "n_train": len(batch)}
    if magic_cfg is not None:
        state["magic"] = {"enabled": bool(magic_cfg.get("enabled"))}
        if magic_cfg.get("enabled"):
            state["magic"].update(r_minus=magic_cfg["r_minus"], r_plus=magic_cfg["r_plus"],
                                  mean_f=magic.mean_training_weight(batch, magic_cfg["r_minus"],
                                                                    magic_cfg["r_plus"]))
    write_json(out_path, state)
    return state


def _load_preprocessing(path: str | Path) -> tuple[ZJetsPreprocessing, dict]:
    state = json.loads(Path(path).read_text())
    return ZJetsPreprocessing.from_state(state["preprocessing"]), {int(k): v for k, v in state["fractions"].items()}


def load_mean_f(path: str | Path, magic_cfg: Mapping) -> dict[int, float] | None:
    """``⟨f⟩_n`` stored by :func:`fit_preprocessing` in ``path`` for the radii of ``magic_cfg``
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


def train_network(model: Mapping, net: int, train_path: str | Path, val_path: str | Path, pre_path: str | Path,
                  magic_cfg: Mapping, out_model: str | Path, out_history: str | Path, checkpoint: str | Path,
                  seed: int, progress: bool = True, train_fraction: float = 1.0) -> dict:
    """Train network ``net`` of the chain (``model``: ``kind``, ``network``, ``training`` config),
    on a seeded random ``train_fraction`` of the training events (the size scan of Fig. 4.7)."""
    pre, _ = _load_preprocessing(pre_path)
    events = read_events(train_path)
    if train_fraction < 1.0:
        events = events.select(np.random.default_rng([seed, 7]).random(len(events)) < train_fraction)
    train_data = chain_data(events, pre, magic_cfg).for_network(net)
    val_data = chain_data(read_events(val_path), pre, magic_cfg).for_network(net) if count_events(val_path) else None
    torch.manual_seed(seed)
    generator = build_generator(model["kind"], *network_dims(net), **model.get("network", {}))
    cfg = TrainingConfig.from_dict({**model.get("training", {}), "seed": seed})
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    history = train(generator, train_data, cfg, checkpoint, val_data=val_data, progress=progress,
                    name=f"{model['kind']} net{net}")
    save_network(generator, out_model)
    summary = {**history.as_dict(), "net": net, "kind": model["kind"], "n_train": len(train_data),
               "n_parameters": sum(p.numel() for p in generator.parameters()),
               "train_events_per_s": len(train_data) * len(history.epoch) / max(sum(history.seconds), 1e-9)}
    write_json(out_history, summary)
    return summary


def sample_chain(model: Mapping, pre_path: str | Path, net_paths: Sequence[str | Path], magic_cfg: Mapping,
                 n_events: int, seed: int, out_path: str | Path, batch_size: int = 50_000,
                 unweight: bool = False) -> dict:
    """Generate ``n_events`` with the trained chain into a canonical file (weights ``⟨f⟩_n f̄`` of
    Eq. 4.9 normalised per multiplicity to the training fractions; the closure ``⟨⟨f⟩_n f̄⟩`` before
    that normalisation, 1 for a generator that learned p_f, goes into the summary and the file's
    provenance); ``unweight`` turns them into unit weights by rejection with one ``w_max``. Streams:
    memory is bounded by ``batch_size`` (:meth:`GeneratorChain.sample_to_file`)."""
    chain = load_chain(model, pre_path, net_paths, magic_cfg)
    torch.manual_seed(seed)
    info = chain.sample_info(seed, [str(p) for p in net_paths])
    unweight = unweight and bool(magic_cfg.get("enabled"))
    start = time.perf_counter()
    result = chain.sample_to_file(out_path, n_events, np.random.default_rng(seed), info, batch_size=batch_size,
                                  device=pick_device(),
                                  unweight_rng=np.random.default_rng([seed, 1]) if unweight else None)
    seconds = time.perf_counter() - start
    summary = {"n_events": result.n_written, "seconds": seconds, "events_per_s": result.n_generated / seconds,
               "zero_weight_fraction": result.zero_weight_fraction,
               "mean_weight": result.mean_weight}
    if result.closure is not None:
        summary["magic_closure"] = {n: c.to_dict() for n, c in result.closure.items()}
    if unweight:
        summary.update(unweighted=True, unweighting_efficiency=result.n_written / result.n_generated,
                       w_max=result.w_max)
    return summary


def load_chain(model: Mapping, pre_path: str | Path, net_paths: Sequence[str | Path],
               magic_cfg: Mapping) -> GeneratorChain:
    """The trained chain of ``model`` from its preprocessing file and network weights."""
    pre, fractions = _load_preprocessing(pre_path)
    chain = GeneratorChain(model["kind"], model.get("network", {}), pre, fractions, magic_cfg,
                           load_mean_f(pre_path, magic_cfg))
    for net, path in zip(sorted(chain.networks), net_paths):
        chain.networks[net].load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return chain


def bayesian_bands(model: Mapping, pre_path: str | Path, net_paths: Sequence[str | Path], magic_cfg: Mapping,
                   n_replicas: int, n_events: int, seed: int, train_path: str | Path, truth_path: str | Path,
                   out_dir: str | Path, out_json: str | Path, fmt: str = "png") -> dict:
    """Fig. 4.5 (distributions with BINN bands) and Fig. 4.6 (uncertainty scaling) analogues and
    the per-bin decomposition σ²_tot = σ²_stoch + σ²_pred (Eq. 4.13-4.15) as JSON."""
    from lhcflow.physics.metrics import zjets_benchmark_observables
    from lhcflow.plots.generator import plot_benchmark, replica_band
    from lhcflow.zjets.bands import decompose, plot_uncertainty_scaling, replica_histograms

    chain = load_chain(model, pre_path, net_paths, magic_cfg)
    observables = zjets_benchmark_observables()
    replicas = replica_histograms(chain, observables, n_replicas, n_events, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bands = {name: replica_band(hists) for name, hists in replicas.items()}
    central = chain.sample(n_events, np.random.default_rng(seed), bayesian="map")
    plot_benchmark(read_events(train_path), central, read_events(truth_path), out_dir, observables, fmt, bands)
    result = {}
    for obs in observables:
        parts = decompose(replicas[obs.name])
        plot_uncertainty_scaling(parts, obs, out_dir / f"scaling_{obs.name}.{fmt}")
        result[obs.name] = {"edges": replicas[obs.name][0].axes[0].edges.tolist(),
                            **{k: v.tolist() for k, v in parts.items()}}
    write_json(out_json, {"n_replicas": n_replicas, "n_events": n_events, "observables": result})
    return result


def evaluate_generator(train_path: str | Path, generated_path: str | Path, truth_path: str | Path,
                       histories: Sequence[str | Path], out_dir: str | Path, metrics_path: str | Path,
                       fmt: str = "png") -> dict:
    """Fig. 4.4 and Fig. 4.2 analogues, loss curves and the bulk-deviation table."""
    from lhcflow.physics.metrics import deviation_table
    from lhcflow.plots.generator import plot_benchmark, plot_delta_eta_phi
    from lhcflow.plots.training import plot_loss_curves
    provenance = read_info(generated_path).provenance
    magic.require_normalised_weights(generated_path, provenance)
    train, generated, truth = (read_events(p) for p in (train_path, generated_path, truth_path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_benchmark(train, generated, truth, out_dir, fmt=fmt)
    plot_delta_eta_phi(truth, generated, out_dir / f"delta_eta_phi_2j.{fmt}")
    history_data = [json.loads(Path(h).read_text()) for h in histories]
    plot_loss_curves(history_data, out_dir / f"loss.{fmt}")
    table = deviation_table(train, generated, truth)
    metrics = {"bulk_deviation": table, "multiplicity_weights": multiplicity_weights(generated, truth, train),
               "magic_closure": provenance.get("magic_closure"),
               "checks": default_checks(generated, truth, history_data, train),
               "generator": provenance, "n_generated": len(generated),
               "n_truth": len(truth), "n_train": len(train)}
    write_json(metrics_path, metrics)
    return metrics


def mll_peak(batch, lo: float = 70.0, hi: float = 110.0, width: float = 0.5, smooth: int = 5) -> float:
    """Mode of the weighted M_μμ distribution in [lo, hi] GeV: the maximum of a ``width`` GeV
    histogram smoothed by a ``smooth``-bin moving average (so one noisy bin cannot decide)."""
    mass, mask = pair_mass(batch, 0, 1)
    counts, edges = np.histogram(mass[mask], bins=np.arange(lo, hi + width, width), weights=batch.weight[mask])
    smoothed = np.convolve(counts, np.ones(smooth) / smooth, mode="same")
    return float(edges[np.argmax(smoothed)] + width / 2)


def multiplicity_weights(generated, truth, train) -> dict:
    """Per sample and jet multiplicity n: events N_n, weight sum S_n, mean weight S_n/N_n (for
    generated events N F_n/N_n, see :func:`~lhcflow.zjets.magic.normalise_multiplicities`),
    the weighted fraction S_n/S and its error (:func:`~lhcflow.zjets.chain.fraction_errors`)."""
    out = {}
    for name, batch in (("generated", generated), ("truth", truth), ("train", train)):
        parts = fraction_errors(batch)
        out[name] = {}
        for n, sub in by_multiplicity(batch).items():
            s_n = float(sub.weight.sum())
            out[name][n] = {"events": len(sub), "weight": s_n,
                            "mean_weight": s_n / len(sub) if len(sub) else None,
                            "fraction": parts[n][0], "error": parts[n][1]}
    return out


def multiplicity_pulls(generated, truth, train) -> dict[int, float]:
    """``(F_n^gen − F_n^truth) / σ`` of the weighted multiplicity fractions, with
    ``σ² = σ_gen² + σ_truth² + σ_train²``: the generator draws n with the training fractions,
    which scatter about the truth ones like an independent sample."""
    parts = [fraction_errors(b) for b in (generated, truth, train)]
    pulls = {}
    for n, (f_gen, _) in parts[0].items():
        sigma = np.sqrt(sum(p[n][1] ** 2 for p in parts))
        pulls[n] = float((f_gen - parts[1][n][0]) / sigma) if sigma > 0 else 0.0
    return pulls


def default_checks(generated, truth, histories: Sequence[dict], train) -> dict:
    """What the default configuration must show: falling losses, the Z peak within 2 GeV of
    truth, no weight below R_min, and the weighted multiplicity fractions within 4σ of the truth
    ones (:func:`multiplicity_pulls`; weights, not event counts, carry the magic normalisation)."""
    peak_gen, peak_truth = mll_peak(generated), mll_peak(truth)
    close_pairs = [(events_dr < 0.4) & mask for events_dr, mask in magic.jet_pair_delta_r(generated)]
    weight_below_rmin = float(np.abs(generated.weight[np.any(close_pairs, axis=0)]).sum()) if close_pairs else 0.0
    pulls = multiplicity_pulls(generated, truth, train)
    return {
        "loss_decreased": all(h["train_loss"][-1] < h["train_loss"][0] for h in histories),
        "mll_peak_generated_gev": peak_gen,
        "mll_peak_truth_gev": peak_truth,
        "mll_peak_within_2gev": abs(peak_gen - peak_truth) <= 2.0,
        "weight_below_rmin": weight_below_rmin,
        "multiplicity_pulls": pulls,
        "multiplicities_within_4sigma": all(abs(p) < 4 for p in pulls.values()),
    }


def size_scan(model: Mapping, pre_path: str | Path, nets_by_size: Mapping[float, Sequence[str | Path]],
              magic_cfg: Mapping, n_replicas: int, n_events: int, seed: int, out_plot: str | Path,
              out_json: str | Path) -> dict:
    """Fig. 4.7 analogue: the BINN's relative predictive uncertainty σ_pred/⟨n⟩ of the Z+1 jet
    p_T,j1 and p_T,μ1 distributions for networks trained on different fractions of the data."""
    from lhcflow.physics.observables import control_observables, exclusive_jets
    from lhcflow.plots.training import plot_size_scan
    from lhcflow.zjets.bands import decompose, replica_histograms
    from lhcflow.zjets.preprocessing import ZJETS_SLOTS

    named = {o.name: o for o in control_observables(ZJETS_SLOTS)}
    observables = [exclusive_jets(named["j1_pt"], 1), exclusive_jets(named["mu1_pt"], 1)]
    result: dict = {obs.name: {} for obs in observables}
    for fraction, nets in sorted(nets_by_size.items()):
        chain = load_chain(model, pre_path, nets, magic_cfg)
        replicas = replica_histograms(chain, observables, n_replicas, n_events, seed)
        for obs in observables:
            parts = decompose(replicas[obs.name])
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = np.where(parts["mean"] > 0, parts["sigma_pred"] / parts["mean"], np.nan)
            result[obs.name][str(fraction)] = {"edges": replicas[obs.name][0].axes[0].edges.tolist(),
                                               "relative_sigma_pred": relative.tolist()}
    plot_size_scan(result, observables, out_plot)
    write_json(out_json, {"n_replicas": n_replicas, "n_events": n_events, "observables": result})
    return result
