"""Reco-level distributions forward-simulated by a transfer network vs the simulated test samples."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import transfer_plots_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    test = {sample: list(files) for sample, files in snakemake.params.paired.items()}  # sample -> its own shards
    metrics = transfer_plots_stage(snakemake.input.model, test, dict(zip(test, snakemake.params.alpha_deg)),
                                   snakemake.output.plots, snakemake.output.metrics, snakemake.params.seed,
                                   snakemake.params.fmt)
    log.info("largest |transfer/simulation - 1| per observable and alpha: %s", metrics["worst_ratio"])
    for sample, leak in metrics["outside_selection"].items():
        log.info("%s: %d events, forward-simulated mass outside the selection %.4f", sample,
                 metrics["events"][sample], leak["any"])
