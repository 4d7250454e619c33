"""Finding a run's outputs: by pattern under the results directory, optionally restricted to the files
the run's config produces (the workflow passes its inputs, so stale files of an older config are ignored)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def find_outputs(results_dir: str | Path, pattern: str, only: Iterable[str | Path] | None = None) -> list[Path]:
    """Files matching ``pattern`` under ``results_dir``, sorted; with ``only``, those listed there."""
    found = sorted(Path(results_dir).glob(pattern))
    if only is None:
        return found
    keep = {Path(p).resolve() for p in only}
    return [p for p in found if p.resolve() in keep]
