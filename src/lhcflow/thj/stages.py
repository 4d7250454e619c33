"""The tHj chain (thesis §6.1) as workflow stages: cross sections, hard events and their plots, shower and
detector, paired datasets, fiducial cross sections.

Every stage takes one frozen settings object (built once from the validated ``thj`` config by its
``from_config``) and its files as keyword-only arguments, reads and writes files only, and returns a frozen
result.

* :func:`cross_sections_stage` — σ_i (Eq 6.33), σ(α) at the fit angles, the Eq 6.3 parameters.
* :func:`hard_events_stage` — one shard of unweighted hard events (fixed α or α uniform), LHE + HDF5.
* :func:`hard_plots_stage` — σ(α) with the fit (Fig 6.2 at hard level), the table, hard kinematics (Fig 6.3).
* :func:`shower_stage` — Pythia decays, shower and hadronisation of a hard shard, then the detector.
* :func:`paired_stage` — reco events paired with their hard events, the Table 6.1 selection.
* :func:`fiducial_stage` — σ_fid(α) with the fit (Fig 6.2), the Table 6.1 cut flow, Tables 6.1/6.2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lhcflow.atomic import atomic_path, write_json
from lhcflow.settings import Settings

# The shower and pairing stages run in the generation (or Delphes) environment, which has no torch: this
# module imports the torch-based parts of the chain (cross sections, hard events, the record) in the stages
# that use them.

# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CrossSectionSettings(Settings):
    """``thj.process``, ``thj.integrator`` and ``thj.device``; ``n_eval_sigma`` integrand calls, the Eq 6.3
    fit at ``fit_angles_deg``; ``seed``."""

    process: Mapping[str, Any]
    integrator: Mapping[str, Any]
    n_eval_sigma: int
    fit_angles_deg: Sequence[float]
    seed: int
    device: str | None = None


@dataclass(frozen=True)
class HardEventsSettings(Settings):
    """Shard ``shard`` of the hard sample ``name`` (its ``thj.samples`` block ``sample``: ``n_events``,
    ``shards``, ``alpha_deg`` or none for α uniform), with ``thj.process``, ``thj.integrator``,
    ``thj.device``; ``seed``."""

    name: str
    sample: Mapping[str, Any]
    shard: int
    process: Mapping[str, Any]
    integrator: Mapping[str, Any]
    seed: int
    device: str | None = None


@dataclass(frozen=True)
class HardPlotsSettings(Settings):
    """The fixed α (degrees) of each sample whose distributions are drawn, figures in ``fmt``."""

    alpha_deg: Mapping[str, float]
    fmt: str = "png"


@dataclass(frozen=True)
class ShowerSettings(Settings):
    """A dataset's ``shower`` block (W decay, Pythia settings), the ``thj.detector`` block and ``seed``."""

    shower: Mapping[str, Any]
    detector: Mapping[str, Any]
    seed: int


@dataclass(frozen=True)
class PairedSettings(Settings):
    """The W ``decay`` (leptonic or hadronic), the dataset's Table 6.1 ``selection`` and the ``split``."""

    decay: str
    selection: Mapping[str, Any]
    split: Mapping[str, Any]


@dataclass(frozen=True)
class FiducialSettings(Settings):
    """Reco dataset ``name``, the fixed α (degrees) of its test samples, the Eq 6.3 fit at
    ``fit_angles_deg``."""

    name: str
    alpha_deg: Mapping[str, float]
    fit_angles_deg: Sequence[float]


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CrossSectionsResult:
    """The heavy-line choice used downstream, the summary per choice, the t share of σ(0°) and the record."""

    heavy: str
    by_heavy: Mapping[str, Any]
    top_fraction_alpha0: float
    top_fraction_alpha0_err: float
    record: Mapping[str, Any]


@dataclass(frozen=True)
class HardEventsResult:
    """Events written, the unweighting efficiency, integrand calls and the written statistics."""

    n_events: int
    unweighting_efficiency: float
    n_calls: int
    stats: Mapping[str, Any]


@dataclass(frozen=True)
class HardPlotsResult:
    """Samples whose hard distributions were drawn."""

    samples: Sequence[str]


@dataclass(frozen=True)
class ShowerResult:
    """Events showered, the decay branching ratio, the throughput and the written metadata."""

    n_written: int
    branching_ratio: float
    events_per_second: float
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class PairedResult:
    """Paired and accepted events and the written cut flow."""

    n_paired: int
    n_accepted: int
    cutflow: Mapping[str, Any]


@dataclass(frozen=True)
class FiducialResult:
    """The heavy-line choice, the acceptance, σ_fid(α) at the fit angles (pb) and the written record."""

    heavy: str
    acceptance: float
    sigma_alpha_pb: Sequence[float]
    record: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- stages


