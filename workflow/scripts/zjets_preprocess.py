"""Fit the Z+jets preprocessing (Eq. 4.3-4.6), multiplicity fractions and magic means <f>_n on the
training split."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.zjets.stages import PreprocessSettings, preprocess_stage

with log_to(snakemake_log(snakemake)) as log:
    settings = PreprocessSettings.from_config({"magic": snakemake.params.magic})
    result = preprocess_stage(settings, train=snakemake.input[0], out=snakemake.output[0])
    log.info("fitted on %d events; multiplicity fractions %s; magic %s", result.n_train, result.fractions,
             result.state.get("magic"))
