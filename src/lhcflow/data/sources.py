"""From a workflow sample config to the arguments of :func:`lhcflow.data.ingest.ingest_sample`.

Generated samples (kinds ``pythia`` and ``lhe``) are read from their shard ntuples with the
``lhcflow`` layout and take cross section, generator and seeds from the shard metadata; user
ROOT files (kind ``root``) take layout, mapping and cross section from the config. Both take the
sample's ``cleaning`` block (``method: auto`` is no cleaning for generated samples).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lhcflow.atomic import write_json
from lhcflow.generation.shards import combine_shards, generation_steps


def ingest_arguments(sample: dict, files: Sequence[str | Path], metas: Sequence[str | Path] = ()) -> dict:
    """``source`` and provenance keyword arguments of ``ingest_sample`` for one sample."""
    files = [str(f) for f in files]
    if sample["kind"] == "root":
        return {
            "source": {"files": files, "layout": sample["layout"], "tree": sample.get("tree"),
                       "mapping": sample.get("mapping", {}), "cleaning": sample.get("cleaning", {})},
            "cross_section_pb": sample.get("cross_section_pb"),
            "generator": sample.get("generator") or "external ROOT file",
            "provenance": {"kind": "root"},
        }
    shards = [json.loads(Path(m).read_text()) for m in metas]
    summary = combine_shards(shards)
    return {
        "source": {"files": files, "layout": "lhcflow", "tree": None, "mapping": {},
                   "cleaning": sample.get("cleaning", {})},
        "cross_section_pb": summary["cross_section_pb"],
        "cross_section_err_pb": summary["cross_section_err_pb"],
        "generator": summary["generator"],
        "seed": summary["seeds"][0],
        "provenance": {"kind": sample["kind"], "shard_seeds": summary["seeds"], "lhe_sources": summary["sources"],
                       "settings": shards[0]["settings"], "jet_definition": shards[0]["jet_definition"],
                       **({"merging": summary["merging"]} if "merging" in summary else {})},
    }


def add_generation_steps(cutflow_path: str | Path, metas: Sequence[str | Path]) -> dict:
    """Put the generation steps of a showered LHE sample (events in the file, bad events skipped,
    merging vetoes; :func:`lhcflow.generation.shards.generation_steps`) into its cut-flow file."""
    cutflow = json.loads(Path(cutflow_path).read_text())
    steps = generation_steps([json.loads(Path(m).read_text()) for m in metas])
    if steps:
        cutflow["generation"] = steps
        write_json(cutflow_path, cutflow)
    return cutflow
