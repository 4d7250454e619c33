"""MEM likelihoods p(x_reco|alpha) of the accepted events of one fixed-alpha test sample (Eqs 6.35, 6.39)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import integrate_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) stops after the current event chunk; a rerun resumes from the chunk checkpoints.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    stats = integrate_stage(
        list(snakemake.input.paired), snakemake.input.transfer, snakemake.input.sampling, snakemake.input.fiducial,
        snakemake.params.process, snakemake.params.integration, snakemake.params.seed, snakemake.output.h5,
        snakemake.output.stats, snakemake.params.checkpoint_dir,
        acceptance_path=snakemake.input.acceptance[0] if snakemake.input.acceptance else None,
        multiplicity_path=snakemake.input.multiplicity[0] if snakemake.input.multiplicity else None,
        replicas=snakemake.params.replicas, max_events=snakemake.params.max_events, device=snakemake.params.device)
    log.info("%d events in %.1f s on %s: median %.1f iterations, %.0f %% converged", stats["n_events"],
             stats["wall_time_s"], stats["device"], stats["median_iterations"], 100 * stats["converged_fraction"])
