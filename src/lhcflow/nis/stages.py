"""The neural-importance-sampling chain (thesis Ch. 5) as workflow stages: run, summary, plots, channels, events.

Every stage takes one frozen settings object, built once from the validated config
(``nis.experiments.<name>`` and the chain's ``nis.device``) by its ``from_config``, and its files as
keyword-only arguments, and returns a frozen result; it reads and writes files only, so it runs the same
inside a Snakemake job, a SLURM job or an interactive session.

* :func:`run_stage` — one integration (a variant at a scan point with a seed): metrics JSON and the
  trained MadNIS state; a MadNIS training checkpoints and resumes after a kill.
* :func:`summary_stage` — mean ± std over seeds per variant and scan point (Tabs 5.1/5.2).
* :func:`plots_stage` — metrics, variance history, scans and weight distributions (Figs 5.10, 5.12).
* :func:`channels_stage` — learned channel densities and weights (Figs 5.5-5.8, 5.11).
* :func:`events_stage` — unweighted Drell-Yan events from a trained MadNIS state, as LHE (§2.2.5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lhcflow.atomic import save_torch, write_json
from lhcflow.nis.base_integrator import IntegrationResult
from lhcflow.nis.experiments import (
    build_integrand,
    integrand_summary,
    run_setup,
    summarize_experiment,
    write_tables,
)
from lhcflow.nis.lhe import write_lhe
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.nis.run import run_integrator
from lhcflow.settings import Settings

# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExperimentSettings(Settings):
    """One experiment of the validated config: its name, its ``nis.experiments`` block and ``nis.device``."""

    name: str
    experiment: Mapping[str, Any]
    device: str | None = None       # "auto" or None: the default device (CPU)

    @property
    def torch_device(self) -> str | None:
        """The device the integrators take (None: their default)."""
        return None if self.device in (None, "auto") else self.device


@dataclass(frozen=True)
class RunSettings(Settings):
    """One run: ``variant`` of the experiment at scan point ``point`` (0 without a scan), ``seed``, ``n_eval`` calls."""

    experiment: ExperimentSettings
    variant: str
    point: int
    seed: int
    n_eval: int

    @property
    def scan_index(self) -> int | None:
        """The index into the scan values, None when the experiment has no scan."""
        return int(self.point) if self.experiment.experiment.get("scan") else None


@dataclass(frozen=True)
class ChannelSettings(Settings):
    """The trained MadNIS ``variant`` of an experiment whose channels are drawn; ``seed`` of the drawn samples."""

    experiment: ExperimentSettings
    variant: str
    seed: int = 0


@dataclass(frozen=True)
class EventsSettings(Settings):
    """``n_events`` unweighted events of the MadNIS ``variant`` of a Drell-Yan experiment, ``seed``;
    ``batch_size`` weighted events per hit-or-miss round (the first also fixes w_max)."""

    experiment: ExperimentSettings
    variant: str
    n_events: int
    seed: int
    batch_size: int = 100_000


@dataclass(frozen=True)
class PlotsSettings(Settings):
    """Figures in format ``fmt``."""

    fmt: str = "png"


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RunResult:
    """The headline metrics of one integration, the written record and the full
    :class:`~lhcflow.nis.base_integrator.IntegrationResult` (with its trained integrator)."""

    integral: float
    error: float
    rel_std: float
    unweighting_efficiency: float
    n_calls_train: int
    record: Mapping[str, Any]
    integration: IntegrationResult = field(repr=False, compare=False)


@dataclass(frozen=True)
class SummaryResult:
    """The rows of the table (mean ± std over seeds per variant and scan point) and the written summary."""

    rows: Sequence[Mapping[str, Any]]
    summary: Mapping[str, Any]


@dataclass(frozen=True)
class FiguresResult:
    """The figures written."""

    figures: Sequence[Path]


@dataclass(frozen=True)
class ChannelsResult:
    """The channel figure and what it shows (per-channel values of the drawn densities and weights)."""

    figure: Path
    data: Mapping[str, Any]


@dataclass(frozen=True)
class EventsResult:
    """Events written, the cross section of the unweighted sample and its error (pb), and the written
    metadata."""

    n_events: int
    cross_section_pb: float
    cross_section_err_pb: float
    meta: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- stages


def run_stage(settings: RunSettings, *, out_json: str | Path, out_state: str | Path | None = None,
              checkpoint: str | Path | None = None, progress: bool = False) -> RunResult:
    """Integrate, record the metrics (with the evaluation's weight distribution) in ``out_json`` and save the
    MadNIS state in ``out_state`` (flat and VEGAS runs record that they keep none).

    A MadNIS training checkpoints to ``checkpoint`` and resumes from it when rerun after a kill."""
    exp = settings.experiment
    spec, method, config = run_setup(exp.experiment, settings.variant, settings.scan_index)
    integrand = build_integrand(spec, exp.torch_device)
    resume = {"checkpoint": checkpoint, "checkpoint_settings": {"integrand": spec}} \
        if method == "madnis" and checkpoint is not None else {}
    result = run_integrator(method, integrand, settings.n_eval, config, seed=settings.seed, device=exp.torch_device,
                            progress=progress, **resume)
    record = result.to_dict()
    scan_index = settings.scan_index
    record.update(experiment=exp.name, variant=settings.variant,
                  label=exp.experiment["variants"][settings.variant].get("label", settings.variant),
                  scan_value=None if scan_index is None else exp.experiment["scan"]["values"][scan_index],
                  integrand_spec=spec, config=config, integrand_meta=integrand_summary(integrand))
    if out_state is not None:
        if isinstance(result.integrator, MadnisIntegrator):
            result.integrator.save(out_state)
        else:  # flat and VEGAS runs keep no network; the file records that
            save_torch(out_state, {"format": "lhcflow.nis.none/1", "method": method})
    write_json(out_json, record)
    return RunResult(result.integral, result.error, result.rel_std, result.unweighting_efficiency,
                     result.n_calls_train, record, result)


def summary_stage(settings: ExperimentSettings, *, runs: Sequence[str | Path], out_summary: str | Path,
                  out_csv: str | Path, out_html: str | Path) -> SummaryResult:
    """The runs of one experiment as a summary (JSON), a CSV table and an HTML table for the report."""
    summary = summarize_experiment(settings.name, settings.experiment, runs)
    write_json(out_summary, summary)
    write_tables(summary, out_csv, out_html)
    return SummaryResult(summary["rows"], summary)


def plots_stage(settings: PlotsSettings, *, summary_json: str | Path, out_dir: str | Path) -> FiguresResult:
    """Figures of one experiment from its summary, in format ``settings.fmt``: metrics, weights, the variance
    history (Fig 5.10 left) when recorded and, with a scan, the scanned metric and integral (Figs 5.10 right,
    5.12)."""
    from lhcflow.plots import nis as nis_plots

    fmt = settings.fmt
    summary = json.loads(Path(summary_json).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"metrics.{fmt}", out / f"weights.{fmt}"]
    nis_plots.plot_results(summary, written[0])
    nis_plots.plot_weight_distributions(summary, written[1])
    if summary["histories"]:
        written.append(out / f"variance_history.{fmt}")
        nis_plots.plot_variance_history(summary, written[-1])
    if summary["scan"]:
        # the deviation from the first scan point is meaningful when the integral stays the same
        # (a method setting such as R), not when the integrand changes (the Z' width)
        written.append(out / f"scan.{fmt}")
        nis_plots.plot_scan(summary, written[-1], deviation=summary["scan"]["target"] == "config")
        # the integral itself: an integrator that misses a narrow peak has a small error and a wrong value
        written.append(out / f"scan_integral.{fmt}")
        nis_plots.plot_scan(summary, written[-1], metric="integral", deviation=False)
    return FiguresResult(written)


def channels_stage(settings: ChannelSettings, *, states: Sequence[str | Path],
                   out_path: str | Path) -> ChannelsResult:
    """Channel densities and weights of trained MadNIS runs (their saved ``states``): Figs 5.5/5.6 (1D camel:
    learned α of every seed against the prior), 5.7/5.8 (crossed ring: per-channel maps), 5.11 (Drell-Yan:
    per-channel p_T and M_ee with learned and prior α)."""
    from lhcflow.plots import nis as nis_plots

    exp = settings.experiment
    spec, method, _ = run_setup(exp.experiment, settings.variant, None)
    if method != "madnis":
        raise ValueError(f"channel figures need a madnis variant, {settings.variant!r} is {method}")
    integrand = build_integrand(spec, exp.torch_device)
    integrators = [MadnisIntegrator.load(p, integrand, device=exp.torch_device) for p in states]
    if spec["name"] == "drell_yan":
        observables = nis_plots.drell_yan_observables(integrand)
        data = nis_plots.plot_channel_observables(integrators[0], integrand, observables, out_path,
                                                  seed=settings.seed,
                                                  channel_names=integrand.meta["channel_names"])
    elif integrand.dim == 1:
        data = nis_plots.plot_channel_weights_1d(integrators, integrand, out_path, x_range=(0.0, 7.0))
    else:
        data = nis_plots.plot_channel_maps(integrators[0], integrand, out_path, seed=settings.seed)
    return ChannelsResult(Path(out_path), data)


def events_stage(settings: EventsSettings, *, state: str | Path, out_lhe: str | Path,
                 out_meta: str | Path) -> EventsResult:
    """Unweighted pp → e⁺e⁻ events from a saved MadNIS ``state``, written as LHE with their metadata (JSON).

    The LHE file names the PDF set (LHAPDF id, α_s(M_Z)) and MadNIS as the integrator."""
    exp = settings.experiment
    spec, method, _ = run_setup(exp.experiment, settings.variant, None)
    if spec["name"] != "drell_yan" or method != "madnis":
        raise ValueError(f"events need a madnis variant of a drell_yan experiment, got {method} on {spec['name']}")
    integrand = build_integrand(spec, exp.torch_device)
    integrator = MadnisIntegrator.load(state, integrand, device=exp.torch_device)
    events = integrator.sample_unweighted(settings.n_events, seed=settings.seed, batch_size=settings.batch_size)
    x = events.x
    generator = torch.Generator(device=x.device).manual_seed(settings.seed)
    momenta = integrand.meta["momenta"](x)
    partons = integrand.meta["sample_flavours"](x, generator)
    leptons = torch.tensor([11, -11], device=x.device).expand(len(x), 2)
    pdg = torch.cat([partons.to(leptons.dtype), leptons], dim=1)
    process = integrand.meta["process"]
    write_lhe(out_lhe, momenta, pdg, [-1, -1, 1, 1], cross_section=events.cross_section,
              cross_section_error=events.cross_section_error, beam_energies=(process.sqrt_s / 2,) * 2,
              pdf=process.pdf, integrator=integrator.method, scale=process.mu_f2 ** 0.5,
              alpha_qed=1.0 / process.ew.alpha_inv, process="p p > e+ e-")
    meta = {"n_events": len(x), "cross_section_pb": events.cross_section,
            "cross_section_err_pb": events.cross_section_error, "w_max": events.w_max,
            "n_weighted": events.n_weighted, "n_overweight": events.n_overweight, "pdf": integrand.meta["pdf"],
            "lhapdf_id": process.lhapdf_id, "integrator": integrator.method, "seed": settings.seed}
    write_json(out_meta, meta)
    return EventsResult(meta["n_events"], meta["cross_section_pb"], meta["cross_section_err_pb"], meta)
