"""Every showered event of a tHj dataset's alpha-uniform sample in the hard-classifier layout (acceptance labels)."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.data import write_hard_dataset

with log_to(snakemake_log(snakemake)) as log:
    n = write_hard_dataset(list(snakemake.input), snakemake.output[0], tuple(snakemake.params.masses))
    log.info("%d events written to %s", n, snakemake.output[0])
