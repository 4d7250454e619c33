"""One MEM integration of a fixed-α test sample, set up from the trained stages (Eqs 6.35, 6.39): its
accepted events, the transfer and sampling networks, the integrand with or without the learned acceptance,
and the resumable integration in event chunks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.mem.data import read_test_events
from lhcflow.mem.integration import MemResult, MemSettings, integrate_in_chunks
from lhcflow.mem.sampling import SamplingNetwork, sampling_context
from lhcflow.mem.transfer import TransferNetwork, reco_rows


def fingerprint(paths: Sequence[str | Path], *arrays: np.ndarray, settings: Any = None) -> str:
    """SHA-256 of the files' bytes, the arrays and the settings: what the chunk checkpoints must match."""
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
    from lhcflow.thj.cross_section import cross_section_from_config
    from lhcflow.thj.heavy import check_mem_inputs

    check_mem_inputs(test_paired, fiducial_json, process)  # one thj.process.heavy for data, σ_fid and density
    dev = torch.device("cuda" if device == "cuda" and torch.cuda.is_available() else "cpu")
    data = read_test_events(test_paired, max_events)
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
    reco = torch.as_tensor(reco_rows(transfer, data), dtype=torch.float64)
    context = sampler.context(sampling_context(transfer.layout, data))
    models = [transfer_path, sampling_path, fiducial_json] + [p for p in (acceptance_path, multiplicity_path) if p]
    return MemSetup(data, transfer, sampler, integrand, reco, context, dev, models)


def integrate_setup(setup: MemSetup, settings: MemSettings, chunk_size: int, checkpoint_dir: str | Path,
                    fingerprint_extra: Mapping[str, Any], progress: bool) -> MemResult:
    """The MEM integrals of the setup's events, ``chunk_size`` events per checkpoint in ``checkpoint_dir``; a
    rerun resumes from the chunks whose fingerprint (model files, events, ``fingerprint_extra``) matches."""
    digest = fingerprint(setup.models, setup.data["x_reco"], settings=dict(fingerprint_extra))
    result = integrate_in_chunks(setup.integrand, setup.sampler, setup.reco, setup.context, settings,
                                 chunk_size=chunk_size, checkpoint_dir=checkpoint_dir, fingerprint=digest,
                                 progress=progress, device=setup.device)
    # the fingerprint hashes the model files' bytes (resume bookkeeping of the checkpoints only)
    result.attrs.pop("fingerprint", None)
    return result
