"""One integration run of a neural-importance-sampling experiment (flat MC, VEGAS or MadNIS)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import ExperimentSettings, RunSettings, run_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current MadNIS checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    w = snakemake.wildcards
    experiment = ExperimentSettings(w.experiment, snakemake.params.experiment, snakemake.params.device)
    settings = RunSettings(experiment, w.variant, int(w.point), snakemake.params.seed, snakemake.params.n_eval)
    result = run_stage(settings, out_json=snakemake.output.result, out_state=snakemake.output.state,
                       checkpoint=snakemake.params.checkpoint)
    log.info("%s/%s: I = %.6g ± %.2g, σ/I = %.3g, ε = %.3g, %d training calls", w.experiment, w.variant,
             result.integral, result.error, result.rel_std, result.unweighting_efficiency, result.n_calls_train)
