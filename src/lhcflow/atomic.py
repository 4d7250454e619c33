"""Atomic file output: write under a temporary name, rename on success.

A stage killed half-way (SIGTERM from SLURM, Ctrl-C, an exception) must leave no
file that a later stage or a Snakemake rerun could mistake for a finished output.
A kill that no handler sees (SIGKILL, the out-of-memory killer, a lost node) leaves
the temporary file behind: temporaries are hidden siblings named after their target
(``.<target name>.<8 hex digits>.part``), and the next write of the target, the
rerun of the job, removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


def temporaries(target: str | os.PathLike) -> list[Path]:
    """The temporary files of :func:`atomic_path` for ``target`` that are still there: writes in
    progress or left by a killed one."""
    target = Path(target)
    name = re.compile(re.escape(f".{target.name}.") + r"[0-9a-f]{8}\.part")
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if name.fullmatch(p.name))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic
    on POSIX file systems. On any exception the temporary file is removed and the
    exception propagates; an existing ``target`` is left untouched. Temporaries of
    ``target`` that a killed write left are removed first: a target has one writer at a
    time (Snakemake runs one job per output file).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in temporaries(target):
        stale.unlink(missing_ok=True)
    tmp = _new_temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def scratch_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch file next to ``target``, named like its temporaries, and remove it at exit.

    For intermediate data of a stage that writes ``target`` in several passes: a killed job's scratch
    file is a stale temporary that the rerun's :func:`atomic_path` of ``target`` removes. Enter it after
    the :func:`atomic_path` of ``target``, which removes the temporaries it finds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(target)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _new_temporary(target: Path) -> Path:
    """Create an empty temporary file for ``target`` with the usual permissions (0666 less the umask)."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


@contextlib.contextmanager
def scratch_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A directory for a job's intermediate files at a fixed ``path``, removed afterwards. One that a
    killed run of the same job left there is removed first."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def save_torch(path: str | os.PathLike, obj: object) -> None:
    """``torch.save`` atomically. Through a file object, so that equal objects give equal bytes:
    given a file name, torch names the archive's top folder after it (here the random temporary
    name); given a stream, it names it ``archive``."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        torch.save(obj, stream)


def write_json(path: str | os.PathLike, payload: object) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    """Fallback for numpy scalars and paths in :func:`write_json`."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
