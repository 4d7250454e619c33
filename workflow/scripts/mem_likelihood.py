"""Likelihood scans, calibration, pulls and integration diagnostics of one MEM setup (Figs 6.7-6.14)."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import LikelihoodSettings, likelihood_stage

with log_to(snakemake_log(snakemake)) as log:
    p, out = snakemake.params, snakemake.output
    paired = {sample: list(files) for sample, files in p.paired.items()}  # sample -> its own shards
    settings = LikelihoodSettings.from_config({"alpha_deg": dict(zip(paired, p.alpha_deg)),
                                               "analysis": p.analysis, "label": p.label, "seed": p.seed})
    inp = snakemake.input
    result = likelihood_stage(settings, integrals=list(inp.integrals), stats=list(inp.stats),
                              test_paired=paired, fiducial=inp.fiducial, cross_sections=inp.cross_sections,
                              out_metrics=out.metrics, out_likelihood=out.likelihood,
                              out_calibration=out.calibration, out_diagnostics=out.diagnostics)
    for sample, m in result.samples.items():
        log.info("%s: %d events, all-event alpha = %.1f deg (hard level %.1f deg), MEM pulls %s", sample,
                 m["n_events"], m["all_events"]["reco"]["alpha_hat_deg"],
                 m["all_events"]["hard"]["alpha_hat_deg"], m["pulls"][f"MEM ({result.label})"])
