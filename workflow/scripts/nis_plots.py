"""Figures of one experiment from its summary: metrics, variance history, scans, weights."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import plots_stage

with log_to(snakemake_log(snakemake)) as log:
    plots_stage(snakemake.params.fmt, summary_json=snakemake.input[0], out_dir=snakemake.output[0])
    log.info("plots in %s", snakemake.output[0])
