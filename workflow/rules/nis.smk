# Neural importance sampling (thesis Ch. 5): every experiment compares flat MC, VEGAS and MadNIS
# variants on one integrand at equal evaluation calls, repeated over seeds (and scan points).

NIS_DIR = f"{RESULTS}/nis"


rule nis_run:
    """One integration of variant {variant} of experiment {experiment} at scan point {point}, seed {seed}; a killed
    MadNIS training resumes from its checkpoint."""
    message:
        "Importance sampling {wildcards.experiment}: variant {wildcards.variant}, scan point {wildcards.point}, seed {wildcards.seed}"
    output:
        result=f"{NIS_DIR}/{{experiment}}/runs/{{variant}}/p{{point}}_s{{seed}}.json",
        state=f"{NIS_DIR}/{{experiment}}/runs/{{variant}}/p{{point}}_s{{seed}}.pt",
    log:
        f"{RESULTS}/logs/nis/{{experiment}}/{{variant}}_p{{point}}_s{{seed}}.log",
    params:
        experiment=lambda w: NIS_EXPERIMENTS[w.experiment],
        seed=lambda w: stage_seed("nis", w.experiment, w.variant, w.point, w.seed),
        n_eval=lambda w: NIS_EXPERIMENTS[w.experiment]["n_eval"] or NIS["n_eval"],
        device=NIS["device"],
        checkpoint=lambda w: f"{RESULTS}/checkpoints/nis/{w.experiment}/{w.variant}_p{w.point}_s{w.seed}.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(NIS["device"]),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/nis_run.py"


rule nis_summary:
    """Mean and std over seeds per variant and scan point: the table of Tabs 5.1/5.2."""
    message:
        "Importance sampling {wildcards.experiment}: summary over seeds"
    input:
        lambda w: nis_run_files(w.experiment),
    output:
        summary=f"{NIS_DIR}/{{experiment}}/summary.json",
        csv=f"{NIS_DIR}/{{experiment}}/table.csv",
        html=report(
            f"{NIS_DIR}/{{experiment}}/table.html",
            caption="../report/nis_table.rst",
            category="Neural importance sampling",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "figure": "table"},
        ),
    log:
        f"{RESULTS}/logs/nis/{{experiment}}/summary.log",
    params:
        experiment=lambda w: NIS_EXPERIMENTS[w.experiment],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min(5),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/nis_summary.py"


rule nis_plots:
    """Metrics per variant, variance during training (Fig 5.10 left), scans (Figs 5.10 right, 5.12)
    and weight distributions."""
    message:
        "Importance sampling {wildcards.experiment}: plots"
    input:
        rules.nis_summary.output.summary,
    output:
        report(
            directory(f"{NIS_DIR}/{{experiment}}/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/nis_plots.rst",
            category="Neural importance sampling",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "figure": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/nis/{{experiment}}/plots.log",
    params:
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min(5),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/nis_plots.py"


rule nis_channels:
    """Learned channel densities and weights of a trained MadNIS variant (Figs 5.5-5.8, 5.11)."""
    message:
        "Importance sampling {wildcards.experiment}: learned channels of {wildcards.variant}"
    input:
        lambda w: nis_states(w.experiment, w.variant),
    output:
        report(
            f"{NIS_DIR}/{{experiment}}/channels_{{variant}}.{FMT}",
            caption="../report/nis_channels.rst",
            category="Neural importance sampling",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "figure": "channels {variant}"},
        ),
    log:
        f"{RESULTS}/logs/nis/{{experiment}}/channels_{{variant}}.log",
    params:
        experiment=lambda w: NIS_EXPERIMENTS[w.experiment],
        device=NIS["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
        gpu=gpus(NIS["device"]),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/nis_channels.py"


rule nis_events:
    """Unweighted Drell-Yan events from the trained integrator, written as LHE (readable by the LHE
    shower stage: add a sample of kind lhe with this file)."""
    message:
        "Importance sampling: unweighted Drell-Yan events as LHE"
    input:
        lambda w: nis_states(NIS["events"]["experiment"], NIS["events"]["variant"])[0],
    output:
        lhe=f"{NIS_DIR}/events/drell_yan.lhe",
        meta=f"{NIS_DIR}/events/drell_yan.json",
    log:
        f"{RESULTS}/logs/nis/events.log",
    params:
        experiment=lambda w: NIS_EXPERIMENTS[NIS["events"]["experiment"]],
        variant=NIS["events"]["variant"] if NIS["events"] else None,
        n_events=NIS["events"]["n_events"] if NIS["events"] else 0,
        seed=stage_seed("nis_events"),
        device=NIS["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
        gpu=gpus(NIS["device"]),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/nis_events.py"


rule nis_all:
    input:
        expand(rules.nis_plots.output[0], experiment=NIS_EXPERIMENTS),
        [fill(rules.nis_channels.output[0], experiment=e, variant=v)
         for e, x in NIS_EXPERIMENTS.items() for v in x["channel_figures"]],
        [rules.nis_events.output.lhe] if NIS["enabled"] and NIS["events"] else [],
