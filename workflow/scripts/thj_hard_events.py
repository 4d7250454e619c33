"""One shard of unweighted hard tHj events (LHE + HDF5)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import HardEventsSettings, hard_events_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    thj, name = snakemake.params.thj, snakemake.wildcards.thj_sample
    settings = HardEventsSettings.from_config({
        "name": name, "sample": thj["samples"][name], "shard": int(snakemake.wildcards.shard),
        "process": thj["process"], "integrator": thj["integrator"], "device": thj["device"],
        "seed": snakemake.params.seed})
    result = hard_events_stage(settings, cross_sections=snakemake.input[0], out_lhe=snakemake.output.lhe,
                               out_h5=snakemake.output.h5, out_stats=snakemake.output.stats, progress=True)
    log.info("%d events, unweighting efficiency %.4f, %d integrand calls", result.n_events,
             result.unweighting_efficiency, result.n_calls)
