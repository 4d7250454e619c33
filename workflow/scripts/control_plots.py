"""Control plots of one sample: its train/val/test splits overlaid."""
from lhcflow.data.stages import PlotSettings, control_plots_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    settings = PlotSettings.from_config({"fmt": snakemake.params.fmt, "title": snakemake.wildcards.sample})
    result = control_plots_stage(settings, train=snakemake.input.train, val=snakemake.input.val,
                                 test=snakemake.input.test, out_dir=snakemake.output[0])
    log.info("wrote %d figures to %s", len(result.figures), snakemake.output[0])
