"""Train an acceptance or jet-multiplicity classifier on hard-scattering momenta."""
import torch

from lhcflow.classifier.hard import train_hard_stage
from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    summary = train_hard_stage(snakemake.input[0], snakemake.params.task, snakemake.params.seed,
                               snakemake.output.model, snakemake.output.history,
                               checkpoint=snakemake.params.checkpoint)
    log.info("trained on %d events (validation %d)", summary["n_train"], summary["n_val"])
