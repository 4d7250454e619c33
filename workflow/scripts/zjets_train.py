"""Train one network of the Z+jets generator chain."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm
from lhcflow.zjets.stages import train_network

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    summary = train_network(snakemake.params.model, int(snakemake.wildcards.net), snakemake.input.train,
                            snakemake.input.val, snakemake.input.pre, snakemake.params.magic,
                            snakemake.output.model, snakemake.output.history, snakemake.params.checkpoint,
                            snakemake.params.seed, train_fraction=float(getattr(snakemake.wildcards, "frac", 1.0)))
    log.info("trained on %d events, %.0f events/s", summary["n_train"], summary["train_events_per_s"])
