"""The classifier metric of thesis §4.4 on held-out events: truth is label 1, generated label 0, and
w = D/(1−D) (Eq. 4.16) reweights generated events towards the truth.

Both samples are split by a seeded hash into a classifier-training and a held-out half
(:func:`holdout_mask`); every weight, ROC curve and plot is computed on the held-out halves only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lhcflow.classifier.features import FeatureScaler, zjets_features
from lhcflow.classifier.train import load_classifier, predict
from lhcflow.classifier.weights import classifier_weights
from lhcflow.data.events import EventBatch, read_events, read_info
from lhcflow.zjets.magic import require_normalised_weights


def holdout_mask(n: int, seed: int, fraction: float = 0.5) -> np.ndarray:
    """True for the events held out from classifier training (a seeded, reproducible half)."""
    return np.random.default_rng([seed, 4242]).random(n) < fraction


def features(batch: EventBatch, dr_cutoff: float) -> np.ndarray:
    """The classifier inputs of thesis §4.4 (missing jets NaN) of ``batch``."""
    return zjets_features(batch, dr_cutoff=dr_cutoff, missing=np.nan)[0]


def held_out(truth_path, generated_path, model_path, seed: int) -> dict:
    """Held-out truth and generated events with their classifier outputs D and weights w."""
    model, extra = load_classifier(model_path)
    scaler = FeatureScaler.from_state(extra["scaler"])
    require_normalised_weights(generated_path, read_info(generated_path).provenance)
    truth, generated = read_events(truth_path), read_events(generated_path)
    truth = truth.select(holdout_mask(len(truth), seed))
    generated = generated.select(holdout_mask(len(generated), seed + 1))
    d_t = predict(model, scaler.transform(features(truth, extra["dr_cutoff"])))
    d_g = predict(model, scaler.transform(features(generated, extra["dr_cutoff"])))
    return {"truth": truth, "generated": generated, "D_truth": d_t, "D_generated": d_g,
            "w_truth": classifier_weights(d_t), "w_generated": classifier_weights(d_g)}


def reweighted_deviations(s: dict, train, observables) -> dict[str, dict[str, float]]:
    """Bulk |x/Truth − 1| (:func:`~lhcflow.physics.metrics.bulk_deviation`) of the held-out generated
    events, the same events times w (Eq. 4.16) and the training events, all against the held-out truth."""
    from lhcflow.physics.metrics import batch_histograms, bulk_deviation

    truth = batch_histograms(s["truth"], observables)
    samples = {"generated": batch_histograms(s["generated"], observables),
               "reweighted": batch_histograms(s["generated"], observables, s["generated"].weight * s["w_generated"]),
               "train": batch_histograms(train, observables)}
    return {obs.name: {k: bulk_deviation(h[obs.name], truth[obs.name]) for k, h in samples.items()}
            for obs in observables}


def weight_quantiles(w: np.ndarray, sample_weight: np.ndarray) -> dict:
    """1, 16, 50, 84 and 99 % quantiles of the weights ``w`` of the events with a non-zero
    ``sample_weight``."""
    live = sample_weight != 0
    q = np.quantile(w[live], [0.01, 0.16, 0.5, 0.84, 0.99]) if live.any() else [np.nan] * 5
    return dict(zip(("q01", "q16", "median", "q84", "q99"), map(float, q)))


def bayesian_pull(chain, s: dict, n_replicas: int, seed: int, path: Path) -> dict:
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
