"""One shard of a generated sample, from its workflow config.

A ``pythia`` sample splits ``n_events`` over its shards; an ``lhe`` sample splits the events
of its file into disjoint ranges, so shards never share an event and their union is the
requested sample. Each LHE shard showers a temporary copy holding the header and only its own
events: with MLM or CKKW-L merging Pythia reads past rejected events, so "skip k, shower n" would
let neighbouring shards overlap.

Before showering, an LHE shard checks the user's file: the merging its header states against the
config, a readable and complete file, enough events for ``n_events``, and finite numbers in every
event of its range (a bad event stops the shard, naming the file and the event, unless the sample
sets ``on_bad_event: skip``: then it is left out and counted in the shard metadata).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lhcflow.atomic import scratch_dir
from lhcflow.generation.lhe import BadEvent, LHEError, check_event, count_lhe_events, open_lhe, reading
from lhcflow.generation.merging import sample_merging
from lhcflow.generation.pythia import run_pythia, shower_lhe, zjets_settings


def shard_range(n_total: int, n_shards: int, shard: int) -> tuple[int, int]:
    """(first event, number of events) of ``shard``; the remainder goes to the first shards."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0 ... {n_shards - 1}")
    base, rest = divmod(n_total, n_shards)
    start = shard * base + min(shard, rest)
    return start, base + (shard < rest)


def lhe_events_to_shower(sample: dict, available: int) -> int:
    """Events of the sample's file to shower: ``n_events``, or all with ``n_events: null``.

    Asking for more events than the file holds is an error (it would silently give fewer).
    """
    name = sample["file"]
    if available == 0:
        raise LHEError(f"{name}: the file holds no events")
    wanted = sample.get("n_events")
    if wanted is not None and wanted > available:
        raise LHEError(f"{name}: n_events = {wanted} but the file holds only {available} events; set "
                       f"n_events to at most {available}, or null for the whole file")
    return available if wanted is None else wanted


def generate_shard(sample: dict, shard: int, seed: int, out_root: str | Path, out_meta: str | Path,
                   progress: bool = True) -> dict:
    """Generate (kind ``pythia``) or shower (kind ``lhe``) one shard; returns its metadata."""
    n_shards = sample["n_shards"]
    pythia_cfg = sample.get("pythia", {})
    extra = {"shard": shard, "n_shards": n_shards}
    if sample["kind"] == "pythia":
        start, count = shard_range(sample["n_events"], n_shards, shard)
        return run_pythia(zjets_settings(pythia_cfg), count, seed, out_root, out_meta, progress=progress,
                          jet_cfg=sample.get("jets"), extra_meta=extra)
    if sample["kind"] == "lhe":
        source = sample["file"]
        plan = sample_merging(sample)  # before anything else: the header names the scheme
        available = count_lhe_events(source)
        start, count = shard_range(lhe_events_to_shower(sample, available), n_shards, shard)
        # the shard's slice of the file, in a directory named after the shard: a rerun after a kill
        # removes what the killed run left there
        scratch = Path(out_root).with_name(".lhe-shard-" + re.sub(r"\W", "_", Path(out_root).name))
        with scratch_dir(scratch) as tmp:
            piece = slice_lhe(source, Path(tmp) / "events.lhe", start, count,
                              skip_bad=sample.get("on_bad_event", "stop") == "skip")
            extra.update(source_lhe=str(source), first_event=start, lhe_events_in_file=available,
                         lhe_events_in_shard=count, n_bad_events=len(piece.bad),
                         bad_events=[vars(b) for b in piece.bad[:20]],
                         lhe_by_partons={str(k): n for k, n in sorted(piece.partons.items())})
            if piece.n_events == 0:
                raise LHEError(f"{source}: every event of shard {shard} (events {start} ... "
                               f"{start + count - 1}) is bad; nothing to shower")
            return shower_lhe(piece.path, pythia_cfg, None, seed, out_root, out_meta, plan=plan,
                              source=source, progress=progress, jet_cfg=sample.get("jets"), extra_meta=extra)
    raise ValueError(f"sample kind {sample['kind']!r} is not generated (expected pythia or lhe)")


@dataclass
class LHESlice:
    """A shard's copy of an LHE file: its path, events kept, bad events left out, events per parton count."""
    path: Path
    n_events: int
    bad: list[BadEvent] = field(default_factory=list)
    partons: dict[int, int] = field(default_factory=dict)


