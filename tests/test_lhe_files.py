"""Bad LHE files never give a silent wrong result: non-finite events, damaged gzip, truncated or empty
files, too few events, ROOT file globs. Every error names the user's file (never a shard copy) and
leaves no output behind."""

from __future__ import annotations

import json
import re

import numpy as np
import pylhe
import pytest

from lhcflow.config import ConfigError, check_inputs, sample_selection, validate_config
from lhcflow.data.events import read_info
from lhcflow.data.ingest import ingest_sample
from lhcflow.data.sources import add_generation_steps, ingest_arguments
from lhcflow.generation.lhe import LHEError
from lhcflow.generation.shards import generate_shard

FAST = {"mpi": False, "hadronization": False}


def _sample(path, **kw):
    return {"kind": "lhe", "file": str(path), "n_events": None, "n_shards": 1, "pythia": dict(FAST),
            "merging": {}, **kw}


def _outputs_left(out):
    return [p.name for p in out.rglob("*")] if out.exists() else []


def _shower_fails(sample, out, match):
    with pytest.raises(LHEError, match=match) as err:
        generate_shard(sample, 0, 1, out / "s.root", out / "s.json", progress=False)
    message = str(err.value)
    assert message.startswith(sample["file"]) and ".lhe-shard" not in message
    assert _outputs_left(out) == []
    return message


@pytest.fixture
def powheg_with_nan(shared_data, tmp_path):
    """POWHEG's 100 events with px of the electron set to NaN in events 1, 4, 6, 11, ... (30 events)."""
    text = (shared_data / "powheg_zj.lhe").read_text()
    head, *events = text.split("<event>")
    bad = sorted({k for k in range(100) if k % 10 in (0, 3, 5)})
    for k in bad:
        lines = events[k].split("\n")
        fields = lines[5].split()  # the fourth particle line: the electron
        fields[6] = "NaN"
        lines[5] = " " + " ".join(fields)
        events[k] = "\n".join(lines)
    path = tmp_path / "user_events.lhe"
    path.write_text("<event>".join([head, *events]))
    return path, bad


def test_nan_momentum_stops_the_shower_naming_file_and_event(powheg_with_nan, tmp_path):
    path, _ = powheg_with_nan
    message = _shower_fails(_sample(path), tmp_path / "out", r"event 1 \(line \d+\): non-finite momentum")
    assert "on_bad_event: skip" in message and "NaN" in message
    # a later shard names the first bad event of its own range, by its number in the whole file
    sample = {**_sample(path), "n_shards": 4}
    with pytest.raises(LHEError, match=r"user_events.lhe: event 51 \(line") as err:
        generate_shard(sample, 2, 1, tmp_path / "o2" / "s.root", tmp_path / "o2" / "s.json", progress=False)
    line = int(re.search(r"line (\d+)", str(err.value)).group(1))
    assert path.read_text().splitlines()[line - 1].strip() == "<event>"


def test_skipped_bad_events_are_counted_and_sigma_is_right(powheg_with_nan, tmp_path):
    """With on_bad_event: skip the 30 NaN events are left out, counted in the shard metadata and the
    cut flow, and σ ± δσ are the mean and standard error of the 70 good weights (POWHEG writes
    weighted events, IDWTUP = -4), computed from the weights pylhe reads. (Showered as they were,
    Pythia silently dropped them and reported δσ = 8.8e-7 pb.)"""
    path, bad = powheg_with_nan
    weights = np.array([e.eventinfo.weight for e in pylhe.LHEFile.fromfile(str(path)).events])
    good = np.delete(weights, bad)
    sample = _sample(path, on_bad_event="skip", n_shards=2, selection={})
    metas = []
    for shard in range(2):
        generate_shard(sample, shard, 5 + shard, tmp_path / f"s{shard}.root", tmp_path / f"s{shard}.json",
                       progress=False)
        metas.append(tmp_path / f"s{shard}.json")
    shard_meta = [json.loads(m.read_text()) for m in metas]
    assert sum(m["n_bad_events"] for m in shard_meta) == 30
    assert [b["number"] for m in shard_meta for b in m["bad_events"]][:3] == [k + 1 for k in bad[:3]]
    # each shard estimates σ from its own good events; their combination is the sample's σ
    for meta, (lo, hi) in zip(shard_meta, [(0, 50), (50, 100)]):
        own = np.delete(weights[lo:hi], [k - lo for k in bad if lo <= k < hi])
        assert meta["sigma_gen_pb"] == pytest.approx(own.mean(), rel=1e-6)
        assert meta["sigma_err_pb"] == pytest.approx(own.std() / np.sqrt(len(own)), rel=1e-3)
    config = validate_config({"samples": {"s": {**sample, "selection": {"muons": {"min": 0, "keep": 0},
                                                                           "electrons": {"min": 2, "keep": 2},
                                                                           "jets": {"min": 0}}}}})
    arguments = ingest_arguments(sample, [tmp_path / "s0.root", tmp_path / "s1.root"], metas)
    outputs = {split: tmp_path / f"{split}.h5" for split in ("train", "val", "test")}
    ingest_sample(selection=sample_selection(config, "s"), split={"seed": 1}, outputs=outputs,
                  cutflow_path=tmp_path / "cutflow.json", sample_name="s", progress=False, **arguments)
    cutflow = add_generation_steps(tmp_path / "cutflow.json", metas)
    steps = {s["name"]: s["events"] for s in cutflow["generation"]}
    assert steps["LHE events in file"] == 100 and steps["bad LHE events skipped"] == 30
    assert steps["showered"] == 70 and json.loads((tmp_path / "cutflow.json").read_text())["generation"]
    info = read_info(outputs["train"])
    assert info.cross_section_pb == pytest.approx(good.mean(), rel=0.05)  # two shard means, combined
    assert info.cross_section_err_pb == pytest.approx(good.std() / np.sqrt(len(good)), rel=0.05)


