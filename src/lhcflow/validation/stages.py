"""The validation against the thesis as a workflow stage: one row per claim the run's outputs can test.

Like every chain's stages it takes its files as keyword-only arguments and returns a frozen result; nothing in
it is configurable beyond the files, so it takes no settings object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhcflow.validation import validate


@dataclass(frozen=True)
class ValidationResult:
    """The verdict counts and the rows of the written report."""

    summary: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]


def validation_stage(*, results: str | Path, outputs: Sequence[str | Path], front_page: str | Path,
                     out_json: str | Path, out_html: str | Path,
                     out_front_page: str | Path) -> ValidationResult:
    """validation.json and validation.html of the ``outputs`` of the run under ``results`` (results/<run>),
    and the report's front page: the text of ``front_page`` followed by the table."""
    payload = validate(results, json_path=out_json, html_path=out_html, rst_path=out_front_page,
                       front_page=Path(front_page).read_text(), only=[str(p) for p in outputs])
    return ValidationResult(payload["summary"], payload["rows"])
