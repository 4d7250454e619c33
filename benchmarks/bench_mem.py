"""ML-MEM integration throughput (thesis §6.4.1, issue 18): MEM events/s of the current code and of a
baseline commit, for the same networks and events, measured side by side in one run.

    python benchmarks/bench_mem.py --paired PATH [PATH ...] --fiducial PATH [--baseline REF|none]
        [--size validation|small|paper] [--transfers cinn] [--batch-sizes 800,10000] [--events 16,4]
        [--repeats 3] [--threads 1] [--device cpu] [--out PATH]

The integrand of Eq 6.39 is evaluated as the workflow does it (``mem.stages.load_mem_setup``):
Sampling-cINN (latent r -> x_hard, log q), tHj dσ/d⁷x_hard with the five g_i (PDFs, both beam orderings),
the learned acceptance ε_ψ (a Table A.8 classifier), the transfer density, VEGAS latent refinement and
bootstrap replicas. Networks have the validation config's sizes (``validation``: cINN and Sampling-cINN
10 blocks × 128, 3 layers, 16 bins; acceptance 128 × 5), the default config's (``small``) or the thesis'
(``paper``). They are untrained, except that the zero-initialised last layers get small random weights so
that every spline is a real, non-identity map; throughput does not depend on the weights. Two iterations
per event are forced (min = max = 2) so that every configuration does the same work.

The networks are built once and saved; two worker processes, one importing ``lhcflow`` from this
checkout and one from ``git archive REF`` (``--baseline``; ``none``: the current code only), load the
same files and events and run the same integrations with the same seeds. Repetitions alternate the
order of the two, so that the load of a shared machine affects both alike. Reported per configuration:
the speed-up (median over repetitions of the per-repetition time ratio baseline/current, and its range,
from wall-clock time and from the process's CPU time, which a busy machine disturbs less),
MEM events/s and samples/s of both (median), the CPU time per sample of each integrand piece (called on
2048 samples of one event), and how far
the current results lie from the baseline's: the largest change of log p(x_reco|α) on the α grid, in
units of its bootstrap standard deviation. Writes ``--out`` (default benchmarks/results/mem_<device>.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIZES = {
    "validation": {"cinn": {"n_blocks": 10, "hidden": 128, "layers_per_block": 3, "bins": 16},
                   "sampling": {"n_blocks": 10, "hidden": 128, "layers_per_block": 3, "bins": 16},
                   "acceptance": {"hidden": 128, "layers": 5}},
    "small": {"cinn": {"n_blocks": 6, "hidden": 64, "layers_per_block": 3, "bins": 10},
              "cfm": {"hidden": 128, "layers": 4, "steps": 20},
              "transfermer": {"embed_dim": 32, "heads": 4, "encoder_layers": 2, "decoder_layers": 2,
                              "feedforward_dim": 64, "subnet_layers": 3, "subnet_hidden": 64, "bins": 8},
              "sampling": {"n_blocks": 6, "hidden": 64, "layers_per_block": 3, "bins": 10},
              "acceptance": {"hidden": 128, "layers": 5}},
    "paper": {"cinn": {"n_blocks": 20, "hidden": 256, "layers_per_block": 5, "bins": 30},
              "cfm": {"hidden": 512, "layers": 8, "steps": 20},
              "transfermer": {},  # Table A.10 defaults of TransferTransformer
              "sampling": {"n_blocks": 20, "hidden": 256, "layers_per_block": 5, "bins": 30},
              "acceptance": {"hidden": 256, "layers": 6}},
}
PROCESS = {"pdf": "NNPDF23_lo_as_0119_qed", "scale": "ht2"}
COMPONENT_SAMPLES = 2048  # samples per call in the component split (the integration's CPU block size)


# =========================================================================== networks (current code)

def _perturb_last_layers(module: torch.nn.Module, scale: float, seed: int) -> None:
    """Small random weights for the zero-initialised last layers, so that no spline is the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 2 and not p.any():
                p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def build_models(paired: list[str], size: str, kinds: list[str], out_dir: Path) -> None:
    """Transfer networks, Sampling-cINNs and an acceptance classifier, saved in the workflow's formats."""
    from lhcflow.classifier.features import FeatureScaler
    from lhcflow.classifier.network import Classifier
    from lhcflow.classifier.train import save_classifier
    from lhcflow.mem.acceptance import LearnedAcceptance
    from lhcflow.mem.features import hard_features
    from lhcflow.mem.data import read_test_events
    from lhcflow.mem.sampling import SamplingNetwork, sampling_context
    from lhcflow.mem.transfer import build_transfer, reco_rows
    from lhcflow.thj.cross_section import cross_section_from_config

    data = read_test_events(paired)
    params = cross_section_from_config(PROCESS).params
    masses = (params.mt, params.mh)
    hard = hard_features(data["x_hard"])
    for kind in kinds:
        if kind not in SIZES[size]:
            raise SystemExit(f"no {kind!r} network of size {size!r}; sizes with it: "
                             f"{[s for s in SIZES if kind in SIZES[s]]}")
        torch.manual_seed(0)
        transfer = build_transfer({"kind": kind, "network": SIZES[size][kind]}, data, masses)
        transfer.fit_preprocessing(reco_rows(transfer, data), hard)
        _perturb_last_layers(transfer, 0.02, 1)
        transfer.save(out_dir / f"transfer_{kind}.pt")
        context = sampling_context(transfer.layout, data)
        sampler = SamplingNetwork(context.shape[1], SIZES[size]["sampling"])
        sampler.fit_preprocessing(context, hard)
        _perturb_last_layers(sampler, 0.02, 2)
        sampler.save(out_dir / f"sampling_{kind}.pt")
    torch.manual_seed(0)
    classifier = Classifier(12, 1, **SIZES[size]["acceptance"]).eval()
    path = out_dir / "acceptance.pt"
    for scaler in (FeatureScaler(np.zeros(12), np.ones(12)), None):  # first unscaled, to fit the scaler
        if scaler is None:
            raw = LearnedAcceptance(path, masses).features(torch.as_tensor(hard, dtype=torch.float64))
            scaler = FeatureScaler.fit(raw.numpy())
        save_classifier(path, classifier, {"task": {"kind": "acceptance"}, "scaler": scaler.state_dict()})


