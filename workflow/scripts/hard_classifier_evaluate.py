"""Learned vs true acceptance or multiplicity probabilities on the test split (Figs 6.15, 6.20)."""
import torch

from lhcflow.atomic import write_json
from lhcflow.classifier.hard import evaluate_hard_stage
from lhcflow.logs import log_to, snakemake_log

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    metrics = evaluate_hard_stage(snakemake.input.dataset, snakemake.input.model, snakemake.output.plots,
                                  fmt=snakemake.params.fmt, slot_labels=snakemake.params.task["slot_labels"])
    write_json(snakemake.output.metrics, metrics)
    log.info("%s", {k: v for k, v in metrics.items() if k != "observables"})
