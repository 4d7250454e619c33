"""Train a transfer network p(x_reco|x_hard) on the accepted training pairs of a tHj dataset."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import TransferSettings, train_transfer_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    p = snakemake.params
    settings = TransferSettings.from_config({"transfer": p.spec, "masses": p.masses, "seed": p.seed,
                                             "device": p.device})
    result = train_transfer_stage(settings, paired=list(snakemake.input), out_model=snakemake.output.model,
                                  out_history=snakemake.output.history, checkpoint=p.checkpoint)
    leak = result.history["outside_selection"]
    log.info("%s transfer: %d training pairs, %d parameters, kept epoch %d (val loss %.4f); "
             "forward-simulated validation mass outside the selection %s", result.history["kind"],
             result.n_train, result.history["parameters"], result.best_epoch, result.best_val_loss,
             leak and leak["any"])
