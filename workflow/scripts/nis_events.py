"""Unweighted Drell-Yan events from a trained MadNIS integrator, written as LHE."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import EventsSettings, events_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = EventsSettings.from_config({
        "experiment": {"name": snakemake.config["nis"]["events"]["experiment"], "experiment": p.experiment,
                       "device": p.device},
        "variant": p.variant, "n_events": p.n_events, "seed": p.seed})
    result = events_stage(settings, state=snakemake.input[0], out_lhe=snakemake.output.lhe,
                          out_meta=snakemake.output.meta)
    log.info("%s", result.meta)
