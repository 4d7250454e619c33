"""BINN uncertainty against the training-set size (thesis Fig. 4.7)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import SizeScanSettings, size_scan_stage

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = SizeScanSettings.from_config({"model": p.model, "magic": p.magic, "fractions": p.fractions,
                                             "n_replicas": p.n_replicas, "n_events": p.n_events,
                                             "seed": p.seed})
    result = size_scan_stage(settings, preprocessing=snakemake.input.pre, nets=list(snakemake.input.nets),
                             out_plot=snakemake.output.plot, out_json=snakemake.output.result)
    log.info("size scan over training fractions %s written to %s", list(settings.fractions),
             snakemake.output.result)
