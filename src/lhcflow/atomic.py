"""Atomic file output: write under a temporary name, rename on success.

A stage killed half-way (SIGTERM from SLURM, Ctrl-C, an exception) must leave no
file that a later stage or a Snakemake rerun could mistake for a finished output.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic
    on POSIX file systems. On any exception the temporary file is removed and the
    exception propagates; an existing ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
