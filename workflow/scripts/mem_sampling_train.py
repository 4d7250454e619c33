"""Train the Sampling-cINN q(x_hard|x_reco, alpha) of a tHj dataset for one transfer network."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import train_sampling_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    summary = train_sampling_stage(list(snakemake.input.paired), snakemake.params.spec, snakemake.params.seed,
                                   snakemake.output.model, snakemake.output.history, snakemake.params.checkpoint,
                                   transfer_path=snakemake.input.transfer)
    log.info("sampling (%s): %d training events, kept epoch %d (val loss %.4f)", summary["variant"],
             summary["n_train"], summary["best_epoch"], summary["val_loss"][summary["best_epoch"] - 1])
