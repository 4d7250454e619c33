"""Analytic closure test of the MEM integration machinery (known smearing, exact reco likelihood, pulls)."""
from pathlib import Path

import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import ClosureSettings, closure_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    settings = ClosureSettings.from_config({"closure": snakemake.params.cfg, "seed": snakemake.params.seed})
    # closure.json and its two figures share one directory
    result = closure_stage(settings, out_dir=Path(snakemake.output.metrics).parent)
    log.info("closure: %s", result.metrics)
