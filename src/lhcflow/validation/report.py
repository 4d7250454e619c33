"""The validation report: rows of every chain found in a results directory, as JSON, HTML and the
front page (reStructuredText) of the Snakemake report."""

from __future__ import annotations

import datetime
import html
import json
import math
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from lhcflow.atomic import atomic_path, write_json
from lhcflow.validation.claims import STATUSES, Row

CHAIN_TITLES = {
    "zjets": "Z+jets generators and classifier metric (Ch. 4)",
    "nis": "Neural importance sampling (Ch. 5)",
    "thj": "tHj cross sections and fiducial rates (§6.1)",
    "mem": "ML matrix element method (§6.2-6.5)",
}
_COLOURS = {"pass": "#d4edda", "fail": "#f8d7da", "info": "#e2e3e5", "missing": "#fff3cd"}


def provenance(results_dir: str | Path) -> dict:
    """Run name, commit, host, machine and package versions from the run's ``run_info.json``, and the
    span of the output times (first to last file written under ``results_dir``)."""
    results_dir = Path(results_dir)
    info_path = results_dir / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    times = [p.stat().st_mtime for p in results_dir.rglob("*") if p.is_file() and "validation" not in p.parts]
    packages = info.get("packages", {})
    return {
        "run": info.get("config", {}).get("run", results_dir.name),
        "git_commit": info.get("git_commit"),
        "host": info.get("host"),
        "machine": info.get("machine"),
        "created_utc": info.get("created_utc"),
        "packages": {k: packages.get(k) for k in ("lhcflow", "torch", "madnis", "vegas", "pythia8mc") if k in packages},
        "output_span_s": round(max(times) - min(times), 1) if times else None,
        "report_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def summary(rows: Sequence[Row]) -> dict[str, int]:
    counts = Counter(row.status for row in rows)
    return {status: counts.get(status, 0) for status in STATUSES}


def write_report(rows: Sequence[Row], meta: dict, *, json_path: str | Path, html_path: str | Path,
                 rst_path: str | Path | None = None, front_page: str = "") -> dict:
    """Write ``validation.json`` and ``validation.html`` (and, with ``rst_path``, the report front page:
    ``front_page`` followed by the table). Returns the JSON payload."""
    payload = {"meta": meta, "summary": summary(rows), "rows": [row.as_dict() for row in rows]}
    write_json(json_path, payload)
    body = html_table(rows, meta)
    with atomic_path(html_path) as tmp:
        tmp.write_text("<html><head><meta charset='utf-8'><title>lhcflow validation</title></head><body>\n"
                       + body + "\n</body></html>\n")
    if rst_path is not None:
        with atomic_path(rst_path) as tmp:
            title = "Validation against the thesis"
            tmp.write_text(front_page.rstrip() + f"\n\n{title}\n{'=' * len(title)}\n\n.. raw:: html\n\n"
                           + textwrap.indent(body, "   ") + "\n")
    return payload


def html_table(rows: Sequence[Row], meta: dict) -> str:
    """The rows grouped by chain, coloured by status, with the run's provenance on top."""
    counts = summary(rows)
    parts = ["<style>.lhcv{border-collapse:collapse;margin-bottom:1.2em;font-size:90%}"
             ".lhcv td,.lhcv th{border:1px solid #bbb;padding:2px 6px;vertical-align:top}"
             ".lhcv td.num{text-align:right;white-space:nowrap}</style>",
             "<p>" + html.escape(_provenance_line(meta)) + "</p>",
             "<p>" + ", ".join(f"{counts[s]} {s}" for s in STATUSES) + "</p>"]
    for chain in dict.fromkeys(row.chain for row in rows):
        parts.append(f"<h4>{html.escape(CHAIN_TITLES.get(chain, chain))}</h4>")
        parts.append("<table class='lhcv'><tr><th>setup</th><th>quantity</th><th>ours</th><th>reference</th>"
                     "<th>target</th><th>status</th><th>source</th><th>note</th></tr>")
        for row in (r for r in rows if r.chain == chain):
            parts.append(
                f"<tr style='background:{_COLOURS[row.status]}'><td>{html.escape(row.group)}</td>"
                f"<td>{html.escape(row.quantity)}</td>"
                f"<td class='num'>{html.escape(format_value(row.value, row.error, row.unit))}</td>"
                f"<td class='num'>{html.escape(_reference_text(row.reference, row.reference_error, row.unit, row.reference_label))}</td>"
                f"<td>{html.escape(row.target.describe())}</td><td><b>{row.status}</b></td>"
                f"<td>{html.escape(row.source)}</td><td>{html.escape(row.note)}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


def markdown_table(payload: dict) -> str:
    """A written ``validation.json`` payload as GitHub-flavoured Markdown tables (for the README): the
    provenance line, the counts, then one table per chain."""
    rows = payload["rows"]
    lines = [_provenance_line(payload["meta"]) + ".", "",
             ", ".join(f"{payload['summary'].get(status, 0)} {status}" for status in STATUSES) + "."]
    for chain in dict.fromkeys(row["chain"] for row in rows):
        lines += ["", f"**{CHAIN_TITLES.get(chain, chain)}**", "",
                  "| setup | quantity | ours | reference | target | status | source |",
                  "|---|---|---:|---:|---|---|---|"]
        for row in (r for r in rows if r["chain"] == chain):
            ours = format_value(row["value"], row["error"], row["unit"])
            reference = _reference_text(row["reference"], row["reference_error"], row["unit"], row["reference_label"])
            status = f"**{row['status']}**" if row["status"] == "fail" else row["status"]
            cells = (row["group"], row["quantity"], ours, reference, row["target"]["text"], status, row["source"])
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def format_value(value: float | None, error: float | None = None, unit: str = "") -> str:
    """``1.23 ± 0.04 %`` with the error's leading two digits deciding the precision."""
    if value is None or not math.isfinite(value):
        return "—"
    if error is not None and math.isfinite(error) and error > 0:
        digits = max(0, 1 - math.floor(math.log10(error)))
        text = f"{value:.{digits}f} ± {error:.{digits}f}" if digits < 8 else f"{value:.3g} ± {error:.2g}"
    else:
        text = f"{value:.4g}"
    return f"{text} {unit}".rstrip()


def _reference_text(reference: float | None, error: float | None, unit: str, label: str) -> str:
    if reference is None:
        return "—"
    return f"{format_value(reference, error, unit)} ({label})"


def _provenance_line(meta: dict) -> str:
    machine = meta.get("machine") or {}
    parts = [f"run {meta.get('run')}", f"commit {meta.get('git_commit') or 'unknown'}",
             f"host {meta.get('host') or 'unknown'}"]
    if machine:
        parts.append(", ".join(str(v) for v in (machine.get("cpu"), f"{machine.get('cores')} cores",
                                                machine.get("gpu") or "no GPU") if v))
    if meta.get("created_utc"):
        parts.append(f"started {meta['created_utc']}")
    if meta.get("output_span_s") is not None:
        parts.append(f"outputs written over {meta['output_span_s'] / 60:.1f} min")
    return "; ".join(parts)
