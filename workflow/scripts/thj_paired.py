"""Pair reco events with their hard events, apply the Table 6.1 selection, write the paired dataset."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import PairedSettings, paired_stage

with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = PairedSettings.from_config({"decay": p.decay, "selection": p.selection, "split": p.split})
    result = paired_stage(settings, reco=snakemake.input.root, hard_events=snakemake.input.hard,
                          shower_meta=snakemake.input.meta, out_h5=snakemake.output.h5,
                          out_cutflow=snakemake.output.cutflow)
    log.info("%d paired events, %d accepted", result.n_paired, result.n_accepted)
