"""Evaluate the classifier metric of one generator on the held-out events (for Bayesian
generators also the mixed pull of Eq. 4.18)."""
import torch

from lhcflow.classifier.stages import evaluate_stage
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.chain import MagicSettings, ModelSettings, load_chain

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    generator = snakemake.params.generator
    chain = None
    if generator["kind"] == "binn":
        chain = load_chain(ModelSettings.from_config(generator), MagicSettings.from_config(snakemake.params.magic),
                           snakemake.input.pre, list(snakemake.input.nets))
    metrics = evaluate_stage(snakemake.input.truth, snakemake.input.generated, snakemake.input.model,
                             snakemake.params.seed, snakemake.output.plots, snakemake.output.metrics,
                             fmt=snakemake.params.fmt, bayesian_chain=chain, n_replicas=snakemake.params.n_replicas,
                             train_path=snakemake.input.train)
    log.info("AUC %.4f, generated weights %s", metrics["auc"], metrics["weights_generated"])
