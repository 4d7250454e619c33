# Precision Z+jets generation (thesis Ch. 4): preprocessing, the autoregressive chain of three
# conditional generators per model (inn | binn | cfm, chosen in config), sampling and evaluation.

ZJ_DIR = f"{RESULTS}/zjets"


rule zjets_preprocess:
    """Fit the preprocessing of Eq. 4.3-4.6, the multiplicity fractions and the magic-transformation
    means <f>_n that normalise the generated weights on the training split."""
    message:
        "Z+jets: fit the preprocessing"
    input:
        zjets_data("train"),
    output:
        f"{ZJ_DIR}/preprocessing.json",
    log:
        f"{RESULTS}/logs/zjets/preprocess.log",
    params:
        magic=ZJ["magic"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_preprocess.py"


rule zjets_train:
    """Train network {net} of the chain of model {model}; resumes from its checkpoint after a kill."""
    message:
        "Z+jets: train network {wildcards.net} of model {wildcards.model}"
    input:
        train=zjets_data("train"),
        val=zjets_data("val"),
        pre=rules.zjets_preprocess.output[0],
    output:
        model=f"{ZJ_DIR}/{{model}}/net{{net}}.pt",
        history=f"{ZJ_DIR}/{{model}}/history_net{{net}}.json",
    log:
        f"{RESULTS}/logs/zjets/train_{{model}}_net{{net}}.log",
    params:
        model=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        checkpoint=lambda w: f"{RESULTS}/checkpoints/zjets/{w.model}/net{w.net}.ckpt",
        seed=lambda w: stage_seed("zjets_train", w.model, w.net),
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_train.py"


rule zjets_sample:
    """Generate events with the trained chain of model {model} (canonical format, Eq. 4.9 weights
    normalised per jet multiplicity by <f>_n)."""
    message:
        "Z+jets: generate events with model {wildcards.model}"
    input:
        pre=rules.zjets_preprocess.output[0],
        nets=expand(rules.zjets_train.output.model, net=[1, 2, 3], allow_missing=True),
    output:
        events=f"{ZJ_DIR}/{{model}}/generated.h5",
        timing=f"{ZJ_DIR}/{{model}}/sampling.json",
    log:
        f"{RESULTS}/logs/zjets/sample_{{model}}.log",
    params:
        model=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        n_events=ZJ["sampling"]["n_events"],
        batch_size=ZJ["sampling"]["batch_size"],
        unweight=ZJ["sampling"]["unweight"],
        seed=lambda w: stage_seed("zjets_sample", w.model),
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_sample.py"


rule zjets_evaluate:
    """Train / generated / truth distributions with ratio and delta panels (Fig. 4.4), the
    jet-pair Delta eta - Delta phi maps (Fig. 4.2), loss curves and the bulk-deviation metrics."""
    message:
        "Z+jets: evaluate model {wildcards.model}"
    input:
        train=zjets_data("train"),
        truth=zjets_data("test"),
        generated=rules.zjets_sample.output.events,
        histories=expand(rules.zjets_train.output.history, net=[1, 2, 3], allow_missing=True),
    output:
        plots=report(
            directory(f"{ZJ_DIR}/{{model}}/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/zjets_generator.rst",
            category="Z+jets generators",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "{name}"},
        ),
        metrics=f"{ZJ_DIR}/{{model}}/metrics.json",
    log:
        f"{RESULTS}/logs/zjets/evaluate_{{model}}.log",
    params:
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"  # lhcflow.zjets.stages imports torch
    script:
        "../scripts/zjets_evaluate.py"


rule zjets_bands:
    """Bayesian INN (kind binn) uncertainty bands from network replicas (Figs. 4.5, 4.6) and the
    per-bin decomposition into sampling noise and predictive uncertainty (Eq. 4.13-4.15)."""
    message:
        "Z+jets: uncertainty bands of model {wildcards.model}"
    input:
        pre=rules.zjets_preprocess.output[0],
        nets=expand(rules.zjets_train.output.model, net=[1, 2, 3], allow_missing=True),
        train=zjets_data("train"),
        truth=zjets_data("test"),
    output:
        plots=report(
            directory(f"{ZJ_DIR}/{{model}}/bands"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/zjets_bands.rst",
            category="Z+jets generators",
            subcategory="{model}: Bayesian bands",
            labels={"model": "{model}", "figure": "{name}"},
        ),
        decomposition=f"{ZJ_DIR}/{{model}}/bands.json",
    log:
        f"{RESULTS}/logs/zjets/bands_{{model}}.log",
    params:
        model=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        n_replicas=ZJ["bayesian_bands"]["n_replicas"],
        n_events=ZJ["bayesian_bands"]["n_events"],
        seed=lambda w: stage_seed("zjets_bands", w.model),
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_bands.py"


rule zjets_train_subset:
    """Network {net} of Bayesian model {model} trained on a fraction {frac} of the training data."""
    message:
        "Z+jets: train network {wildcards.net} of model {wildcards.model} on a fraction {wildcards.frac} of the data"
    input:
        train=zjets_data("train"),
        val=zjets_data("val"),
        pre=rules.zjets_preprocess.output[0],
    output:
        model=f"{ZJ_DIR}/{{model}}/scan/f{{frac}}/net{{net}}.pt",
        history=f"{ZJ_DIR}/{{model}}/scan/f{{frac}}/history_net{{net}}.json",
    log:
        f"{RESULTS}/logs/zjets/train_{{model}}_f{{frac}}_net{{net}}.log",
    params:
        model=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        checkpoint=lambda w: f"{RESULTS}/checkpoints/zjets/{w.model}/scan/f{w.frac}/net{w.net}.ckpt",
        seed=lambda w: stage_seed("zjets_train", w.model, w.net, w.frac),
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_train.py"


rule zjets_size_scan:
    """Relative BINN uncertainty against the training-set size (Fig. 4.7)."""
    message:
        "Z+jets: training-size scan of model {wildcards.model}"
    input:
        pre=rules.zjets_preprocess.output[0],
        nets=expand(rules.zjets_train_subset.output.model, frac=ZJ["size_scan"]["fractions"], net=[1, 2, 3],
                    allow_missing=True),
    output:
        plot=report(f"{ZJ_DIR}/{{model}}/size_scan.{FMT}", caption="../report/zjets_size_scan.rst",
                    category="Z+jets generators", subcategory="{model}: Bayesian bands"),
        result=f"{ZJ_DIR}/{{model}}/size_scan.json",
    log:
        f"{RESULTS}/logs/zjets/size_scan_{{model}}.log",
    params:
        model=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        fractions=ZJ["size_scan"]["fractions"],
        n_replicas=ZJ["bayesian_bands"]["n_replicas"],
        n_events=ZJ["bayesian_bands"]["n_events"],
        seed=lambda w: stage_seed("zjets_size_scan", w.model),
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/zjets_size_scan.py"


rule zjets_all:
    input:
        expand(rules.zjets_evaluate.output.metrics, model=ZJ_MODELS),
        expand(rules.zjets_bands.output.decomposition, model=ZJ_BAYESIAN),


rule zjets_size_scan_all:
    input:
        expand(rules.zjets_size_scan.output.result, model=ZJ_BAYESIAN),
