"""σ_fid(α) with the Eq 6.3 fit (Fig 6.2) and the Table 6.1 cut flow of one reco dataset."""
from lhcflow.logs import log_to, snakemake_log
from lhcflow.thj.stages import FiducialSettings, fiducial_stage

with log_to(snakemake_log(snakemake)) as log:
    p, inp, out = snakemake.params, snakemake.input, snakemake.output
    alpha_deg = {s: p.samples[s]["alpha_deg"] for s in p.test_files}
    settings = FiducialSettings.from_config({"name": snakemake.wildcards.dataset, "alpha_deg": alpha_deg,
                                             "fit_angles_deg": p.fit_angles})
    result = fiducial_stage(settings, cross_sections=inp.sigma, train_paired=inp.train_paired,
                            train_hard=inp.train_hard, tests=p.test_files, out_json=out.json,
                            out_figure=out.figure, out_table=out.table, out_thesis=out.thesis)
    log.info("%s: σ_fid(0) = %.4g fb, acceptance %.3f", settings.name, result.sigma_alpha_pb[3] * 1e3,
             result.acceptance)
