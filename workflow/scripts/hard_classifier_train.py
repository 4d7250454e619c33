"""Train an acceptance or jet-multiplicity classifier on hard-scattering momenta."""
import torch

from lhcflow.classifier.stages import HardTrainSettings, train_hard_stage
from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    settings = HardTrainSettings.from_config({"task": snakemake.params.task, "seed": snakemake.params.seed})
    result = train_hard_stage(settings, dataset=snakemake.input[0], out_model=snakemake.output.model,
                              out_history=snakemake.output.history, checkpoint=snakemake.params.checkpoint)
    log.info("trained on %d events (validation %d)", result.n_train, result.n_val)
