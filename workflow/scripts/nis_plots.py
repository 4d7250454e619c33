"""Figures of one experiment from its summary: metrics, variance history, scans, weights."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import PlotsSettings, plots_stage

with log_to(snakemake_log(snakemake)) as log:
    settings = PlotsSettings.from_config({"fmt": snakemake.params.fmt})
    result = plots_stage(settings, summary_json=snakemake.input[0], out_dir=snakemake.output[0])
    log.info("%d plots in %s", len(result.figures), snakemake.output[0])
