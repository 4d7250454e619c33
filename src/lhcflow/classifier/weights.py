"""Classifier weights and diagnostics (thesis §4.4): Eq 4.16, ROC/AUC, calibration, Eq 4.18.

Conventions: ``a`` = truth = label 1 = positive class, ``b`` = generated = label 0, so
``w = D/(1−D) = p_truth/p_model`` reweights generated events to the truth (Eq 4.16).
"""

from __future__ import annotations

import numpy as np


def classifier_weights(D: np.ndarray, eps: float = 1e-7, w_max: float | None = None) -> np.ndarray:
    """``w = D/(1−D)`` (Eq 4.16), with D clipped to [eps, 1−eps] and optionally w to ``w_max``."""
    D = np.clip(np.asarray(D, dtype=np.float64), eps, 1.0 - eps)
    w = D / (1.0 - D)
    return w if w_max is None else np.minimum(w, w_max)


def _scores(D_a, D_b, w_a, w_b):
    D_a, D_b = np.asarray(D_a, np.float64), np.asarray(D_b, np.float64)
    w_a = np.ones(len(D_a)) if w_a is None else np.asarray(w_a, np.float64)
    w_b = np.ones(len(D_b)) if w_b is None else np.asarray(w_b, np.float64)
    return (np.concatenate([D_a, D_b]), np.concatenate([w_a, np.zeros(len(D_b))]),
            np.concatenate([np.zeros(len(D_a)), w_b]))


