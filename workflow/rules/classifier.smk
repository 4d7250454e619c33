# Classifier metric for the Z+jets generators (thesis Sec. 4.4): truth (test split) against
# generated events; weights w = D/(1-D) (Eq. 4.16) to measure, diagnose and reweight.

CL_DIR = f"{RESULTS}/classifier"


rule classifier_train:
    """Train the truth-vs-generated classifier of generator {model} on half of each sample."""
    message:
        "Classifier metric: train truth vs generated for generator {wildcards.model}"
    input:
        truth=zjets_data("test"),
        generated=rules.zjets_sample.output.events,
    output:
        model=f"{CL_DIR}/{{model}}/classifier.pt",
        history=f"{CL_DIR}/{{model}}/history.json",
    log:
        f"{RESULTS}/logs/classifier/train_{{model}}.log",
    params:
        cfg=CL,
        seed=lambda w: stage_seed("classifier", w.model),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/classifier/{w.model}.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/classifier_train.py"


rule classifier_evaluate:
    """ROC, weight distributions, calibration, reweighted observables and weight clusters."""
    message:
        "Classifier metric: evaluate and plot generator {wildcards.model}"
    input:
        truth=zjets_data("test"),
        train=zjets_data("train"),
        generated=rules.zjets_sample.output.events,
        model=rules.classifier_train.output.model,
        pre=rules.zjets_preprocess.output[0],
        nets=expand(rules.zjets_train.output.model, net=[1, 2, 3], allow_missing=True),
    output:
        plots=report(
            directory(f"{CL_DIR}/{{model}}/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/classifier.rst",
            category="Classifier metric",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "{name}"},
        ),
        metrics=f"{CL_DIR}/{{model}}/metrics.json",
    log:
        f"{RESULTS}/logs/classifier/evaluate_{{model}}.log",
    params:
        seed=lambda w: stage_seed("classifier", w.model),
        fmt=FMT,
        generator=lambda w: ZJ["models"][w.model],
        magic=ZJ["magic"],
        n_replicas=ZJ["bayesian_bands"]["n_replicas"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/classifier_evaluate.py"


rule classifier_reweight:
    """The held-out generated events of {model} with the classifier weights multiplied in."""
    message:
        "Classifier metric: reweight the generated events of {wildcards.model}"
    input:
        truth=zjets_data("test"),
        generated=rules.zjets_sample.output.events,
        model=rules.classifier_train.output.model,
    output:
        f"{CL_DIR}/{{model}}/reweighted.h5",
    log:
        f"{RESULTS}/logs/classifier/reweight_{{model}}.log",
    params:
        seed=lambda w: stage_seed("classifier", w.model),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/classifier_reweight.py"


rule classifier_all:
    input:
        expand(rules.classifier_evaluate.output.metrics, model=CL_MODELS),
        expand(rules.classifier_reweight.output[0], model=CL_MODELS),


# Classifiers on hard-scattering momenta (thesis Sec. 6.4.2, 6.5.2): acceptance eps(x_hard) and
# the reco jet multiplicity p(n|x_hard), one named task per config entry.

HC_DIR = f"{RESULTS}/hard_classifiers"


rule hard_dataset:
    """Every generated event of the task's sample with its hard-process momenta, whether it passes
    the reco selection, and its reco jet multiplicity; split like ingestion."""
    message:
        "Hard-process dataset of classifier task {wildcards.task}"
    input:
        unpack(hard_input),
    output:
        f"{HC_DIR}/{{task}}/dataset.h5",
    log:
        f"{RESULTS}/logs/hard_classifiers/dataset_{{task}}.log",
    params:
        sample=lambda w: config["samples"][HC[w.task]["sample"]],
        selection=lambda w: hard_selection(w.task),
        split=lambda w: {"fractions": config["split"]["fractions"], "seed": stage_seed("split", HC[w.task]["sample"])},
        n_slots=lambda w: HC[w.task]["n_slots"],
        chunk_size=config["ingest"]["chunk_size"],
    threads: 1
    resources:
        mem_mb=config["resources"]["ingest_mem_mb"],
        runtime=runtime_min(config["resources"]["ingest_runtime_min"]),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/hard_dataset.py"


rule hard_classifier_train:
    """Train the acceptance or multiplicity classifier {task} (Table A.8)."""
    message:
        "Train the hard-process classifier {wildcards.task}"
    input:
        rules.hard_dataset.output[0],
    output:
        model=f"{HC_DIR}/{{task}}/classifier.pt",
        history=f"{HC_DIR}/{{task}}/history.json",
    log:
        f"{RESULTS}/logs/hard_classifiers/train_{{task}}.log",
    params:
        task=lambda w: HC[w.task],
        seed=lambda w: stage_seed("hard_classifier", w.task),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/hard_classifiers/{w.task}.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_train.py"


rule hard_classifier_evaluate:
    """Learned against true acceptance / multiplicity probabilities vs hard observables (Figs 6.15, 6.20)."""
    message:
        "Evaluate the hard-process classifier {wildcards.task}"
    input:
        dataset=rules.hard_dataset.output[0],
        model=rules.hard_classifier_train.output.model,
    output:
        plots=report(
            directory(f"{HC_DIR}/{{task}}/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/hard_classifier.rst",
            category="Hard-process classifiers",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "{name}"},
        ),
        metrics=f"{HC_DIR}/{{task}}/metrics.json",
    log:
        f"{RESULTS}/logs/hard_classifiers/evaluate_{{task}}.log",
    params:
        task=lambda w: HC[w.task],
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_evaluate.py"


rule hard_classifiers_all:
    input:
        expand(rules.hard_classifier_evaluate.output.metrics, task=HC),
