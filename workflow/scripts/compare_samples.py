"""Overlay the test splits of all samples, with ratios to the reference sample."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.distributions import compare_samples

with log_to(snakemake_log(snakemake)) as log:
    files = {name: [path] for name, path in zip(snakemake.params.samples, snakemake.input)}
    written = compare_samples(files, snakemake.output[0], reference=snakemake.params.reference,
                              fmt=snakemake.params.fmt)
    log.info("wrote %d figures to %s", len(written), snakemake.output[0])
