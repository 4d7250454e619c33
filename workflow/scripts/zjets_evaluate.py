"""Figures and bulk-deviation metrics of a trained Z+jets generator."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import EvaluateSettings, evaluate_stage

with log_to(snakemake_log(snakemake)) as log:
    settings = EvaluateSettings.from_config({"fmt": snakemake.params.fmt})
    result = evaluate_stage(settings, train=snakemake.input.train, generated=snakemake.input.generated,
                            truth=snakemake.input.truth, histories=list(snakemake.input.histories),
                            out_dir=snakemake.output.plots, out_metrics=snakemake.output.metrics)
    log.info("bulk deviation: %s", result.bulk_deviation)
