"""Peak memory of the streaming stages at 1x and 10x the number of events (issue 18, part 4).

    python benchmarks/bench_memory.py [--scale 1.0] [--out benchmarks/results/memory.json]

Each stage runs as the workflow runs it (the ``lhcflow`` stage function its script calls), in a fresh
child process per size, and its peak RSS is the child's ``ru_maxrss`` as ``os.wait4`` reports it:

* ``shower``: Pythia 8 Z+jets with FastJet into the ntuple (``run_pythia``), 200 vs 2000 events;
* ``ingest``: an lhcflow-layout ntuple (written by ``bench_ingest.write_input``) into the train/val/test
  files (``ingest_sample``, 10k-event chunks), 30k vs 300k events;
* ``sampling``: the Z+jets INN chain with the default-config networks (untrained: memory does not depend on
  the weights) into a canonical file (``zjets.stages.sample_stage``), 20k vs 200k events;
* ``mem_integration``: ``mem.stages.integrate_stage`` with the default-config cINN transfer and Sampling-cINN
  (untrained), 1000 samples per event, 2 iterations, 50 bootstrap replicas, chunks of 8 events, on 8 vs 80
  events of a synthetic paired file (``gpu_kinds.paired_like``).

A stage streams if its peak above the child's RSS after imports and setup (``rss_after_setup_mb``) does not
grow with the events: ``growth_above_setup`` = (peak₁₀ − setup₁₀)/(peak₁ − setup₁) near 1, against 10 for
memory ∝ events. Nothing is asserted; the JSON records the numbers and a verdict.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

INGEST_CHUNK = 10_000
SAMPLING_BATCH = 10_000  # events per sampling block: below the 1x size, so both sizes hold full blocks
MEM_INTEGRATION = {"batch_size": 1000, "min_iterations": 2, "max_iterations": 2, "bootstrap_replicas": 50,
                   "chunk_size": 8}
STAGES = {  # stage -> (1x events, what)
    "shower": (200, "Pythia 8 Z+jets events showered, clustered and written (run_pythia, 200-event chunks)"),
    "ingest": (30_000, f"ntuple events ingested (ingest_sample, {INGEST_CHUNK}-event chunks)"),
    "sampling": (20_000, "Z+jets INN chain events sampled and written (zjets.stages.sample_stage, 10000-event blocks)"),
    "mem_integration": (8, (f"tHj events MEM-integrated (mem.stages.integrate_stage, {MEM_INTEGRATION['chunk_size']}"
                            f"-event chunks of {MEM_INTEGRATION['batch_size']} samples)")),
}
STREAMING_GROWTH = 2.0  # 10x the events, less than 2x the memory above the setup: streaming


def _status_mb(field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def _default_config() -> dict:
    from lhcflow.config import load_config

    return load_config(ROOT / "config" / "config.yaml")


# ----------------------------------------------------------------------------------- inputs (parent)

def prepare(stage: str, n: int, work: Path) -> None:
    """Inputs of ``stage`` at ``n`` events, written into ``work`` before the child runs."""
    if stage == "ingest":
        from bench_ingest import write_input

        write_input(work / f"ntuple_{n}.root", n)
    elif stage == "sampling" and not (work / "pre.json").exists():
        _prepare_chain(work)
    elif stage == "mem_integration":
        _prepare_mem(work, n)


def _prepare_chain(work: Path) -> None:
    """Preprocessing fitted on the 1x ingest output and untrained default-config INN networks."""
    import torch

    from lhcflow.models import build_generator
    from lhcflow.zjets.chain import NETWORKS, network_dims, save_network
    from lhcflow.zjets.stages import PreprocessSettings, preprocess_stage

    cfg = _default_config()["zjets"]
    smallest = min(work.glob("ingest_*/train.h5"), key=lambda p: int(p.parent.name.split("_")[1]))
    preprocess_stage(PreprocessSettings.from_config({"magic": cfg["magic"]}), train=smallest, out=work / "pre.json")
    model = cfg["models"]["inn"]
    for net in NETWORKS:
        torch.manual_seed(net)
        save_network(build_generator(model["kind"], *network_dims(net), **model["network"]), work / f"net{net}.pt")


def _prepare_mem(work: Path, n: int) -> None:
    """A paired file of n accepted events, untrained default-config transfer and sampling networks, σ_fid."""
    import h5py
    import torch
    from gpu_kinds import FIDUCIAL, paired_like

    from lhcflow.mem.features import hard_features
    from lhcflow.mem.sampling import SamplingNetwork, sampling_context
    from lhcflow.mem.transfer import build_transfer, layout_of, reco_rows

    data = paired_like(n, seed=7)
    with h5py.File(work / f"paired_{n}.h5", "w") as f:
        for key, value in data.items():
            if key != "attrs":
                f[key] = value
        for key, value in {**data["attrs"], "heavy": "top"}.items():  # as thj.paired writes them
            f.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)
    if (work / "transfer.pt").exists():
        return
    mem = _default_config()["mem"]
    pool = paired_like(2000, seed=8)
    hard = hard_features(pool["x_hard"])
    torch.manual_seed(0)
    transfer = build_transfer(mem["transfers"]["cinn"], pool, (173.0, 125.0))
    transfer.fit_preprocessing(reco_rows(transfer, pool), hard)
    transfer.save(work / "transfer.pt")
    context = sampling_context(layout_of(pool), pool)
    sampler = SamplingNetwork(context.shape[1], mem["sampling"]["network"])
    sampler.fit_preprocessing(context, hard)
    sampler.save(work / "sampling.pt")
    (work / "fiducial.json").write_text(json.dumps({"fit": {"parameters": FIDUCIAL}, "heavy": "top"}))


# ----------------------------------------------------------------------------------- stages (child)

def run_stage(stage: str, n: int, work: Path) -> dict:
    """Import what the stage needs, note the RSS, run it; in the child process."""
    out = work / f"{stage}_{n}"
    out.mkdir(exist_ok=True)
    if stage == "shower":
        from lhcflow.generation.pythia import run_pythia, zjets_settings

        def work_fn():
            return {"events": run_pythia(zjets_settings({}), n, 4711, out / "shower.root", out / "shower.json",
                                         progress=False)["n_written"]}
    elif stage == "ingest":
        from bench_ingest import SELECTION, SPLIT

        from lhcflow.data.ingest import ingest_sample

        def work_fn():
            outputs = {k: work / f"ingest_{n}" / f"{k}.h5" for k in SPLIT["fractions"]}
            cutflow = ingest_sample({"files": [str(work / f"ntuple_{n}.root")], "layout": "lhcflow"}, SELECTION,
                                    SPLIT, outputs, work / f"ingest_{n}" / "cutflow.json", sample_name="bench",
                                    chunk_size=INGEST_CHUNK, progress=False)
            return {"events": cutflow["steps"][0]["events"], "selected": cutflow["steps"][-1]["events"]}
    elif stage == "sampling":
        from lhcflow.zjets.stages import SampleSettings, sample_stage

        cfg = _default_config()["zjets"]
        nets = [work / f"net{k}.pt" for k in (1, 2, 3)]
        settings = SampleSettings.from_config({"model": cfg["models"]["inn"], "magic": cfg["magic"], "n_events": n,
                                               "seed": 1, "batch_size": SAMPLING_BATCH})

        def work_fn():
            return {"events": sample_stage(settings, preprocessing=work / "pre.json", nets=nets,
                                           out_events=out / "sample.h5").n_events}
    elif stage == "mem_integration":
        from lhcflow.mem.stages import IntegrateSettings, integrate_stage

        settings = IntegrateSettings.from_config({"process": {}, "integration": MEM_INTEGRATION, "seed": 1,
                                                  "device": "cpu"})

        def work_fn():
            stats = integrate_stage(settings, paired=[work / f"paired_{n}.h5"], transfer=work / "transfer.pt",
                                    sampling=work / "sampling.pt", fiducial=work / "fiducial.json",
                                    out_h5=out / "mem.h5", out_stats=out / "stats.json",
                                    checkpoint_dir=out / "checkpoints", progress=False).stats
            return {"events": stats["n_events"]}
    else:
        raise ValueError(f"unknown stage {stage!r}")
    setup = _status_mb("VmRSS")
    start = time.perf_counter()
    record = work_fn()
    return {**record, "wall_s": time.perf_counter() - start, "rss_after_setup_mb": setup,
            "vm_hwm_mb": _status_mb("VmHWM")}


def _child(stage: str, n: int, work: Path) -> dict:
    """Run ``stage`` in a fresh process; its peak RSS from the kernel's accounting of that child."""
    log_out, log_err = work / f"{stage}_{n}.out", work / f"{stage}_{n}.err"
    with open(log_out, "w") as stdout, open(log_err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, __file__, "--child", stage, "--n", str(n), "--work", str(work)],
                                stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (Popen.wait would discard it)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{stage} at {n} events failed ({code}):\n{log_err.read_text()[-3000:]}")
    record = json.loads(log_out.read_text().strip().splitlines()[-1])
    return {"n": n, **record, "peak_rss_mb": usage.ru_maxrss / 1024}


