"""Train a transfer network p(x_reco|x_hard) on the accepted training pairs of a tHj dataset."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import train_transfer_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    spec = dict(snakemake.params.spec)
    spec["training"] = {**spec.get("training", {}), "device": snakemake.params.device}
    summary = train_transfer_stage(list(snakemake.input), spec, tuple(snakemake.params.masses), snakemake.params.seed,
                                   snakemake.output.model, snakemake.output.history, snakemake.params.checkpoint)
    log.info("%s transfer: %d training pairs, %d parameters, final val loss %.4f", spec["kind"], summary["n_train"],
             summary["parameters"], summary["val_loss"][-1])
