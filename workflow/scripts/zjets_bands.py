"""Bayesian INN uncertainty bands and their decomposition (thesis Eq. 4.13-4.15)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import bayesian_bands

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)) as log:
    bayesian_bands(snakemake.params.model, snakemake.input.pre, list(snakemake.input.nets), snakemake.params.magic,
                   snakemake.params.n_replicas, snakemake.params.n_events, snakemake.params.seed,
                   snakemake.input.train, snakemake.input.truth, snakemake.output.plots,
                   snakemake.output.decomposition, fmt=snakemake.params.fmt)
    log.info("bands from %d replicas written to %s", snakemake.params.n_replicas, snakemake.output.plots)
