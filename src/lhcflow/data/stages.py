"""The data layer as workflow stages: generate or shower a shard, ingest a sample, control plots, the cut-flow
table, merging figures and the run's provenance.

Every stage takes one frozen settings object (built once from the validated config by its ``from_config``)
and its files as keyword-only arguments, reads and writes files only, and returns a frozen result.

* :func:`generate_stage` — one shard of a generated sample: Pythia 8 Z+jets (kind pythia) or an LHE file
  showered by Pythia 8 (kind lhe), FastJet jets, a NanoAOD-like ntuple and its metadata.
* :func:`ingest_stage` — a sample's ntuples or ROOT files in the canonical format, selected and split.
* :func:`hard_dataset_stage` — every event of a generated sample with its hard-process momenta, acceptance
  and reco jet multiplicity: the inputs of the hard classifiers (:mod:`lhcflow.classifier.stages`).
* :func:`control_plots_stage`, :func:`compare_stage` — one sample's splits overlaid, all samples overlaid.
* :func:`cutflow_table_stage` — every sample's cut flow as one HTML table.
* :func:`merging_plots_stage` — the merging validation figures of a merged LHE sample.
* :func:`run_info_stage` — resolved config, package versions, git commit and seeds of the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhcflow.atomic import atomic_path, write_json
from lhcflow.settings import Settings

# ----------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class GenerateSettings(Settings):
    """Shard ``shard`` of a generated ``sample`` (its ``samples.<name>`` block, kind pythia or lhe),
    ``seed``."""

    sample: Mapping[str, Any]
    shard: int
    seed: int


@dataclass(frozen=True)
class IngestSettings(Settings):
    """Sample ``name`` (its ``samples.<name>`` block ``sample``): its ``selection``, the ``split`` (fractions
    and seed) and ``chunk_size`` events read at a time."""

    name: str
    sample: Mapping[str, Any]
    selection: Mapping[str, Any]
    split: Mapping[str, Any]
    chunk_size: int = 100_000


@dataclass(frozen=True)
class HardDatasetSettings(Settings):
    """The hard dataset ``name`` of a generated ``sample`` (its config block): the reco ``selection`` that
    defines acceptance, the ``split`` (fractions, seed), ``n_slots`` hard particles, ``chunk_size`` events
    read at a time."""

    name: str
    sample: Mapping[str, Any]
    selection: Mapping[str, Any]
    split: Mapping[str, Any]
    n_slots: int
    chunk_size: int = 100_000


@dataclass(frozen=True)
class PlotSettings(Settings):
    """Figures in format ``fmt`` titled ``title``; overlays take their ratios to the sample ``reference``."""

    fmt: str = "png"
    title: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class RunInfoSettings(Settings):
    """The run's validated ``config``."""

    config: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GenerateResult:
    """Events written, the generator's cross section and its error (pb), and the shard metadata."""

    n_written: int
    sigma_gen_pb: float
    sigma_err_pb: float
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class IngestResult:
    """Events per split and the written cut flow."""

    splits: Mapping[str, Any]
    cutflow: Mapping[str, Any]


@dataclass(frozen=True)
class HardDatasetResult:
    """Events, accepted events, the weighted acceptance and the whole summary."""

    events: int
    accepted: int
    acceptance: float
    summary: Mapping[str, Any]


@dataclass(frozen=True)
class FiguresResult:
    """The figures written."""

    figures: Sequence[Path]


@dataclass(frozen=True)
class CutflowTableResult:
    """The cut flows of the table, by sample."""

    cutflows: Mapping[str, Any]


@dataclass(frozen=True)
class RunInfoResult:
    """The written provenance record."""

    record: Mapping[str, Any]


# ----------------------------------------------------------------------------------------- stages


def generate_stage(settings: GenerateSettings, *, out_root: str | Path, out_meta: str | Path,
                   progress: bool = True) -> GenerateResult:
    """Generate (kind ``pythia``) or shower (kind ``lhe``) one shard into ``out_root`` and its metadata."""
    from lhcflow.generation.shards import generate_shard

    meta = generate_shard(dict(settings.sample), settings.shard, settings.seed, out_root, out_meta,
                          progress=progress)
    return GenerateResult(meta["n_written"], meta["sigma_gen_pb"], meta["sigma_err_pb"], meta)


