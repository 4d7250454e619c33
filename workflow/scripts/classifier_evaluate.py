"""Evaluate the classifier metric of one generator on the held-out events (for Bayesian
generators also the mixed pull of Eq. 4.18)."""
import torch

from lhcflow.classifier.stages import EvaluateSettings, evaluate_stage
from lhcflow.logs import log_to, snakemake_log

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    p, inp = snakemake.params, snakemake.input
    settings = EvaluateSettings.from_config({"seed": p.seed, "fmt": p.fmt, "generator": p.generator,
                                             "magic": p.magic, "n_replicas": p.n_replicas})
    result = evaluate_stage(settings, truth=inp.truth, generated=inp.generated, model=inp.model,
                            train=inp.train, preprocessing=inp.pre, nets=list(inp.nets),
                            out_dir=snakemake.output.plots, out_metrics=snakemake.output.metrics)
    log.info("AUC %.4f, generated weights %s", result.auc, result.weights_generated)
