"""Classifier networks for reweighting and diagnostics (thesis §3.1.3, §4.4, §6.4.2, §6.5.2).

Label convention: truth (or accepted) events = 1, generated (or rejected) events = 0, so the
weight ``w = D/(1−D)`` (Eq 4.16) reweights generated events to the truth.
"""

from __future__ import annotations

from .features import DR_CUTOFF, ZJETS_SLOTS, FeatureScaler, observable_features, zjets_features
from .network import Classifier
from .train import (
    ClassifierConfig,
    ClassifierHistory,
    balance_weights,
    load_classifier,
    predict,
    predict_logits,
    predict_replicas,
    save_classifier,
    train_classifier,
    train_multiclass,
)
from .weights import (
    auc,
    calibration_curve,
    classifier_weights,
    density_mean_std,
    mixed_pull,
    relative_error_profile,
    roc_curve,
)

__all__ = [
    "DR_CUTOFF", "ZJETS_SLOTS", "FeatureScaler", "observable_features", "zjets_features", "Classifier",
    "ClassifierConfig", "ClassifierHistory", "balance_weights", "load_classifier", "predict", "predict_logits",
    "predict_replicas", "save_classifier", "train_classifier", "train_multiclass", "auc", "calibration_curve",
    "classifier_weights", "density_mean_std", "mixed_pull", "relative_error_profile", "roc_curve",
]
