"""The same config rerun gives the same outputs on CPU, and run_info records what produced them.

A small chain of deterministic stages runs twice in the same directory (outputs embed their
input paths, as a rerun of the workflow would have them), through the library functions the
rule scripts call: two Pythia shards -> ingestion to canonical HDF5 -> Z+jets preprocessing ->
a short training of the first network of an INN chain -> sampling the chain.

Byte-identical: the canonical HDF5 files (train/val/test and the generated events), the cut
flow, the preprocessing JSON and the trained network (``torch.save`` of the state dict). HDF5
stores a modification time in every object header unless datasets are created with
``track_times=False``, which lhcflow's writers do.

Content-identical only, with the reason:

* the ROOT shards: uproot writes the creation time (TDatime) into the TFile header and every
  TKey, and a random UUID into the header; neither can be fixed through uproot's writing API,
  so every branch's arrays are compared instead;
* the shard metadata JSON: ``wall_time_s`` (and ``host``, equal here) describe the run, not
  the events; every other field is compared;
* the training history: ``seconds`` and ``train_events_per_s`` are timings; losses,
  learning rates and epochs are compared exactly.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import awkward as ak
import pytest
import uproot

from lhcflow.config import sample_selection, validate_config
from lhcflow.data.stages import GenerateSettings, IngestSettings, generate_stage, ingest_stage
from lhcflow.provenance import PACKAGES, run_info, seed_table
from lhcflow.seeds import derive_seed
from lhcflow.zjets.stages import (
    PreprocessSettings,
    SampleSettings,
    TrainSettings,
    preprocess_stage,
    sample_stage,
    train_stage,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = validate_config({
    "run": "repro",
    "seed": 4242,
    "samples": {"zj": {"kind": "pythia", "n_events": 400, "n_shards": 2}},
    "zjets": {"sample": "zj", "models": {"inn": {
        "kind": "inn", "network": {"n_blocks": 2, "hidden": 16, "layers_per_block": 1, "bins": 4},
        "training": {"epochs": 2, "batch_size": 32}}}},
    "classifier": {"enabled": False}, "nis": {"enabled": False}, "thj": {"enabled": False},
})
TIMINGS = {"wall_time_s", "host", "seconds", "train_events_per_s"}


def stage_seed(*labels):
    """As workflow/rules/common.smk."""
    return derive_seed(CONFIG["seed"], *labels)


def pipeline(work: Path) -> None:
    sample, cfg = "zj", CONFIG["samples"]["zj"]
    gen = work / "generation"
    for shard in range(cfg["n_shards"]):
        settings = GenerateSettings.from_config({"sample": cfg, "shard": shard,
                                                 "seed": stage_seed("generate", sample, shard)})
        generate_stage(settings, out_root=gen / f"shard{shard}.root", out_meta=gen / f"shard{shard}.json",
                       progress=False)
    data = work / "data"
    settings = IngestSettings.from_config({
        "name": sample, "sample": cfg, "selection": sample_selection(CONFIG, sample),
        "split": {"fractions": CONFIG["split"]["fractions"], "seed": stage_seed("split", sample)}})
    ingest_stage(settings, roots=sorted(gen.glob("*.root")), metas=sorted(gen.glob("*.json")),
                 out_train=data / "train.h5", out_val=data / "val.h5", out_test=data / "test.h5",
                 out_cutflow=data / "cutflow.json", progress=False)
    zj, model = work / "zjets", CONFIG["zjets"]["models"]["inn"]
    magic = CONFIG["zjets"]["magic"]
    preprocess_stage(PreprocessSettings.from_config({"magic": magic}), train=data / "train.h5",
                     out=zj / "preprocessing.json")
    nets = []
    for net in (1, 2, 3):
        nets.append(zj / f"net{net}.pt")
        settings = TrainSettings.from_config({"model": model, "magic": magic, "net": net,
                                              "seed": stage_seed("zjets_train", "inn", net)})
        train_stage(settings, train=data / "train.h5", val=data / "val.h5", preprocessing=zj / "preprocessing.json",
                    out_model=nets[-1], out_history=zj / f"history_net{net}.json",
                    checkpoint=work / "checkpoints" / f"net{net}.ckpt", progress=False)
    settings = SampleSettings.from_config({"model": model, "magic": magic, "n_events": 500,
                                           "seed": stage_seed("zjets_sample", "inn")})
    sample_stage(settings, preprocessing=zj / "preprocessing.json", nets=nets, out_events=zj / "generated.h5")


def snapshot(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and "checkpoints" not in p.parts}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("repro") / "results"
    pipeline(work)
    first = snapshot(work)
    shutil.rmtree(work)
    pipeline(work)
    return first, snapshot(work), work


def test_same_files_written(runs):
    first, second, _ = runs
    assert sorted(first) == sorted(second)
    assert {"data/train.h5", "data/val.h5", "data/test.h5", "zjets/net1.pt", "zjets/generated.h5"} <= set(first)


@pytest.mark.parametrize("name", ["data/train.h5", "data/val.h5", "data/test.h5", "data/cutflow.json",
                                  "zjets/preprocessing.json", "zjets/net1.pt", "zjets/net2.pt", "zjets/net3.pt",
                                  "zjets/generated.h5"])
def test_byte_identical(runs, name):
    first, second, _ = runs
    assert first[name] == second[name], f"{name} differs between two runs of the same config"


def _without_timings(text: bytes) -> dict:
    return {k: v for k, v in json.loads(text).items() if k not in TIMINGS}


def test_root_shards_and_metadata_content_identical(runs, tmp_path):
    first, second, _ = runs
    shards = [n for n in first if n.endswith(".root")]
    assert len(shards) == 2
    for name in shards:
        (tmp_path / "a.root").write_bytes(first[name])
        with uproot.open(tmp_path / "a.root") as a, uproot.open(Path(runs[2]) / name) as b:
            ta, tb = a["Events"], b["Events"]
            assert ta.keys() == tb.keys() and ta.num_entries == tb.num_entries > 0
            for branch in ta.keys():
                assert ak.all(ak.ravel(ta[branch].array()) == ak.ravel(tb[branch].array())), branch
        meta = name.replace(".root", ".json")
        assert _without_timings(first[meta]) == _without_timings(second[meta])


def test_training_history_identical_up_to_timings(runs):
    first, second, _ = runs
    for net in (1, 2, 3):
        a, b = (_without_timings(r[f"zjets/history_net{net}.json"]) for r in (first, second))
        assert a == b and a["epoch"] == [1, 2]


def test_run_info_records_config_seeds_versions_and_commit():
    info = run_info(CONFIG)
    assert info["config"] == CONFIG
    assert set(info["packages"]) == set(PACKAGES) and info["packages"]["numpy"]
    assert info["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", info["git_commit"])
    seeds = info["seeds"]
    assert seeds["master"] == 4242
    assert seeds["stages"]["generate/zj/1"] == stage_seed("generate", "zj", 1)
    assert seeds["stages"]["zjets_train/inn/3"] == stage_seed("zjets_train", "inn", 3)
    json.dumps(info)  # written as JSON by the run_info rule


def _rule_seed_stages() -> set[tuple[str, int]]:
    """(stage, number of labels) of every stage_seed call in the rules; tHj stages are named by
    their first two labels."""
    found = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for args in re.findall(r"stage_seed\(([^)]*)\)", smk.read_text()):
            labels = [a.strip() for a in args.split(",")]
            if labels == ["*labels"]:
                continue
            name = "/".join(a.strip('"') for a in labels[:2 if labels[0] == '"thj"' else 1])
            found.add((name, len(labels)))
    return found


def _table_stages(config) -> set[tuple[str, int]]:
    out = set()
    for key in seed_table(config):
        parts = key.split("/")
        out.add(("/".join(parts[:2 if parts[0] == "thj" else 1]), len(parts)))
    return out


def test_seed_table_covers_every_seeded_rule():
    """run_info's seed table lists the stages the rules seed, with the same labels."""
    import yaml

    configs = [validate_config(yaml.safe_load((REPO / "config" / name).read_text()))
               for name in ("config.yaml", "paper.yaml")]
    assert _rule_seed_stages() == set().union(*map(_table_stages, configs))