def ingest_stage(settings: IngestSettings, *, roots: Sequence[str | Path], metas: Sequence[str | Path] = (),
                 out_train: str | Path, out_val: str | Path, out_test: str | Path, out_cutflow: str | Path,
                 progress: bool = True) -> IngestResult:
    """Map the sample's ROOT files ``roots`` (with the shard metadata ``metas`` of a generated sample) onto
    the canonical format, apply the selection and split the events by a seeded hash; the cut flow (with the
    generation steps of a showered LHE sample) goes to ``out_cutflow``. No output is left on error."""
    from lhcflow.data.ingest import ingest_sample
    from lhcflow.data.sources import add_generation_steps, ingest_arguments

    ingest_sample(selection=dict(settings.selection), split=dict(settings.split),
                  outputs={"train": out_train, "val": out_val, "test": out_test}, cutflow_path=out_cutflow,
                  sample_name=settings.name, chunk_size=settings.chunk_size, progress=progress,
                  **ingest_arguments(dict(settings.sample), roots, metas))
    cutflow = add_generation_steps(out_cutflow, metas)
    return IngestResult(cutflow["splits"], cutflow)


def hard_dataset_stage(settings: HardDatasetSettings, *, roots: Sequence[str | Path],
                       metas: Sequence[str | Path], out: str | Path,
                       progress: bool = True) -> HardDatasetResult:
    """Every event of the generated sample (its shard ntuples ``roots`` and metadata ``metas``) with its
    hard-process momenta, whether it passes the reco selection and its reco jet multiplicity, split like
    ingestion. No output is left on error."""
    from lhcflow.data.hard import build_hard_dataset
    from lhcflow.data.sources import ingest_arguments

    arguments = ingest_arguments(settings.sample, roots, metas)
    summary = build_hard_dataset(arguments["source"], settings.selection, settings.split, out,
                                 n_slots=settings.n_slots, sample_name=settings.name,
                                 chunk_size=settings.chunk_size, progress=progress)
    return HardDatasetResult(summary["events"], summary["accepted"], summary["acceptance"], summary)


def control_plots_stage(settings: PlotSettings, *, train: str | Path, val: str | Path, test: str | Path,
                        out_dir: str | Path) -> FiguresResult:
    """One sample's train, validation and test splits overlaid (normalised, ratio to train)."""
    from lhcflow.plots.distributions import compare_samples

    files = {"train": [train], "val": [val], "test": [test]}
    return FiguresResult(compare_samples(files, out_dir, reference="train", fmt=settings.fmt,
                                         title=settings.title))


def compare_stage(settings: PlotSettings, *, samples: Mapping[str, str | Path],
                  out_dir: str | Path) -> FiguresResult:
    """The test splits of all ``samples`` (name → file) overlaid, with ratios to the reference sample."""
    from lhcflow.plots.distributions import compare_samples

    files = {name: [path] for name, path in samples.items()}
    return FiguresResult(compare_samples(files, out_dir, reference=settings.reference, fmt=settings.fmt))


def cutflow_table_stage(*, cutflows: Mapping[str, str | Path], out_html: str | Path) -> CutflowTableResult:
    """The cut flows (sample name → cut-flow JSON) as one HTML table (nothing in it is configurable)."""
    from lhcflow.plots.tables import cutflow_html

    records = {name: json.loads(Path(path).read_text()) for name, path in cutflows.items()}
    with atomic_path(out_html) as tmp:
        tmp.write_text(cutflow_html(records))
    return CutflowTableResult(records)


def merging_plots_stage(settings: PlotSettings, *, roots: Sequence[str | Path], metas: Sequence[str | Path],
                        out_dir: str | Path) -> FiguresResult:
    """Differential jet rates and jet pT split by the LHE parton multiplicity of a merged LHE sample's
    shards."""
    from lhcflow.plots.merging import merging_figures

    records = [json.loads(Path(path).read_text()) for path in metas]
    return FiguresResult(merging_figures(roots, records, out_dir, fmt=settings.fmt,
                                         title=settings.title or ""))


def run_info_stage(settings: RunInfoSettings, *, out: str | Path) -> RunInfoResult:
    """The run's provenance: resolved config, package versions, git commit, seeds."""
    from lhcflow.provenance import run_info

    record = run_info(settings.config)
    write_json(out, record)
    return RunInfoResult(record)
