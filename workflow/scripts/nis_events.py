"""Unweighted Drell-Yan events from a trained MadNIS integrator, written as LHE."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import EventsSettings, ExperimentSettings, events_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    experiment = ExperimentSettings(snakemake.config["nis"]["events"]["experiment"], p.experiment, p.device)
    settings = EventsSettings(experiment, p.variant, p.n_events, p.seed)
    meta = events_stage(settings, state=snakemake.input[0], out_lhe=snakemake.output.lhe,
                        out_meta=snakemake.output.meta)
    log.info("%s", meta)
