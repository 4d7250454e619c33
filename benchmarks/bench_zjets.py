"""Training and sampling throughput of the Z+jets generators, and the sampling speed-up over
the Pythia 8 + FastJet chain, measured in the same run on the same machine.

    python benchmarks/bench_zjets.py [--config config/config.yaml] [--pythia-events 1000]
                                     [--batch-sizes 1024,4096,16384,50000]

Sampling is timed at each batch size (events per network call) after a warm-up; the fastest is the
reported rate.

Needs the default workflow's ingested sample (results/<run>/data/<sample>/train.h5). Writes
benchmarks/results/zjets.json. The network sizes are those of the config's models.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.config import load_config
from lhcflow.data.events import read_events
from lhcflow.generation.pythia import run_pythia, zjets_settings
from lhcflow.training.trainer import TrainingConfig, pick_device, train
from lhcflow.zjets import magic
from lhcflow.zjets.chain import GeneratorChain, chain_data, multiplicity_fractions
from lhcflow.zjets.preprocessing import ZJetsPreprocessing

HERE = Path(__file__).resolve().parent


def bench_model(model: dict, batch, magic_cfg: dict, n_sample: int, batch_sizes: list[int]) -> dict:
    pre = ZJetsPreprocessing().fit(batch)
    data = chain_data(batch, pre, magic_cfg)
    enabled = magic_cfg["enabled"]
    mean_f = magic.mean_training_weight(batch, magic_cfg["r_minus"], magic_cfg["r_plus"]) if enabled else None
    chain = GeneratorChain(model["kind"], model.get("network", {}), pre, multiplicity_fractions(batch),
                           magic_cfg, mean_f)
    trained = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for net in (1, 2, 3):
            torch.manual_seed(net)
            net_data = data.for_network(net)
            cfg = TrainingConfig.from_dict({**model.get("training", {}), "epochs": 1})
            train(chain.networks[net], net_data, cfg, Path(tmp) / f"{net}.ckpt", progress=False)
            trained += len(net_data)
    train_seconds = time.perf_counter() - start
    device = pick_device()
    by_batch = {}
    for size in batch_sizes:  # events per network call: the sampling's batch_size (zjets.sampling.batch_size)
        chain.sample(min(size, n_sample), np.random.default_rng(1), batch_size=size, device=device)  # warm-up
        start = time.perf_counter()
        generated = chain.sample(n_sample, np.random.default_rng(0), batch_size=size, device=device)
        by_batch[size] = len(generated) / (time.perf_counter() - start)
    best = max(by_batch, key=by_batch.get)
    return {"kind": model["kind"], "network": model.get("network", {}),
            "n_parameters": sum(p.numel() for net in chain.networks.values() for p in net.parameters()),
            "train_events_per_s": trained / train_seconds, "train_events_one_epoch": trained,
            "sample_events_per_s": by_batch[best], "sample_batch_size": best,
            "sample_events_per_s_by_batch_size": by_batch, "sample_events": n_sample}


def bench_pythia(n_events: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        meta = run_pythia(zjets_settings({}), n_events, 4711, Path(tmp) / "p.root", Path(tmp) / "p.json",
                          progress=False)
        return meta["n_written"] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--pythia-events", type=int, default=1000)
    parser.add_argument("--sample-events", type=int, default=20000)
    parser.add_argument("--batch-sizes", default="1024,4096,16384,50000",
                        help="sampling batch sizes to time; the best one is reported as sample_events_per_s")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "zjets.json")
    args = parser.parse_args()
    config = load_config(args.config)
    zj = config["zjets"]
    batch = read_events(Path("results") / config["run"] / "data" / zj["sample"] / "train.h5")
    torch.set_num_threads(1)
    pythia_rate = bench_pythia(args.pythia_events)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    models = {name: bench_model(m, batch, zj["magic"], args.sample_events, sizes) for name, m in zj["models"].items()}
    for result in models.values():
        result["sampling_speedup_over_pythia"] = result["sample_events_per_s"] / pythia_rate
    report = {"date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "device": str(pick_device()),
              "torch_threads": torch.get_num_threads(),
              "pythia_events_per_s_one_core": pythia_rate, "models": models, "n_train_events": len(batch),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}
    write_json(args.output, report)
    for name, r in models.items():
        print(f"{name}: train {r['train_events_per_s']:.0f} ev/s, sample {r['sample_events_per_s']:.0f} ev/s, "
              f"(batch {r['sample_batch_size']}), x{r['sampling_speedup_over_pythia']:.0f} over Pythia "
              f"({pythia_rate:.0f} ev/s)")


if __name__ == "__main__":
    main()
