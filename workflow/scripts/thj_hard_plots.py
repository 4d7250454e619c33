"""σ(α) with the Eq 6.3 fit, the cross-section table, and hard-level distributions per α."""
from pathlib import Path

from lhcflow.atomic import atomic_path
from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.tables import rows_html
from lhcflow.plots.thj import HEAVY_LABELS, plot_hard_distributions, plot_sigma_alpha, summary_rows
from lhcflow.thj.stages import fixed_alpha_integrals, hard_observables, read_cross_sections, read_hard_samples

with log_to(snakemake_log(snakemake)) as log:
    record = read_cross_sections(snakemake.input.sigma)
    angles = [snakemake.params.samples[name]["alpha_deg"] for name in snakemake.params.stats]
    integrals = [fixed_alpha_integrals(files) for files in snakemake.params.stats.values()]
    plot_sigma_alpha(record["fit_angles_deg"], record["sigma_alpha_pb"], record["sigma_alpha_err_pb"],
                     record["fit"]["parameters"], snakemake.output.sigma,
                     rf"$pp \to tHj$ ({HEAVY_LABELS[record['heavy']]}), hard process, 13 TeV",
                     independent=(angles, [v for v, _ in integrals], [e for _, e in integrals]))
    with atomic_path(snakemake.output.table) as tmp:
        Path(tmp).write_text(rows_html("pp → tHj cross sections (hard process)", ("quantity", "value"),
                                       summary_rows(record), note=record["reference"]["note"]))
    samples = {}
    for name, files in snakemake.params.files.items():
        events = read_hard_samples(files)
        label = f"α = {snakemake.params.samples[name]['alpha_deg']:g}°"
        samples[label] = (hard_observables(events), events.weight)
    plot_hard_distributions(samples, snakemake.output.distributions, snakemake.params.fmt)
    log.info("σ(α) figure and %d hard distributions", len(samples))
