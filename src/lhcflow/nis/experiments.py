"""Config-driven integration experiments of thesis Ch. 5: runs, summaries, tables, events.

An *experiment* is one integrand (``integrand: {name: camel | cut_camel | crossed_ring |
drell_yan, ...parameters}``) and named *variants*, each a method (``flat``, ``vegas``,
``madnis``) with its config and optional integrand overrides (e.g. another prior or channel
set). An optional *scan* repeats every variant over the values of one integrand parameter
(``target: integrand``, e.g. the Z′ width of Fig 5.10 right) or one method-config key
(``target: config``, e.g. the replay factor R of Fig 5.12). Every (variant, scan point, seed)
is one run with the same number of evaluation calls; :func:`summarize_experiment` turns the
runs into mean ± std per variant, the table of Tabs 5.1/5.2.
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

from lhcflow.atomic import atomic_path, save_torch, write_json
from lhcflow.nis.drell_yan import drell_yan_integrand
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.lhe import write_lhe
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.nis.metrics import summarize
from lhcflow.nis.run import run_integrator
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


def run_experiment_point(experiment: Mapping, name: str, variant: str, scan_index: int | None, seed: int,
                         n_eval: int, out_json: str | Path, out_state: str | Path | None = None,
                         device: str | None = None, progress: bool = False,
                         checkpoint: str | Path | None = None) -> dict:
    """One run: integrate, record the metrics (with the evaluation's weight distribution), save a MadNIS state.

    A MadNIS training checkpoints to ``checkpoint`` and resumes from it when rerun after a kill."""
    spec, method, config = run_setup(experiment, variant, scan_index)
    integrand = build_integrand(spec, device)
    resume = {"checkpoint": checkpoint, "checkpoint_settings": {"integrand": spec}} \
        if method == "madnis" and checkpoint is not None else {}
    result = run_integrator(method, integrand, n_eval, config, seed=seed, device=device, progress=progress,
                            **resume)
    record = result.to_dict()
    record.update(experiment=name, variant=variant, label=experiment["variants"][variant].get("label", variant),
                  scan_value=None if scan_index is None else experiment["scan"]["values"][scan_index],
                  integrand_spec=spec, config=config, integrand_meta=integrand_summary(integrand))
    if out_state is not None:
        if isinstance(result.integrator, MadnisIntegrator):
            result.integrator.save(out_state)
        else:  # flat and VEGAS runs keep no network; the file records that
            save_torch(out_state, {"format": "lhcflow.nis.none/1", "method": method})
    write_json(out_json, record)
    return record


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


def write_drell_yan_events(experiment: Mapping, variant: str, state_path: str | Path, n_events: int, seed: int,
                           out_lhe: str | Path, out_meta: str | Path, device: str | None = None,
                           batch_size: int = 100_000) -> dict:
    """Unweighted pp → e⁺e⁻ events from a saved MadNIS state, written as LHE (§2.2.5).

    ``batch_size`` weighted events per hit-or-miss round (the first also fixes w_max). The LHE file
    names the PDF set (LHAPDF id, α_s(M_Z)) and MadNIS as the integrator."""
    spec, method, _ = run_setup(experiment, variant, None)
    if spec["name"] != "drell_yan" or method != "madnis":
        raise ValueError(f"events need a madnis variant of a drell_yan experiment, got {method} on {spec['name']}")
    integrand = build_integrand(spec, device)
    integrator = MadnisIntegrator.load(state_path, integrand, device=device)
    events = integrator.sample_unweighted(n_events, seed=seed, batch_size=batch_size)
    x = events.x
    generator = torch.Generator(device=x.device).manual_seed(seed)
    momenta = integrand.meta["momenta"](x)
    partons = integrand.meta["sample_flavours"](x, generator)
    leptons = torch.tensor([11, -11], device=x.device).expand(len(x), 2)
    pdg = torch.cat([partons.to(leptons.dtype), leptons], dim=1)
    process = integrand.meta["process"]
    write_lhe(out_lhe, momenta, pdg, [-1, -1, 1, 1], cross_section=events.cross_section,
              cross_section_error=events.cross_section_error, beam_energies=(process.sqrt_s / 2,) * 2,
              pdf=process.pdf, integrator=integrator.method, scale=process.mu_f2 ** 0.5,
              alpha_qed=1.0 / process.ew.alpha_inv, process="p p > e+ e-")
    meta = {"n_events": len(x), "cross_section_pb": events.cross_section,
            "cross_section_err_pb": events.cross_section_error, "w_max": events.w_max,
            "n_weighted": events.n_weighted, "n_overweight": events.n_overweight, "pdf": integrand.meta["pdf"],
            "lhapdf_id": process.lhapdf_id, "integrator": integrator.method, "seed": seed}
    write_json(out_meta, meta)
    return meta


def channel_figure(experiment: Mapping, variant: str, state_paths: Sequence[str | Path], out_path: str | Path,
                   device: str | None = None, seed: int = 0) -> dict:
    """Channel densities and weights of trained MadNIS runs: Figs 5.5/5.6 (1D camel: learned α of
    every seed against the prior), 5.7/5.8 (crossed ring: per-channel maps), 5.11 (Drell-Yan:
    per-channel p_T and M_ee with learned and prior α)."""
    from lhcflow.plots import nis as nis_plots

    spec, method, _ = run_setup(experiment, variant, None)
    if method != "madnis":
        raise ValueError(f"channel figures need a madnis variant, {variant!r} is {method}")
    integrand = build_integrand(spec, device)
    integrators = [MadnisIntegrator.load(p, integrand, device=device) for p in state_paths]
    if spec["name"] == "drell_yan":
        return nis_plots.plot_channel_observables(integrators[0], integrand, nis_plots.drell_yan_observables(integrand),
                                                  out_path, seed=seed, channel_names=integrand.meta["channel_names"])
    if integrand.dim == 1:
        return nis_plots.plot_channel_weights_1d(integrators, integrand, out_path, x_range=(0.0, 7.0))
    return nis_plots.plot_channel_maps(integrators[0], integrand, out_path, seed=seed)
