"""Benchmark: default Z+jets generation (Pythia + jets + ntuple) on one core.

Usage: python benchmarks/bench_generation.py [N_EVENTS]   (default 2000)
Writes benchmarks/results/generation.json.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from lhcflow.atomic import write_json
from lhcflow.generation.pythia import run_pythia, zjets_settings

RESULTS = Path(__file__).resolve().parent / "results" / "generation.json"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(n_events: int = 2000) -> dict:
    settings = zjets_settings({})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        meta = run_pythia(settings, n_events, 20240601, Path(tmp) / "bench.root",
                          Path(tmp) / "bench.json", progress=False)
        wall = time.perf_counter() - start
    result = {"n_events": meta["n_written"], "wall_time_s": wall,
              "events_per_s_per_core": meta["n_written"] / wall, "generator": meta["generator"],
              "settings": meta["settings"], "sigma_gen_pb": meta["sigma_gen_pb"],
              "machine": {"cpu_model": cpu_model(), "nproc": os.cpu_count(),
                          "python": platform.python_version(), "platform": platform.platform()}}
    write_json(RESULTS, result)
    return result


if __name__ == "__main__":
    res = main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    print(f"{res['n_events']} events in {res['wall_time_s']:.1f} s: "
          f"{res['events_per_s_per_core']:.1f} events/s/core", file=sys.stderr)
