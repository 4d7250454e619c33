"""Bayesian INN uncertainty bands and their decomposition (thesis Eq. 4.13-4.15)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import BandsSettings, bands_stage

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = BandsSettings.from_config({"model": p.model, "magic": p.magic, "n_replicas": p.n_replicas,
                                          "n_events": p.n_events, "seed": p.seed, "fmt": p.fmt})
    inp = snakemake.input
    result = bands_stage(settings, preprocessing=inp.pre, nets=list(inp.nets), train=inp.train,
                         truth=inp.truth, out_dir=snakemake.output.plots,
                         out_json=snakemake.output.decomposition)
    log.info("bands from %d replicas written to %s", result.n_replicas, snakemake.output.plots)
