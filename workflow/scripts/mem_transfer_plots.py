"""Reco-level distributions forward-simulated by a transfer network vs the simulated test samples."""
import torch

from lhcflow.atomic import write_json
from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import transfer_plots_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    samples = list(snakemake.params.samples)
    per_sample = len(snakemake.input.test) // len(samples)
    test = {s: snakemake.input.test[i * per_sample:(i + 1) * per_sample] for i, s in enumerate(samples)}
    worst = transfer_plots_stage(snakemake.input.model, test, dict(zip(samples, snakemake.params.alpha_deg)),
                                 snakemake.output.plots, snakemake.params.seed, snakemake.params.fmt)
    log.info("largest |transfer/simulation - 1| per observable and alpha: %s", worst)
