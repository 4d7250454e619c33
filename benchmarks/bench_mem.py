"""ML-MEM integration throughput (thesis §6.4.1, issue 8): MEM events and integrand samples per second.

    python benchmarks/bench_mem.py [--device cpu|cuda] [--threads 1] [--transfers cinn,cfm,transfermer]
                                   [--size small|paper] [--batch-sizes 1000,10000] [--events 16,64]
                                   [--paired PATH ...] [--fiducial PATH] [--out PATH]

For each transfer kind the full integrand of Eq 6.39 is evaluated as the workflow does it: Sampling-cINN
(latent r -> x_hard, log q), tHj dσ/d⁷x_hard with the five g_i (PDFs, both beam orderings), learned-acceptance
stand-in (a Table A.8 classifier), transfer density, VEGAS latent refinement and 100 bootstrap replicas.
Networks have the default-config (``small``) or thesis (``paper``: Tables A.7, A.9, A.10) sizes with
untrained weights — throughput does not depend on the weights, except that a fixed number of
iterations (2) is forced so every configuration does the same work. Reported: wall time per
call, MEM events/s, integrand samples/s, and the time split between the components (one batch each).

Inputs: accepted events of a paired tHj file (default: the default config's leptonic α = 0 test
sample) and its fiducial fit (σ_fid). Writes ``--out`` (default benchmarks/results/mem_<device>.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import write_json
from lhcflow.classifier.network import Classifier
from lhcflow.mem.features import hard_features
from lhcflow.mem.data import read_test_events
from lhcflow.mem.integration import MemSettings, integrate_events
from lhcflow.mem.sampling import SamplingNetwork, sampling_context
from lhcflow.mem.thj_integrand import build_integrand
from lhcflow.mem.transfer import build_transfer
from lhcflow.mem.transfer import reco_rows as paired_reco_rows
from lhcflow.thj.cross_section import cross_section_from_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = {
    "small": {"cinn": {"n_blocks": 6, "hidden": 64, "layers_per_block": 3, "bins": 10},
              "cfm": {"hidden": 128, "layers": 4, "steps": 20},
              "transfermer": {"embed_dim": 32, "heads": 4, "encoder_layers": 2, "decoder_layers": 2,
                              "feedforward_dim": 64, "subnet_layers": 3, "subnet_hidden": 64, "bins": 8},
              "sampling": {"n_blocks": 6, "hidden": 64, "layers_per_block": 3, "bins": 10}},
    "paper": {"cinn": {"n_blocks": 20, "hidden": 256, "layers_per_block": 5, "bins": 30},
              "cfm": {"hidden": 512, "layers": 8, "steps": 20},
              "transfermer": {},  # Table A.10 defaults of TransferTransformer
              "sampling": {"n_blocks": 20, "hidden": 256, "layers_per_block": 5, "bins": 30}},
}


class _Acceptance:
    """A Table A.8-sized classifier on the Eq 6.31 features (untrained): the cost of ε_ψ per sample."""

    def __init__(self, device):
        self.net = Classifier(7, 1, hidden=256, layers=6).to(device).eval()

    @torch.no_grad()
    def __call__(self, x_hard):
        return torch.sigmoid(self.net((x_hard / 100.0).float()).reshape(-1).double())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, repeats: int = 3) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--transfers", default="cinn,cfm,transfermer")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--batch-sizes", default="1000,10000")
    parser.add_argument("--events", default="16")
    parser.add_argument("--paired", nargs="+", default=["results/default/thj/paired/leptonic/alpha0/shard0.h5"])
    parser.add_argument("--fiducial", default="results/default/thj/fiducial/leptonic.json")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = read_test_events(args.paired)
    xs = cross_section_from_config({}, str(device))
    masses = (xs.params.mt, xs.params.mh)
    hard = hard_features(data["x_hard"])
    record = {"benchmark": "ML-MEM integration throughput", "size": args.size, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
              "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
              "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "n_available_events": len(hard), "results": []}
    acceptance = _Acceptance(device)
    for kind in args.transfers.split(","):
        torch.manual_seed(0)
        transfer = build_transfer({"kind": kind, "network": SIZES[args.size][kind if kind in SIZES[args.size] else "transfermer"]},
                                  data, masses)
        rows = paired_reco_rows(transfer, data)
        transfer.fit_preprocessing(rows, hard)
        transfer.to(device).eval()
        context_raw = sampling_context(transfer.layout, data)
        sampler = SamplingNetwork(context_raw.shape[1], SIZES[args.size]["sampling"])
        sampler.fit_preprocessing(context_raw, hard)
        sampler.to(device).eval()
        integrand = build_integrand(xs, transfer, args.fiducial, float(data["attrs"]["branching_ratio"]), acceptance)
        reco = torch.as_tensor(rows, dtype=torch.float64)
        context = sampler.context(context_raw)
        for batch in map(int, args.batch_sizes.split(",")):
            # component split on one batch of samples of one event
            r = torch.randn(batch, 7, dtype=torch.float64, device=device)
            alpha = torch.zeros(batch, dtype=torch.float64, device=device)
            ctx = context[:1].to(device).expand(batch, -1)
            with torch.no_grad():
                x, _ = sampler.sample(r, ctx, alpha)
            reco_rows = reco[:1].to(device).expand(batch, *reco.shape[1:])
            split = {"sampling_s": _timed(lambda: sampler.sample(r, ctx, alpha), device),
                     "cross_section_s": _timed(lambda: integrand.hard_terms(x), device),
                     "acceptance_s": _timed(lambda: acceptance(x), device),
                     "transfer_s": _timed(lambda: integrand.transfer_log_prob(reco_rows, x), device)}
            for n_events in map(int, args.events.split(",")):
                n_events = min(n_events, len(reco))
                settings = MemSettings(batch_size=batch, min_iterations=2, max_iterations=2, vegas=True,
                                       bootstrap_replicas=100, alpha_grid=tuple(np.radians([-90, -45, 0, 45, 90])))
                start = time.perf_counter()
                integrate_events(integrand, sampler, reco[:n_events], context[:n_events], settings, device=device)
                _sync(device)
                wall = time.perf_counter() - start
                row = {"transfer": kind, "batch_size": batch, "events": n_events, "iterations": 2, "wall_s": wall,
                       "events_per_s": n_events / wall, "samples_per_s": 2 * batch * n_events / wall,
                       "component_split_one_batch": split}
                print(row, flush=True)
                record["results"].append(row)
    out = Path(args.out) if args.out else HERE / "results" / f"mem_{device.type}.json"
    write_json(out, record)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
