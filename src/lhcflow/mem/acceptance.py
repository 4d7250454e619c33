"""Hard-process classifiers as functions of the Eq 6.31 hard features: the learned acceptance ε_ψ(x_hard)
(thesis Eq 6.20, §6.4.2) and the extra-jet multiplicity p(n | x_hard) of Eq 6.45.

The classifiers are the project's hard-process classifiers (:mod:`lhcflow.classifier.hard`, Table A.8)
trained on :func:`lhcflow.mem.data.write_hard_dataset`; here its inputs (log pT, η, φ, log m of t, H and
the light quark) are rebuilt from the seven features the MEM integrand samples, with the nominal masses
the training data carried.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lhcflow.classifier.features import FeatureScaler
from lhcflow.classifier.train import load_classifier
from lhcflow.mem.features import hard_momenta
from lhcflow.physics.kinematics import to_ptetaphim

MASS_FLOOR = 1e-6  # the classifier's log m of a massless slot is log(1e-6) (classifier.hard.hard_features)


class _HardClassifier:
    """A trained hard-process classifier of ``kind`` evaluated on Eq 6.31 features."""

    kind = ""

    def __init__(self, model_path: str | Path, masses: tuple[float, float]):
        self.model, extra = load_classifier(model_path)
        self.model.eval()
        self.task = extra.get("task", {})
        if self.task.get("kind") != self.kind:
            raise ValueError(f"{model_path}: not a {self.kind} classifier (task {self.task})")
        self.scaler = FeatureScaler.from_state(extra["scaler"])
        self.masses = (float(masses[0]), float(masses[1]))
        self.log_masses = torch.log(torch.tensor([self.masses[0], self.masses[1], MASS_FLOOR], dtype=torch.float64))

    def features(self, x_hard: torch.Tensor) -> torch.Tensor:
        """Standardised classifier inputs (n, 12)."""
        objects = to_ptetaphim(hard_momenta(x_hard.to(torch.float64), *self.masses))
        cols = torch.stack([torch.log(objects[..., 0].clamp_min(1e-9)), objects[..., 1], objects[..., 2],
                            self.log_masses.to(x_hard.device).expand(len(x_hard), 3)], -1).reshape(len(x_hard), -1)
        mean = torch.as_tensor(self.scaler.mean, dtype=torch.float64, device=x_hard.device)
        std = torch.as_tensor(self.scaler.std, dtype=torch.float64, device=x_hard.device)
        return (cols - mean) / std

    @torch.no_grad()
    def logits(self, x_hard: torch.Tensor) -> torch.Tensor:
        self.model.to(x_hard.device)
        dtype = next(self.model.parameters()).dtype
        return self.model(self.features(x_hard).to(dtype)).to(torch.float64)


class LearnedAcceptance(_HardClassifier):
    """Callable x_hard (n, 7) [GeV] -> ε_ψ(x_hard) (n,), float64."""

    kind = "acceptance"

    def __call__(self, x_hard: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x_hard).reshape(-1))


class LearnedMultiplicity(_HardClassifier):
    """Callable x_hard (n, 7) [GeV] -> log p(n_extra | x_hard) (n, k + 1) for n_extra = 0 … k (k inclusive)."""

    kind = "multiplicity"

    def __init__(self, model_path: str | Path, masses: tuple[float, float]):
        super().__init__(model_path, masses)
        if self.task.get("n_min", 0) != 0:
            raise ValueError(f"{model_path}: extra-jet multiplicity classes must start at 0 (n_min = {self.task['n_min']})")

    def __call__(self, x_hard: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits(x_hard), dim=-1)


def acceptance_numpy(acceptance: LearnedAcceptance, x_hard: np.ndarray) -> np.ndarray:
    """ε_ψ of hard features given as a numpy array."""
    return acceptance(torch.as_tensor(x_hard, dtype=torch.float64)).numpy()
