"""The classifier metric as workflow stages: train on truth vs generated, evaluate, reweight
(thesis §4.4). Truth is label 1, generated label 0; w = D/(1−D) (Eq. 4.16) reweights generated
events towards the truth.

Both samples are split by a seeded hash into a classifier-training and a held-out half; every
weight, ROC curve and plot is computed on the held-out halves only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lhcflow.atomic import write_json
from lhcflow.data.events import EventBatch, read_events, read_info, write_events
from lhcflow.classifier.features import FeatureScaler, zjets_features
from lhcflow.classifier.train import ClassifierConfig, load_classifier, predict, save_classifier, train_classifier
from lhcflow.classifier.weights import auc, calibration_curve, classifier_weights
from lhcflow.zjets.magic import require_normalised_weights


def holdout_mask(n: int, seed: int, fraction: float = 0.5) -> np.ndarray:
    """True for the events held out from classifier training (a seeded, reproducible half)."""
    return np.random.default_rng([seed, 4242]).random(n) < fraction


def _features(batch: EventBatch, dr_cutoff: float) -> np.ndarray:
    return zjets_features(batch, dr_cutoff=dr_cutoff, missing=np.nan)[0]


def train_stage(truth_path: str | Path, generated_path: str | Path, cfg: Mapping, seed: int,
                out_model: str | Path, out_history: str | Path, checkpoint: str | Path | None = None,
                progress: bool = True) -> dict:
    """Train the truth-vs-generated classifier on the non-held-out halves (generated events keep
    their magic-transformation weights ``⟨f⟩_n f̄`` as sample weights; files without the
    ``⟨f⟩_n`` normalisation are refused)."""
    require_normalised_weights(generated_path, read_info(generated_path).provenance)
    truth, generated = read_events(truth_path), read_events(generated_path)
    keep_t = ~holdout_mask(len(truth), seed)
    keep_g = ~holdout_mask(len(generated), seed + 1)
    x_t = _features(truth.select(keep_t), cfg["dr_cutoff"])
    x_g = _features(generated.select(keep_g), cfg["dr_cutoff"])
    w_t, w_g = truth.weight[keep_t], generated.weight[keep_g]
    scaler = FeatureScaler.fit(np.concatenate([x_t, x_g]), np.concatenate([w_t, w_g]))
    config = ClassifierConfig.from_dict({**cfg.get("network", {}), **cfg.get("training", {}), "seed": seed})
    model, history = train_classifier(scaler.transform(x_t), scaler.transform(x_g), w_t, w_g, config,
                                      checkpoint=checkpoint, progress=progress, name="classifier")
    save_classifier(out_model, model, extra={"scaler": scaler.state_dict(), "dr_cutoff": cfg["dr_cutoff"]})
    summary = {**history.__dict__, "n_truth": int(keep_t.sum()), "n_generated": int(keep_g.sum())}
    write_json(out_history, summary)
    return summary


def held_out(truth_path, generated_path, model_path, seed: int) -> dict:
    """Held-out truth and generated events with their classifier outputs D and weights w."""
    model, extra = load_classifier(model_path)
    scaler = FeatureScaler.from_state(extra["scaler"])
    require_normalised_weights(generated_path, read_info(generated_path).provenance)
    truth, generated = read_events(truth_path), read_events(generated_path)
    truth = truth.select(holdout_mask(len(truth), seed))
    generated = generated.select(holdout_mask(len(generated), seed + 1))
    d_t = predict(model, scaler.transform(_features(truth, extra["dr_cutoff"])))
    d_g = predict(model, scaler.transform(_features(generated, extra["dr_cutoff"])))
    return {"truth": truth, "generated": generated, "D_truth": d_t, "D_generated": d_g,
            "w_truth": classifier_weights(d_t), "w_generated": classifier_weights(d_g)}


def evaluate_stage(truth_path, generated_path, model_path, seed: int, out_dir: str | Path,
                   out_metrics: str | Path, fmt: str = "png", bayesian_chain=None, n_replicas: int = 10,
                   *, train_path: str | Path | None = None) -> dict:
    """ROC and AUC, weight distributions, calibration, reweighted observables and weight
    clusters (Figs. 4.8-4.12) on the held-out halves; metrics as JSON. With the trained chain of
    a Bayesian generator, also the mixed pull of Eq. 4.18 and the correlation of w with the
    relative density error over ``n_replicas`` network draws (Fig. 4.13). With ``train_path``, the
    bulk deviation from the held-out truth of the generated, the reweighted and the training events
    (the Train/Truth floor of the same truth events) per Fig. 4.4 observable."""
    from lhcflow.classifier import plots
    from lhcflow.physics.metrics import zjets_benchmark_observables

    s = held_out(truth_path, generated_path, model_path, seed)
    wt_t, wt_g = s["truth"].weight, s["generated"].weight
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots.plot_roc({"truth vs generated": (s["D_truth"], s["D_generated"], wt_t, wt_g)}, out_dir / f"roc.{fmt}")
    for log_x in (False, True):
        plots.plot_weight_distribution(s["w_truth"], s["w_generated"], out_dir / f"weights{'_log' if log_x else ''}.{fmt}",
                                       log_x=log_x)
    labels = np.r_[np.ones(len(s["D_truth"])), np.zeros(len(s["D_generated"]))]
    plots.plot_calibration(np.r_[s["D_truth"], s["D_generated"]], labels, out_dir / f"calibration.{fmt}",
                           weights=np.r_[wt_t, wt_g])
    for obs in zjets_benchmark_observables():
        plots.plot_reweighted(obs, s["truth"], s["generated"], wt_g * s["w_generated"],
                              out_dir / f"reweighted_{obs.name}.{fmt}")
        plots.plot_weight_clusters(obs, s["truth"], s["generated"], s["w_truth"], s["w_generated"],
                                   out_dir / f"clusters_{obs.name}.{fmt}")
    metrics = {
        "auc": auc(s["D_truth"], s["D_generated"], wt_t, wt_g),
        "n_truth": len(s["truth"]), "n_generated": len(s["generated"]),
        "weights_generated": _quantiles(s["w_generated"], wt_g),
        "weights_truth": _quantiles(s["w_truth"], wt_t),
        "calibration": dict(zip(("mean_D", "fraction", "total"),
                                (a.tolist() for a in calibration_curve(np.r_[s["D_truth"], s["D_generated"]],
                                                                       labels, np.r_[wt_t, wt_g], bins=10)))),
        "generator": read_info(generated_path).provenance,
    }
    if train_path is not None:
        metrics["bulk_deviation"] = _reweighted_deviations(s, read_events(train_path), zjets_benchmark_observables())
    if bayesian_chain is not None:
        metrics["bayesian"] = _bayesian_pull(bayesian_chain, s, n_replicas, seed, out_dir / f"bayesian_pull.{fmt}")
    write_json(out_metrics, metrics)
    return metrics


def _reweighted_deviations(s: dict, train, observables) -> dict[str, dict[str, float]]:
    """Bulk |x/Truth − 1| (:func:`~lhcflow.physics.metrics.bulk_deviation`) of the held-out generated
    events, the same events times w (Eq. 4.16) and the training events, all against the held-out truth."""
    from lhcflow.physics.metrics import batch_histograms, bulk_deviation

    truth = batch_histograms(s["truth"], observables)
    samples = {"generated": batch_histograms(s["generated"], observables),
               "reweighted": batch_histograms(s["generated"], observables, s["generated"].weight * s["w_generated"]),
               "train": batch_histograms(train, observables)}
    return {obs.name: {k: bulk_deviation(h[obs.name], truth[obs.name]) for k, h in samples.items()}
            for obs in observables}


def reweight_stage(truth_path, generated_path, model_path, seed: int, out_path: str | Path) -> int:
    """The held-out generated events with their weights multiplied by the classifier weight."""
    s = held_out(truth_path, generated_path, model_path, seed)
    generated = s["generated"]
    generated.weight[:] = generated.weight * s["w_generated"]
    info = read_info(generated_path)
    info.provenance = {**info.provenance, "classifier": str(model_path), "reweighted": True}
    info.split = "generated_reweighted"
    write_events(out_path, generated, info)
    return len(generated)


def _quantiles(w: np.ndarray, sample_weight: np.ndarray) -> dict:
    live = sample_weight != 0
    q = np.quantile(w[live], [0.01, 0.16, 0.5, 0.84, 0.99]) if live.any() else [np.nan] * 5
    return dict(zip(("q01", "q16", "median", "q84", "q99"), map(float, q)))


def _bayesian_pull(chain, s: dict, n_replicas: int, seed: int, path: Path) -> dict:
    """Eq. 4.18 on the held-out truth events: per-event density mean and spread over replicas."""
    import torch

    from lhcflow.classifier import plots
    from lhcflow.classifier.weights import density_mean_std, mixed_pull, relative_error_profile

    truth = s["truth"]
    log_p = []
    for k in range(n_replicas):
        torch.manual_seed(seed * 1000 + k)
        log_p.append(chain.log_prob(truth, bayesian="fixed"))
    mu, sigma = density_mean_std(np.stack(log_p))
    ok = np.isfinite(mu) & np.isfinite(sigma) & (sigma > 0)
    plots.plot_bayesian_pull(s["w_truth"][ok], mu[ok], sigma[ok], path)
    pulls = mixed_pull(s["w_truth"][ok], mu[ok], sigma[ok])
    profile = relative_error_profile(s["w_truth"][ok], mu[ok], sigma[ok])
    return {"n_events": int(ok.sum()), "n_replicas": n_replicas, "pull_median": float(np.median(pulls)),
            "pull_iqr_half": float(np.subtract(*np.quantile(pulls, [0.75, 0.25])) / 2),
            "spearman_rel_error_vs_abs_log_w": float(profile["spearman"])}
