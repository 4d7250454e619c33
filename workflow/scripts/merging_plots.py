"""Merging validation figures of one merged LHE sample from its shards."""
from lhcflow.data.stages import PlotSettings, merging_plots_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    settings = PlotSettings.from_config({"fmt": snakemake.params.fmt, "title": snakemake.wildcards.sample})
    result = merging_plots_stage(settings, roots=snakemake.input.roots, metas=snakemake.input.metas,
                                 out_dir=snakemake.output[0])
    log.info("wrote %d figures to %s", len(result.figures), snakemake.output[0])
