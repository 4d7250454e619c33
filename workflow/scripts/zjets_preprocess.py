"""Fit the Z+jets preprocessing (Eq. 4.3-4.6) and multiplicity fractions on the training split."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import fit_preprocessing

with log_to(snakemake_log(snakemake)) as log:
    state = fit_preprocessing(snakemake.input[0], snakemake.output[0])
    log.info("fitted on %d events; multiplicity fractions %s", state["n_train"], state["fractions"])
