"""Ingest one sample (generated shards or user ROOT files) into canonical train/val/test files."""
from lhcflow.data.stages import IngestSettings, ingest_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    p, out = snakemake.params, snakemake.output
    settings = IngestSettings.from_config({"name": snakemake.wildcards.sample, "sample": p.cfg,
                                           "selection": p.selection, "split": p.split,
                                           "chunk_size": p.chunk_size})
    result = ingest_stage(settings, roots=snakemake.input.roots, metas=snakemake.input.metas,
                          out_train=out.train, out_val=out.val, out_test=out.test, out_cutflow=out.cutflow)
    log.info("%s: %s", settings.name, result.splits)