def cross_sections_stage(settings: CrossSectionSettings, *, out_json: str | Path,
                         progress: bool = False) -> CrossSectionsResult:
    """σ_i (Eq 6.33) of the ``thj.process.heavy`` choice, σ(α) at the fit angles, the Eq 6.3 parameters, and
    σ(0°), σ(180°)/σ(0°) for t, t̄ and t + t̄ whatever the choice (one sample of all eight subprocesses)."""
    from lhcflow.thj import hard, thesis
    from lhcflow.thj.cross_section import cross_section_from_config
    from lhcflow.thj.heavy import DEFAULT_HEAVY, kinds
    from lhcflow.thj.record import heavy_summary, top_share

    process = dict(settings.process)
    choice = process.get("heavy", DEFAULT_HEAVY)
    kinds(choice)  # an unknown choice raises naming thj.process.heavy
    xs = cross_section_from_config({**process, "heavy": "top_antitop"}, settings.device)
    both = hard.factorized_cross_sections(xs, int(settings.n_eval_sigma), settings.integrator,
                                          seed=settings.seed, progress=progress)
    results = {**both.parts, "top_antitop": both}
    result = results[choice]
    record: dict[str, Any] = {"heavy": choice, **result.to_dict(), **both.meta}
    angles = np.radians(settings.fit_angles_deg)
    values, errors = result.at(angles)
    record["fit_angles_deg"] = list(settings.fit_angles_deg)
    record["sigma_alpha_pb"], record["sigma_alpha_err_pb"] = values.tolist(), errors.tolist()
    record["fit"] = hard.fit_cp_parameters(angles, values, errors)
    summary = {name: heavy_summary(r) for name, r in results.items()}
    record.update({k: summary[choice][k] for k in ("sigma_0_pb", "sigma_0_err_pb", "ratio_180_0", "ratio_180_0_err")})
    record["by_heavy"] = summary
    record["top_fraction_alpha0"], record["top_fraction_alpha0_err"] = top_share(summary)
    record["process"] = {**process, "heavy": choice}
    record["reference"] = {"sigma_0_pb_thesis_mg5": thesis.TOTAL_SIGMA_FB * 1e-3, "note": thesis.TOTAL_SIGMA_NOTE}
    write_json(out_json, record)
    return CrossSectionsResult(choice, summary, record["top_fraction_alpha0"],
                               record["top_fraction_alpha0_err"], record)


def hard_events_stage(settings: HardEventsSettings, *, cross_sections: str | Path, out_lhe: str | Path,
                      out_h5: str | Path, out_stats: str | Path | None = None,
                      progress: bool = False) -> HardEventsResult:
    """One shard of hard events of the sample (fixed α or α uniform), written as LHE + HDF5 with the σ_i of
    the ``cross_sections`` record; the generation statistics go to ``out_stats``."""
    from lhcflow.thj import hard
    from lhcflow.thj.cross_section import cross_section_from_config
    from lhcflow.thj.record import factorized_of, read_cross_sections

    spec, shard = settings.sample, settings.shard
    n_total, n_shards = int(spec["n_events"]), int(spec.get("shards", 1))
    n = n_total // n_shards + (1 if shard < n_total % n_shards else 0)
    xs = cross_section_from_config(settings.process, settings.device)
    record = read_cross_sections(cross_sections)
    if record.get("heavy") != xs.heavy:
        raise ValueError(f"{cross_sections}: cross sections of heavy = {record.get('heavy')!r}, but "
                         f"thj.process.heavy is {xs.heavy!r}; rerun the thj_cross_sections stage")
    alpha = None if spec.get("alpha_deg") is None else math.radians(float(spec["alpha_deg"]))
    events, stats = hard.generate_hard_events(xs, n, alpha, factorized_of(record), settings.integrator,
                                              seed=settings.seed, progress=progress)
    events.attrs.update(sample=settings.name, shard=int(shard), n_shards=n_shards)
    if len(events) < n:
        raise RuntimeError(f"sample {settings.name} shard {shard}: only {len(events)} of {n} events were "
                           "generated")
    hard.write_hard_events(events, out_lhe, out_h5)
    if out_stats is not None:
        write_json(out_stats, stats)
    return HardEventsResult(stats["n_events"], stats["unweighting_efficiency"],
                            stats["n_calls_train"] + stats["n_calls_eval"], stats)


def hard_plots_stage(settings: HardPlotsSettings, *, cross_sections: str | Path,
                     hard_files: Mapping[str, Sequence[str | Path]],
                     stats_files: Mapping[str, Sequence[str | Path]], out_sigma: str | Path,
                     out_table: str | Path, out_dir: str | Path) -> HardPlotsResult:
    """σ(α) with the Eq 6.3 fit and the fixed-α samples' own integrals (their shard statistics
    ``stats_files``), the cross-section table, and the hard-level distributions of the samples' shards
    ``hard_files`` per α."""
    from lhcflow.plots.tables import rows_html
    from lhcflow.plots.thj import HEAVY_LABELS, plot_hard_distributions, plot_sigma_alpha, summary_rows
    from lhcflow.thj import hard
    from lhcflow.thj.record import fixed_alpha_integrals, read_cross_sections

    record = read_cross_sections(cross_sections)
    angles = [settings.alpha_deg[name] for name in stats_files]
    integrals = [fixed_alpha_integrals(files) for files in stats_files.values()]
    plot_sigma_alpha(record["fit_angles_deg"], record["sigma_alpha_pb"], record["sigma_alpha_err_pb"],
                     record["fit"]["parameters"], out_sigma,
                     rf"$pp \to tHj$ ({HEAVY_LABELS[record['heavy']]}), hard process, 13 TeV",
                     independent=(angles, [v for v, _ in integrals], [e for _, e in integrals]))
    with atomic_path(out_table) as tmp:
        Path(tmp).write_text(rows_html("pp → tHj cross sections (hard process)", ("quantity", "value"),
                                       summary_rows(record), note=record["reference"]["note"]))
    samples = {}
    for name, files in hard_files.items():
        events = hard.read_hard_samples(files)
        label = f"α = {settings.alpha_deg[name]:g}°"
        samples[label] = (hard.hard_observables(events), events.weight)
    plot_hard_distributions(samples, out_dir, settings.fmt)
    return HardPlotsResult(list(hard_files))


