"""tHj matrix-element throughput and hard-event unweighting efficiency (thesis §6.1, issue 6).

    python benchmarks/bench_thj.py [--threads 1] [--device cpu] [--sizes 1000,10000,100000]
                                   [--train-calls 120000] [--eval-calls 100000] [--madnis] [--out PATH]

* Matrix element: evaluations per second of ⟨|M|²⟩ with all five factorised g_i (helicity
  amplitudes, :meth:`ThjMatrixElement.factorized`) and of the Dirac-trace cross-check at one α, per
  process kind, on batches of phase-space points (median of 3 repeats after a warm-up).
* Hadronic integrand: the full dσ/du on the unit hypercube (phase-space map, PDFs, eight
  subprocesses, both beam orderings), points per second.
* Unweighting efficiency ε (hit-or-miss with the replica w_max, §2.2.5) of hard events at fixed
  α ∈ {0°, 90°, 180°} and for the α-uniform training integrand, after VEGAS adaptation with
  ``--train-calls`` calls (and, with ``--madnis``, MadNIS with the same training calls), evaluated
  on ``--eval-calls`` fresh points.

Writes ``--out`` (default benchmarks/results/thj_<device>.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lhcflow.atomic import write_json
from lhcflow.nis.baselines import VegasIntegrator
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.thj import hard
from lhcflow.thj.cross_section import ThjCrossSection
from lhcflow.thj.matrix_element import HEAVY_KINDS, LIGHT_KINDS
from lhcflow.thj.phase_space import DIM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(fn, n: int, device: torch.device, repeats: int = 3) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def matrix_element_throughput(xs: ThjCrossSection, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    gen = torch.Generator().manual_seed(1)
    for n in sizes:
        u = torch.rand(n, DIM, dtype=torch.float64, generator=gen).to(xs.device)
        mom = xs.phase_space.map(u)["momenta"]
        args = [mom[:, i] for i in range(5)]
        for light in LIGHT_KINDS:
            for heavy in HEAVY_KINDS:
                rows.append({"n": n, "light": light, "heavy": heavy,
                             "helicity_factorized_per_s": _rate(lambda: xs.me.factorized(*args, light, heavy), n, xs.device),
                             "traces_per_s": _rate(lambda: xs.me.squared_traces(*args, 0.3, light, heavy), n, xs.device)})
        rows.append({"n": n, "hadronic_integrand_per_s": _rate(lambda: xs.factorized_integrand(u), n, xs.device)})
        print(rows[-2], rows[-1], flush=True)
    return rows


def unweighting(xs: ThjCrossSection, train_calls: int, eval_calls: int, madnis: bool, seed: int = 0) -> list[dict]:
    sigma_i = hard.factorized_cross_sections(xs, eval_calls, {"method": "vegas", "config": {
        "iterations": 6, "samples_per_iteration": train_calls // 6}}, seed=seed)
    rows = []
    targets = [("alpha_0", 0.0), ("alpha_90", math.pi / 2), ("alpha_180", math.pi), ("alpha_uniform", None)]
    for name, alpha in targets:
        integrand = xs.integrand(alpha) if alpha is not None else xs.integrand(
            None, alpha_normalization=torch.as_tensor(sigma_i.sigma))
        methods = [("vegas", VegasIntegrator(integrand, {"iterations": 6, "samples_per_iteration": train_calls // 6},
                                             xs.device, seed))]
        if madnis:
            batch = 1024
            methods.append(("madnis", MadnisIntegrator(integrand, {"batch_size": batch, "epochs": 1,
                                                                   "batches_per_epoch": train_calls // batch,
                                                                   "permutations": "log"}, xs.device, seed)))
        for method, integ in methods:
            t0 = time.perf_counter()
            integ.train(progress=False)
            result = integ.evaluate(eval_calls, seed=seed + 1)
            rows.append({"target": name, "method": method, "n_calls_train": integ.n_calls_train,
                         "n_calls_eval": eval_calls, "integral": result["integral"], "error": result["error"],
                         "rel_std": result["rel_std"], "unweighting_efficiency": result["unweighting_efficiency"],
                         "wall_s": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--train-calls", type=int, default=120_000)
    parser.add_argument("--eval-calls", type=int, default=100_000)
    parser.add_argument("--madnis", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out or HERE / "results" / f"thj_{device.type}.json")
    xs = ThjCrossSection(device=device)
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "benchmark": "bench_thj", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "cpu": cpu_model(), "threads": args.threads, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "pdf": xs.pdf_name, "complete": False}
    record["matrix_element"] = matrix_element_throughput(xs, [int(s) for s in args.sizes.split(",")])
    write_json(out, record)
    record["unweighting"] = unweighting(xs, args.train_calls, args.eval_calls, args.madnis)
    record["wall_s"] = time.perf_counter() - t0
    record["complete"] = True
    write_json(out, record)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
