# Helpers shared by the workflow: sample lookups, shard file lists and per-stage seeds.
from lhcflow.config import sample_selection
from lhcflow.seeds import derive_seed


def sample_cfg(wildcards):
    return config["samples"][wildcards.sample]


def stage_seed(*labels):
    return derive_seed(config["seed"], *labels)


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
