"""Validation rows of the tHj process (thesis §6.1): σ(0°), σ(180°)/σ(0°), the Table 6.1 cut flow and the
Table 6.2 fit parameters of the fiducial cross section."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lhcflow.validation.claims import Row


def rows(results_dir: str | Path, only: Iterable[str | Path] | None = None) -> list[Row]:
    return []