def roc_curve(D_a: np.ndarray, D_b: np.ndarray, w_a: np.ndarray | None = None,
              w_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ROC of class ``a`` (positive) against ``b``: (fpr, tpr, thresholds).

    Points are taken at every distinct score, from (0, 0) at threshold +inf to (1, 1); tied
    scores form one step, so duplicating an event equals doubling its weight.
    """
    s, pos, neg = _scores(D_a, D_b, w_a, w_b)
    order = np.argsort(-s, kind="stable")
    s, pos, neg = s[order], pos[order], neg[order]
    last = np.append(np.flatnonzero(np.diff(s) != 0), len(s) - 1)
    tp = np.concatenate([[0.0], np.cumsum(pos)[last]])
    fp = np.concatenate([[0.0], np.cumsum(neg)[last]])
    return fp / fp[-1], tp / tp[-1], np.concatenate([[np.inf], s[last]])


def auc(D_a: np.ndarray, D_b: np.ndarray, w_a: np.ndarray | None = None, w_b: np.ndarray | None = None) -> float:
    """Area under the weighted ROC curve (trapezoidal; ties count 1/2). 0.5 = indistinguishable."""
    fpr, tpr, _ = roc_curve(D_a, D_b, w_a, w_b)
    return float(np.sum(np.diff(fpr) * 0.5 * (tpr[1:] + tpr[:-1])))


def calibration_curve(D: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                      bins: int | np.ndarray = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability diagram: per bin of D, the weighted mean D, the weighted fraction of
    label 1 and the bin's total weight (empty bins: NaN). A calibrated classifier lies on
    the diagonal — only then is Eq 4.16 the density ratio."""
    D = np.asarray(D, np.float64)
    labels = np.asarray(labels, np.float64)
    w = np.ones(len(D)) if weights is None else np.asarray(weights, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1) if np.isscalar(bins) else np.asarray(bins, np.float64)
    idx = np.clip(np.digitize(D, edges[1:-1]), 0, len(edges) - 2)
    total = np.bincount(idx, w, len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_D = np.bincount(idx, w * D, len(edges) - 1) / total
        frac = np.bincount(idx, w * labels, len(edges) - 1) / total
    return np.where(total > 0, mean_D, np.nan), np.where(total > 0, frac, np.nan), total


# --------------------------------------------------------------- Bayesian generator (§4.4.3)
def density_mean_std(log_densities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-event mean μ and standard deviation σ of the density over K posterior replicas,
    from ``log_densities`` of shape (K, n) (computed stably relative to the per-event maximum)."""
    log_p = np.asarray(log_densities, np.float64)
    top = log_p.max(axis=0)
    p = np.exp(log_p - top)
    scale = np.exp(top)
    return p.mean(axis=0) * scale, p.std(axis=0, ddof=1) * scale


def mixed_pull(w: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Eq 4.18: ``t = μ (1 − w)/σ ≈ (p_model − p_data)/σ`` (Eq 4.19), per event.

    ``w`` is the classifier weight, ``μ``/``σ`` the mean and standard deviation of the
    Bayesian generator's density at the event over posterior replicas. Only the relative
    error σ/μ enters, so μ and σ may share any per-event scale.
    """
    return np.asarray(mu, np.float64) * (1.0 - np.asarray(w, np.float64)) / np.asarray(sigma, np.float64)


def relative_error_profile(w: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                           bins: np.ndarray | None = None) -> dict[str, np.ndarray | float]:
    """Correlation of the classifier weight with the relative density error σ/μ (Fig 4.13
    top/centre): per bin of w the median and 16/84 % quantiles of σ/μ and the event count,
    plus the Spearman rank correlation of σ/μ with |log w| (positive: the generator's
    uncertainty grows where the classifier corrects most)."""
    w = np.asarray(w, np.float64)
    rel = np.asarray(sigma, np.float64) / np.asarray(mu, np.float64)
    edges = np.linspace(0.0, 3.0, 31) if bins is None else np.asarray(bins, np.float64)
    idx = np.digitize(w, edges) - 1
    stats = np.full((3, len(edges) - 1), np.nan)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for k in range(len(edges) - 1):
        sel = rel[idx == k]
        counts[k] = len(sel)
        if len(sel):
            stats[:, k] = np.quantile(sel, [0.5, 0.16, 0.84])
    return {"edges": edges, "median": stats[0], "q16": stats[1], "q84": stats[2], "counts": counts,
            "spearman": spearman(np.abs(np.log(np.maximum(w, 1e-300))), rel)}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order)."""
    rx = np.argsort(np.argsort(x)).astype(np.float64)
    ry = np.argsort(np.argsort(y)).astype(np.float64)
    return float(np.corrcoef(rx, ry)[0, 1]) if len(x) > 1 else float("nan")


def class_fractions(values: np.ndarray, probabilities: np.ndarray, labels: np.ndarray, edges: np.ndarray,
                    weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per bin of ``values``: the true fraction of each class, the mean classifier output, its
    binomial error, and the event count and effective count (Figs 6.15, 6.20).

    Binary (``probabilities`` shape (n,), labels 0/1) gives one class, the acceptance ε(x);
    categorical (shape (n, k)) gives p(n|x) per class. Arrays are (k, bins).
    """
    values = np.asarray(values, np.float64)
    P = np.asarray(probabilities, np.float64)
    P = P[:, None] if P.ndim == 1 else P
    labels = np.asarray(labels).astype(np.int64)
    onehot = labels[:, None].astype(np.float64) if P.shape[1] == 1 else np.eye(P.shape[1])[labels]
    w = np.ones(len(values)) if weights is None else np.asarray(weights, np.float64)
    edges = np.asarray(edges, np.float64)
    nb = len(edges) - 1
    idx = np.digitize(values, edges) - 1
    ok = (idx >= 0) & (idx < nb) & np.isfinite(values)
    idx, w, P, onehot = idx[ok], w[ok], P[ok], onehot[ok]
    total, total2 = np.bincount(idx, w, nb), np.bincount(idx, w**2, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        true = np.stack([np.bincount(idx, w * onehot[:, k], nb) for k in range(P.shape[1])]) / total
        learned = np.stack([np.bincount(idx, w * P[:, k], nb) for k in range(P.shape[1])]) / total
        n_eff = total**2 / total2
        error = np.sqrt(true * (1 - true) / n_eff)
    return {"edges": edges, "true": true, "learned": learned, "error": error, "n": np.bincount(idx, minlength=nb),
            "n_eff": n_eff}