# =========================================================================== worker (either code version)

def _setup(args, kind: str):
    from lhcflow.mem.stages import load_mem_setup

    return load_mem_setup(args.paired, args.models / f"transfer_{kind}.pt", args.models / f"sampling_{kind}.pt",
                          args.fiducial, PROCESS, acceptance_path=args.models / "acceptance.pt", device=args.device)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _components(setup, n: int, device) -> dict[str, float]:
    """Microseconds per sample of each integrand piece, called on ``n`` samples of one event (median of 3)."""
    r = torch.randn(n, 7, dtype=torch.float64, device=device)
    alpha = torch.zeros(n, dtype=torch.float64, device=device)
    ctx = setup.context[:1].to(device).expand(n, -1)
    rows = setup.reco[:1].to(device).expand(n, *setup.reco.shape[1:])
    with torch.no_grad():
        x, _ = setup.sampler.sample(r, ctx, alpha)
    pieces = {"sampling": lambda: setup.sampler.sample(r, ctx, alpha),
              "cross_section": lambda: setup.integrand.hard_terms(x),
              "acceptance": lambda: setup.integrand.acceptance(x),
              "transfer": lambda: setup.integrand.transfer_log_prob(rows, x)}
    out = {}
    with torch.no_grad():
        for name, fn in pieces.items():
            fn()
            times = []
            for _ in range(3):
                _sync(device)
                start = time.process_time()
                fn()
                _sync(device)
                times.append(time.process_time() - start)
            out[f"{name}_us_per_sample"] = float(np.median(times)) / n * 1e6
    return out


