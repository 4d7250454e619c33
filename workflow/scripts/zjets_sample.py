"""Sample events from a trained Z+jets generator chain."""
import torch

from lhcflow.atomic import write_json
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import sample_chain

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)) as log:
    timing = sample_chain(snakemake.params.model, snakemake.input.pre, list(snakemake.input.nets),
                          snakemake.params.magic, snakemake.params.n_events, snakemake.params.seed,
                          snakemake.output.events, batch_size=snakemake.params.batch_size,
                          unweight=snakemake.params.unweight)
    write_json(snakemake.output.timing, timing)
    log.info("%d events, %.0f events/s", timing["n_events"], timing["events_per_s"])