def shower_stage(settings: ShowerSettings, *, lhe: str | Path, out_root: str | Path, out_meta: str | Path,
                 progress: bool = True) -> ShowerResult:
    """Shower the hard events of ``lhe`` (decays, shower, hadronisation), run the detector, write its ROOT
    file and metadata. No output is left on error."""
    from lhcflow.thj.shower import shower_thj

    meta = shower_thj(lhe, out_root, out_meta, seed=settings.seed, cfg=dict(settings.shower),
                      detector=dict(settings.detector), progress=progress)
    return ShowerResult(meta["n_written"], meta["branching_ratio"], meta["events_per_second"], meta)


def paired_stage(settings: PairedSettings, *, reco: str | Path, hard_events: str | Path,
                 shower_meta: str | Path, out_h5: str | Path, out_cutflow: str | Path,
                 progress: bool = True) -> PairedResult:
    """Pair the ``reco`` events with their ``hard_events``, apply the Table 6.1 selection and write the paired
    dataset (rejected events kept with accepted = 0) and the cut flow. No output is left on error."""
    from lhcflow.thj.paired import build_paired_dataset

    report = build_paired_dataset(reco, hard_events, out_h5, out_cutflow, decay=settings.decay,
                                  shower_meta=shower_meta, selection=dict(settings.selection),
                                  split=dict(settings.split), progress=progress)
    return PairedResult(report["n_paired"], report["steps"][-1]["events"], report)


def fiducial_stage(settings: FiducialSettings, *, cross_sections: str | Path,
                   train_paired: Sequence[str | Path], train_hard: Sequence[str | Path],
                   tests: Mapping[str, tuple[Sequence[str | Path], Sequence[str | Path]]],
                   out_json: str | Path, out_figure: str | Path, out_table: str | Path,
                   out_thesis: str | Path) -> FiducialResult:
    """σ_fid(α) from the training sample's paired and hard shards with the Eq 6.3 fit (Fig 6.2), checked
    against the fixed-α ``tests`` (sample → paired and hard shards), the Table 6.1 cut flow at α = 0 and the
    comparison with Tables 6.1 and 6.2 of the thesis."""
    from lhcflow.plots.tables import rows_html
    from lhcflow.plots.thj import THESIS_HEADER, cut_flow_rows, plot_sigma_alpha, thesis_rows
    from lhcflow.thj import thesis
    from lhcflow.thj.fiducial import run_fiducial
    from lhcflow.thj.record import read_cross_sections

    name = settings.name
    samples = {s: (settings.alpha_deg[s], *files) for s, files in tests.items()}
    record = run_fiducial(name, (train_paired, train_hard), samples, settings.fit_angles_deg,
                          read_cross_sections(cross_sections))
    write_json(out_json, record)
    checks = record["test_samples"].values()
    plot_sigma_alpha(record["fit_angles_deg"], record["sigma_alpha_pb"], record["sigma_alpha_err_pb"],
                     record["fit"]["parameters"], out_figure,
                     rf"$pp \to tHj$, {name}: fiducial (decays, Table 6.1 cuts)",
                     ylabel=r"$\sigma_\mathrm{fid}(\alpha)$ [fb]",
                     independent=([c["alpha_deg"] for c in checks], [c["sigma_pb"] for c in checks],
                                  [c["error_pb"] for c in checks]),
                     labels=(r"training sample reweighted to $\alpha$", r"test sample at fixed $\alpha$"))
    with atomic_path(out_table) as tmp:
        title = f"Cut flow at α = 0, {name} (thesis Table 6.1), heavy = {record['heavy']}"
        header = ("cut", "events", "fraction", "rate [ab]")
        Path(tmp).write_text(rows_html(title, header, cut_flow_rows(record)))
    with atomic_path(out_thesis) as tmp:
        title = f"{name} (heavy = {record['heavy']}) against thesis Tables 6.1 and 6.2"
        Path(tmp).write_text(rows_html(title, THESIS_HEADER, thesis_rows(record),
                                       note=thesis.TOTAL_SIGMA_NOTE))
    return FiducialResult(record["heavy"], record["acceptance"], record["sigma_alpha_pb"], record)
