"""The thesis-comparison report of the run, restricted to the outputs this run's config produces."""
from pathlib import Path

from lhcflow.logs import log_to, snakemake_log
from lhcflow.validation import validate

with log_to(snakemake_log(snakemake)) as log:
    payload = validate(snakemake.params.results, json_path=snakemake.output.json, html_path=snakemake.output.html,
                       rst_path=snakemake.output.front_page, front_page=Path(snakemake.params.front_page).read_text(),
                       only=[str(p) for p in snakemake.input])
    log.info("validation: %s", payload["summary"])
    for row in payload["rows"]:
        log.info("%-7s %s / %s: %s", row["status"], row["chain"], row["group"], row["quantity"])
