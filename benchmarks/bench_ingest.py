"""Ingestion throughput and peak memory at two chunk sizes.

Writes (or takes) an lhcflow-layout ROOT file, ingests it once per chunk size in a
fresh subprocess (so peak RSS is per run) and records events/s and peak RSS in
``benchmarks/results/ingest.json``. Peak RSS growing with chunk size but not with
file size shows that memory is bounded by the chunk.

    python benchmarks/bench_ingest.py [--input FILE ...] [--events 300000] [--chunks 10000 100000]

With ``--input`` it ingests existing lhcflow-layout files, e.g. the 200k-event Pythia shards
of ``benchmarks/config_200k.yaml`` written by the workflow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

SELECTION = {
    "muons": {"min": 2, "max": 2, "keep": 2, "pt_min_gev": 10.0, "opposite_charge": True},
    "jets": {"min": 1, "max": None, "keep": 3, "pt_min_gev": 20.0, "abs_eta_max": 4.5},
}
SPLIT = {"fractions": {"train": 0.45, "val": 0.1, "test": 0.45}, "seed": 1234}


def _objects(rng: np.random.Generator, counts: np.ndarray, mean_pt: float, mass) -> ak.Array:
    n = int(counts.sum())
    fields = {
        "pt": rng.exponential(mean_pt, n) + 5.0,
        "eta": rng.normal(0.0, 1.8, n),
        "phi": rng.uniform(-np.pi, np.pi, n),
        "mass": np.full(n, mass) if np.isscalar(mass) else mass(n),
    }
    return {k: ak.unflatten(v.astype(np.float32), counts) for k, v in fields.items()}


def write_input(path: Path, n_events: int, block: int = 50_000, seed: int = 1) -> None:
    """Z+jets-like NanoAOD-style TTree written in several ``extend`` blocks."""
    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        tree = None
        for start in range(0, n_events, block):
            n = min(block, n_events - start)
            n_mu = rng.choice([1, 2, 2, 2, 3], n)
            n_jet = rng.poisson(2.0, n)
            muon = _objects(rng, n_mu, 30.0, 0.10566)
            muon["charge"] = ak.unflatten(rng.choice([-1, 1], int(n_mu.sum())).astype(np.int32), n_mu)
            jet = _objects(rng, n_jet, 40.0, lambda k: rng.uniform(2.0, 20.0, k))
            jet["btag"] = ak.unflatten((rng.random(int(n_jet.sum())) < 0.2).astype(np.int32), n_jet)
            data = {"Muon": ak.zip(muon), "Jet": ak.zip(jet), "genWeight": rng.normal(1.0, 0.1, n).astype(np.float32)}
            if tree is None:
                tree = f.mktree("Events", {k: v.type for k, v in data.items() if k != "genWeight"} | {"genWeight": np.float32})
            tree.extend(data)


def run_once(paths: list[Path], chunk_size: int) -> dict:
    """One ingestion in this process; returns timing and peak RSS."""
    from lhcflow.data.ingest import ingest_sample

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {k: Path(tmp) / f"{k}.h5" for k in SPLIT["fractions"]}
        t0 = time.perf_counter()
        cutflow = ingest_sample(
            {"files": [str(p) for p in paths], "layout": "lhcflow"}, SELECTION, SPLIT, outputs, Path(tmp) / "cutflow.json",
            sample_name="bench", chunk_size=chunk_size, progress=False,
        )
        seconds = time.perf_counter() - t0
    n_read = cutflow["steps"][0]["events"]
    return {
        "chunk_size": chunk_size,
        "events_read": n_read,
        "events_selected": cutflow["steps"][-1]["events"],
        "seconds": round(seconds, 3),
        "events_per_s": round(n_read / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_ingest_mb": round(baseline / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, nargs="+", help="existing lhcflow-layout ROOT files")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ingest.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args.input, args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.input or [Path(tmp) / "bench_events.root"]
        if args.input is None:
            write_input(paths[0], args.events)
        runs = [_child(paths, chunk) for chunk in args.chunks]
        result = {
            "input": {"paths": [str(p) for p in args.input] if args.input else "generated",
                      "entries": runs[0]["events_read"],
                      "size_mb": round(sum(p.stat().st_size for p in paths) / 2**20, 1)},
            "runs": runs,
            "machine": {"platform": platform.platform(), "python": platform.python_version(),
                        "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _child(paths: list[Path], chunk: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--input", *map(str, paths), "--child", str(chunk)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
