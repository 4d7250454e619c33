"""Write the held-out generated events of one generator with the classifier weights applied."""
from lhcflow.classifier.stages import reweight_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    n = reweight_stage(snakemake.input.truth, snakemake.input.generated, snakemake.input.model,
                       snakemake.params.seed, snakemake.output[0])
    log.info("%d reweighted events written", n)
