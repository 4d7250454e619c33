"""Render the cut flows of all samples as one HTML table for the report."""
from lhcflow.data.stages import cutflow_table_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    result = cutflow_table_stage(cutflows=dict(zip(snakemake.params.samples, snakemake.input)),
                                 out_html=snakemake.output[0])
    log.info("cut flows of %d samples", len(result.cutflows))
