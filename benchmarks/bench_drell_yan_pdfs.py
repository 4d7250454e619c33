"""σ(pp → γ/Z/Z′ → e⁺e⁻, m_ee > 15 GeV) at 13 TeV for every accepted PDF set (thesis §5.2.3).

    python benchmarks/bench_drell_yan_pdfs.py [--calls 1000000] [--threads 1] [--out PATH]

Multi-channel VEGAS (MG5 prior, 10 adaptation iterations of calls/10, then ``--calls`` evaluation
calls) on the integrand of :func:`lhcflow.nis.drell_yan.drell_yan_integrand` with each set of
:data:`lhcflow.physics.pdf_sets.PDF_SETS`, against the thesis's MG5 value 4349.7 ± 0.32 pb
(NNPDF4.0 LO, not shipped). The README table is this file's output; tests/test_drell_yan.py checks
the same numbers with an independent quadrature. Writes ``--out`` (default
benchmarks/results/drell_yan_pdf_sets.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import torch

from lhcflow.atomic import write_json
from lhcflow.nis.drell_yan import REFERENCE_PB, drell_yan_integrand
from lhcflow.nis.run import run_integrator
from lhcflow.physics.pdf_sets import DEFAULT_PDF_SET, PDF_SETS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import cpu_model  # noqa: E402  (one CPU-model reader for every benchmark)

HERE = Path(__file__).resolve().parent


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="evaluation calls per set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "drell_yan_pdf_sets.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference, reference_error = REFERENCE_PB
    config = {"iterations": 10, "samples_per_iteration": args.calls // 10}
    report = {"benchmark": "drell_yan_pdf_sets", "command": " ".join(sys.argv), "cpu": cpu_model(),
              "threads": args.threads, "vegas": {**config, "n_eval": args.calls, "prior": "mg5", "seed": args.seed},
              "reference_pb": reference, "reference_error_pb": reference_error, "default": DEFAULT_PDF_SET,
              "start": dt.datetime.now(dt.timezone.utc).isoformat(), "results": []}
    for name, entry in PDF_SETS.items():
        t0 = time.perf_counter()
        result = run_integrator("vegas", drell_yan_integrand(pdf=name, prior="mg5"), args.calls, config, seed=args.seed)
        row = {"pdf": name, "lhapdf_id": entry.lhapdf_id, "sigma_pb": result.integral, "error_pb": result.error,
               "rel_error": result.error / result.integral, "deviation": result.integral / reference - 1,
               "wall_s": time.perf_counter() - t0}
        report["results"].append(row)
        print(f"{name:30s} {row['sigma_pb']:9.2f} ± {row['error_pb']:5.2f} pb  {row['deviation']:+7.2%}  "
              f"({row['wall_s']:.0f} s)", flush=True)
    write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
