"""Record the run's provenance: resolved config, package versions, git commit, seeds."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.provenance import run_info
from lhcflow.atomic import write_json

with log_to(snakemake_log(snakemake)):
    write_json(snakemake.output[0], run_info(snakemake.params.config))
