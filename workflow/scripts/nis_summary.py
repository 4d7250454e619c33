"""Aggregate the runs of one experiment into a summary, a CSV table and an HTML table."""
from lhcflow.atomic import write_json
from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.experiments import summarize_experiment, write_tables

with log_to(snakemake_log(snakemake)) as log:
    summary = summarize_experiment(snakemake.wildcards.experiment, snakemake.params.experiment, list(snakemake.input))
    write_json(snakemake.output.summary, summary)
    write_tables(summary, snakemake.output.csv, snakemake.output.html)
    log.info("%d rows", len(summary["rows"]))
