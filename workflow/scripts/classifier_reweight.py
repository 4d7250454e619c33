"""Write the held-out generated events of one generator with the classifier weights applied."""
from lhcflow.classifier.stages import ReweightSettings, reweight_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    settings = ReweightSettings.from_config({"seed": snakemake.params.seed})
    result = reweight_stage(settings, truth=snakemake.input.truth, generated=snakemake.input.generated,
                            model=snakemake.input.model, out=snakemake.output[0])
    log.info("%d reweighted events written", result.n_events)
