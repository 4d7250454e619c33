"""One shard of a generated sample (Pythia 8 Z+jets, or an LHE file showered by Pythia 8)."""
from lhcflow.data.stages import GenerateSettings, generate_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    w = snakemake.wildcards
    settings = GenerateSettings.from_config({"sample": snakemake.params.cfg, "shard": int(w.shard),
                                             "seed": snakemake.params.seed})
    result = generate_stage(settings, out_root=snakemake.output.root, out_meta=snakemake.output.meta)
    log.info("shard %s of %s: %d events written, sigma = %.4g +- %.2g pb", w.shard, w.sample,
             result.n_written, result.sigma_gen_pb, result.sigma_err_pb)
