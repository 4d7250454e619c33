"""Unweighted Drell-Yan events from a trained MadNIS integrator, written as LHE."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.experiments import write_drell_yan_events

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    device = None if snakemake.params.device == "auto" else snakemake.params.device
    meta = write_drell_yan_events(snakemake.params.experiment, snakemake.params.variant, snakemake.input[0],
                                  snakemake.params.n_events, snakemake.params.seed, snakemake.output.lhe,
                                  snakemake.output.meta, device=device)
    log.info("%s", meta)
