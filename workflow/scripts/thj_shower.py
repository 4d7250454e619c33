"""Pythia decays, shower and hadronization of one hard tHj shard, then the detector stage."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.shower import shower_thj

with log_to(snakemake_log(snakemake)) as log:
    meta = shower_thj(snakemake.input[0], snakemake.output.root, snakemake.output.meta, seed=snakemake.params.seed,
                      cfg=snakemake.params.shower, detector=snakemake.params.detector)
    log.info("%s: %d events showered, BR = %.4g, %.0f events/s", snakemake.wildcards.dataset, meta["n_written"],
             meta["branching_ratio"], meta["events_per_second"])
