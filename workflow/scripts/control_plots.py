"""Control plots of one sample: its train/val/test splits overlaid."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.distributions import compare_samples

with log_to(snakemake_log(snakemake)) as log:
    files = {split: [snakemake.input[split]] for split in ("train", "val", "test")}
    written = compare_samples(files, snakemake.output[0], reference="train", fmt=snakemake.params.fmt,
                              title=snakemake.wildcards.sample)
    log.info("wrote %d figures to %s", len(written), snakemake.output[0])
