"""One shard of a generated sample (Pythia 8 Z+jets, or an LHE file showered by Pythia 8)."""
from lhcflow.generation.shards import generate_shard
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    meta = generate_shard(snakemake.params.cfg, int(snakemake.wildcards.shard), snakemake.params.seed,
                          snakemake.output.root, snakemake.output.meta)
    log.info("shard %s of %s: %d events written, sigma = %.4g +- %.2g pb", snakemake.wildcards.shard,
             snakemake.wildcards.sample, meta["n_written"], meta["sigma_gen_pb"], meta["sigma_err_pb"])
