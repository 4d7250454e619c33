"""One shard of unweighted hard tHj events (LHE + HDF5)."""
import torch

from lhcflow.atomic import write_json
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import run_hard_sample

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    stats = run_hard_sample(snakemake.params.thj, snakemake.wildcards.thj_sample, int(snakemake.wildcards.shard),
                            snakemake.input[0], snakemake.output.lhe, snakemake.output.h5, snakemake.params.seed,
                            progress=True)
    write_json(snakemake.output.stats, stats)
    log.info("%d events, unweighting efficiency %.4f, %d integrand calls", stats["n_events"],
             stats["unweighting_efficiency"], stats["n_calls_train"] + stats["n_calls_eval"])