def verdict(small: dict, large: dict) -> dict:
    """Peak ratio, growth of the peak above the post-setup RSS, and (where it grows) MB per event."""
    growth = (large["peak_rss_mb"] - large["rss_after_setup_mb"]) / max(
        small["peak_rss_mb"] - small["rss_after_setup_mb"], 1e-9)
    increase = large["peak_rss_mb"] - small["peak_rss_mb"]
    out = {"peak_ratio": large["peak_rss_mb"] / small["peak_rss_mb"], "growth_above_setup": growth,
           "peak_increase_mb": increase, "streaming": growth < STREAMING_GROWTH}
    if not out["streaming"]:
        out["peak_increase_kb_per_event"] = increase * 1024 / max(large["events"] - small["events"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every 1x size")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of the stages")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "memory.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_stage(args.child, args.n, args.work)))
        return
    from bench_generation import cpu_model

    report = {"benchmark": "bench_memory", "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                          "python": platform.python_version()},
              "criterion": f"streaming if (peak - rss_after_setup) grows by less than {STREAMING_GROWTH}x "
                           "from 1x to 10x events", "stages": {}}
    stages = ["ingest", *[s for s in args.stages.split(",") if s != "ingest"]]  # sampling fits on ingest's output
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for stage in stages:
            base, what = STAGES[stage]
            runs = []
            for n in (int(base * args.scale), int(10 * base * args.scale)):
                prepare(stage, n, work)
                print(f"{stage}: {n} events", flush=True)
                runs.append(_child(stage, n, work))
                print(f"  peak RSS {runs[-1]['peak_rss_mb']:.0f} MB (after setup {runs[-1]['rss_after_setup_mb']:.0f} MB), "
                      f"{runs[-1]['wall_s']:.1f} s", flush=True)
            if stage in args.stages.split(","):
                report["stages"][stage] = {"what": what, "runs": runs, **verdict(*runs)}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: {x: v[x] for x in ("peak_ratio", "growth_above_setup", "streaming")}
                      for k, v in report["stages"].items()}, indent=2))


if __name__ == "__main__":
    main()