def worker(args) -> None:
    """Serve integration requests (one JSON line each on stdin) with the ``lhcflow`` on sys.path."""
    import lhcflow
    from lhcflow.mem.integration import MemSettings, integrate_events

    torch.set_num_threads(args.threads)
    setups: dict[str, object] = {}
    print("READY " + json.dumps({"lhcflow": str(Path(lhcflow.__file__).parent)}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        kind = cmd["kind"]
        if kind not in setups:
            setups[kind] = _setup(args, kind)
        setup = setups[kind]
        n_events = min(int(cmd["events"]), len(setup.reco))
        settings = MemSettings(batch_size=int(cmd["batch"]), min_iterations=cmd["iterations"],
                               max_iterations=cmd["iterations"], vegas=cmd["vegas"],
                               bootstrap_replicas=cmd["replicas"], target_rel_error=0.05, seed=0,
                               **cmd.get("settings", {}))
        _sync(args.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        result = integrate_events(setup.integrand, setup.sampler, setup.reco[:n_events], setup.context[:n_events],
                                  settings, device=setup.device)
        _sync(args.device)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        grid = np.asarray(settings.alpha_grid)
        reply = {"wall_s": wall, "cpu_s": cpu, "events": n_events,
                 "log_l": result.log_likelihood(grid).tolist(),
                 "log_l_boot_std": result.log_likelihood_replicas(grid).std(axis=1).tolist()}
        if cmd.get("components"):
            reply["components"] = _components(setup, COMPONENT_SAMPLES, setup.device)
        print("RESULT " + json.dumps(reply), flush=True)


# =========================================================================== driver

class Worker:
    def __init__(self, name: str, src: Path, args, models: Path):
        env = dict(os.environ, PYTHONPATH=str(src) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--models", str(models),
               "--fiducial", str(args.fiducial), "--threads", str(args.threads), "--device", args.device,
               "--paired", *map(str, args.paired)]
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.location = json.loads(self._read("READY "))["lhcflow"]

    def _read(self, prefix: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):]
        raise RuntimeError(f"{self.name} worker ended (exit code {self.proc.wait()})")

    def run(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read("RESULT "))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _baseline_source(ref: str, tmp: Path) -> tuple[Path, str]:
    """``src/`` of commit ``ref`` of this repository, unpacked into ``tmp``; and the full hash."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = tmp / "baseline.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), commit, "src/lhcflow"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / "baseline", filter="data")
    return tmp / "baseline" / "src", commit


def _agreement(base: dict, cur: dict) -> dict:
    """Largest |Δ log p(x_reco|α)| over events and the α grid, absolute and over the bootstrap std."""
    a, b = np.asarray(base["log_l"]), np.asarray(cur["log_l"])
    std = np.asarray(cur["log_l_boot_std"])
    diff = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore"):
        pull = np.where(diff > 0, diff / std, 0.0)
    return {"max_abs_delta_log_l": float(np.nanmax(diff)), "max_delta_over_bootstrap_std": float(np.nanmax(pull)),
            "median_bootstrap_std": float(np.median(std))}


def _git_head() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src", "benchmarks"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+uncommitted" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", default="none", help="git ref of the code to compare with, or 'none'")
    parser.add_argument("--transfers", default="cinn")
    parser.add_argument("--size", choices=sorted(SIZES), default="validation")
    parser.add_argument("--batch-sizes", default="800,10000")
    parser.add_argument("--events", default="64,4", help="events per call, one per batch size (the validation "
                        "config integrates chunks of 64 events)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=30)
    parser.add_argument("--no-vegas", dest="vegas", action="store_false")
    parser.add_argument("--paired", nargs="+", default=["results/default/thj/paired/leptonic/alpha0/shard0.h5"])
    parser.add_argument("--fiducial", default="results/default/thj/fiducial/leptonic.json")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from bench_generation import cpu_model

    from lhcflow.atomic import write_json

    device = torch.device(args.device)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    events = [int(e) for e in args.events.split(",")]
    if len(events) != len(batches):
        raise SystemExit("--events needs one number per --batch-sizes entry")
    kinds = args.transfers.split(",")
    record = {"benchmark": "ML-MEM integration throughput, current code vs baseline", "size": args.size,
              "networks": SIZES[args.size], "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
              "cpu_count": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
              "python": platform.python_version(), "load_average_start": os.getloadavg(),
              "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "current": _git_head(), "baseline": None, "repeats": args.repeats,
              "settings": {"iterations": 2, "vegas": args.vegas, "bootstrap_replicas": args.replicas,
                           "alpha_grid": "default (36 points)", "seed": 0},
              "results": []}
    with tempfile.TemporaryDirectory(prefix="bench_mem_") as tmp:
        tmp = Path(tmp)
        models = tmp / "models"
        models.mkdir()
        build_models(args.paired, args.size, kinds, models)
        workers = {"current": Worker("current", REPO / "src", args, models)}
        if args.baseline != "none":
            src, commit = _baseline_source(args.baseline, tmp)
            record["baseline"] = commit
            workers["baseline"] = Worker("baseline", src, args, models)
        record["code"] = {name: w.location for name, w in workers.items()}
        common = {"iterations": 2, "vegas": args.vegas, "replicas": args.replicas}
        for w in workers.values():  # warm-up: lazy initialisations, first allocations
            for kind in kinds:
                w.run(kind=kind, batch=64, events=2, **{**common, "iterations": 1})
        runs: dict[tuple, dict[str, list]] = {}
        for rep in range(args.repeats):
            order = list(workers) if rep % 2 == 0 else list(reversed(workers))
            for kind in kinds:
                for batch, n_events in zip(batches, events):
                    for name in order:
                        reply = workers[name].run(kind=kind, batch=batch, events=n_events, components=rep == 0,
                                                  **common)
                        runs.setdefault((kind, batch), {}).setdefault(name, []).append(reply)
                        print(f"rep {rep} {kind} N={batch} {name}: {reply['wall_s']:.2f} s wall, "
                              f"{reply['cpu_s']:.2f} s CPU", flush=True)
        for w in workers.values():
            w.close()
    for (kind, batch), by_name in runs.items():
        row = {"transfer": kind, "batch_size": batch, "events": by_name["current"][0]["events"], "iterations": 2}
        for name, replies in by_name.items():
            walls = np.array([r["wall_s"] for r in replies])
            n = replies[0]["events"]
            row[name] = {"wall_s": walls.tolist(), "cpu_s": [r["cpu_s"] for r in replies],
                         "events_per_s": float(n / np.median(walls)),
                         "samples_per_s": float(2 * batch * n / np.median(walls)),
                         "component_cpu_us_per_sample": replies[0]["components"]}
        if "baseline" in by_name:
            row["speedup"] = {}
            for clock in ("wall_s", "cpu_s"):
                ratios = np.array(row["baseline"][clock]) / np.array(row["current"][clock])
                row["speedup"][clock[:-2]] = {"median": float(np.median(ratios)), "min": float(ratios.min()),
                                              "max": float(ratios.max())}
            row["agreement"] = _agreement(by_name["baseline"][0], by_name["current"][0])
        record["results"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k in ("transfer", "batch_size", "speedup", "agreement")}))
    record["load_average_end"] = os.getloadavg()
    out = Path(args.out) if args.out else HERE / "results" / f"mem_{device.type}.json"
    write_json(out, record)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
