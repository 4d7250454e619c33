"""Learned vs true acceptance or multiplicity probabilities on the test split (Figs 6.15, 6.20)."""
import torch

from lhcflow.classifier.stages import HardEvaluateSettings, evaluate_hard_stage
from lhcflow.logs import log_to, snakemake_log

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    settings = HardEvaluateSettings.from_config({"fmt": snakemake.params.fmt,
                                                 "slot_labels": snakemake.params.task["slot_labels"]})
    result = evaluate_hard_stage(settings, dataset=snakemake.input.dataset, model=snakemake.input.model,
                                 out_dir=snakemake.output.plots, out_metrics=snakemake.output.metrics)
    log.info("%s", {k: v for k, v in result.metrics.items() if k != "observables"})
