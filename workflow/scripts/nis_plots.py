"""Figures of one experiment from its summary: metrics, variance history, scans, weights."""
import json
from pathlib import Path

from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots import nis as nis_plots

with log_to(snakemake_log(snakemake)) as log:
    summary = json.loads(Path(snakemake.input[0]).read_text())
    out = Path(snakemake.output[0])
    out.mkdir(parents=True, exist_ok=True)
    fmt = snakemake.params.fmt
    nis_plots.plot_results(summary, out / f"metrics.{fmt}")
    nis_plots.plot_weight_distributions(summary, out / f"weights.{fmt}")
    if summary["histories"]:
        nis_plots.plot_variance_history(summary, out / f"variance_history.{fmt}")
    if summary["scan"]:
        # the deviation from the first scan point is meaningful when the integral stays the same
        # (a method setting such as R), not when the integrand changes (the Z' width)
        nis_plots.plot_scan(summary, out / f"scan.{fmt}", deviation=summary["scan"]["target"] == "config")
        # the integral itself: an integrator that misses a narrow peak has a small error and a wrong value
        nis_plots.plot_scan(summary, out / f"scan_integral.{fmt}", metric="integral", deviation=False)
    log.info("plots in %s", out)
