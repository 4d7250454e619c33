"""Train the truth-vs-generated classifier of one generator."""
import torch

from lhcflow.classifier.stages import train_stage
from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    summary = train_stage(snakemake.input.truth, snakemake.input.generated, snakemake.params.cfg,
                          snakemake.params.seed, snakemake.output.model, snakemake.output.history,
                          checkpoint=snakemake.params.checkpoint)
    log.info("trained on %d truth and %d generated events", summary["n_truth"], summary["n_generated"])