def slice_lhe(source: str | Path, target: str | Path, start: int, count: int, *, skip_bad: bool = False,
              name: str | Path | None = None) -> LHESlice:
    """Copy the header, ``<init>`` block and events ``[start, start + count)`` of an LHE file.

    Every copied event is checked (:func:`lhcflow.generation.lhe.check_event`); a bad one raises
    :class:`LHEError` naming ``name`` (default ``source``) and its event number, or with ``skip_bad``
    is left out and listed.
    """
    source, target = Path(source), Path(target)
    name = name or source
    index, line_no, kept, event, event_line = -1, 0, 0, None, 0
    result = LHESlice(target, 0)
    with reading(source, name), open_lhe(source) as src, open(target, "w") as dst:
        for line in src:
            line_no += 1
            if line.lstrip().startswith("<event"):
                index += 1
                event, event_line = [], line_no
            if index < 0:
                if "</LesHouchesEvents>" not in line:
                    dst.write(line)
                continue
            if index >= start + count:
                break
            if event is None or index < start:
                continue
            event.append(line)
            if "</event>" in line:
                problem, partons = check_event(event[1:-1])
                if problem is None:
                    dst.writelines(event)
                    kept += 1
                    result.partons[partons] = result.partons.get(partons, 0) + 1
                elif skip_bad:
                    result.bad.append(BadEvent(index + 1, event_line, problem))
                else:
                    raise LHEError(f"{name}: event {index + 1} (line {event_line}): {problem}; fix or remove "
                                   "the event, or set on_bad_event: skip in the sample's config to leave "
                                   "bad events out (they are counted in the shard metadata and the cut "
                                   "flow)")
                event = None
        dst.write("</LesHouchesEvents>\n")
    found = kept + len(result.bad)
    if found != count:
        raise LHEError(f"{name}: expected events {start + 1} ... {start + count}, found {found}")
    result.n_events = kept
    return result


def combine_shards(metas: list[dict]) -> dict:
    """Sample-level summary of shard metadata: the inverse-variance weighted mean of the shards'
    cross-section estimates (they estimate the same σ from independent events), seeds, counts."""
    if not metas:
        raise ValueError("no shard metadata to combine")
    sigma = np.array([m["sigma_gen_pb"] for m in metas], dtype=float)
    err = np.array([m["sigma_err_pb"] for m in metas], dtype=float)
    if np.all(err > 0):
        w = 1.0 / err**2
        mean, mean_err = float(np.sum(w * sigma) / np.sum(w)), float(np.sqrt(1.0 / np.sum(w)))
    else:
        mean, mean_err = float(sigma.mean()), float(np.sqrt(np.sum(err**2)) / len(err))
    summary = {
        "cross_section_pb": mean,
        "cross_section_err_pb": mean_err,
        "generator": metas[0]["generator"],
        "seeds": [m["seed"] for m in metas],
        "n_written": int(sum(m["n_written"] for m in metas)),
        "sources": sorted({m["source_lhe"] for m in metas if "source_lhe" in m}),
    }
    if "merging" in metas[0]:
        tried, accepted = (sum(m.get(k, 0) for m in metas) for k in ("n_tried", "n_accepted"))
        summary["merging"] = {**{k: v for k, v in metas[0]["merging"].items() if k != "matching_efficiency"},
                              "n_tried": tried, "n_accepted": accepted,
                              "acceptance": accepted / tried if tried else float("nan")}
    return summary


def generation_steps(metas: list[dict]) -> list[dict]:
    """Cut-flow steps before ingestion of a showered LHE sample: events in the file, requested, bad
    events left out, showered (read by Pythia), accepted by the merging (MLM vetoes), written
    (CKKW-L events of zero weight are not written)."""
    if not metas or "lhe_events_in_file" not in metas[0]:
        return []

    def total(key: str) -> int:
        return int(sum(m.get(key, 0) for m in metas))

    steps = [("LHE events in file", metas[0]["lhe_events_in_file"]),
             ("LHE events requested", total("lhe_events_in_shard")),
             ("bad LHE events skipped", total("n_bad_events")),
             ("showered", total("n_tried")),
             ("accepted by the merging", total("n_accepted")),
             ("written (non-zero weight)", total("n_written"))]
    return [{"name": name, "events": int(n)} for name, n in steps]
