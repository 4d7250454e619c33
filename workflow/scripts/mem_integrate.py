"""MEM likelihoods p(x_reco|alpha) of the accepted events of one fixed-alpha test sample (Eqs 6.35, 6.39)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import IntegrateSettings, integrate_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) stops after the current event chunk; a rerun resumes from the chunk checkpoints.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    p, inp = snakemake.params, snakemake.input
    settings = IntegrateSettings.from_config({"process": p.process, "integration": p.integration,
                                              "seed": p.seed, "replicas": p.replicas,
                                              "max_events": p.max_events, "device": p.device})
    result = integrate_stage(settings, paired=list(inp.paired), transfer=inp.transfer, sampling=inp.sampling,
                             fiducial=inp.fiducial, acceptance=inp.acceptance[0] if inp.acceptance else None,
                             multiplicity=inp.multiplicity[0] if inp.multiplicity else None,
                             out_h5=snakemake.output.h5, out_stats=snakemake.output.stats,
                             checkpoint_dir=p.checkpoint_dir)
    log.info("%d events in %.1f s on %s: median %.1f iterations, %.0f %% converged", result.n_events,
             result.wall_time_s, result.device, result.median_iterations, 100 * result.converged_fraction)
