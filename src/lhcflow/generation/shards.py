"""One shard of a generated sample, from its workflow config.

A ``pythia`` sample splits ``n_events`` over its shards; an ``lhe`` sample splits the events
of its file into disjoint ranges, so shards never share an event and their union is the
requested sample. Each LHE shard showers a temporary copy holding the header and only its own
events: with CKKW-L merging Pythia reads past rejected events, so "skip k, shower n" would
let neighbouring shards overlap.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from lhcflow.generation.pythia import count_lhe_events, open_lhe, run_pythia, shower_lhe, zjets_settings


def shard_range(n_total: int, n_shards: int, shard: int) -> tuple[int, int]:
    """(first event, number of events) of ``shard``; the remainder goes to the first shards."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0 ... {n_shards - 1}")
    base, rest = divmod(n_total, n_shards)
    start = shard * base + min(shard, rest)
    return start, base + (shard < rest)


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
        available = count_lhe_events(sample["file"])
        total = available if sample.get("n_events") is None else min(sample["n_events"], available)
        start, count = shard_range(total, n_shards, shard)
        merging = sample.get("merging", {})
        cfg = {**pythia_cfg, "merging": merging.get("enabled", True)}
        if merging.get("merging_scale_gev") is not None:
            cfg["merging_scale_gev"] = merging["merging_scale_gev"]
        extra.update(source_lhe=str(sample["file"]), first_event=start, lhe_events_in_file=available)
        Path(out_root).parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=Path(out_root).parent, prefix=".lhe-shard-") as tmp:
            piece = slice_lhe(sample["file"], Path(tmp) / "events.lhe", start, count)
            return shower_lhe(piece, cfg, None, seed, out_root, out_meta, progress=progress,
                              jet_cfg=sample.get("jets"), extra_meta=extra)
    raise ValueError(f"sample kind {sample['kind']!r} is not generated (expected pythia or lhe)")


def slice_lhe(source: str | Path, target: str | Path, start: int, count: int) -> Path:
    """Copy the header, ``<init>`` block and events ``[start, start + count)`` of an LHE file."""
    source, target = Path(source), Path(target)
    index, kept = -1, 0
    with open_lhe(source) as src, open(target, "w") as dst:
        for line in src:
            if line.lstrip().startswith("<event"):
                index += 1
            if index < 0:
                if "</LesHouchesEvents>" not in line:
                    dst.write(line)
            elif start <= index < start + count:
                dst.write(line)
                kept += "</event>" in line
            elif index >= start + count:
                break
        dst.write("</LesHouchesEvents>\n")
    if kept != count:
        raise ValueError(f"{source}: expected events {start} ... {start + count - 1}, found {kept}")
    return target


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
    return {
        "cross_section_pb": mean,
        "cross_section_err_pb": mean_err,
        "generator": metas[0]["generator"],
        "seeds": [m["seed"] for m in metas],
        "n_written": int(sum(m["n_written"] for m in metas)),
        "sources": sorted({m["source_lhe"] for m in metas if "source_lhe" in m}),
    }
