"""Pair reco events with their hard events, apply the Table 6.1 selection, write the paired dataset."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.paired import build_paired_dataset

with log_to(snakemake_log(snakemake)) as log:
    report = build_paired_dataset(snakemake.input.root, snakemake.input.hard, snakemake.output.h5,
                                  snakemake.output.cutflow, decay=snakemake.params.decay,
                                  shower_meta=snakemake.input.meta, selection=snakemake.params.selection,
                                  split=snakemake.params.split)
    log.info("%d paired events, %d accepted", report["n_paired"], report["steps"][-1]["events"])
