"""Hard-process dataset of one hard classifier: x_hard, acceptance and reco jet multiplicity per event."""
from lhcflow.data.hard import build_hard_dataset
from lhcflow.data.sources import ingest_arguments
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    arguments = ingest_arguments(snakemake.params.sample, snakemake.input.roots, snakemake.input.metas)
    summary = build_hard_dataset(arguments["source"], snakemake.params.selection, snakemake.params.split,
                                 snakemake.output[0], n_slots=snakemake.params.n_slots,
                                 sample_name=snakemake.wildcards.task, chunk_size=snakemake.params.chunk_size)
    log.info("%s: %s", snakemake.wildcards.task, summary)
