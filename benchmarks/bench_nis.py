"""Flat MC vs multi-channel VEGAS vs MadNIS at equal integrand-call budgets, and integrand throughput.

    python benchmarks/bench_nis.py [--scale small|medium] [--seeds 3] [--threads 2] [--device cpu]
                                   [--integrands camel,cut_camel,crossed_ring,drell_yan]
                                   [--madnis-settings flow_cwnet,flow_cwnet_buffered] [--out PATH]

For each integrand (camel and cut camel with their two Cauchy channels and the optimal prior; crossed
ring with ring + line channels and the uniform prior; Drell-Yan + Z' with the photon/Z/Z' channels and
the MG5 prior) every trained method gets the same nominal number of integrand calls for training:

* VEGAS: ``vegas_iterations`` iterations of ``train_calls / vegas_iterations`` calls,
* MadNIS: ``train_calls / batch_size`` online steps of ``batch_size`` calls (the buffered setting
  adds ``replay_factor - 1`` buffered steps per online step, which call nothing),

then ``n_eval`` fresh evaluation calls (flat MC gets only those). The actual training calls of every
run are reported (madnis resamples a batch when more than half of it has f = 0). Over ``--seeds``
seeds it reports mean ± std of σ/I (per event) and of the unweighting efficiency ε, and the ratios
ε(MadNIS best)/ε(VEGAS) and (σ/I)(VEGAS)/(σ/I)(MadNIS best), "best" being the MadNIS setting with
the highest mean ε resp. the lowest mean σ/I (ratios of every setting are listed as well).

Throughput: integrand evaluations per second of each integrand's ``function`` on batches of
``throughput_points`` points x = G_i(r) (split evenly over its channels), median of repeats; also of
the full per-channel evaluation (mapping + f + channel-weight prior) used by the integrators.

Writes ``--out`` (default benchmarks/results/nis_cpu.json; rewritten after each integrand, with
``complete`` false until the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.integrand import ChannelEvaluator, MultiChannelIntegrand
from lhcflow.nis.run import run_integrator, training_calls
from lhcflow.nis.sampling import allocate
from lhcflow.nis.settings import DEFAULT_MADNIS_CONFIG, DEFAULT_VEGAS_CONFIG
from lhcflow.nis.toys import toy_integrand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import cpu_model  # noqa: E402  (one CPU-model reader for every benchmark)

HERE = Path(__file__).resolve().parent
INTEGRANDS = ("camel", "cut_camel", "crossed_ring", "drell_yan")

#: Call budgets per scale. train_calls is the nominal training budget of every trained method.
SCALES: dict[str, dict[str, Any]] = {
    "small": {"train_calls": 262_144, "batch_size": 1024, "vegas_iterations": 10, "n_eval": 200_000,
              "throughput_points": 100_000, "throughput_repeats": 5},
    "medium": {"train_calls": 1_048_576, "batch_size": 1024, "vegas_iterations": 16, "n_eval": 1_000_000,
               "throughput_points": 100_000, "throughput_repeats": 7},
}

#: MadNIS settings (on top of DEFAULT_MADNIS_CONFIG: RQ-spline flow per channel with logarithmic
#: permutations, 3 × 32 subnets, variance loss, lr 1e-3 with inverse-time decay, uniform channel split
#: in training, N_i ∝ σ_i in the evaluation). "replay_factor" R multiplies the optimisation steps at
#: the same number of integrand calls (buffered training, thesis §5.1.2).
MADNIS_SETTINGS: dict[str, dict[str, Any]] = {
    "flow_cwnet": {"cwnet": True},
    "flow_cwnet_buffered": {"cwnet": True, "replay_factor": 3, "buffer_batches": 10},
    "flow": {"cwnet": False},
    "cwnet_only": {"cwnet": True, "train_flow": False},
}
DEFAULT_SETTINGS = ("flow_cwnet", "flow_cwnet_buffered")


# ----------------------------------------------------------------------------------------- setup

def build_integrand(name: str, device: str) -> tuple[MultiChannelIntegrand, dict[str, Any]]:
    """The benchmark integrand and a description of its channels and prior."""
    if name == "camel":
        integrand = toy_integrand("camel", channels="peak1+peak2", prior="optimal")
    elif name == "cut_camel":
        integrand = toy_integrand("cut_camel", channels="peak1+peak2", prior="optimal")
    elif name == "crossed_ring":
        integrand = toy_integrand("crossed_ring", channels="ring_line", prior="uniform")
    elif name == "drell_yan":
        integrand = drell_yan_integrand(channels=("photon", "z", "zprime"), prior="mg5", device=device)
    else:
        raise ValueError(f"unknown integrand {name!r}; choose from {INTEGRANDS}")
    info = {"name": integrand.name, "dim": integrand.dim, "n_channels": integrand.n_channels,
            "channels": list(integrand.meta.get("channel_names", ())), "prior": integrand.meta.get("prior"),
            "exact": integrand.exact, "unit": integrand.unit}
    if name == "drell_yan":
        info["pdf"] = integrand.meta.get("pdf")
    return integrand, info


def method_configs(scale: dict[str, Any], settings: list[str]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """label -> (method, config) with equal nominal training budgets."""
    budget = int(scale["train_calls"])
    iterations = int(scale["vegas_iterations"])
    batch = int(scale["batch_size"])
    online = max(1, round(budget / batch))
    configs: dict[str, tuple[str, dict[str, Any] | None]] = {
        "flat": ("flat", None),
        "vegas": ("vegas", {"iterations": iterations, "samples_per_iteration": round(budget / iterations)}),
    }
    for name in settings:
        cfg = dict(MADNIS_SETTINGS[name])
        replay = int(cfg.get("replay_factor", 1))
        cfg.update(batch_size=batch, steps=online * replay)
        configs[f"madnis_{name}"] = ("madnis", cfg)
    return configs


# ----------------------------------------------------------------------------------------- helpers

def _finite(value: Any) -> Any:
    """NaN/inf -> None for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _mean_std(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "n": len(vals)}


