"""One-command device check of every network kind (issue 18, part 1): training on the device, CPU/device
agreement at fixed weights, training steps/s, samples/s and peak memory, and the same on the CPU for the ratio.

    python benchmarks/gpu_check.py --device cuda --out $OUT/gpu.json    # on a lent GPU: ≤ 8 min, no interaction
    python benchmarks/gpu_check.py --device cpu --quick                 # the same code at tiny sizes, < 2 min

Kinds (``benchmarks/gpu_kinds.py``): Z+jets INN, BINN and CFM (network 1 of the chain, 9 dims), the MEM
transfer cINN, Transfermer and Transfusion, the Sampling-cINN, the classifier, MadNIS on Drell-Yan + Z′,
and one MEM integration (``integrate_events``). Sizes: ``config/paper.yaml`` (thesis Tables A.1, A.2,
A.5, A.7, A.10, A.11), or tiny ones with ``--quick``. For each kind:

1. agreement: the same seeded (and jittered) weights evaluated on the CPU in float64 (the reference), on the
   CPU in float32, and on the device in float64 and float32, at fixed inputs drawn on the CPU:
   log-densities, the Sampling-cINN's log q and x_hard, classifier logits, the MadNIS integral with a fixed
   latent sample, MEM log-likelihoods with the same random numbers (``integrate_events`` draws them on the
   CPU). Tolerances: see :data:`TOL_FLOAT64` and :func:`float32_tolerance`;
2. training: a probe of a few steps, then ``--steps`` optimiser steps (fewer if the time budget says so)
   through the project's own training loops; steps/s and peak memory;
3. throughput: samples (or densities) per second at a large batch and peak memory;
4. with ``--device cuda``: a shortened CPU pass of 2 and 3 with the same sizes, and the device/CPU ratios.

A global ``--budget-s`` is split over the kinds still to run; a kind that runs slow gets fewer steps and a
smaller batch (recorded as ``scaled_by_budget``). The JSON is rewritten after every phase (``status``
``running`` until the end), so a killed run leaves its results; a kind that fails is recorded with its error
and the others go on. Exit status 0 only if every kind ran and every agreement check passed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
try:
    import lhcflow  # noqa: F401
except ImportError:  # a copy of the checkout without `pip install -e .` (a lent GPU machine)
    sys.path.insert(0, str(ROOT / "src"))

from bench_generation import cpu_model  # one CPU-model reader for every benchmark

#: float64 agreement: max |Δ|/(1 + |ref|) between the device and the CPU in float64. The deepest evaluation
#: here (a CFM or Transfusion density: 4 RK4 stages × steps × (1 + d) network passes) has ≲ 10⁵ sequential
#: roundings of ε = 2.2e-16, i.e. ≲ 2e-11 without amplification; 1e-9 leaves margin for the spline
#: and exp/log conditioning and is still 100× below float32's ε = 1.2e-7, so a device path that silently
#: drops to float32 (or computes another function) fails.
TOL_FLOAT64 = 1e-9
#: float32 agreement: the device's float32 deviation from the float64 reference may differ from the CPU's
#: own float32 deviation by summation order and fused multiply-adds, not in size: allowed up to
#: ``FLOAT32_FACTOR`` × the CPU's, and never less than ``FLOAT32_FLOOR`` (8 ε₃₂, for a quantity the CPU
#: happens to compute with almost no rounding). TF32 or reduced-precision matmuls would fail it.
FLOAT32_FACTOR = 10.0
FLOAT32_FLOOR = 1e-6
#: float32 may move a point across a support edge (f = 0 or a selection cut): allowed for the device up to
#: 2 × the CPU's float32 count of such points, or 0.1 % of the points.
SUPPORT_FACTOR, SUPPORT_FRACTION = 2, 1e-3


class TimeLimit(BaseException):
    """Raised by SIGALRM at ``--hard-limit-s``: ends the run wherever it is (the JSON so far stays)."""


PHASE_SHARES = {"train": 0.35, "throughput": 0.2, "cpu_train": 0.25, "cpu_throughput": 0.2}
PROBE_STEPS = 2


# ----------------------------------------------------------------------------------- sizes

QUICK_INN = {"n_blocks": 2, "hidden": 16, "layers_per_block": 2, "bins": 6}
QUICK_TRAINING = {"batch_size": 128, "lr_start": 1e-4, "lr_max": 1e-3}


def quick_sizes() -> dict[str, Any]:
    """Tiny networks of the same kinds (the ``--quick`` CPU path of the test)."""
    return {
        "source": "--quick: tiny networks (2 coupling blocks of 16 nodes, 1-layer transformers)",
        "zjets": {"inn": {"network": QUICK_INN, "training": QUICK_TRAINING},
                  "binn": {"network": {**QUICK_INN, "init_log_sigma": -12.0}, "training": QUICK_TRAINING},
                  "cfm": {"network": {"hidden": 32, "layers": 3, "steps": 6}, "training": QUICK_TRAINING}},
        "transfers": {
            "cinn": {"kind": "cinn", "network": QUICK_INN, "training": QUICK_TRAINING},
            "transfermer": {"kind": "transfermer", "training": QUICK_TRAINING,
                            "network": {"embed_dim": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1,
                                        "feedforward_dim": 32, "subnet_layers": 2, "subnet_hidden": 16, "bins": 6}},
            "transfusion": {"kind": "transfusion", "training": QUICK_TRAINING,
                            "network": {"embed_dim": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1,
                                        "feedforward_dim": 32, "cfm_layers": 2, "cfm_hidden": 16, "cfm_step": 0.25}}},
        "sampling": {"network": QUICK_INN, "training": QUICK_TRAINING},
        "classifier": {"network": {"hidden": 32, "layers": 3, "dropout": 0.1}, "training": {"batch_size": 128, "lr": 1e-3}},
        "madnis": {"preset": "table_a5", "batch_size": 256, "units": 8},
        "mem_samples_per_event": 256,
    }


def paper_sizes(path: Path = ROOT / "config" / "paper.yaml") -> dict[str, Any]:
    """The thesis-scale networks of ``config/paper.yaml`` and MadNIS Table A.5."""
    from lhcflow.config import load_config

    cfg = load_config(path)
    mem = cfg["mem"]
    return {
        "source": f"{path.relative_to(ROOT)}: thesis Appendix A (Tables A.1 Z+jets INN/BINN, A.2 classifier, "
                  "A.7 transfer and Sampling-cINN, A.10 Transfermer, A.11 Transfusion; CFM as configured there) "
                  "and MadNIS Table A.5",
        "zjets": {k: cfg["zjets"]["models"][k] for k in ("inn", "binn", "cfm")},
        "transfers": {k: mem["transfers"][k] for k in ("cinn", "transfermer", "transfusion")},
        "sampling": mem["sampling"],
        "classifier": cfg["classifier"],
        "madnis": {"preset": "table_a5"},
        "mem_samples_per_event": int(mem["integration"]["batch_size"]),
    }


KINDS = ("zjets_inn", "zjets_binn", "zjets_cfm", "transfer_cinn", "transfer_transfermer", "transfer_transfusion",
         "sampling_cinn", "classifier", "madnis", "mem_integration")


def kind_factories(sizes: dict[str, Any], workdir: Path) -> dict[str, Callable]:
    """Name -> factory of each :class:`gpu_kinds.Kind` (built lazily, so one failing costs only itself)."""
    import gpu_kinds as gk

    from lhcflow.nis.settings import DEFAULT_MADNIS_CONFIG, merge_settings

    out: dict[str, Callable] = {}
    for name in ("inn", "binn", "cfm"):
        out[f"zjets_{name}"] = lambda name=name: gk.generator_kind(name, sizes["zjets"][name])
    for name in ("cinn", "transfermer", "transfusion"):
        out[f"transfer_{name}"] = lambda name=name: gk.transfer_kind(name, sizes["transfers"][name])
    out["sampling_cinn"] = lambda: gk.sampling_kind(sizes["sampling"])
    out["classifier"] = lambda: gk.classifier_kind(sizes["classifier"])
    out["madnis"] = lambda: gk.madnis_kind(merge_settings(DEFAULT_MADNIS_CONFIG, sizes["madnis"]))
    out["mem_integration"] = lambda: gk.mem_kind(sizes["transfers"]["cinn"], sizes["sampling"],
                                                 sizes["mem_samples_per_event"], workdir)
    return out


# ----------------------------------------------------------------------------------- measurement

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _vm_status_mb(field: str) -> float | None:
    """VmRSS, VmHWM, ... of this process from /proc/self/status [MB]; None where there is none."""
    try:
        return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return None


def _release_cpu_memory() -> None:
    """Return freed heap memory to the OS (glibc keeps it otherwise), so that a block's peak RSS is its own.
    (No gc.collect: it takes 0.3 s with torch imported, and the networks are freed by reference counting.)"""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of a block: ``torch.cuda.max_memory_allocated`` (reset on entry) on a GPU; on the CPU the
    peak RSS (VmHWM, reset on entry through /proc/self/clear_refs after freed memory went back to the OS;
    else the process's ru_maxrss so far), with the RSS on entry (imports and everything alive before)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.result: dict[str, Any] = {}

    def __enter__(self) -> Self:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        _release_cpu_memory()
        self.before = _vm_status_mb("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.scope = "block (VmHWM reset through /proc/self/clear_refs)"
        except OSError:
            self.scope = "process so far (ru_maxrss)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.result = {"peak_gpu_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20,
                           "peak_gpu_memory_reserved_mb": torch.cuda.max_memory_reserved(self.device) / 2**20}
        else:
            import resource

            peak = _vm_status_mb("VmHWM") if self.scope.startswith("block") else None
            peak = peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.result = {"peak_rss_mb": peak, "rss_before_mb": self.before, "peak_rss_scope": self.scope}


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def measure_training(kind, device: torch.device, nominal: int, budget_s: float) -> tuple[Any, dict]:
    """A probe of PROBE_STEPS steps (also the warm-up), then min(nominal, budget / probe time per step) steps
    on a fresh network; where the budget affords no more than the probe, the probe is the measurement
    (``from_probe``: its first-call overheads included, a lower bound of steps/s). Returns the trained
    network and the record."""
    model = kind.build(False)
    with PeakMemory(device) as peak:
        probe_s, _ = _timed(lambda: kind.train(model, device, PROBE_STEPS), device)
    per_step = probe_s / PROBE_STEPS
    steps = int(min(nominal, budget_s / max(per_step, 1e-9)))
    wall, from_probe = probe_s, steps <= PROBE_STEPS
    if not from_probe:
        model = kind.build(False)
        with PeakMemory(device) as peak:
            wall, _ = _timed(lambda: kind.train(model, device, steps), device)
    steps = PROBE_STEPS if from_probe else steps
    return model, {"steps_nominal": nominal, "steps": steps, "scaled_by_budget": steps < nominal,
                   "from_probe": from_probe, "budget_s": round(budget_s, 2), "batch_size": kind.batch_size,
                   "probe_steps": PROBE_STEPS, "probe_s": probe_s, "wall_s": wall, "steps_per_s": steps / wall,
                   "events_per_s": steps * kind.batch_size / wall, **peak.result}


def measure_throughput(kind, model, device: torch.device, budget_s: float, target: int | None = None) -> dict:
    """Samples per second at the largest batch ≤ the kind's target that fits a third of the budget per call
    (median of up to 3 timed calls after a warm-up); a CUDA out-of-memory halves the batch."""
    target = target or kind.produce_target[device.type]
    n0 = min(target, 256)
    kind.produce(model, device, n0)  # warm-up: lazy initialisation, kernels, allocator
    with PeakMemory(device) as peak:
        t0, done = _timed(lambda: kind.produce(model, device, n0), device)
    rate0 = done / max(t0, 1e-9)
    n = int(min(target, max(n0, 2 ** math.floor(math.log2(max(rate0 * budget_s / 3, 1.0))))))
    halvings, times, start = 0, [t0] if n == n0 else [], time.perf_counter()
    while len(times) < 3 and (not times or time.perf_counter() - start < budget_s * 2 / 3):
        try:
            with PeakMemory(device) as peak:
                wall, done = _timed(lambda n=n: kind.produce(model, device, n), device)
            times.append(wall)
        except torch.cuda.OutOfMemoryError:
            if n <= n0 or times:
                raise
            n, halvings = n // 2, halvings + 1
            torch.cuda.empty_cache()
    median = sorted(times)[len(times) // 2]
    return {"what": kind.produce_what, "batch": n, "produced_per_call": done, "target_batch": target,
            "scaled_by_budget": n < target and halvings == 0, "oom_halvings": halvings, "calls": len(times),
            "budget_s": round(budget_s, 2), "seconds_per_call": median, "samples_per_s": done / median,
            **peak.result}


# ----------------------------------------------------------------------------------- agreement

def _deviation(ref: torch.Tensor, other: torch.Tensor) -> dict[str, Any]:
    """max |other − ref| / (1 + |ref|) where both are finite, and the points finite in only one of them."""
    fr, fo = torch.isfinite(ref), torch.isfinite(other)
    both = fr & fo
    same_inf = (~fr & ~fo) & ((ref == other) | (torch.isnan(ref) & torch.isnan(other)))
    d = ((other - ref).abs() / (1 + ref.abs()))[both]
    return {"max_rel": float(d.max()) if len(d) else 0.0, "n_compared": int(both.sum()),
            "n_support_mismatch": int((~both & ~same_inf).sum())}


def float32_tolerance(cpu32: dict[str, Any]) -> float:
    """Allowed max |Δ|/(1 + |ref|) of the device in float32 (see FLOAT32_FACTOR, FLOAT32_FLOOR)."""
    return max(FLOAT32_FACTOR * cpu32["max_rel"], FLOAT32_FLOOR)


def compare(ref, cpu32, dev64, dev32) -> dict[str, Any]:
    """The float64 and float32 checks of one quantity."""
    n = ref.numel()
    d64, c32, d32 = _deviation(ref, dev64), _deviation(ref, cpu32), _deviation(ref, dev32)
    tol32 = float32_tolerance(c32)
    support32 = max(SUPPORT_FACTOR * c32["n_support_mismatch"], SUPPORT_FRACTION * n)
    ok64 = d64["max_rel"] <= TOL_FLOAT64 and d64["n_support_mismatch"] == 0
    ok32 = d32["max_rel"] <= tol32 and d32["n_support_mismatch"] <= support32
    return {"n_values": n, "reference_range": [float(ref[torch.isfinite(ref)].min()), float(ref[torch.isfinite(ref)].max())]
            if bool(torch.isfinite(ref).any()) else None,
            "float64": {"device_vs_cpu": d64, "tolerance": TOL_FLOAT64, "pass": ok64},
            "float32": {"device_vs_cpu64": d32, "cpu32_vs_cpu64": c32, "tolerance": tol32,
                        "support_mismatch_allowed": support32, "pass": ok32}}


def agreement(kind, device: torch.device) -> dict[str, Any]:
    """Every quantity of ``kind.evaluate`` at the seeded, jittered weights: CPU float64 (reference), CPU
    float32, device float64, device float32."""
    fixed = kind.build(True)
    cpu = torch.device("cpu")
    ref = kind.evaluate(fixed, cpu, torch.float64)
    cpu32 = kind.evaluate(fixed, cpu, torch.float32)
    dev64 = kind.evaluate(fixed, device, torch.float64)
    dev32 = kind.evaluate(fixed, device, torch.float32)
    checks = {q: compare(ref[q], cpu32[q], dev64[q], dev32[q]) for q in ref}
    passed = all(c["float64"]["pass"] and c["float32"]["pass"] for c in checks.values())
    return {"checks": checks, "pass": passed, "n_parameters": kind.n_parameters(fixed)}


# ----------------------------------------------------------------------------------- report

def git_state(commit: str | None) -> dict[str, Any]:
    if commit:
        return {"commit": commit, "dirty": None, "source": "--commit"}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip()), "source": "git"}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "source": "no git checkout here: pass --commit"}


def machine(device: torch.device) -> dict[str, Any]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu_model(),
            "cpus": os.cpu_count(), "cpus_available": len(os.sched_getaffinity(0)),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cuda": torch.version.cuda, "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=torch.cuda.get_device_name(device), device_memory_gb=props.total_memory / 2**30,
                    capability=f"{props.major}.{props.minor}", cuda_matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                    cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    else:
        info["device_name"] = cpu_model()
    return info


def packages() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for name in ("torch", "numpy", "madnis", "vegas", "pythia8mc", "awkward", "h5py"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _write(path: Path, report: dict) -> None:
    from lhcflow.atomic import write_json

    report["elapsed_s"] = round(time.perf_counter() - report["_t0"], 2)
    write_json(path, {k: v for k, v in report.items() if not k.startswith("_")})


def _error(phase: str, exc: BaseException) -> dict[str, str]:
    return {"phase": phase, "type": type(exc).__name__, "message": str(exc)[:2000],
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    if not a or not b or not b.get(key):
        return None
    return a[key] / b[key]


def run_kind(name: str, factory: Callable, entry: dict, device: torch.device, args, budget_s: float,
             deadline: float, save: Callable[[], None]) -> None:
    """The phases of one kind, each recorded (and saved) as it ends; an error ends the kind. Past the global
    ``deadline`` (perf_counter) the CPU pass is skipped; the device phases run with their minimum work."""
    cpu = torch.device("cpu")
    cpu_pass = device.type != "cpu" or args.cpu_pass
    start = time.perf_counter()

    def left(share: str) -> float:
        """This phase's part of what is left of the kind's budget, in proportion to the phases still to run."""
        shares = PHASE_SHARES if cpu_pass else {"train": 0.6, "throughput": 0.4}
        if kind.train is None:
            shares = {k: v for k, v in shares.items() if not k.endswith("train")}
        remaining = max(budget_s - (time.perf_counter() - start), 0.0)
        later = [k for k in shares if k not in entry and k != share]
        return remaining * shares[share] / (shares[share] + sum(shares[k] for k in later))

    phase = "build"
    try:
        kind = factory()
        entry.update(description=kind.description, sizes=kind.sizes)
        phase = "agreement"
        print(f"[{name}] agreement (CPU float64 vs CPU float32, {device} float64/float32)", flush=True)
        entry["agreement"] = agreement(kind, device)
        save()
        model = kind.build(False)
        if kind.train is not None:
            phase = "train"
            budget = left("train")
            print(f"[{name}] training on {device} (≤ {args.steps} steps, {budget:.0f} s)", flush=True)
            model, entry["train"] = measure_training(kind, device, args.steps, budget)
            save()
        phase = "throughput"
        budget = left("throughput")
        print(f"[{name}] throughput on {device} ({budget:.0f} s)", flush=True)
        entry["throughput"] = measure_throughput(kind, model, device, budget, args.target)
        save()
        if cpu_pass and time.perf_counter() > deadline:
            entry["cpu_pass_skipped"] = "the global time budget was spent before this kind's CPU pass"
        elif cpu_pass:
            cpu_model = kind.build(False)
            if kind.train is not None:
                phase = "cpu_train"
                budget = left("cpu_train")
                print(f"[{name}] training on cpu (≤ {args.cpu_steps} steps, {budget:.0f} s)", flush=True)
                cpu_model, entry["cpu_train"] = measure_training(kind, cpu, args.cpu_steps, budget)
                save()
            phase = "cpu_throughput"
            budget = left("cpu_throughput")
            print(f"[{name}] throughput on cpu ({budget:.0f} s)", flush=True)
            entry["cpu_throughput"] = measure_throughput(kind, cpu_model, cpu, budget, args.target)
            entry["ratio_device_over_cpu"] = {
                "steps_per_s": _ratio(entry.get("train"), entry.get("cpu_train"), "steps_per_s"),
                "samples_per_s": _ratio(entry["throughput"], entry["cpu_throughput"], "samples_per_s"),
                "note": "same network sizes and training batch; throughput batches as recorded in each"}
    except Exception as exc:  # noqa: BLE001  (one kind's failure is recorded and the others go on)
        entry["error"] = _error(phase, exc)
        print(f"[{name}] FAILED in {phase}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    entry["wall_s"] = time.perf_counter() - start
    entry["status"] = "failed" if "error" in entry else "ok"
    agree = entry.get("agreement", {}).get("pass")
    print(f"[{name}] {entry['status']}, agreement {'pass' if agree else 'FAIL' if agree is False else 'n/a'}, "
          f"{entry['wall_s']:.1f} s", flush=True)
    save()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--quick", action="store_true", help="tiny networks and steps (the CPU test)")
    p.add_argument("--budget-s", type=float, default=None, help="time budget of all kinds (400; --quick 60)")
    p.add_argument("--hard-limit-s", type=float, default=None,
                   help="stop wherever the run is after this many seconds (budget + 50)")
    p.add_argument("--steps", type=int, default=None, help="training steps per kind on the device (200; --quick 4)")
    p.add_argument("--cpu-steps", type=int, default=None, help="training steps of the CPU pass (20; --quick 2)")
    p.add_argument("--target", type=int, default=None, help="largest throughput batch (default: per kind)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's, i.e. the cores; --quick: 1, which on a loaded "
                        "machine avoids OpenMP threads waiting for each other)")
    p.add_argument("--cpu-pass", action="store_true",
                   help="run the CPU pass and ratios with --device cpu too (the code path of --device cuda)")
    p.add_argument("--kinds", default=None, help="comma-separated subset of the kinds")
    p.add_argument("--commit", default=None, help="git commit to record where the copy has no .git")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON (default benchmarks/results/gpu.json; gpu_check_cpu[_quick].json for --device cpu)")
    args = p.parse_args(argv)
    quick = args.quick
    args.budget_s = args.budget_s if args.budget_s is not None else (60.0 if quick else 400.0)
    args.hard_limit_s = args.hard_limit_s or args.budget_s + 50.0
    args.steps = args.steps or (4 if quick else 200)
    args.threads = args.threads if args.threads is not None else (1 if quick else 0)
    args.cpu_steps = args.cpu_steps or (2 if quick else 20)
    if args.target is None and quick:
        args.target = 1024
    if args.out is None:
        name = "gpu.json" if args.device.startswith("cuda") else f"gpu_check_cpu{'_quick' if quick else ''}.json"
        args.out = HERE / "results" / name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device} but no CUDA device is visible to torch {torch.__version__} "
              f"(built with CUDA {torch.version.cuda}); run it on a GPU machine, or use --device cpu",
              file=sys.stderr)
        return 2
    if device.type not in ("cpu", "cuda"):
        print(f"gpu_check: --device must be cuda or cpu, got {args.device!r}", file=sys.stderr)
        return 2
    kinds = list(KINDS) if args.kinds is None else args.kinds.split(",")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        print(f"gpu_check: unknown kinds {unknown}; known: {list(KINDS)}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = quick_sizes() if args.quick else paper_sizes()
    report: dict[str, Any] = {
        "benchmark": "gpu_check", "status": "running", "ok": None, "command": " ".join(sys.argv),
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "git": git_state(args.commit),
        "device": str(device), "machine": machine(device), "quick": args.quick, "sizes": sizes["source"],
        "packages": packages(), "budget_s": args.budget_s, "hard_limit_s": args.hard_limit_s,
        "steps_nominal": args.steps, "cpu_steps_nominal": args.cpu_steps,
        "tolerances": {"float64_max_rel": TOL_FLOAT64, "float32_factor_over_cpu32": FLOAT32_FACTOR,
                       "float32_floor": FLOAT32_FLOOR, "metric": "max |x_dev - x_ref| / (1 + |x_ref|), "
                       "x_ref = CPU float64 at the same weights and inputs"},
        "kinds": {}, "_t0": time.perf_counter()}

    def save() -> None:
        _write(args.out, report)

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def hard_limit(signum, frame):
        raise TimeLimit(f"--hard-limit-s {args.hard_limit_s:g} s reached")

    print(f"gpu_check on {report['machine']['device_name']} ({device}), torch {torch.__version__}, "
          f"budget {args.budget_s:.0f} s, writing {args.out}", flush=True)
    save()
    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGTERM, interrupted), (signal.SIGALRM, hard_limit))}
    try:
        signal.setitimer(signal.ITIMER_REAL, args.hard_limit_s)
        with tempfile.TemporaryDirectory() as tmp:
            factories = kind_factories(sizes, Path(tmp))
            for i, name in enumerate(kinds):
                left = max(args.budget_s - (time.perf_counter() - report["_t0"]), 0.0)
                budget = left / (len(kinds) - i)
                entry = report["kinds"][name] = {"status": "running", "budget_s": round(budget, 2)}
                run_kind(name, factories[name], entry, device, args, budget, report["_t0"] + args.budget_s, save)
        report["status"] = "complete"
    except (KeyboardInterrupt, TimeLimit) as exc:
        report["status"] = f"interrupted ({type(exc).__name__}: {exc})"
        for entry in report["kinds"].values():
            if entry["status"] == "running":
                entry["status"] = "interrupted"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        report["ok"] = report["status"] == "complete" and all(
            k["status"] == "ok" and k.get("agreement", {}).get("pass") for k in report["kinds"].values())
        save()
    print(f"gpu_check: {report['status']}, {'all kinds ran and agree' if report['ok'] else 'FAILURES'}; "
          f"wrote {args.out}", flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
