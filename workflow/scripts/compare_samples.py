"""Overlay the test splits of all samples, with ratios to the reference sample."""
from lhcflow.data.stages import PlotSettings, compare_stage
from lhcflow.logs import log_to, snakemake_log

with log_to(snakemake_log(snakemake)) as log:
    p = snakemake.params
    settings = PlotSettings.from_config({"fmt": p.fmt, "reference": p.reference})
    result = compare_stage(settings, samples=dict(zip(p.samples, snakemake.input)),
                           out_dir=snakemake.output[0])
    log.info("wrote %d figures to %s", len(result.figures), snakemake.output[0])
