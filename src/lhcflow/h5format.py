"""The HDF5 file formats lhcflow reads back: each declares its datasets, attributes and one error type.

A format's reader (:func:`lhcflow.thj.hard.open_hard_file`, :func:`lhcflow.thj.paired.read_paired_file`,
:func:`lhcflow.data.events.read_events`) opens and checks a file through its :class:`H5Format`, so that
every problem with that file raises the format's error, naming the file, the dataset or attribute and
what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np


@dataclass(frozen=True)
class H5Format:
    """``fields``: dataset -> shape of one row (the first axis counts events; a str entry such as "S" is
    a size given to :meth:`check`); ``attrs``: attribute -> meaning; ``remedy``: what the user should do."""

    name: str
    fields: Mapping[str, tuple]
    attrs: Mapping[str, str]
    error: type[Exception]
    remedy: str

    def fail(self, path: str | os.PathLike, problem: str) -> Exception:
        """The format's error for ``problem`` in the file ``path`` (raise it)."""
        return self.error(f"{path}: {problem}; {self.remedy}")

    def open(self, path: str | os.PathLike) -> h5py.File:
        """The file opened for reading; a missing or non-HDF5 file raises the format's error."""
        path = Path(path)
        if not path.is_file():
            raise self.fail(path, f"cannot open the {self.name}: file not found")
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            raise self.fail(path, f"cannot open the {self.name}: not a readable HDF5 file ({exc})") from None

    def check(self, handle: h5py.File, path: str | os.PathLike, fields: Iterable[str] = (),
              attrs: Iterable[str] = (), sizes: Mapping[str, int] | None = None) -> int:
        """Number of rows; raises unless every dataset of ``fields`` exists with the declared row shape and
        one common length, and every attribute of ``attrs`` exists."""
        n, sizes = None, dict(sizes or {})
        for name in fields:
            row = self.fields[name]  # KeyError: a caller asked for a dataset the format does not declare
            expected = "(" + ", ".join(["N", *map(str, row)]) + ")"
            if name not in handle or not isinstance(handle[name], h5py.Dataset):
                raise self.fail(path, f"the {self.name} has no dataset '{name}' (shape {expected})")
            shape = handle[name].shape
            n = shape[0] if n is None and shape else n
            want = (n, *(sizes.get(d) if isinstance(d, str) else d for d in row))
            if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
                known = ", ".join(f"{d} = {v}" for d, v in {"N": n, **sizes}.items())
                raise self.fail(path, f"dataset '{name}' of the {self.name} has shape {shape}, "
                                      f"expected {expected} with {known}")
        for name in attrs:
            if name not in handle.attrs:
                raise self.fail(path, f"attribute '{name}' missing from the {self.name} ({self.attrs[name]})")
        return 0 if n is None else n


def attribute(value: Any) -> Any:
    """An HDF5 attribute as a Python value: bytes decoded, 0-d arrays as scalars."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if hasattr(value, "item") and np.ndim(value) == 0 else value
