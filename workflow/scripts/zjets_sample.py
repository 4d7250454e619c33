"""Sample events from a trained Z+jets generator chain."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import SampleSettings, sample_stage

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = SampleSettings.from_config({"model": p.model, "magic": p.magic, "n_events": p.n_events,
                                           "seed": p.seed, "batch_size": p.batch_size,
                                           "unweight": p.unweight})
    result = sample_stage(settings, preprocessing=snakemake.input.pre, nets=list(snakemake.input.nets),
                          out_events=snakemake.output.events, out_summary=snakemake.output.timing)
    log.info("%d events, %.0f events/s", result.n_events, result.events_per_s)
