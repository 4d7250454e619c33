"""Figures and bulk-deviation metrics of a trained Z+jets generator."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import evaluate_generator

with log_to(snakemake_log(snakemake)) as log:
    metrics = evaluate_generator(snakemake.input.train, snakemake.input.generated, snakemake.input.truth,
                                 list(snakemake.input.histories), snakemake.output.plots,
                                 snakemake.output.metrics, fmt=snakemake.params.fmt)
    log.info("bulk deviation: %s", metrics["bulk_deviation"])
