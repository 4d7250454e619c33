"""σ_fid(α) with the Eq 6.3 fit (Fig 6.2) and the Table 6.1 cut flow of one reco dataset."""
from pathlib import Path

from lhcflow.atomic import atomic_path, write_json
from lhcflow.logs import log_to, snakemake_log
from lhcflow.plots.tables import rows_html
from lhcflow.plots.thj import THESIS_HEADER, cut_flow_rows, plot_sigma_alpha, thesis_rows
from lhcflow.thj.fiducial import run_fiducial
from lhcflow.thj.stages import read_cross_sections
from lhcflow.thj.thesis import TOTAL_SIGMA_NOTE

with log_to(snakemake_log(snakemake)) as log:
    name = snakemake.wildcards.dataset
    tests = {s: (snakemake.params.samples[s]["alpha_deg"], *files) for s, files in snakemake.params.test_files.items()}
    record = run_fiducial(name, (snakemake.input.train_paired, snakemake.input.train_hard), tests,
                          snakemake.params.fit_angles, read_cross_sections(snakemake.input.sigma))
    write_json(snakemake.output.json, record)
    checks = record["test_samples"].values()
    plot_sigma_alpha(record["fit_angles_deg"], record["sigma_alpha_pb"], record["sigma_alpha_err_pb"],
                     record["fit"]["parameters"], snakemake.output.figure,
                     rf"$pp \to tHj$, {name}: fiducial (decays, Table 6.1 cuts)",
                     ylabel=r"$\sigma_\mathrm{fid}(\alpha)$ [fb]",
                     independent=([c["alpha_deg"] for c in checks], [c["sigma_pb"] for c in checks],
                                  [c["error_pb"] for c in checks]),
                     labels=(r"training sample reweighted to $\alpha$", r"test sample at fixed $\alpha$"))
    with atomic_path(snakemake.output.table) as tmp:
        Path(tmp).write_text(rows_html(f"Cut flow at α = 0, {name} (thesis Table 6.1), heavy = {record['heavy']}",
                                       ("cut", "events", "fraction", "rate [ab]"), cut_flow_rows(record)))
    with atomic_path(snakemake.output.thesis) as tmp:
        Path(tmp).write_text(rows_html(f"{name} (heavy = {record['heavy']}) against thesis Tables 6.1 and 6.2",
                                       THESIS_HEADER, thesis_rows(record), note=TOTAL_SIGMA_NOTE))
    log.info("%s: σ_fid(0) = %.4g fb, acceptance %.3f", name, record["sigma_alpha_pb"][3] * 1e3, record["acceptance"])
