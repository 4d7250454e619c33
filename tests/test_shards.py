"""Sharding of generated samples: disjoint event ranges, LHE slices, cross-section combination."""

import json

import numpy as np
import pytest
import uproot

from lhcflow.config import load_config
from lhcflow.data.sources import ingest_arguments
from lhcflow.generation.pythia import count_lhe_events, read_lhe_header
from lhcflow.generation.shards import combine_shards, generate_shard, shard_range, slice_lhe


def test_shard_ranges_partition_the_sample():
    for total, n in [(10, 3), (7, 7), (5, 8), (10000, 2)]:
        ranges = [shard_range(total, n, i) for i in range(n)]
        covered = np.concatenate([np.arange(s, s + c) for s, c in ranges])
        np.testing.assert_array_equal(covered, np.arange(total))
    with pytest.raises(ValueError):
        shard_range(10, 2, 2)


def test_lhe_slices_are_disjoint_and_complete(shared_data, tmp_path):
    source = shared_data / "powheg_zj.lhe"
    assert count_lhe_events(source) == 100
    pieces = [slice_lhe(source, tmp_path / f"p{i}.lhe", *shard_range(100, 3, i)).path for i in range(3)]
    assert [count_lhe_events(p) for p in pieces] == [34, 33, 33]
    events = [p.read_text().split("<event")[1:] for p in pieces]
    original = source.read_text().split("<event")[1:]
    assert [e.split("</event>")[0] for e in sum(events, [])] == [e.split("</event>")[0] for e in original]
    assert read_lhe_header(pieces[2]).beam_energies_gev == (980.0, 980.0)
    with pytest.raises(ValueError, match="found 0"):
        slice_lhe(source, tmp_path / "bad.lhe", 100, 5)


def test_combined_cross_section_is_inverse_variance_mean():
    metas = [{"sigma_gen_pb": 10.0, "sigma_err_pb": 1.0, "generator": "g", "seed": 1, "n_written": 5},
             {"sigma_gen_pb": 13.0, "sigma_err_pb": 2.0, "generator": "g", "seed": 2, "n_written": 7}]
    combined = combine_shards(metas)
    assert combined["cross_section_pb"] == pytest.approx((10 / 1 + 13 / 4) / (1 + 1 / 4))
    assert combined["cross_section_err_pb"] == pytest.approx((1 + 1 / 4) ** -0.5)
    assert combined["seeds"] == [1, 2] and combined["n_written"] == 12


def test_lhe_shards_of_a_config_sample(shared_data, tmp_path):
    config = load_config(__import__("pathlib").Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    sample = {**config["samples"]["zjets_mg5_ckkwl"], "file": str(shared_data / "powheg_zj.lhe"),
              "merging": {"scheme": "none"}, "n_events": 50, "n_shards": 2}
    metas = []
    for shard in range(2):
        generate_shard(sample, shard, 7 + shard, tmp_path / f"s{shard}.root", tmp_path / f"s{shard}.json",
                       progress=False)
        metas.append(tmp_path / f"s{shard}.json")
    shard_meta = [json.loads(m.read_text()) for m in metas]
    assert [m["first_event"] for m in shard_meta] == [0, 25]
    assert [m["n_written"] for m in shard_meta] == [25, 25]
    assert all(m["source_lhe"].endswith("powheg_zj.lhe") for m in shard_meta)
    assert not list(tmp_path.glob(".lhe-shard-*"))  # the temporary slices are gone
    arguments = ingest_arguments(sample, [tmp_path / "s0.root", tmp_path / "s1.root"], metas)
    assert arguments["source"]["layout"] == "lhcflow" and arguments["provenance"]["shard_seeds"] == [7, 8]
    assert arguments["cross_section_pb"] > 0
    electrons = uproot.open(tmp_path / "s1.root")["Events"]["nElectron"].array()
    assert np.all(electrons == 2)
