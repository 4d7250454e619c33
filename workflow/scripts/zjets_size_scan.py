"""BINN uncertainty against the training-set size (thesis Fig. 4.7)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import size_scan

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)):
    nets = list(snakemake.input.nets)
    by_size = {f: nets[3 * i:3 * i + 3] for i, f in enumerate(snakemake.params.fractions)}
    size_scan(snakemake.params.model, snakemake.input.pre, by_size, snakemake.params.magic,
              snakemake.params.n_replicas, snakemake.params.n_events, snakemake.params.seed,
              snakemake.output.plot, snakemake.output.result)
