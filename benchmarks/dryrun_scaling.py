"""Shard scaling of the thesis-scale workflow in a dry run: job counts at 1x, 10x, 100x shards.

Writes config/paper.yaml with every generated sample's ``n_shards`` multiplied by each factor
into a temporary config, runs ``snakemake -n --forceall --quiet rules`` on it (the whole DAG,
whatever exists under results/) and records the jobs per rule and the wall time of building
the DAG in ``benchmarks/results/dryrun_scaling.json``. Generation shards are independent jobs:
``generate_shard`` grows with the factor while ``ingest`` (one merge per sample) and every
downstream rule stay constant. At 1x the job graph of ``data_all`` (``snakemake --dag``) is
checked: no generation shard depends on another job, and each ingest job reads exactly the
shards of its sample.

    python benchmarks/dryrun_scaling.py [--factors 1 10 100] [--configfile config/paper.yaml]

The tHj shards (config ``thj.samples.*.shards``) stay at the paper's counts: scaling them as
well would put 250k jobs into the 100x DAG (their hard-event, shower and pairing chains).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile")]


def scaled_config(base: dict, factor: int) -> dict:
    config = json.loads(json.dumps(base))
    for sample in config["samples"].values():
        if "n_shards" in sample:
            sample["n_shards"] *= factor
    return config


def job_counts(configfile: Path) -> tuple[dict[str, int], float]:
    """Jobs per rule of a forced dry run, and the seconds it took."""
    start = time.perf_counter()
    out = subprocess.run([*SNAKEMAKE, "-n", "--forceall", "--quiet", "rules", "--configfile", str(configfile)],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    counts = {}
    for line in out.splitlines():  # the "job  count" table
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts, seconds


def shard_dag(configfile: Path, config: dict) -> dict:
    """Dependencies of the generation shards and their merge in the job graph of ``data_all``."""
    dot = subprocess.run([*SNAKEMAKE, "data_all", "--forceall", "--dag", "dot", "--configfile", str(configfile)],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    labels = {int(n): label for n, label in re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dot, re.M)}
    edges = [(int(a), int(b)) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)]
    rule = {n: label.split("\\n")[0] for n, label in labels.items()}
    sample = {n: re.search(r"sample: (\w+)", label).group(1) for n, label in labels.items()
              if rule[n] == "generate_shard"}
    upstream, downstream = defaultdict(list), defaultdict(list)
    for a, b in edges:
        upstream[b].append(a)
        downstream[a].append(b)
    shards = [n for n in rule if rule[n] == "generate_shard"]
    merges = {}
    for n in (n for n in rule if rule[n] == "ingest" and upstream[n]):
        names = Counter(sample[u] for u in upstream[n] if rule[u] == "generate_shard")
        assert len(names) == 1 and all(rule[u] == "generate_shard" for u in upstream[n]), names
        merges[next(iter(names))] = len(upstream[n])
    expected = {s: c["n_shards"] for s, c in config["samples"].items() if c["kind"] != "root"}
    result = {
        "generate_shard_jobs": len(shards),
        "shards_with_upstream_jobs": sum(bool(upstream[n]) for n in shards),
        "shards_feeding_exactly_one_ingest": sum([rule[d] for d in downstream[n]] == ["ingest"] for n in shards),
        "ingest_inputs_per_sample": merges,
        "n_shards_in_config": expected,
    }
    result["independent_and_merged_by_ingest"] = (
        result["shards_with_upstream_jobs"] == 0 and merges == expected
        and result["shards_feeding_exactly_one_ingest"] == len(shards))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "paper.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dryrun_scaling.json")
    args = parser.parse_args()
    base = yaml.safe_load(args.configfile.read_text())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            config = scaled_config(base, factor)
            path = Path(tmp) / f"x{factor}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            counts, seconds = job_counts(path)
            runs.append({"factor": factor,
                         "n_shards": {s: c["n_shards"] for s, c in config["samples"].items() if "n_shards" in c},
                         "jobs": counts, "dag_seconds": round(seconds, 1)})
            print(f"{factor:>4}x: {counts.get('generate_shard', 0):>6} generate_shard, {counts.get('ingest', 0)} "
                  f"ingest, {counts.get('total', 0):>6} jobs in all, dry run {seconds:.0f} s", flush=True)
            if factor == 1:
                dag = shard_dag(path, config)
                print(f"      DAG of data_all: {dag}", flush=True)
    constant = {rule: n for rule, n in runs[0]["jobs"].items()
                if rule not in ("generate_shard", "total") and all(r["jobs"].get(rule) == n for r in runs)}
    result = {
        "description": "snakemake -n --forceall job counts of config/paper.yaml with every generated sample's "
                       "n_shards multiplied by factor (tHj shards unscaled)",
        "configfile": str(args.configfile.relative_to(REPO)),
        "runs": runs,
        "rules_independent_of_the_shard_count": sorted(constant),
        "shard_dag_at_1x": dag if 1 in args.factors else None,
        "host": platform.node(), "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
