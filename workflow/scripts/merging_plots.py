"""Merging validation figures of one merged LHE sample from its shards."""
import json

from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.merging import merging_figures

with log_to(snakemake_log(snakemake)) as log:
    metas = [json.loads(open(path).read()) for path in snakemake.input.metas]
    written = merging_figures(snakemake.input.roots, metas, snakemake.output[0], fmt=snakemake.params.fmt,
                              title=snakemake.wildcards.sample)
    log.info("wrote %d figures to %s", len(written), snakemake.output[0])
