"""Config-driven integration experiments of thesis Ch. 5: what a run integrates, and the summary of its runs.

An *experiment* is one integrand (``integrand: {name: camel | cut_camel | crossed_ring |
drell_yan, ...parameters}``) and named *variants*, each a method (``flat``, ``vegas``,
``madnis``) with its config and optional integrand overrides (e.g. another prior or channel
set). An optional *scan* repeats every variant over the values of one integrand parameter
(``target: integrand``, e.g. the Z′ width of Fig 5.10 right) or one method-config key
(``target: config``, e.g. the replay factor R of Fig 5.12). Every (variant, scan point, seed)
is one run with the same number of evaluation calls; :func:`summarize_experiment` turns the
runs into mean ± std per variant, the table of Tabs 5.1/5.2. The workflow stages that run, summarise
and plot experiments are in :mod:`lhcflow.nis.stages`.
"""

from __future__ import annotations

import copy
import csv
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from lhcflow.atomic import atomic_path
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.metrics import summarize
from lhcflow.nis.toys import toy_integrand

TABLE_METRICS = ("integral", "error", "rel_error", "rel_std", "unweighting_efficiency", "pull",
                 "n_calls_train", "n_calls_eval", "time_train", "time_eval")


def build_integrand(spec: Mapping, device: str | torch.device | None = None) -> MultiChannelIntegrand:
    """An integrand from ``{name: ..., **parameters}`` (toys of §5.2.1-2 or Drell-Yan of §5.2.3)."""
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "name"}
    if spec["name"] == "drell_yan":
        return drell_yan_integrand(device=device, **params)
    return toy_integrand(spec["name"], **params)


def scan_points(experiment: Mapping) -> list[float | None]:
    """The scan values of an experiment, or ``[None]`` without a scan."""
    scan = experiment.get("scan")
    return list(scan["values"]) if scan else [None]


def run_setup(experiment: Mapping, variant: str, scan_index: int | None) -> tuple[dict, str, dict]:
    """(integrand spec, method, method config) of one variant at one scan point."""
    v = experiment["variants"][variant]
    spec = {**experiment["integrand"], **v.get("integrand", {})}
    config = copy.deepcopy(v.get("config", {}))
    scan = experiment.get("scan")
    if scan and scan_index is not None:
        value = scan["values"][scan_index]
        if scan["target"] == "integrand":
            spec[scan["parameter"]] = value
        else:
            config[scan["parameter"]] = value
    return spec, v["method"], config


def integrand_summary(integrand: MultiChannelIntegrand) -> dict:
    """What a run integrated, for matching it with a thesis row: channel names, channel-weight prior and
    (Drell-Yan) the PDF set."""
    meta = integrand.meta
    return {"channels": list(meta.get("channel_names", ())), "prior": meta.get("prior"), "pdf": meta.get("pdf")}


def summarize_experiment(name: str, experiment: Mapping, run_files: Sequence[str | Path]) -> dict:
    """Mean ± std per (variant, scan point) over the seeds with a finite result (``n_failed`` counts the
    others), variance histories and weight histograms."""
    records = [json.loads(Path(p).read_text()) for p in run_files]
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["variant"], r["scan_value"]), []).append(r)
    order = {v: i for i, v in enumerate(experiment["variants"])}
    rows, weights, histories = [], {}, {}
    for (variant, value), runs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] or 0)):
        rows.append({"variant": variant, "method": runs[0]["method"], "label": runs[0]["label"],
                     "scan_value": value, "n_seeds": len(runs), "config": runs[0]["config"],
                     "integrand_meta": runs[0].get("integrand_meta"),  # None in run files from before it was recorded
                     # a run whose integral is not finite (a diverged training) is counted, not averaged
                     "n_failed": sum(not _number(r.get("integral")) for r in runs),
                     "metrics": summarize(runs, [k for k in TABLE_METRICS if any(_number(r.get(k)) for r in runs)])})
        edges = runs[0]["weight_histogram"][0]
        weights[f"{variant}|{'' if value is None else value}"] = [edges, np.sum(
            [r["weight_histogram"][1] for r in runs], axis=0).tolist()]
        if value == scan_points(experiment)[0] and runs[0]["variance_history"]:
            histories[variant] = [{"variance": r["variance_history"], "spread": r["variance_spread"]} for r in runs]
    scan = experiment.get("scan")
    return {"experiment": name, "integrand": dict(experiment["integrand"]), "exact": records[0]["exact"],
            "unit": experiment.get("unit", ""), "scan": None if not scan else {
                "parameter": scan["parameter"], "target": scan.get("target", "integrand"), "values": scan["values"],
                "label": scan.get("label", scan["parameter"]), "log": scan.get("log", False)},
            "rows": rows, "histories": histories, "weights": weights}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def table_rows(summary: Mapping) -> list[dict]:
    """Flat rows (variant, scan value, metric mean and std) for CSV and HTML."""
    out = []
    for row in summary["rows"]:
        flat = {"variant": row["variant"], "method": row["method"], "scan_value": row["scan_value"],
                "n_seeds": row["n_seeds"]}
        for key in TABLE_METRICS:
            m = row["metrics"].get(key)
            flat[f"{key}_mean"] = None if m is None else m["mean"]
            flat[f"{key}_std"] = None if m is None else m["std"]
        out.append(flat)
    return out


def write_tables(summary: Mapping, csv_path: str | Path, html_path: str | Path) -> None:
    """The experiment's results as CSV and as an HTML table for the Snakemake report."""
    rows = table_rows(summary)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    unit = summary.get("unit") or ""
    scan = summary.get("scan")
    head = ["variant", "method"] + ([scan["label"]] if scan else []) + [
        f"integral [{unit}]" if unit else "integral", "σ/I", "ε unweighting", "pull", "training calls",
        "training time [s]", "seeds"]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in summary["rows"]:
        m = row["metrics"]
        cells = [row["label"], row["method"]] + ([f"{row['scan_value']:g}"] if scan else []) + [
            _pm(m.get("integral"), 5), _pm(m.get("rel_std"), 3), _pm(m.get("unweighting_efficiency"), 3),
            _pm(m.get("pull"), 2), _pm(m.get("n_calls_train"), 0), _pm(m.get("time_train"), 1), str(row["n_seeds"])]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    exact = summary.get("exact")
    caption = f"<p>{html.escape(summary['experiment'])}: mean ± std over seeds"
    caption += f"; exact integral {exact:.6g}</p>" if exact is not None else "</p>"
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(f"<html><body>{caption}\n" + "\n".join(lines) + "\n</body></html>\n")


def _pm(stat: Mapping | None, digits: int) -> str:
    if stat is None:
        return "–"
    if digits == 0:
        return f"{stat['mean']:.0f}"
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.2g}"
