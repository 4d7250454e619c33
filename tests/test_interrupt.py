"""An interrupted run is resumed by running the same command again, as the README says.

End to end through Snakemake on a tiny config (one Pythia shard, then ingestion), run the way a user
runs it: no profile named on the command line, so Snakemake reads profiles/default next to the
Snakefile. Two interruptions of the shard job while it writes its ntuple:

* SIGKILL of the job's process (what the out-of-memory killer or a lost node does): no handler runs,
  the job's temporary ``.shard0.root.<hex>.part`` stays behind; the rerun must remove it.
* SIGINT to Snakemake alone: Snakemake lets the running job finish, then exits and marks its outputs
  incomplete; without ``rerun-incomplete`` (profiles/default) the rerun stops on
  IncompleteFilesException.

After each, the same command must complete, leave no temporary file, and give the outputs of an
uninterrupted run (``python -m lhcflow.digest compare``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
RUN = "results/interrupt"
CONFIG = """
run: interrupt
seed: 11
samples:
  zj: {kind: pythia, n_events: 300, n_shards: 1}
zjets: {sample: zj, models: {}}
classifier: {enabled: false}
hard_classifiers: {}
nis: {enabled: false}
thj: {enabled: false}
"""
TARGETS = [f"{RUN}/data/zj/{split}.h5" for split in ("train", "val", "test")]

pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(),
                                reason="snakemake is not installed next to this Python")


def command(*options: str) -> list[str]:
    return [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml",
            "--cores", "1", *options, *TARGETS]


def start(work: Path, *options: str) -> subprocess.Popen:
    (work / "config.yaml").write_text(CONFIG)
    return subprocess.Popen(command(*options), cwd=work, stdout=open(work / "snakemake.out", "a"),
                            stderr=subprocess.STDOUT)


def run(work: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*options), cwd=work, capture_output=True, text=True, timeout=300,
                          check=False)


def temporaries(work: Path) -> list[Path]:
    """Every temporary file or directory of lhcflow's writers below the run's results."""
    return sorted(p for p in (work / RUN).rglob(".*") if p.name.endswith(".part") or ".lhe-shard" in p.name)


def wait_for_the_ntuple_write(job: subprocess.Popen, work: Path) -> None:
    generation, deadline = work / RUN / "generation" / "zj", time.monotonic() + 120
    while not (generation.is_dir() and list(generation.glob(".shard0.root.*.part"))):
        assert job.poll() is None, ("Snakemake ended before the shard job wrote:\n"
                                    + (work / "snakemake.out").read_text())
        assert time.monotonic() < deadline, "the shard job wrote nothing in 120 s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("uninterrupted")
    job = start(work)
    assert job.wait(timeout=300) == 0, (work / "snakemake.out").read_text()
    return work / RUN


def assert_same_outputs(work: Path, reference: Path) -> None:
    assert not temporaries(work), f"temporary files left: {temporaries(work)}"
    compare = subprocess.run([sys.executable, "-m", "lhcflow.digest", "compare", str(reference),
                              str(work / RUN)], capture_output=True, text=True, check=False)
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_a_job_killed_with_sigkill_is_redone_and_its_temporary_removed(tmp_path, uninterrupted):
    import psutil  # a dependency of Snakemake

    job = start(tmp_path)
    wait_for_the_ntuple_write(job, tmp_path)
    shard_job = [p for p in psutil.Process(job.pid).children(recursive=True)
                 if any(arg.endswith("generate.py") for arg in p.cmdline())]
    assert len(shard_job) == 1, "the shard job's process was not found"
    os.kill(shard_job[0].pid, signal.SIGKILL)
    assert job.wait(timeout=120) != 0
    left = temporaries(tmp_path)
    assert [p.name[:13] for p in left] == [".shard0.root."]  # what the rerun has to remove
    assert not any((tmp_path / RUN / "generation" / "zj").glob("shard0.*"))  # no output of the failed job

    rerun = run(tmp_path)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert_same_outputs(tmp_path, uninterrupted)


def test_after_sigint_to_snakemake_the_same_command_resumes(tmp_path, uninterrupted):
    job = start(tmp_path)
    wait_for_the_ntuple_write(job, tmp_path)
    os.kill(job.pid, signal.SIGINT)
    assert job.wait(timeout=120) != 0
    assert "Terminating processes on user request" in (tmp_path / "snakemake.out").read_text()
    assert any((tmp_path / ".snakemake" / "incomplete").iterdir())  # the shard's outputs, marked incomplete

    without_profile = run(tmp_path, "--workflow-profile", "none")  # what the README's rerun once did
    assert without_profile.returncode != 0
    assert "IncompleteFilesException" in without_profile.stdout + without_profile.stderr

    rerun = run(tmp_path)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "profiles/default" in rerun.stderr  # Snakemake says which workflow profile it read
    assert_same_outputs(tmp_path, uninterrupted)
