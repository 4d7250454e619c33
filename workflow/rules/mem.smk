# ML matrix element method (thesis 6.2-6.5) on the paired tHj datasets: acceptance classifier, transfer
# networks (swappable per config), Sampling-cINN, single-pass MEM integration over alpha, likelihood
# scans, calibration and pulls; and the analytic closure test of the integration machinery.

MEM_DIR = f"{RESULTS}/mem"


rule mem_hard_dataset:
    """Every showered event of the dataset's alpha-uniform sample with its hard momenta and acceptance label."""
    message:
        "MEM {wildcards.dataset}: hard-level dataset with acceptance labels"
    input:
        mem_train_files,
    output:
        f"{MEM_DIR}/{{dataset}}/hard_dataset.h5",
    log:
        f"{RESULTS}/logs/mem/hard_dataset_{{dataset}}.log",
    params:
        masses=[THJ["process"]["mt"], THJ["process"]["mh"]],
    threads: 1
    resources:
        mem_mb=config["resources"]["ingest_mem_mb"],
        runtime=runtime_min(config["resources"]["ingest_runtime_min"]),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_hard_dataset.py"


rule mem_acceptance_train:
    """Acceptance classifier eps(x_hard) of Eq 6.20 (Table A.8) on the train split."""
    message:
        "MEM {wildcards.dataset}: train the acceptance classifier"
    input:
        rules.mem_hard_dataset.output[0],
    output:
        model=f"{MEM_DIR}/{{dataset}}/acceptance/classifier.pt",
        history=f"{MEM_DIR}/{{dataset}}/acceptance/history.json",
    log:
        f"{RESULTS}/logs/mem/acceptance_train_{{dataset}}.log",
    params:
        task={"kind": "acceptance", "network": {**MEM["acceptance"]["network"]},
              "training": {**MEM["acceptance"]["training"], "device": MEM_DEVICE}},
        seed=lambda w: stage_seed("mem", "acceptance", w.dataset),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/acceptance.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_train.py"


