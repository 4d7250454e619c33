"""Ingest one sample (generated shards or user ROOT files) into canonical train/val/test files."""
from lhcflow.data.ingest import ingest_sample
from lhcflow.data.sources import add_generation_steps, ingest_arguments
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    arguments = ingest_arguments(snakemake.params.cfg, snakemake.input.roots, snakemake.input.metas)
    cutflow = ingest_sample(
        selection=snakemake.params.selection,
        split=snakemake.params.split,
        outputs={split: snakemake.output[split] for split in ("train", "val", "test")},
        cutflow_path=snakemake.output.cutflow,
        sample_name=snakemake.wildcards.sample,
        chunk_size=snakemake.params.chunk_size,
        **arguments,
    )
    cutflow = add_generation_steps(snakemake.output.cutflow, snakemake.input.metas)
    log.info("%s: %s", snakemake.wildcards.sample, cutflow["splits"])
