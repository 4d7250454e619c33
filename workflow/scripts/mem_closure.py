"""Analytic closure test of the MEM integration machinery (known smearing, exact reco likelihood, pulls)."""
from pathlib import Path

import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.closure import run_closure

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    metrics = run_closure(snakemake.params.cfg, Path(snakemake.output.metrics).parent, snakemake.params.seed)
    log.info("closure: %s", metrics)
