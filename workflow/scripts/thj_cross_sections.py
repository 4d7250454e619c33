"""Factorised tHj cross sections σ_i, σ(α) at the fit angles and the Eq 6.3 parameters."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import CrossSectionSettings, cross_sections_stage

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log:
    settings = CrossSectionSettings.from_config({**snakemake.params.thj, "seed": snakemake.params.seed})
    result = cross_sections_stage(settings, out_json=snakemake.output[0])
    for name, row in result.by_heavy.items():
        log.info("%s: σ(0°) = %.4g ± %.2g pb, σ(180°)/σ(0°) = %.4g ± %.2g", name, row["sigma_0_pb"],
                 row["sigma_0_err_pb"], row["ratio_180_0"], row["ratio_180_0_err"])
    log.info("heavy = %s is used downstream; t share of σ(0°) %.4f ± %.4f", result.heavy,
             result.top_fraction_alpha0, result.top_fraction_alpha0_err)
