"""Classifiers on hard-scattering momenta (thesis §6.4.2, §6.5.2, Table A.8): inputs, labels and the
observables they are judged on; the workflow stages are in :mod:`lhcflow.classifier.stages`.

* ``acceptance``: binary ε(x_hard) = P(event passes the reco selection | x_hard), Eq 6.20, from
  accepted (label 1) vs rejected (label 0) events, *unbalanced* binary cross-entropy so that the
  output is the acceptance probability itself.
* ``multiplicity``: categorical p(n|x_hard) over the reco jet multiplicity of accepted events
  (classes ``n_min … n_max``, the last one inclusive), categorical cross-entropy.

Inputs follow Table A.8's preprocessing: per hard particle log pT, η, φ and log m (columns
that are constant, e.g. lepton masses, are passed through centred by the scaler); absent slots
are NaN, i.e. 0 after standardisation, with a presence flag. Training uses the ``train``
split, validation the ``val`` split, every number and figure the ``test`` split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lhcflow.data.hard import HardDataset
from lhcflow.physics.kinematics import mass, to_four_momenta

KINDS = ("acceptance", "multiplicity")


def hard_features(ds: HardDataset) -> tuple[np.ndarray, list[str]]:
    """(N, 4·slots [+ slots]) inputs: log pT, η, φ, log m per slot (NaN where absent)."""
    n_slots = ds.hard.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pt, eta, phi, mass = (ds.hard[..., k].astype(np.float64) for k in range(4))
        cols = np.stack([np.log(pt), eta, phi, np.log(np.maximum(mass, 1e-6))], axis=-1)
    cols = np.where(ds.present[..., None], cols, np.nan).reshape(len(ds), -1)
    names = [f"{q}_{i}" for i in range(n_slots) for q in ("log_pt", "eta", "phi", "log_m")]
    if not ds.present.all():
        cols = np.concatenate([cols, ds.present.astype(np.float64)], axis=1)
        names += [f"present_{i}" for i in range(n_slots)]
    return cols, names


def multiplicity_labels(n_jets: np.ndarray, n_min: int, n_max: int) -> np.ndarray:
    """Class index of each reco jet multiplicity: n_min → 0, …, ≥ n_max → n_max − n_min."""
    return np.clip(np.asarray(n_jets, np.int64), n_min, n_max) - n_min


def task_data(ds: HardDataset, task: Mapping) -> tuple[HardDataset, np.ndarray]:
    """Events the task trains on and their labels (all events for acceptance, the accepted ones for
    multiplicity)."""
    if task["kind"] == "acceptance":
        return ds, ds.accepted.astype(np.int64)
    accepted = ds.select(ds.accepted)
    return accepted, multiplicity_labels(accepted.n_jets, task["n_min"], task["n_max"])


def hard_observables(slot_labels: Sequence[str]) -> list[tuple[str, str, np.ndarray]]:
    """(name, axis label, bin edges) of the observables the probabilities are plotted against."""
    obs = []
    for i, label in enumerate(slot_labels):
        obs.append((f"pt_{i}", rf"$p_{{T,{label}}}$ [GeV]", np.linspace(0, 200, 21)))
        obs.append((f"eta_{i}", rf"$\eta_{{{label}}}$", np.linspace(-5, 5, 21)))
    obs.append(("m_hard", r"$\sqrt{\hat{s}}$ [GeV]", np.linspace(0, 1000, 21)))
    return obs


def observable_values(ds: HardDataset, name: str) -> np.ndarray:
    """Values of a :func:`hard_observables` entry (pT/η of a slot, or the total invariant mass)."""
    if name == "m_hard":
        momenta = to_four_momenta(ds.hard.astype(np.float64)) * ds.present[..., None]
        return mass(*np.moveaxis(momenta.sum(1), -1, 0))
    quantity, slot = name.split("_")
    column = {"pt": 0, "eta": 1}[quantity]
    values = ds.hard[:, int(slot), column].astype(np.float64)
    return np.where(ds.present[:, int(slot)], values, np.nan)


def binned_agreement(fractions: Mapping[str, np.ndarray], min_events: int = 50) -> dict:
    """Learned vs true class fractions of :func:`class_fractions` in bins with at least
    ``min_events`` events: max |Δ| and χ²/ndf with binomial errors (floored at 1/n_eff)."""
    good = fractions["n"] >= min_events
    true, learned, n_eff = fractions["true"][:, good], fractions["learned"][:, good], fractions["n_eff"][good]
    var = np.maximum(true * (1 - true), 1.0 / n_eff) / n_eff
    ndf = true.size
    return {"chi2_ndf": float(np.sum((learned - true) ** 2 / var)) / max(ndf, 1),
            "max_abs_diff": float(np.max(np.abs(learned - true))) if ndf else 0.0, "bins": ndf}
