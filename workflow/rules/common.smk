# Helpers shared by the workflow: sample lookups, shard file lists and per-stage seeds.
from lhcflow.config import sample_selection
from lhcflow.nis.settings import experiment_seeds
from lhcflow.seeds import derive_seed


def sample_cfg(wildcards):
    return config["samples"][wildcards.sample]


def stage_seed(*labels):
    return derive_seed(config["seed"], *labels)


def runtime_min(minutes):
    """Runtime request in minutes that grows with the attempt: a job killed at its time limit
    (SLURM TIMEOUT) and resubmitted by --retries asks for 2x, 3x the time; a training resumes
    from its checkpoint, so the longer attempt finishes what the first one started."""
    return lambda wildcards, attempt: minutes * attempt


def gpus(device="auto"):
    """GPUs of a torch job: resources.train_gpu, none when the stage is configured for the CPU."""
    return config["resources"]["train_gpu"] if device != "cpu" else 0


def shard_files(sample, ext):
    n = config["samples"][sample]["n_shards"]
    return [f"{RESULTS}/generation/{sample}/shard{i}.{ext}" for i in range(n)]


def generation_input(wildcards):
    cfg = sample_cfg(wildcards)
    return [cfg["file"]] if cfg["kind"] == "lhe" else []


def ingest_input(wildcards):
    cfg = sample_cfg(wildcards)
    if cfg["kind"] == "root":
        return {"roots": cfg["files"], "metas": []}
    return {"roots": shard_files(wildcards.sample, "root"), "metas": shard_files(wildcards.sample, "json")}


def hard_selection(task):
    """A hard classifier's selection: its sample's selection with the task's overrides."""
    cfg = config["hard_classifiers"][task]
    base = sample_selection(config, cfg["sample"])
    for kind, cuts in cfg.get("selection", {}).items():
        base[kind] = {**base.get(kind, {}), **cuts}
    return base


def hard_input(wildcards):
    sample = config["hard_classifiers"][wildcards.task]["sample"]
    return {"roots": shard_files(sample, "root"), "metas": shard_files(sample, "json")}


def nis_points(experiment):
    scan = config["nis"]["experiments"][experiment].get("scan")
    return list(range(len(scan["values"]))) if scan else [0]


def nis_run_files(experiment, ext):
    """Every run of an experiment: variants x scan points x seeds."""
    exp = config["nis"]["experiments"][experiment]
    return [f"{RESULTS}/nis/{experiment}/runs/{v}/p{p}_s{s}.{ext}"
            for v in exp["variants"] for p in nis_points(experiment)
            for s in range(experiment_seeds(config["nis"], experiment))]


def nis_states(experiment, variant):
    """Trained states of one variant at the first scan point, one per seed."""
    return [f"{RESULTS}/nis/{experiment}/runs/{variant}/p0_s{s}.pt"
            for s in range(experiment_seeds(config["nis"], experiment))]


def thj_hard_files(sample, ext):
    """Shards of one hard tHj sample."""
    n = config["thj"]["samples"][sample]["shards"]
    return [f"{RESULTS}/thj/hard/{sample}/shard{i}.{ext}" for i in range(n)]


def thj_paired_files(dataset, sample):
    """Paired shards of one hard tHj sample in one reco dataset."""
    n = config["thj"]["samples"][sample]["shards"]
    return [f"{RESULTS}/thj/paired/{dataset}/{sample}/shard{i}.h5" for i in range(n)]


# ML-MEM (mem.smk): MEM, MEM_DIR, MEM_DATASETS are defined there
def mem_transfer_spec(wildcards):
    spec = MEM["transfers"][wildcards.transfer]
    return {**spec, "n_extra_max": MEM["multiplicity"]["n_max"]} if spec["variable_jets"] else spec


def mem_multiplicity_model(wildcards):
    variable = MEM["transfers"][wildcards.transfer]["variable_jets"]
    return [f"{MEM_DIR}/{wildcards.dataset}/multiplicity/classifier.pt"] if variable else []


def mem_fiducial(wildcards):
    return f"{THJ_DIR}/fiducial/{wildcards.dataset}.json"


def mem_train_files(wildcards):
    return thj_paired_files(wildcards.dataset, THJ["datasets"][wildcards.dataset]["train"])


def mem_test_paired(wildcards):
    """Paired shards of each test sample of a MEM dataset, sample -> files (shard counts may differ)."""
    return {s: thj_paired_files(wildcards.dataset, s) for s in MEM_DATASETS[wildcards.dataset]["test"]}


def mem_test_paired_files(wildcards):
    return [f for files in mem_test_paired(wildcards).values() for f in files]


def mem_integrals(wildcards):
    tests = MEM_DATASETS[wildcards.dataset]["test"]
    return [f"{MEM_DIR}/{wildcards.dataset}/{wildcards.transfer}/integrals/{s}.h5" for s in tests]


def mem_acceptance_model(wildcards):
    return [f"{MEM_DIR}/{wildcards.dataset}/acceptance/classifier.pt"] if MEM["acceptance"]["use"] else []


def merged_lhe_samples():
    """LHE samples showered with merging (MLM or CKKW-L, from their headers): merging-validation figures."""
    from lhcflow.generation.merging import sample_merging

    return [name for name, cfg in config["samples"].items()
            if cfg["kind"] == "lhe" and sample_merging(cfg).scheme != "none"]
