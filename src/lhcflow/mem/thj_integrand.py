"""The tHj MEM integrand of thesis Eq 6.35 / 6.39 from the trained pieces.

    p(x_reco|α) = 1/σ_fid(α) Σ_i f_i(α) ∫ d⁷x_hard g_i(x_hard) ε_ψ(x_hard) p_θ(x_reco|x_hard)

* g_i: the factorised dσ/d⁷x_hard of :meth:`lhcflow.thj.cross_section.ThjCrossSection.density` in the Eq 6.31
  variables, times the decay branching ratio of the dataset (so that numerator and σ_fid(α) describe the
  same final state; an α-independent factor either way);
* f_i(α) of Eq 6.33; σ_fid(α) from the Eq 6.3 fit of the fiducial stage (:mod:`lhcflow.thj.fiducial`);
* ε_ψ: the learned acceptance (three-network setup, §6.4.2) or none (two-network setup, Eq 6.30);
* p_θ: a :class:`~lhcflow.mem.transfer.TransferNetwork`, with its Bayesian replicas if drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from lhcflow.mem.acceptance import LearnedAcceptance
from lhcflow.mem.features import hard_momenta
from lhcflow.mem.integration import MemIntegrand
from lhcflow.mem.transfer import TransferNetwork
from lhcflow.thj.cross_section import ThjCrossSection
from lhcflow.thj.hard import eq63
from lhcflow.thj.matrix_element import cp_factors


def fiducial_sigma(fiducial_json: str | Path) -> tuple[dict[str, float], Any]:
    """Eq 6.3 parameters [pb] of the fiducial stage and σ_fid(α) as a torch function."""
    record = json.loads(Path(fiducial_json).read_text())
    params = {k: float(v) for k, v in record["fit"]["parameters"].items()}

    def sigma_fid(alpha: torch.Tensor) -> torch.Tensor:
        values = eq63(np.asarray(alpha.detach().cpu(), np.float64), params)
        if (values <= 0).any():
            raise ValueError(f"{fiducial_json}: the fitted σ_fid(α) is not positive at every α")
        return torch.as_tensor(values, dtype=torch.float64, device=alpha.device)

    return params, sigma_fid


def hard_terms_function(xs: ThjCrossSection, branching_ratio: float):
    """x_hard (n, 7) [GeV] -> BR · g_i(x_hard) (n, 5) [pb/GeV⁷]; zero outside the physical region."""
    masses = (xs.params.mt, xs.params.mh)

    @torch.no_grad()
    def hard_terms(x_hard: torch.Tensor) -> torch.Tensor:
        g = xs.density(hard_momenta(x_hard.to(torch.float64), *masses))
        return branching_ratio * g.to(x_hard.device)

    return hard_terms


def build_integrand(xs: ThjCrossSection, transfer: TransferNetwork, fiducial_json: str | Path,
                    branching_ratio: float, acceptance: LearnedAcceptance | None = None) -> MemIntegrand:
    _, sigma_fid = fiducial_sigma(fiducial_json)

    @torch.no_grad()
    def transfer_log_prob(reco: torch.Tensor, x_hard: torch.Tensor) -> torch.Tensor:
        dtype = next(transfer.parameters()).dtype  # reco rows stay float64: the selection map needs pT − pT_min
        return transfer.log_prob_replicas(reco, x_hard.to(dtype)).to(torch.float64)

    return MemIntegrand(hard_terms=hard_terms_function(xs, branching_ratio),
                        f_terms=lambda alpha: cp_factors(alpha).to(alpha.device),
                        transfer_log_prob=transfer_log_prob, sigma_fid=sigma_fid, acceptance=acceptance)


def hard_level_terms(data: Mapping[str, Any], branching_ratio: float) -> np.ndarray:
    """BR · g_i of the true x_hard of paired events (the hard-scattering truth likelihood, §6.3)."""
    return branching_ratio * np.asarray(data["g"], np.float64)
