"""Every showered event of a tHj dataset's alpha-uniform sample in the hard-classifier layout (acceptance labels)."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import HardDatasetSettings, hard_dataset_stage

with log_to(snakemake_log(snakemake)) as log:
    settings = HardDatasetSettings.from_config({"masses": snakemake.params.masses})
    result = hard_dataset_stage(settings, paired=list(snakemake.input), out=snakemake.output[0])
    log.info("%d events written to %s", result.n_events, snakemake.output[0])
