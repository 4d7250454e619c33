"""Record the run's provenance: resolved config, package versions, git commit, seeds."""
from lhcflow.data.stages import RunInfoSettings, run_info_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    settings = RunInfoSettings.from_config({"config": snakemake.params.config})
    result = run_info_stage(settings, out=snakemake.output[0])
    log.info("git commit %s", result.record["git_commit"])
