"""σ(α) with the Eq 6.3 fit, the cross-section table, and hard-level distributions per α."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import HardPlotsSettings, hard_plots_stage

with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = HardPlotsSettings.from_config({"alpha_deg": {s: p.samples[s]["alpha_deg"] for s in p.files},
                                              "fmt": p.fmt})
    result = hard_plots_stage(settings, cross_sections=snakemake.input.sigma, hard_files=p.files,
                              stats_files=p.stats, out_sigma=snakemake.output.sigma,
                              out_table=snakemake.output.table, out_dir=snakemake.output.distributions)
    log.info("σ(α) figure and %d hard distributions", len(result.samples))
