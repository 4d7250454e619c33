"""Fit the Z+jets preprocessing (Eq. 4.3-4.6), multiplicity fractions and magic means <f>_n on the
training split."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import fit_preprocessing

with log_to(snakemake_log(snakemake)) as log:
    state = fit_preprocessing(snakemake.input[0], snakemake.output[0], snakemake.params.magic)
    log.info("fitted on %d events; multiplicity fractions %s; magic %s", state["n_train"], state["fractions"],
             state.get("magic"))
