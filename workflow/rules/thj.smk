# pp -> tHj with a CP-violating top Yukawa (thesis 6.1): factorised cross sections sigma_i (Eq 6.33),
# the Eq 6.3 parameters, and hard events (fixed alpha test sets, alpha-uniform training sets) as LHE + HDF5.

THJ = config["thj"]
THJ_DIR = f"{RESULTS}/thj"
THJ_SAMPLES = THJ["samples"] if THJ["enabled"] else {}


rule thj_cross_sections:
    """Factorised sigma_i from one weighted sample, sigma(alpha) at the fit angles, the Eq 6.3 fit."""
    output:
        f"{THJ_DIR}/cross_sections.json",
    log:
        f"{RESULTS}/logs/thj/cross_sections.log",
    params:
        thj=THJ,
        seed=stage_seed("thj", "cross_sections"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=config["resources"]["generate_runtime_min"],
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_cross_sections.py"


rule thj_hard_events:
    """One shard of unweighted hard events of sample {thj_sample} (LHE for Pythia + HDF5 with alpha and g_i)."""
    input:
        f"{THJ_DIR}/cross_sections.json",
    output:
        lhe=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.lhe",
        h5=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.h5",
        stats=f"{THJ_DIR}/hard/{{thj_sample}}/shard{{shard}}.json",
    log:
        f"{RESULTS}/logs/thj/hard_{{thj_sample}}_{{shard}}.log",
    params:
        thj=THJ,
        seed=lambda w: stage_seed("thj", "hard", w.thj_sample, w.shard),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=config["resources"]["generate_runtime_min"],
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_hard_events.py"


rule thj_hard_plots:
    """sigma(alpha) with the Eq 6.3 fit (Fig 6.2 analogue at hard level) and hard kinematics per alpha (Fig 6.3)."""
    input:
        sigma=f"{THJ_DIR}/cross_sections.json",
        samples=[f for s in THJ["distributions"] for f in thj_hard_files(s, "h5")],
        stats=[f for s in THJ["distributions"] for f in thj_hard_files(s, "json")],
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
        stats={s: thj_hard_files(s, "json") for s in THJ["distributions"]},
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/nis.yaml"
    script:
        "../scripts/thj_hard_plots.py"


rule thj_all:
    input:
        [f"{THJ_DIR}/plots/sigma_alpha.{FMT}", f"{THJ_DIR}/plots/hard"] if THJ["enabled"] else [],
        [thj_hard_files(s, "h5") for s in THJ_SAMPLES],
