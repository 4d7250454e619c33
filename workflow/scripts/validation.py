"""The thesis-comparison report of the run, restricted to the outputs this run's config produces."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.validation.stages import validation_stage

with log_to(snakemake_log(snakemake)) as log:
    out = snakemake.output
    result = validation_stage(results=snakemake.params.results, outputs=list(snakemake.input),
                              front_page=snakemake.params.front_page, out_json=out.json, out_html=out.html,
                              out_front_page=out.front_page)
    log.info("validation: %s", result.summary)
    for row in result.rows:
        log.info("%-7s %s / %s: %s", row["status"], row["chain"], row["group"], row["quantity"])
