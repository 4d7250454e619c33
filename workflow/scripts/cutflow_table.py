"""Render the cut flows of all samples as one HTML table for the report."""
import json

from lhcflow.atomic import atomic_path
from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.tables import cutflow_html

with log_to(snakemake_log(snakemake)):
    cutflows = {name: json.loads(open(path).read()) for name, path in zip(snakemake.params.samples, snakemake.input)}
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(cutflow_html(cutflows))
