# Control plots of the canonical datasets (hist + mplhep), the cut-flow table and the merging validation.


rule control_plots:
    """Per sample: train, validation and test splits overlaid (normalised, ratio to train)."""
    message:
        "Control plots of sample {wildcards.sample}"
    input:
        train=rules.ingest.output.train,
        val=rules.ingest.output.val,
        test=rules.ingest.output.test,
    output:
        report(
            directory(f"{RESULTS}/plots/control/{{sample}}"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/control_plots.rst",
            category="Control plots",
            subcategory="{sample}",
            labels={"sample": "{sample}", "observable": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/plots/control_{{sample}}.log",
    params:
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/control_plots.py"


rule compare_samples:
    """All samples' test splits overlaid (normalised, ratio to the reference sample)."""
    message:
        "Compare all samples"
    input:
        expand(rules.ingest.output.test, sample=config["samples"]),
    output:
        report(
            directory(f"{RESULTS}/plots/compare"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/compare_samples.rst",
            category="Sample comparison",
            labels={"observable": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/plots/compare_samples.log",
    params:
        samples=list(config["samples"]),
        reference=config["plots"]["reference"],
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/compare_samples.py"


rule cutflow_table:
    """Every sample's cut flow (events and sum of weights per selection step) as one table."""
    message:
        "Cut-flow table of all samples"
    input:
        expand(rules.ingest.output.cutflow, sample=config["samples"]),
    output:
        report(f"{RESULTS}/plots/cutflow.html", caption="../report/cutflow.rst", category="Cut flow"),
    log:
        f"{RESULTS}/logs/plots/cutflow_table.log",
    params:
        samples=list(config["samples"]),
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min(5),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/cutflow_table.py"


rule merging_plots:
    """Merging validation of a merged LHE sample (MLM or CKKW-L): differential jet rates and jet pT spectra
    split by the LHE parton multiplicity, with the merging scale marked."""
    message:
        "Merging validation plots of sample {wildcards.sample}"
    input:
        roots=lambda w: shard_files(w.sample, "root"),
        metas=lambda w: shard_files(w.sample, "meta"),
    output:
        report(
            directory(f"{RESULTS}/plots/merging/{{sample}}"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/merging.rst",
            category="Merging validation",
            subcategory="{sample}",
            labels={"sample": "{sample}", "observable": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/plots/merging_{{sample}}.log",
    params:
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/merging_plots.py"


rule plots_all:
    input:
        expand(rules.control_plots.output[0], sample=config["samples"]),
        expand(rules.merging_plots.output[0], sample=merged_lhe_samples()),
        [rules.compare_samples.output[0], rules.cutflow_table.output[0]] if config["samples"] else [],
