"""One integration run of a neural-importance-sampling experiment (flat MC, VEGAS or MadNIS)."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.nis.stages import RunSettings, run_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
# SIGTERM (SLURM time limit) ends the job cleanly after the current MadNIS checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    p, w = snakemake.params, snakemake.wildcards
    settings = RunSettings.from_config({
        "experiment": {"name": w.experiment, "experiment": p.experiment, "device": p.device},
        "variant": w.variant, "point": int(w.point), "seed": p.seed, "n_eval": p.n_eval})
    result = run_stage(settings, out_json=snakemake.output.result, out_state=snakemake.output.state,
                       checkpoint=p.checkpoint)
    log.info("%s/%s: I = %.6g ± %.2g, σ/I = %.3g, ε = %.3g, %d training calls", w.experiment, w.variant,
             result.integral, result.error, result.rel_std, result.unweighting_efficiency, result.n_calls_train)
