# Validation against the thesis: one row per claim the run's outputs can test (lhcflow.validation).
# Its table is the front page of the Snakemake report (see the `report:` directive in the Snakefile).

VALIDATION_DIR = f"{RESULTS}/validation"


rule validation:
    """validation.json and validation.html: our value, the thesis's, the target and the verdict per claim."""
    message:
        "Validation against the thesis"
    input:
        run_info=rules.run_info.output[0],
        outputs=[rules.zjets_all.input, rules.classifier_all.input, rules.nis_all.input, rules.thj_all.input,
                 rules.mem_all.input],
        metrics=[*expand(rules.nis_summary.output.summary, experiment=NIS_EXPERIMENTS),
                 *(fill(rules.mem_transfer_plots.output.metrics, dataset=d, transfer=t)
                   for d, t in MEM_ANALYSES)],
    output:
        json=f"{VALIDATION_DIR}/validation.json",
        html=report(f"{VALIDATION_DIR}/validation.html", caption="../report/validation.rst",
                    category="0. Validation against the thesis"),
        front_page=f"{VALIDATION_DIR}/front_page.rst",
    log:
        f"{RESULTS}/logs/validation.log",
    params:
        results=lambda w, input: os.path.dirname(input.run_info),
        front_page="workflow/report/workflow.rst",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min(10),
    conda:
        "../../envs/mem.yaml"  # the tHj rows use lhcflow.thj (torch)
    script:
        "../scripts/validation.py"
