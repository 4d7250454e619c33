# Helpers shared by all rule files: sample lookups and per-stage seeds.
from lhcflow.config import sample_selection
from lhcflow.seeds import derive_seed


def sample_cfg(wildcards):
    return config["samples"][wildcards.sample]


def samples_of_kind(*kinds):
    return [name for name, cfg in config["samples"].items() if cfg["kind"] in kinds]


def stage_seed(*labels):
    return derive_seed(config["seed"], *labels)


wildcard_constraints:
    sample="|".join(config["samples"]),
    shard=r"\d+",
    split="train|val|test",
