"""Reco-level distributions forward-simulated by a transfer network vs the simulated test samples."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import TransferPlotsSettings, transfer_plots_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    test = {sample: list(files) for sample, files in p.paired.items()}  # sample -> its own shards
    settings = TransferPlotsSettings.from_config({"alpha_deg": dict(zip(test, p.alpha_deg)), "seed": p.seed,
                                                  "fmt": p.fmt})
    result = transfer_plots_stage(settings, model=snakemake.input.model, test_paired=test,
                                  out_dir=snakemake.output.plots, out_metrics=snakemake.output.metrics)
    log.info("largest |transfer/simulation - 1| per observable and alpha: %s", result.worst_ratio)
    for sample, leak in result.outside_selection.items():
        log.info("%s: %d events, forward-simulated mass outside the selection %.4f", sample,
                 result.events[sample], leak["any"])
