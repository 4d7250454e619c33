"""Validation against the thesis: one row per claim that a run's outputs can test.

``python -m lhcflow.validation RESULTS_DIR`` reads the outputs of every chain found under ``RESULTS_DIR``
(``results/<run>``) and writes ``validation/validation.json`` and ``validation/validation.html`` there; the
workflow's ``validation`` rule does the same and puts the table on the front page of the Snakemake report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lhcflow.validation import mem, nis, thj, zjets
from lhcflow.validation.claims import Row, Target
from lhcflow.validation.report import provenance, write_report

COLLECTORS = {"zjets": zjets.rows, "nis": nis.rows, "thj": thj.rows, "mem": mem.rows}

__all__ = ["Row", "Target", "collect", "validate"]


def collect(results_dir: str | Path, only: Iterable[str | Path] | None = None) -> list[Row]:
    """The rows of every chain whose outputs are under ``results_dir`` (with ``only``: of those files)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such results directory (expected results/<run>)")
    only = None if only is None else list(only)
    return [row for collector in COLLECTORS.values() for row in collector(results_dir, only)]


def validate(results_dir: str | Path, *, json_path: str | Path | None = None, html_path: str | Path | None = None,
             rst_path: str | Path | None = None, front_page: str = "",
             only: Iterable[str | Path] | None = None) -> dict:
    """Collect the rows of ``results_dir`` and write the report (default: ``results_dir/validation/``)."""
    results_dir = Path(results_dir)
    out = results_dir / "validation"
    rows = collect(results_dir, only)
    return write_report(rows, provenance(results_dir), json_path=json_path or out / "validation.json",
                        html_path=html_path or out / "validation.html", rst_path=rst_path, front_page=front_page)
