"""benchmarks/gpu_check.py (issue 18, part 1) on the CPU: the --quick path a lent GPU runs at full size, so
that it cannot rot, and the agreement checks that decide its pass/fail.

On the CPU the "device" is the CPU again, so the agreement there is exact or at float32 rounding; what these
tests establish is that every kind trains, samples and is compared through the same code as on a GPU, and
that the comparison would catch a device computing in the wrong precision or a different function.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))

import gpu_check  # noqa: E402

TRAINED = {"zjets_inn", "zjets_binn", "zjets_cfm", "transfer_cinn", "transfer_transfermer",
           "transfer_transfusion", "sampling_cinn", "classifier", "madnis"}


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def test_quick_cpu_run_trains_every_kind_and_agrees(tmp_path):
    out = tmp_path / "gpu.json"
    # a budget the quick sizes never reach: on a loaded machine no phase is skipped for time
    proc = _run("--device", "cpu", "--quick", "--cpu-pass", "--budget-s", "600", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["status"] == "complete" and report["ok"] is True
    assert report["device"] == "cpu" and report["machine"]["device_name"]
    assert report["date_utc"] and "commit" in report["git"] and report["machine"]["torch"] == torch.__version__
    assert set(report["kinds"]) == set(gpu_check.KINDS)
    for name, kind in report["kinds"].items():
        assert kind["status"] == "ok", (name, kind.get("error"))
        assert kind["agreement"]["pass"] is True and kind["agreement"]["n_parameters"] > 0
        for quantity, check in kind["agreement"]["checks"].items():
            assert check["float64"]["pass"] and check["float32"]["pass"], (name, quantity, check)
            assert check["float64"]["device_vs_cpu"]["n_compared"] > 0
            assert check["float64"]["device_vs_cpu"]["max_rel"] <= gpu_check.TOL_FLOAT64
            # float32 really was float32: it differs from the float64 reference by rounding, not by nothing
            assert 0 < check["float32"]["cpu32_vs_cpu64"]["max_rel"] < 0.1, (name, quantity)
        tput = kind["throughput"]
        assert tput["samples_per_s"] > 0 and tput["batch"] >= 1 and tput["peak_rss_mb"] > 0
        if name in TRAINED:
            train = kind["train"]
            assert train["steps"] >= gpu_check.PROBE_STEPS and train["steps_per_s"] > 0
            assert train["batch_size"] > 0 and train["peak_rss_mb"] > 0
        # --cpu-pass: the CPU pass and ratios of --device cuda, here the CPU against itself
        assert kind["cpu_throughput"]["samples_per_s"] > 0
        assert kind["ratio_device_over_cpu"]["samples_per_s"] > 0
        if name in TRAINED:
            assert kind["cpu_train"]["steps_per_s"] > 0 and kind["ratio_device_over_cpu"]["steps_per_s"] > 0


def test_cuda_request_without_cuda_fails_in_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the request is valid here")
    proc = _run("--device", "cuda", "--out", str(tmp_path / "gpu.json"), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--device cpu" in lines[0]
    assert not (tmp_path / "gpu.json").exists()


def test_hard_time_limit_leaves_a_json_marked_interrupted(tmp_path):
    out = tmp_path / "gpu.json"
    proc = _run("--device", "cpu", "--quick", "--kinds", "zjets_inn", "--hard-limit-s", "0.01", "--out", str(out),
                timeout=60)
    assert proc.returncode == 1
    report = json.loads(out.read_text())
    assert report["status"].startswith("interrupted") and report["ok"] is False


def test_agreement_check_catches_a_float32_device_path_and_a_wrong_function():
    """The float64 check fails a device that silently computes in float32; the float32 check fails one whose
    deviation is far above the CPU's own float32 rounding, and one that moves points off the support."""
    gen = torch.Generator().manual_seed(0)
    ref = 20 * torch.randn(1000, generator=gen, dtype=torch.float64)
    cpu32 = ref.float().double() + 1e-6 * torch.randn(1000, generator=gen, dtype=torch.float64)
    ok = gpu_check.compare(ref, cpu32, ref.clone(), cpu32.clone())
    assert ok["float64"]["pass"] and ok["float32"]["pass"]
    silent32 = gpu_check.compare(ref, cpu32, cpu32.clone(), cpu32.clone())
    assert not silent32["float64"]["pass"]
    wrong = gpu_check.compare(ref, cpu32, ref.clone(), cpu32 + 1e-3 * ref.abs())
    assert not wrong["float32"]["pass"] and wrong["float64"]["pass"]
    off_support = cpu32.clone()
    off_support[:5] = -torch.inf
    assert not gpu_check.compare(ref, cpu32, ref.clone(), off_support)["float32"]["pass"]