def _ratio(num: dict[str, Any], den: dict[str, Any]) -> dict[str, Any]:
    """num.mean/den.mean with the standard error of both means propagated in quadrature."""
    if not num["mean"] or not den["mean"]:
        return {"value": None, "error": None}
    value = num["mean"] / den["mean"]
    rel = math.hypot(num["std"] / math.sqrt(num["n"]) / num["mean"], den["std"] / math.sqrt(den["n"]) / den["mean"])
    return {"value": value, "error": abs(value) * rel}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _git() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                                    capture_output=True, text=True, check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def _load() -> dict[str, Any]:
    out: dict[str, Any] = {"loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:  # share of time some runnable task waited for a CPU (Linux PSI)
        out["cpu_pressure"] = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        pass
    return out


def machine_info(device: torch.device) -> dict[str, Any]:
    import madnis
    import vegas

    from importlib.metadata import PackageNotFoundError, version

    def _version(pkg: str, module: Any) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return getattr(module, "__version__", None)

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch": torch.__version__, "numpy": np.__version__, "madnis": _version("madnis", madnis),
            "vegas": _version("vegas", vegas), "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")},
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "git": _git()}


# ----------------------------------------------------------------------------------------- throughput

def throughput(integrand: MultiChannelIntegrand, device: torch.device, n_points: int, repeats: int,
               seed: int = 12345) -> dict[str, Any]:
    """Evaluations/s of ``integrand.function`` (on mapped points) and of the full channel evaluation."""
    evaluator = ChannelEvaluator(integrand, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    counts = allocate(n_points, None, integrand.n_channels)
    channels = torch.repeat_interleave(torch.arange(integrand.n_channels, device=device),
                                       torch.as_tensor(counts, device=device))
    r = torch.rand((n_points, evaluator.unit_dim), generator=gen, device=device, dtype=torch.float64)
    with torch.no_grad():
        x, _ = evaluator.map(r, channels)
        x = torch.where(torch.isfinite(x).all(dim=1, keepdim=True), x, torch.zeros_like(x))
        f_times, full_times = [], []
        for k in range(repeats + 1):  # the first repeat warms up (PDF tables to the device, allocator)
            xk = x.clone()  # a fresh tensor: Drell-Yan caches the luminosities of the last x it saw
            _sync(device)
            t0 = time.perf_counter()
            f = integrand.function(xk)
            _sync(device)
            t1 = time.perf_counter()
            evaluator(r.clone(), channels)
            _sync(device)
            t2 = time.perf_counter()
            if k:
                f_times.append(t1 - t0)
                full_times.append(t2 - t1)
    f_med, full_med = statistics.median(f_times), statistics.median(full_times)
    return {"n_points": n_points, "repeats": repeats, "device": str(device),
            "function_evals_per_s": n_points / f_med, "function_seconds": f_times,
            "channel_eval_per_s": n_points / full_med, "channel_eval_seconds": full_times,
            "nonzero_fraction": float((f > 0).double().mean())}


# ----------------------------------------------------------------------------------------- runs

_RUN_KEYS = ("integral", "error", "rel_error", "rel_std", "rel_std_weights", "unweighting_efficiency",
             "unweighting_efficiency_after_cuts", "w_max", "ess_fraction", "n_calls_train", "n_calls_eval",
             "time_train", "time_eval", "exact", "pull", "channel_counts")


def run_one(label: str, method: str, config: dict[str, Any] | None, integrand: MultiChannelIntegrand,
            n_eval: int, seed: int, device: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"seed": seed, "device": device}
    if method == "madnis":
        kwargs["progress"] = False
    t0 = time.perf_counter()
    res = run_integrator(method, integrand, n_eval, config, **kwargs)
    wall = time.perf_counter() - t0
    out = {k: _finite(getattr(res, k)) for k in _RUN_KEYS}
    out.update(label=label, method=method, seed=seed, wall_s=wall,
               n_nonfinite=res.extra.get("n_nonfinite"), dropped_channels=res.extra.get("dropped_channels"),
               steps=res.extra.get("steps"),
               final_train_rel_var=_finite(res.variance_history[-1][1]) if res.variance_history else None,
               final_loss=_finite(float(res.loss_history[-1][1])) if res.loss_history else None)
    return out


def summarise(runs: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    by_label = {lab: [r for r in runs if r["label"] == lab] for lab in labels}
    methods = {}
    for lab, rs in by_label.items():
        methods[lab] = {
            "rel_std": _mean_std([r["rel_std"] for r in rs]),
            "unweighting_efficiency": _mean_std([r["unweighting_efficiency"] for r in rs]),
            "integral": _mean_std([r["integral"] for r in rs]),
            "n_calls_train": [r["n_calls_train"] for r in rs],
            "n_calls_eval": [r["n_calls_eval"] for r in rs],
            "time_train_s": _mean_std([r["time_train"] for r in rs]),
            "time_eval_s": _mean_std([r["time_eval"] for r in rs]),
        }
    out: dict[str, Any] = {"methods": methods}
    madnis = [lab for lab in labels if lab.startswith("madnis")]
    if "vegas" in methods and madnis:
        vegas = methods["vegas"]
        per_setting = {}
        for lab in madnis:
            m = methods[lab]
            per_setting[lab] = {
                "eps_madnis_over_vegas": _ratio(m["unweighting_efficiency"], vegas["unweighting_efficiency"]),
                "relstd_vegas_over_madnis": _ratio(vegas["rel_std"], m["rel_std"]),
                "train_calls_madnis_over_vegas": (statistics.fmean(m["n_calls_train"])
                                                  / statistics.fmean(vegas["n_calls_train"])),
            }

        def _key(lab: str, metric: str, sign: float) -> float:
            v = methods[lab][metric]["mean"]
            return -math.inf if v is None else sign * v

        best_eps = max(madnis, key=lambda lab: _key(lab, "unweighting_efficiency", 1.0))
        best_std = max(madnis, key=lambda lab: _key(lab, "rel_std", -1.0))
        out["ratios"] = {
            "eps_madnis_best_over_vegas": {**per_setting[best_eps]["eps_madnis_over_vegas"], "setting": best_eps},
            "relstd_vegas_over_madnis_best": {**per_setting[best_std]["relstd_vegas_over_madnis"],
                                              "setting": best_std},
            "per_setting": per_setting,
        }
    return out


# ----------------------------------------------------------------------------------------- main

def _fmt(ms: dict[str, Any]) -> str:
    if ms["mean"] is None:
        return "n/a"
    return f"{ms['mean']:.4g} ± {ms['std']:.2g}"


def print_table(results: dict[str, Any], file=sys.stdout) -> None:
    for name, res in results.items():
        print(f"\n== {name} ({res['integrand']['n_channels']} channels, prior {res['integrand']['prior']})",
              file=file)
        print(f"{'method':28s} {'sigma/I':>20s} {'eps':>20s} {'train calls':>12s} {'t_train/s':>10s}", file=file)
        for lab, m in res["summary"]["methods"].items():
            calls = int(statistics.fmean(m["n_calls_train"])) if m["n_calls_train"] else 0
            print(f"{lab:28s} {_fmt(m['rel_std']):>20s} {_fmt(m['unweighting_efficiency']):>20s} "
                  f"{calls:>12d} {m['time_train_s']['mean'] or 0:>10.2f}", file=file)
        rat = res["summary"].get("ratios")
        if rat:
            e, s = rat["eps_madnis_best_over_vegas"], rat["relstd_vegas_over_madnis_best"]
            print(f"eps(MadNIS best)/eps(VEGAS) = {e['value']:.3g} ± {e['error']:.2g} [{e['setting']}]; "
                  f"(sigma/I)(VEGAS)/(sigma/I)(MadNIS best) = {s['value']:.3g} ± {s['error']:.2g} [{s['setting']}]",
                  file=file)
        tp = res.get("throughput")
        if tp:
            print(f"throughput ({tp['device']}): f {tp['function_evals_per_s']:.3g} evals/s, "
                  f"mapping+f+prior {tp['channel_eval_per_s']:.3g} evals/s", file=file)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (first-seed, first-seed+1, ...)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    parser.add_argument("--integrands", default=",".join(INTEGRANDS))
    parser.add_argument("--madnis-settings", default=",".join(DEFAULT_SETTINGS),
                        help=f"comma-separated subset of {sorted(MADNIS_SETTINGS)}")
    parser.add_argument("--train-calls", type=int, default=None, help="override the scale's training budget")
    parser.add_argument("--n-eval", type=int, default=None, help="override the scale's evaluation calls")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "nis_cpu.json")
    args = parser.parse_args(argv)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.integrands.split(",") if n.strip()]
    settings = [s.strip() for s in args.madnis_settings.split(",") if s.strip()]
    for s in settings:
        if s not in MADNIS_SETTINGS:
            parser.error(f"unknown MadNIS setting {s!r}; choose from {sorted(MADNIS_SETTINGS)}")
    scale = dict(SCALES[args.scale])
    if args.train_calls is not None:
        scale["train_calls"] = args.train_calls
    if args.n_eval is not None:
        scale["n_eval"] = args.n_eval
    configs = method_configs(scale, settings)
    labels = list(configs)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))

    started = dt.datetime.now(dt.timezone.utc)
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "nis", "complete": False, "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": machine_info(device), "load_start": _load(),
        "settings": {"scale": args.scale, **scale, "seeds": seeds, "device": str(device), "threads": args.threads,
                     "madnis_settings": {s: MADNIS_SETTINGS[s] for s in settings},
                     "methods": {lab: {"method": m, "config": cfg} for lab, (m, cfg) in configs.items()},
                     "vegas_defaults": DEFAULT_VEGAS_CONFIG, "madnis_defaults": DEFAULT_MADNIS_CONFIG,
                     "rel_std": "sigma/I per event = sqrt(N_eval) * error / I (thesis 5.3.2)",
                     "unweighting_efficiency": "<w>/w_max with the robust replica w_max (Eq 2.67)"},
        "timestamps": {"start": started.isoformat()}, "results": {},
    }
    for name in names:
        t_int = time.perf_counter()
        integrand, info = build_integrand(name, str(device))
        entry: dict[str, Any] = {"integrand": info, "runs": [],
                                 "nominal_train_calls": {lab: training_calls(m, cfg, integrand.n_channels)
                                                         for lab, (m, cfg) in configs.items()}}
        for lab, (method, cfg) in configs.items():
            for seed in seeds:
                run = run_one(lab, method, cfg, integrand, int(scale["n_eval"]), seed, str(device))
                entry["runs"].append(run)
                print(f"[{time.perf_counter() - t_start:7.1f}s] {name:13s} {lab:28s} seed {seed}: "
                      f"sigma/I {run['rel_std']:.4g}  eps {run['unweighting_efficiency']:.4g}  "
                      f"train calls {run['n_calls_train']}  ({run['wall_s']:.1f}s)", file=sys.stderr, flush=True)
        entry["summary"] = summarise(entry["runs"], labels)
        if not args.no_throughput:
            entry["throughput"] = throughput(integrand, device, int(scale["throughput_points"]),
                                             int(scale["throughput_repeats"]))
        entry["wall_s"] = time.perf_counter() - t_int
        report["results"][name] = entry
        report["wall_time_s"] = time.perf_counter() - t_start
        write_json(args.out, report)
    report["complete"] = True
    report["wall_time_s"] = time.perf_counter() - t_start
    report["timestamps"]["end"] = dt.datetime.now(dt.timezone.utc).isoformat()
    report["load_end"] = _load()
    write_json(args.out, report)
    print_table(report["results"])
    print(f"\nwall time {report['wall_time_s']:.0f} s -> {args.out}")
    return report


if __name__ == "__main__":
    main()
