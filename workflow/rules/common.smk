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
