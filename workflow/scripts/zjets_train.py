"""Train one network of the Z+jets generator chain."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.training.termination import exit_on_sigterm
from lhcflow.zjets.stages import TrainSettings, train_stage

torch.set_num_threads(snakemake.threads)  # one job per core: no oversubscription
# SIGTERM (SLURM time limit) ends the job cleanly after the current checkpoint; a rerun resumes.
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    p, w = snakemake.params, snakemake.wildcards
    settings = TrainSettings.from_config({"model": p.model, "magic": p.magic, "net": int(w.net),
                                          "seed": p.seed, "train_fraction": float(getattr(w, "frac", 1.0))})
    result = train_stage(settings, train=snakemake.input.train, val=snakemake.input.val,
                         preprocessing=snakemake.input.pre, out_model=snakemake.output.model,
                         out_history=snakemake.output.history, checkpoint=p.checkpoint)
    log.info("trained on %d events, %.0f events/s", result.n_train, result.train_events_per_s)
