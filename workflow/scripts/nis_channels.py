"""Channel densities and weights of a trained MadNIS variant (Figs 5.5-5.8, 5.11)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.experiments import channel_figure

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    device = None if snakemake.params.device == "auto" else snakemake.params.device
    channel_figure(snakemake.params.experiment, snakemake.wildcards.variant, list(snakemake.input),
                   snakemake.output[0], device=device)
    log.info("wrote %s", snakemake.output[0])
