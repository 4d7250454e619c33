"""Fig 6.13: MEM integration with samplers trained on true pairs or on the learned transfer, without and with VEGAS."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import diagnostics_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    samplers = dict(zip(("true_pairs", "transfer"), snakemake.input.samplers))
    summary = diagnostics_stage(
        list(snakemake.input.paired), snakemake.input.transfer, samplers, snakemake.input.fiducial,
        snakemake.params.process, snakemake.params.integration, snakemake.params.n_events, snakemake.params.seed,
        snakemake.output.json, snakemake.output.figure, snakemake.params.checkpoint_dir,
        acceptance_path=snakemake.input.acceptance[0] if snakemake.input.acceptance else None,
        multiplicity_path=snakemake.input.multiplicity[0] if snakemake.input.multiplicity else None,
        device=snakemake.params.device)
    for label, row in summary["setups"].items():
        log.info("%s: %s", label, row)
