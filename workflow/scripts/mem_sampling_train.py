"""Train the Sampling-cINN q(x_hard|x_reco, alpha) of a tHj dataset for one transfer network."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import SamplingSettings, train_sampling_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    settings = SamplingSettings.from_config({**snakemake.params.spec, "seed": snakemake.params.seed})
    result = train_sampling_stage(settings, paired=list(snakemake.input.paired),
                                  transfer=snakemake.input.transfer, out_model=snakemake.output.model,
                                  out_history=snakemake.output.history,
                                  checkpoint=snakemake.params.checkpoint)
    log.info("sampling (%s): %d training events, kept epoch %d (val loss %.4f)", settings.variant,
             result.n_train, result.best_epoch, result.best_val_loss)
