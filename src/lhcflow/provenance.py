"""What produced a result: package versions, git commit, host, resolved configuration."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("lhcflow", "numpy", "h5py", "uproot", "awkward", "vector", "hist", "mplhep", "pythia8mc",
            "fastjet", "torch", "snakemake", "snakemake-executor-plugin-slurm")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: str | Path = Path(__file__).resolve().parents[2]) -> str | None:
    """The checked-out commit, with ``-dirty`` when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def run_info(config: dict) -> dict:
    return {
        "config": config,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "host": platform.node(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
