"""What produced a result: resolved configuration, derived seeds, package versions, git commit, host."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from lhcflow.nis.settings import experiment_seeds
from lhcflow.seeds import derive_seed

# every dependency of pyproject.toml (tests/test_envs.py checks)
PACKAGES = ("lhcflow", "numpy", "scipy", "h5py", "uproot", "awkward", "vector", "hist", "mplhep", "matplotlib",
            "tqdm", "pyyaml", "jsonschema", "psutil", "pythia8mc", "fastjet", "torch", "madnis", "vegas",
            "snakemake", "snakemake-executor-plugin-slurm")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: str | Path = Path(__file__).resolve().parents[2]) -> str | None:
    """The checked-out commit, with ``-dirty`` when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def machine() -> dict:
    """CPU model, core count, memory and GPUs (``nvidia-smi -L``, none when it is missing) of this host."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or platform.machine())
    mem_kb = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo") if line.startswith("MemTotal")), None)
    try:
        gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        gpus = []
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1) if mem_kb else None,
            "gpu": "; ".join(g.split(" (UUID")[0] for g in gpus if g.strip()) or None}


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def seeded_stages(config: dict) -> list[tuple]:
    """The label tuples of every seeded job the workflow's targets run, as the rules pass them
    to ``stage_seed`` (workflow/rules/*.smk): stage name first, then the job's wildcards."""
    stages = []
    for sample, cfg in config["samples"].items():
        if cfg["kind"] != "root":
            stages += [("generate", sample, shard) for shard in range(cfg["n_shards"])]
    stages += [("split", sample) for sample in config["samples"]]
    zj = config["zjets"]
    models = list(zj["models"]) if zj["enabled"] else []
    for model in models:
        stages += [("zjets_train", model, net) for net in (1, 2, 3)] + [("zjets_sample", model)]
        if zj["models"][model]["kind"] == "binn":  # Bayesian bands; the size scan is its own target
            stages.append(("zjets_bands", model))
            if zj.get("size_scan"):
                fractions = zj["size_scan"]["fractions"]
                stages += [("zjets_train", model, net, frac) for frac in fractions for net in (1, 2, 3)]
                stages.append(("zjets_size_scan", model))
    cl = config["classifier"]
    stages += [("classifier", model) for model in ((cl["models"] if cl["models"] is not None else models)
                                                   if cl["enabled"] else [])]
    stages += [("hard_classifier", task) for task in config["hard_classifiers"]]
    nis = config["nis"]
    if nis["enabled"]:
        for name, exp in nis["experiments"].items():
            points = range(len(exp["scan"]["values"])) if exp.get("scan") else [0]
            stages += [("nis", name, variant, point, seed) for variant in exp["variants"] for point in points
                       for seed in range(experiment_seeds(nis, name))]
        if nis["events"]:
            stages.append(("nis_events",))
    thj = config["thj"]
    if thj["enabled"]:
        stages.append(("thj", "cross_sections"))
        for sample, cfg in thj["samples"].items():
            stages += [("thj", "hard", sample, shard) for shard in range(cfg["shards"])]
        for dataset, cfg in thj["datasets"].items():
            stages.append(("thj", "split", dataset))
            for sample in [cfg["train"], *cfg["test"]]:
                shards = range(thj["samples"][sample]["shards"])
                stages += [("thj", "shower", dataset, sample, shard) for shard in shards]
    mem = config["mem"]
    if mem["enabled"] and thj["enabled"]:
        for dataset, cfg in mem["datasets"].items():
            stages.append(("mem", "acceptance", dataset))
            transfers = cfg["transfers"]
            if any(mem["transfers"][t]["variable_jets"] for t in transfers):
                stages.append(("mem", "multiplicity", dataset))
            for t in transfers:
                stages += [("mem", stage, dataset, t) for stage in ("transfer", "transfer_plots", "sampling", "likelihood")]
                stages += [("mem", "integrate", dataset, t, sample) for sample in cfg["test"]]
                if mem["diagnostics"]["events"] > 0 and mem["diagnostics"]["sample"] in cfg["test"]:
                    stages.append(("mem", "diagnostics", dataset, t))
        if mem["closure"].get("enabled", True):
            stages.append(("mem", "closure"))
    return stages


def seed_table(config: dict) -> dict[str, int]:
    """Derived seed of every seeded job, keyed by its labels joined by ``/``: ``generate/zjets_pythia/0``."""
    return {"/".join(map(str, labels)): derive_seed(config["seed"], *labels) for labels in seeded_stages(config)}


def run_info(config: dict) -> dict:
    return {
        "config": config,
        "seeds": {"master": config["seed"], "stages": seed_table(config)},
        "packages": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "host": platform.node(),
        "machine": machine(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
