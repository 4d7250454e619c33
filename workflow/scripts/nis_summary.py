"""Aggregate the runs of one experiment into a summary, a CSV table and an HTML table."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import ExperimentSettings, summary_stage

with log_to(snakemake_log(snakemake)) as log:
    settings = ExperimentSettings.from_config({"name": snakemake.wildcards.experiment,
                                               "experiment": snakemake.params.experiment})
    result = summary_stage(settings, runs=list(snakemake.input), out_summary=snakemake.output.summary,
                           out_csv=snakemake.output.csv, out_html=snakemake.output.html)
    log.info("%d rows", len(result.rows))
