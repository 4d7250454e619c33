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
    log.info("%s transfer: %d training pairs, %d parameters, kept epoch %d (val loss %.4f); forward-simulated "
             "validation mass outside the selection %s", spec["kind"], summary["n_train"], summary["parameters"],
             summary["best_epoch"], summary["val_loss"][summary["best_epoch"] - 1],
             summary["outside_selection"] and summary["outside_selection"]["any"])
