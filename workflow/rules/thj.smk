# pp -> tHj with a CP-violating top Yukawa (thesis 6.1): factorised cross sections sigma_i (Eq 6.33),
# the Eq 6.3 parameters, and hard events (fixed alpha test sets, alpha-uniform training sets) as LHE + HDF5.
# thj.process.heavy (top | top_antitop) selects the heavy lines of every stage; each output records it.

THJ_DIR = f"{RESULTS}/thj"
# what the hard stages depend on (params: a change elsewhere in thj does not rerun them)
THJ_PROCESS = {k: THJ[k] for k in ("process", "integrator", "device")}


rule thj_cross_sections:
    """Factorised sigma_i from one weighted sample, sigma(alpha) at the fit angles, the Eq 6.3 fit."""
    message:
        "tHj: cross sections and the Eq 6.3 fit"
    output:
        f"{THJ_DIR}/cross_sections.json",
    log:
        f"{RESULTS}/logs/thj/cross_sections.log",
    params:
        thj={**THJ_PROCESS, "n_eval_sigma": THJ["n_eval_sigma"], "fit_angles_deg": THJ["fit_angles_deg"]},
        seed=stage_seed("thj", "cross_sections"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min(config["resources"]["generate_runtime_min"]),
        gpu=gpus(THJ["device"]),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_cross_sections.py"


rule thj_hard_events:
    """One shard of unweighted hard events of sample {thj_sample} (LHE for Pythia + HDF5 with alpha and g_i)."""
    message:
        "tHj: hard events, shard {wildcards.shard} of sample {wildcards.thj_sample}"
    input:
        rules.thj_cross_sections.output[0],
    output:
        lhe=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.lhe",
        h5=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.h5",
        stats=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.json",
    log:
        f"{RESULTS}/logs/thj/hard_{{thj_sample}}_{{shard}}.log",
    params:
        thj=lambda w: {**THJ_PROCESS, "samples": {w.thj_sample: THJ_SAMPLES[w.thj_sample]}},
        seed=lambda w: stage_seed("thj", "hard", w.thj_sample, w.shard),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min(config["resources"]["generate_runtime_min"]),
        gpu=gpus(THJ["device"]),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_hard_events.py"


rule thj_hard_plots:
    """sigma(alpha) with the Eq 6.3 fit (Fig 6.2 analogue at hard level) and hard kinematics per alpha (Fig 6.3)."""
    message:
        "tHj: hard-level plots"
    input:
        sigma=rules.thj_cross_sections.output[0],
        samples=[f for s in THJ["distributions"] for f in thj_hard_files(s, "h5")],
        stats=[f for s in THJ["distributions"] for f in thj_hard_files(s, "stats")],
    output:
        sigma=report(
            f"{THJ_DIR}/plots/sigma_alpha.{FMT}",
            caption="../report/thj_sigma_alpha.rst",
            category="tHj",
            subcategory="hard process",
            labels={"figure": "sigma(alpha)"},
        ),
        table=report(
            f"{THJ_DIR}/cross_sections.html",
            caption="../report/thj_table.rst",
            category="tHj",
            subcategory="hard process",
            labels={"figure": "cross sections"},
        ),
        distributions=report(
            directory(f"{THJ_DIR}/plots/hard"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/thj_hard.rst",
            category="tHj",
            subcategory="hard process",
            labels={"figure": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/thj/hard_plots.log",
    params:
        samples=THJ_SAMPLES,
        files={s: thj_hard_files(s, "h5") for s in THJ["distributions"]},
        stats={s: thj_hard_files(s, "stats") for s in THJ["distributions"]},
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_hard_plots.py"


rule thj_shower:
    """Pythia decays (t -> bW, H -> gamma gamma), shower, hadronization and the detector stage for dataset {dataset}."""
    message:
        "tHj {wildcards.dataset}: shower and detector, shard {wildcards.shard} of sample {wildcards.thj_sample}"
    input:
        rules.thj_hard_events.output.lhe,
    output:
        root=f"{THJ_DIR}/reco/{{dataset}}/{{thj_sample}}/shard{{shard}}.root",
        meta=f"{THJ_DIR}/reco/{{dataset}}/{{thj_sample}}/shard{{shard}}.json",
    log:
        f"{RESULTS}/logs/thj/shower_{{dataset}}_{{thj_sample}}_{{shard}}.log",
    params:
        shower=lambda w: THJ["datasets"][w.dataset]["shower"],
        detector=THJ["detector"],
        seed=lambda w: stage_seed("thj", "shower", w.dataset, w.thj_sample, w.shard),
    threads: 1
    resources:
        mem_mb=config["resources"]["generate_mem_mb"],
        runtime=runtime_min(config["resources"]["generate_runtime_min"]),
    conda:
        # a Delphes detector brings its own environment (Delphes and pyhepmc from conda-forge)
        "../../envs/delphes.yaml" if THJ["detector"].get("kind") == "delphes" else "../../envs/generation.yaml"
    script:
        "../scripts/thj_shower.py"


rule thj_paired:
    """Paired (alpha, x_hard, x_reco) events with the Table 6.1 selection; rejected events kept with accepted = 0."""
    message:
        "tHj {wildcards.dataset}: paired events of sample {wildcards.thj_sample}"
    input:
        root=rules.thj_shower.output.root,
        meta=rules.thj_shower.output.meta,
        hard=rules.thj_hard_events.output.h5,
    output:
        h5=f"{THJ_DIR}/paired/{{dataset}}/{{thj_sample}}/shard{{shard}}.h5",
        cutflow=f"{THJ_DIR}/paired/{{dataset}}/{{thj_sample}}/shard{{shard}}_cutflow.json",
    log:
        f"{RESULTS}/logs/thj/paired_{{dataset}}_{{thj_sample}}_{{shard}}.log",
    params:
        decay=lambda w: THJ["datasets"][w.dataset]["shower"].get("w_decay", "leptonic"),
        selection=lambda w: THJ["datasets"][w.dataset]["selection"],
        split=lambda w: {"fractions": config["split"]["fractions"],
                         "seed": stage_seed("thj", "split", w.dataset)},
    threads: 1
    resources:
        mem_mb=config["resources"]["ingest_mem_mb"],
        runtime=runtime_min(config["resources"]["ingest_runtime_min"]),
    conda:
        "../../envs/generation.yaml"
    script:
        "../scripts/thj_paired.py"


rule thj_fiducial:
    """sigma_fid(alpha) after decays and cuts with the Eq 6.3 fit (Fig 6.2), the Table 6.1 cut flow at alpha = 0
    and the comparison with Tables 6.1 and 6.2 of the thesis."""
    message:
        "tHj {wildcards.dataset}: fiducial cross sections and cut flow"
    input:
        sigma=rules.thj_cross_sections.output[0],
        train_paired=lambda w: thj_paired_files(w.dataset, THJ["datasets"][w.dataset]["train"]),
        train_hard=lambda w: thj_hard_files(THJ["datasets"][w.dataset]["train"], "h5"),
        test_paired=lambda w: [f for s in THJ["datasets"][w.dataset]["test"] for f in thj_paired_files(w.dataset, s)],
        test_hard=lambda w: [f for s in THJ["datasets"][w.dataset]["test"] for f in thj_hard_files(s, "h5")],
    output:
        json=f"{THJ_DIR}/fiducial/{{dataset}}.json",
        figure=report(
            f"{THJ_DIR}/fiducial/{{dataset}}_sigma_alpha.{FMT}",
            caption="../report/thj_fiducial.rst",
            category="tHj",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "fiducial sigma(alpha)"},
        ),
        table=report(
            f"{THJ_DIR}/fiducial/{{dataset}}_cutflow.html",
            caption="../report/thj_cutflow.rst",
            category="tHj",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "cut flow"},
        ),
        thesis=report(
            f"{THJ_DIR}/fiducial/{{dataset}}_thesis.html",
            caption="../report/thj_thesis.rst",
            category="tHj",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "thesis Tables 6.1, 6.2"},
        ),
    log:
        f"{RESULTS}/logs/thj/fiducial_{{dataset}}.log",
    params:
        dataset=lambda w: THJ["datasets"][w.dataset],
        samples=THJ_SAMPLES,
        fit_angles=THJ["fit_angles_deg"],
        test_files=lambda w: {s: (thj_paired_files(w.dataset, s), thj_hard_files(s, "h5"))
                              for s in THJ["datasets"][w.dataset]["test"]},
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min(10),
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_fiducial.py"


rule thj_all:
    input:
        [rules.thj_hard_plots.output.sigma, rules.thj_hard_plots.output.distributions]
        if THJ["enabled"] else [],
        [thj_hard_files(s, "h5") for s in THJ_SAMPLES],
        expand(rules.thj_fiducial.output.json, dataset=THJ_DATASETS),
