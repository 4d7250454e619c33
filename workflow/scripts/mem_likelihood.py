"""Likelihood scans, calibration, pulls and integration diagnostics of one MEM setup (Figs 6.7-6.14)."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import likelihood_stage

with log_to(snakemake_log(snakemake)) as log:
    paired = {sample: list(files) for sample, files in snakemake.params.paired.items()}  # sample -> its own shards
    metrics = likelihood_stage(
        list(snakemake.input.integrals), list(snakemake.input.stats), paired, dict(zip(paired, snakemake.params.alpha_deg)),
        snakemake.input.fiducial, snakemake.params.analysis, snakemake.params.label, snakemake.params.seed,
        snakemake.output.metrics, snakemake.output.likelihood, snakemake.output.calibration, snakemake.output.diagnostics,
        cross_sections_json=snakemake.input.cross_sections)
    for sample, m in metrics["samples"].items():
        log.info("%s: %d events, all-event alpha = %.1f deg (hard level %.1f deg), MEM pulls %s", sample, m["n_events"],
                 m["all_events"]["reco"]["alpha_hat_deg"], m["all_events"]["hard"]["alpha_hat_deg"],
                 m["pulls"][f"MEM ({metrics['label']})"])
