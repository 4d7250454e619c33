"""HTML tables for the Snakemake report."""

from __future__ import annotations

import html
from collections.abc import Mapping


def cutflow_html(cutflows: Mapping[str, dict]) -> str:
    """One table per sample: the generation steps of a showered LHE sample (events in the file, bad
    events skipped, merging vetoes), events, sum of weights and efficiency after each selection step,
    then the split sizes. ``cutflows`` maps sample names to ingestion cut-flow dicts."""
    parts = ["<html><head><meta charset='utf-8'><style>",
             "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:2px 8px;"
             "text-align:right}th:first-child,td:first-child{text-align:left}</style></head><body>"]
    for sample, flow in cutflows.items():
        steps = flow["steps"]
        total = steps[0]["events"] if steps else 0
        parts.append(f"<h3>{html.escape(sample)}</h3><table><tr><th>step</th><th>events</th>"
                     "<th>sum of weights</th><th>efficiency</th></tr>")
        for step in flow.get("generation", []):  # showered LHE samples: before the ntuple
            parts.append(f"<tr><td>generation: {html.escape(step['name'])}</td><td>{step['events']}</td>"
                         "<td></td><td></td></tr>")
        for step in steps:
            eff = step["events"] / total if total else float("nan")
            parts.append(f"<tr><td>{html.escape(step['name'])}</td><td>{step['events']}</td>"
                         f"<td>{step['sum_weights']:.6g}</td><td>{eff:.4f}</td></tr>")
        for split, entry in flow["splits"].items():
            parts.append(f"<tr><td>split: {html.escape(split)}</td><td>{entry['events']}</td>"
                         f"<td>{entry['sum_weights']:.6g}</td><td></td></tr>")
        parts.append("</table>")
        parts += _cleaning_html(flow.get("cleaning", {}), flow.get("objects", {}).get("jet", {}), total)
    parts.append("</body></html>")
    return "\n".join(parts)


def _cleaning_html(cleaning: Mapping, jets: Mapping, total: int) -> list[str]:
    """The jet-lepton cleaning of one sample: jets removed, the selection without it, leading-jet overlaps."""
    if not cleaning.get("applied"):
        return []
    method = cleaning["method"] + (f" ({cleaning['indices']} indices)" if "indices" in cleaning else "")
    radius = cleaning["delta_r"]
    rows = [  # (label, counts, events the fraction is of)
        ("events with a jet removed", cleaning["events_with_jets_removed"], total),
        ("selected without cleaning", cleaning["selected_without_cleaning"], total),
        (f"leading jet within ΔR < {radius:g} of a lepton, before cleaning (of events with a jet)",
         cleaning["leading_jet_near_lepton_before"], cleaning["leading_jet_before"]["events"]),
        (f"leading jet within ΔR < {radius:g} of a lepton, after cleaning (of events with a jet)",
         cleaning["leading_jet_near_lepton_after"], cleaning["leading_jet_after"]["events"]),
    ]
    summary = (f"<p>Jet-lepton cleaning: {html.escape(method)} against {html.escape(', '.join(cleaning['leptons']))}; "
               f"{jets.get('removed_by_cleaning', 0)} of {jets.get('passed_id', 0)} jets removed.</p>")
    parts = [summary,
             "<table><tr><th>cleaning</th><th>events</th><th>sum of weights</th><th>fraction</th></tr>"]
    for label, entry, of in rows:
        frac = entry["events"] / of if of else float("nan")
        parts.append(f"<tr><td>{html.escape(label)}</td><td>{entry['events']}</td>"
                     f"<td>{entry['sum_weights']:.6g}</td><td>{frac:.4f}</td></tr>")
    parts.append("</table>")
    return parts


def rows_html(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]], note: str = "") -> str:
    """A titled HTML table of string cells, with an optional note below."""
    parts = [f"<html><head><meta charset='utf-8'></head><body><h3>{html.escape(title)}</h3><table border='1'>",
             "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
    parts.append(f"</table><p>{html.escape(note)}</p></body></html>" if note else "</table></body></html>")
    return "\n".join(parts)
