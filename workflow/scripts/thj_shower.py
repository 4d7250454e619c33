"""Pythia decays, shower and hadronization of one hard tHj shard, then the detector stage."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import ShowerSettings, shower_stage

with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = ShowerSettings.from_config({"shower": p.shower, "detector": p.detector, "seed": p.seed})
    result = shower_stage(settings, lhe=snakemake.input[0], out_root=snakemake.output.root,
                          out_meta=snakemake.output.meta)
    log.info("%s: %d events showered, BR = %.4g, %.0f events/s", snakemake.wildcards.dataset,
             result.n_written, result.branching_ratio, result.events_per_second)
