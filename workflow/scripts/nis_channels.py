"""Channel densities and weights of a trained MadNIS variant (Figs 5.5-5.8, 5.11)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import ChannelSettings, channels_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    p, w = snakemake.params, snakemake.wildcards
    settings = ChannelSettings.from_config({
        "experiment": {"name": w.experiment, "experiment": p.experiment, "device": p.device},
        "variant": w.variant})
    result = channels_stage(settings, states=list(snakemake.input), out_path=snakemake.output[0])
    log.info("wrote %s", result.figure)
