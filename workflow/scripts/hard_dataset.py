"""Hard-process dataset of one hard classifier: x_hard, acceptance and reco jet multiplicity per event."""
from lhcflow.data.stages import HardDatasetSettings, hard_dataset_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = HardDatasetSettings.from_config({"name": snakemake.wildcards.task, "sample": p.sample,
                                                "selection": p.selection, "split": p.split,
                                                "n_slots": p.n_slots, "chunk_size": p.chunk_size})
    result = hard_dataset_stage(settings, roots=snakemake.input.roots, metas=snakemake.input.metas,
                                out=snakemake.output[0])
    log.info("%s: %s", settings.name, result.summary)
