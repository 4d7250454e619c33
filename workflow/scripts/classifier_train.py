"""Train the truth-vs-generated classifier of one generator."""
import torch

from lhcflow.classifier.stages import TrainSettings, train_stage
from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    cfg = snakemake.params.cfg
    settings = TrainSettings.from_config({"dr_cutoff": cfg["dr_cutoff"], "network": cfg["network"],
                                          "training": cfg["training"], "seed": snakemake.params.seed})
    result = train_stage(settings, truth=snakemake.input.truth, generated=snakemake.input.generated,
                         out_model=snakemake.output.model, out_history=snakemake.output.history,
                         checkpoint=snakemake.params.checkpoint)
    log.info("trained on %d truth and %d generated events", result.n_truth, result.n_generated)