def test_truncated_and_corrupt_gzip_name_the_file(shared_data, tmp_path):
    data = (shared_data / "mg5_zll_mlm_7tev.lhe.gz").read_bytes()
    cut = tmp_path / "cut.lhe.gz"
    cut.write_bytes(data[: len(data) // 2])
    message = _shower_fails(_sample(cut), tmp_path / "o1", "truncated gzip file")
    assert "copy or regenerate" in message
    damaged = bytearray(data)
    for i in range(len(data) // 2, len(data) // 2 + 64):
        damaged[i] ^= 0x5A
    bad = tmp_path / "damaged.lhe.gz"
    bad.write_bytes(bytes(damaged))
    _shower_fails(_sample(bad), tmp_path / "o2", "corrupt gzip data")
    fake = tmp_path / "plain_text.lhe.gz"
    fake.write_text("<LesHouchesEvents version=\"1.0\">\n")
    _shower_fails(_sample(fake), tmp_path / "o3", "named .gz but not gzip-compressed")


def test_empty_truncated_and_non_lhe_files_name_the_file(shared_data, tmp_path):
    empty = tmp_path / "empty.lhe"
    empty.write_text("")
    _shower_fails(_sample(empty), tmp_path / "o1", "empty file, not a Les Houches event file")
    with pytest.raises(ConfigError, match=r"samples.x: .*empty.lhe: empty file"):  # before any job
        check_inputs(validate_config({"samples": {"x": _sample(empty)}}))
    text = (shared_data / "powheg_zj.lhe").read_text()
    cut = tmp_path / "cut.lhe"
    cut.write_text(text[: len(text) // 2])
    _shower_fails(_sample(cut), tmp_path / "o2", r"truncated LHE file: \d+ <event> blocks, \d+ closed")
    header_only = tmp_path / "header_only.lhe"
    header_only.write_text(text.split("<event>")[0] + "</LesHouchesEvents>\n")
    _shower_fails(_sample(header_only), tmp_path / "o3", "the file holds no events")
    root = tmp_path / "not_lhe.lhe"
    root.write_bytes(b"root\x00\x00binary")
    _shower_fails(_sample(root), tmp_path / "o4", "not a Les Houches event file")


def test_more_events_than_the_file_holds_is_an_error(shared_data, tmp_path):
    _shower_fails(_sample(shared_data / "powheg_zj.lhe", n_events=150), tmp_path / "o",
                  r"n_events = 150 but the file holds only 100 events; set n_events to at most 100, or null")


def test_root_file_globs_expand_sorted_at_config_load(tmp_path):
    for name in ("delphes_b.root", "delphes_a.root", "other.root"):
        (tmp_path / name).write_bytes(b"")
    sample = {"kind": "root", "layout": "delphes", "files": [str(tmp_path / "delphes_*.root")]}
    config = check_inputs(validate_config({"samples": {"d": sample}}))
    expanded = [str(tmp_path / "delphes_a.root"), str(tmp_path / "delphes_b.root")]
    assert config["samples"]["d"]["files"] == expanded
    missing = {**sample, "files": [str(tmp_path / "nano_*.root"), str(tmp_path / "later.root")]}
    with pytest.raises(ConfigError) as err:
        check_inputs(validate_config({"samples": {"d": missing}}), source="my.yaml")
    pattern = tmp_path / "nano_*.root"
    assert f"my.yaml: samples.d.files: the pattern '{pattern}' matches no file" in str(err.value)
    assert "later.root" not in str(err.value)  # a plain path may be another rule's output
    with pytest.raises(ConfigError, match="samples.d.on_bad_event: does not apply to a kind root sample"):
        check_inputs(validate_config({"samples": {"d": {**sample, "on_bad_event": "skip"}}}))
