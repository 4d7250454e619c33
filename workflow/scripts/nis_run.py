"""One integration run of a neural-importance-sampling experiment (flat MC, VEGAS or MadNIS)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.experiments import run_experiment_point
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current MadNIS checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    experiment = snakemake.params.experiment
    point = int(snakemake.wildcards.point) if experiment.get("scan") else None
    device = None if snakemake.params.device == "auto" else snakemake.params.device
    record = run_experiment_point(experiment, snakemake.wildcards.experiment, snakemake.wildcards.variant, point,
                                  snakemake.params.seed, snakemake.params.n_eval, snakemake.output.result,
                                  snakemake.output.state, device=device, checkpoint=snakemake.params.checkpoint)
    log.info("%s/%s: I = %.6g ± %.2g, σ/I = %.3g, ε = %.3g, %d training calls", snakemake.wildcards.experiment,
             snakemake.wildcards.variant, record["integral"], record["error"], record["rel_std"],
             record["unweighting_efficiency"], record["n_calls_train"])
