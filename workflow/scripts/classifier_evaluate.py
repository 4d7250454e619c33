"""Evaluate the classifier metric of one generator on the held-out events."""
import torch

from lhcflow.classifier.stages import evaluate_stage
from lhcflow.logs import log_to, snakemake_log

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    metrics = evaluate_stage(snakemake.input.truth, snakemake.input.generated, snakemake.input.model,
                             snakemake.params.seed, snakemake.output.plots, snakemake.output.metrics,
                             fmt=snakemake.params.fmt)
    log.info("AUC %.4f, generated weights %s", metrics["auc"], metrics["weights_generated"])