rule mem_acceptance_evaluate:
    """Learned vs true acceptance against hard observables on the test split (Fig 6.15)."""
    message:
        "MEM {wildcards.dataset}: evaluate the acceptance classifier"
    input:
        dataset=rules.mem_hard_dataset.output[0],
        model=rules.mem_acceptance_train.output.model,
    output:
        plots=report(
            directory(f"{MEM_DIR}/{{dataset}}/acceptance/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/mem_acceptance.rst",
            category="ML-MEM",
            subcategory="{dataset}: acceptance",
            labels={"dataset": "{dataset}", "figure": "{name}"},
        ),
        metrics=f"{MEM_DIR}/{{dataset}}/acceptance/metrics.json",
    log:
        f"{RESULTS}/logs/mem/acceptance_evaluate_{{dataset}}.log",
    params:
        task={"kind": "acceptance", "slot_labels": ["t", "H", "q"]},
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_evaluate.py"


rule mem_multiplicity_train:
    """Extra-jet multiplicity classifier p(n|x_hard) of Eq 6.45 (Table A.8) on accepted training events."""
    message:
        "MEM {wildcards.dataset}: train the extra-jet multiplicity classifier"
    input:
        rules.mem_hard_dataset.output[0],
    output:
        model=f"{MEM_DIR}/{{dataset}}/multiplicity/classifier.pt",
        history=f"{MEM_DIR}/{{dataset}}/multiplicity/history.json",
    log:
        f"{RESULTS}/logs/mem/multiplicity_train_{{dataset}}.log",
    params:
        task={"kind": "multiplicity", "n_min": 0, "n_max": MEM["multiplicity"]["n_max"],
              "network": {**MEM["multiplicity"]["network"]},
              "training": {**MEM["multiplicity"]["training"], "device": MEM_DEVICE}},
        seed=lambda w: stage_seed("mem", "multiplicity", w.dataset),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/multiplicity.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_train.py"


rule mem_multiplicity_evaluate:
    """Learned vs true extra-jet multiplicities against hard observables (Fig 6.20)."""
    message:
        "MEM {wildcards.dataset}: evaluate the extra-jet multiplicity classifier"
    input:
        dataset=rules.mem_hard_dataset.output[0],
        model=rules.mem_multiplicity_train.output.model,
    output:
        plots=report(
            directory(f"{MEM_DIR}/{{dataset}}/multiplicity/plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/hard_classifier.rst",
            category="ML-MEM",
            subcategory="{dataset}: multiplicity",
            labels={"dataset": "{dataset}", "figure": "{name}"},
        ),
        metrics=f"{MEM_DIR}/{{dataset}}/multiplicity/metrics.json",
    log:
        f"{RESULTS}/logs/mem/multiplicity_evaluate_{{dataset}}.log",
    params:
        task={"kind": "multiplicity", "n_min": 0, "n_max": MEM["multiplicity"]["n_max"], "slot_labels": ["t", "H", "q"]},
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(20),
    conda:
        "../../envs/training.yaml"
    script:
        "../scripts/hard_classifier_evaluate.py"


rule mem_transfer_train:
    """Transfer network p(x_reco|x_hard) {transfer} (Eq 6.21) on accepted training pairs."""
    message:
        "MEM {wildcards.dataset}: train the transfer network {wildcards.transfer}"
    input:
        mem_train_files,
    output:
        model=f"{MEM_DIR}/{{dataset}}/{{transfer}}/transfer.pt",
        history=f"{MEM_DIR}/{{dataset}}/{{transfer}}/transfer_history.json",
    log:
        f"{RESULTS}/logs/mem/transfer_{{dataset}}_{{transfer}}.log",
    params:
        spec=mem_transfer_spec,
        device=MEM_DEVICE,
        masses=[THJ["process"]["mt"], THJ["process"]["mh"]],
        seed=lambda w: stage_seed("mem", "transfer", w.dataset, w.transfer),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/{w.transfer}/transfer.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_transfer_train.py"


rule mem_transfer_plots:
    """Reco-level distributions forward-simulated by the transfer network vs the test samples (Figs 6.5, 6.16),
    with the forward-simulated mass outside the reco selection per test sample (transfer_metrics.json)."""
    message:
        "MEM {wildcards.dataset}: forward-simulate the transfer network {wildcards.transfer}"
    input:
        model=rules.mem_transfer_train.output.model,
        history=rules.mem_transfer_train.output.history,
        test=mem_test_paired_files,
    output:
        metrics=f"{MEM_DIR}/{{dataset}}/{{transfer}}/transfer_metrics.json",
        plots=report(
            directory(f"{MEM_DIR}/{{dataset}}/{{transfer}}/transfer_plots"),
            patterns=[f"{{name}}.{FMT}"],
            caption="../report/mem_transfer.rst",
            category="ML-MEM",
            subcategory="{dataset}: {transfer} transfer",
            labels={"dataset": "{dataset}", "transfer": "{transfer}", "figure": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/mem/transfer_plots_{{dataset}}_{{transfer}}.log",
    params:
        paired=mem_test_paired,
        alpha_deg=lambda w: [THJ["samples"][s]["alpha_deg"] for s in MEM_DATASETS[w.dataset]["test"]],
        seed=lambda w: stage_seed("mem", "transfer_plots", w.dataset, w.transfer),
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min(30),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_transfer_plots.py"


rule mem_sampling_train:
    """Sampling-cINN q(x_hard|x_reco, alpha) (Eqs 6.27, 6.36-6.38) for the {transfer} transfer network, trained
    on the learned transfer (variant transfer, Eq 6.38) or on the true pairs (true_pairs, Eq 6.36)."""
    message:
        "MEM {wildcards.dataset}: train the sampling network for transfer {wildcards.transfer}"
    input:
        paired=mem_train_files,
        transfer=rules.mem_transfer_train.output.model,
    output:
        model=f"{MEM_DIR}/{{dataset}}/{{transfer}}/sampling_{{sampling_variant}}.pt",
        history=f"{MEM_DIR}/{{dataset}}/{{transfer}}/sampling_{{sampling_variant}}_history.json",
    log:
        f"{RESULTS}/logs/mem/sampling_{{dataset}}_{{transfer}}_{{sampling_variant}}.log",
    params:
        spec=lambda w: {**MEM["sampling"], "variant": w.sampling_variant,
                        "training": {**MEM["sampling"]["training"], "device": MEM_DEVICE}},
        seed=lambda w: stage_seed("mem", "sampling", w.dataset, w.transfer),
        checkpoint=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/{w.transfer}/sampling_{w.sampling_variant}.ckpt",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_sampling_train.py"


rule mem_integrate:
    """MEM likelihood p(x_reco|alpha) of every accepted event of test sample {thj_sample} (Eqs 6.35, 6.39)."""
    message:
        "MEM {wildcards.dataset}: integrate the likelihood of test sample {wildcards.thj_sample} with transfer {wildcards.transfer}"
    input:
        paired=lambda w: thj_paired_files(w.dataset, w.thj_sample),
        transfer=rules.mem_transfer_train.output.model,
        sampling=fill(rules.mem_sampling_train.output.model, sampling_variant=MEM["sampling"]["variant"]),
        acceptance=mem_acceptance_model,
        multiplicity=mem_multiplicity_model,
        fiducial=rules.thj_fiducial.output.json,
    output:
        h5=f"{MEM_DIR}/{{dataset}}/{{transfer}}/integrals/{{thj_sample}}.h5",
        stats=f"{MEM_DIR}/{{dataset}}/{{transfer}}/integrals/{{thj_sample}}.json",
    log:
        f"{RESULTS}/logs/mem/integrate_{{dataset}}_{{transfer}}_{{thj_sample}}.log",
    params:
        process=THJ["process"],
        integration=MEM["integration"],
        replicas=lambda w: MEM["transfers"][w.transfer]["bayesian_replicas"],
        max_events=lambda w: MEM_DATASETS[w.dataset]["max_events"],
        device=MEM_DEVICE,
        seed=lambda w: stage_seed("mem", "integrate", w.dataset, w.transfer, w.thj_sample),
        checkpoint_dir=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/{w.transfer}/integrals/{w.thj_sample}",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_integrate.py"


rule mem_diagnostics:
    """Integration with and without the transfer-trained sampler and VEGAS refinement on the same events (Fig 6.13)."""
    message:
        "MEM {wildcards.dataset}: integration diagnostics"
    input:
        paired=lambda w: thj_paired_files(w.dataset, MEM["diagnostics"]["sample"]),
        transfer=rules.mem_transfer_train.output.model,
        samplers=expand(rules.mem_sampling_train.output.model, sampling_variant=["true_pairs", "transfer"],
                        allow_missing=True),
        acceptance=mem_acceptance_model,
        multiplicity=mem_multiplicity_model,
        fiducial=rules.thj_fiducial.output.json,
    output:
        json=f"{MEM_DIR}/{{dataset}}/{{transfer}}/diagnostics.json",
        figure=report(
            f"{MEM_DIR}/{{dataset}}/{{transfer}}/diagnostics.{FMT}",
            caption="../report/mem_diagnostics.rst",
            category="ML-MEM",
            subcategory="{dataset}: {transfer} transfer",
            labels={"dataset": "{dataset}", "transfer": "{transfer}", "figure": "integration setups"},
        ),
    log:
        f"{RESULTS}/logs/mem/diagnostics_{{dataset}}_{{transfer}}.log",
    params:
        process=THJ["process"],
        integration=MEM["integration"],
        n_events=MEM["diagnostics"]["events"],
        device=MEM_DEVICE,
        seed=lambda w: stage_seed("mem", "diagnostics", w.dataset, w.transfer),
        checkpoint_dir=lambda w: f"{RESULTS}/checkpoints/mem/{w.dataset}/{w.transfer}/diagnostics",
    threads: 1
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=runtime_min(config["resources"]["train_runtime_min"]),
        gpu=gpus(MEM_DEVICE),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_diagnostics.py"


rule mem_likelihood:
    """Likelihood scans, calibration, pulls and integration diagnostics of the {transfer} MEM (Figs 6.7-6.14)."""
    message:
        "MEM {wildcards.dataset}: likelihood scans, calibration and pulls of transfer {wildcards.transfer}"
    input:
        integrals=mem_integrals,
        stats=lambda w: mem_integrals(w, "stats"),
        paired=mem_test_paired_files,
        fiducial=rules.thj_fiducial.output.json,
        cross_sections=rules.thj_cross_sections.output[0],
    output:
        metrics=f"{MEM_DIR}/{{dataset}}/{{transfer}}/metrics.json",
        likelihood=report(
            f"{MEM_DIR}/{{dataset}}/{{transfer}}/likelihood.{FMT}",
            caption="../report/mem_likelihood.rst",
            category="ML-MEM",
            subcategory="{dataset}: {transfer} transfer",
            labels={"dataset": "{dataset}", "transfer": "{transfer}", "figure": "likelihoods and pulls"},
        ),
        calibration=report(
            f"{MEM_DIR}/{{dataset}}/{{transfer}}/calibration.{FMT}",
            caption="../report/mem_calibration.rst",
            category="ML-MEM",
            subcategory="{dataset}: {transfer} transfer",
            labels={"dataset": "{dataset}", "transfer": "{transfer}", "figure": "calibration"},
        ),
        diagnostics=report(
            f"{MEM_DIR}/{{dataset}}/{{transfer}}/integration.{FMT}",
            caption="../report/mem_integration.rst",
            category="ML-MEM",
            subcategory="{dataset}: {transfer} transfer",
            labels={"dataset": "{dataset}", "transfer": "{transfer}", "figure": "integration"},
        ),
    log:
        f"{RESULTS}/logs/mem/likelihood_{{dataset}}_{{transfer}}.log",
    params:
        paired=mem_test_paired,
        alpha_deg=lambda w: [THJ["samples"][s]["alpha_deg"] for s in MEM_DATASETS[w.dataset]["test"]],
        analysis=MEM["analysis"],
        label=lambda w: w.transfer,
        seed=lambda w: stage_seed("mem", "likelihood", w.dataset, w.transfer),
        fmt=FMT,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min(30),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_likelihood.py"


rule mem_closure:
    """Analytic closure of the MEM machinery: known smearing, exact reco likelihood, pulls."""
    message:
        "MEM: analytic closure test"
    output:
        metrics=f"{MEM_DIR}/closure/closure.json",
        likelihood=report(
            f"{MEM_DIR}/closure/closure_likelihood.{FMT}",
            caption="../report/mem_closure.rst",
            category="ML-MEM",
            subcategory="closure",
            labels={"figure": "likelihoods"},
        ),
        pulls=report(
            f"{MEM_DIR}/closure/closure_pulls.{FMT}",
            caption="../report/mem_closure.rst",
            category="ML-MEM",
            subcategory="closure",
            labels={"figure": "pulls"},
        ),
    log:
        f"{RESULTS}/logs/mem/closure.log",
    params:
        cfg={**{k: v for k, v in MEM["closure"].items() if k != "enabled"}, "figure_format": FMT},
        seed=stage_seed("mem", "closure"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min(30),
    conda:
        "../../envs/mem.yaml"
    script:
        "../scripts/mem_closure.py"


rule mem_all:
    input:
        expand(rules.mem_acceptance_evaluate.output.metrics, dataset=MEM_DATASETS),
        expand(rules.mem_multiplicity_evaluate.output.metrics,
               dataset=[d for d in MEM_DATASETS
                        if any(MEM["transfers"][t]["variable_jets"] for t in MEM_DATASETS[d]["transfers"])]),
        [fill(rules.mem_likelihood.output.metrics, dataset=d, transfer=t) for d, t in MEM_ANALYSES],
        [fill(rules.mem_transfer_plots.output.plots, dataset=d, transfer=t) for d, t in MEM_ANALYSES],
        [fill(rules.mem_diagnostics.output.json, dataset=d, transfer=t) for d, t in MEM_ANALYSES
         if MEM["diagnostics"]["events"] > 0 and MEM["diagnostics"]["sample"] in MEM_DATASETS[d]["test"]],
        [rules.mem_closure.output.metrics] if MEM["enabled"] and MEM["closure"]["enabled"] else [],
