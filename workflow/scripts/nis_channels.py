"""Channel densities and weights of a trained MadNIS variant (Figs 5.5-5.8, 5.11)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import ChannelSettings, ExperimentSettings, channels_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    experiment = ExperimentSettings(snakemake.wildcards.experiment, snakemake.params.experiment,
                                    snakemake.params.device)
    channels_stage(ChannelSettings(experiment, snakemake.wildcards.variant), states=list(snakemake.input),
                   out_path=snakemake.output[0])
    log.info("wrote %s", snakemake.output[0])
