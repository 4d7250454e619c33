"""Z+jets data side of the generative chain (thesis Ch. 4): preprocessing (Eq 4.3-4.6)
and the magic transformation (Eq 4.7-4.9)."""

from lhcflow.zjets.magic import (
    inverse_smoothing_weight,
    inverse_weights,
    smoothing_weight,
    training_weights,
    unweight,
    unweighting_efficiency,
)
from lhcflow.zjets.preprocessing import ZJETS_SLOTS, ZJetsPreprocessing, by_multiplicity, n_dims

__all__ = [
    "ZJETS_SLOTS",
    "ZJetsPreprocessing",
    "by_multiplicity",
    "inverse_smoothing_weight",
    "inverse_weights",
    "n_dims",
    "smoothing_weight",
    "training_weights",
    "unweight",
    "unweighting_efficiency",
]
