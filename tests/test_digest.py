"""Content digests of results directories: equal content, equal digest, whatever the run recorded
about when, where and how fast; any changed value shows up (python -m lhcflow.digest compare)."""

import json
import time

import awkward as ak
import h5py
import numpy as np
import pytest
import torch
import uproot

from lhcflow.digest import compare, digest_tree, excluded, file_digest, main
from lhcflow.plots.tables import rows_html


def nis_table(integral="4.91", seconds=1.0):
    """The two renderings of a NIS summary table, with a timing column, as the workflow writes them."""
    csv = f"variant,integral_mean,time_train_mean,time_train_std\nvegas,{integral},{seconds},{seconds / 10}\n"
    html = rows_html("camel", ("variant", "integral", "training time [s]"),
                     [("VEGAS", integral, f"{seconds:.2g}")])
    return csv, html


def write_run(root, run, *, chunk=64, host="node1", stamp="2026-01-01T00:00:00+00:00", seconds=1.0,
              pt_scale=1.0):
    """A miniature results/<run>/ with one file of each kind the workflow writes."""
    d = root / run
    (d / "data").mkdir(parents=True)
    rng = np.random.default_rng(7)
    pt = rng.exponential(40.0, (500, 3)).astype(np.float32) * np.float32(pt_scale)
    with h5py.File(d / "data" / "train.h5", "w") as f:  # object timestamps on, as h5py's default
        f.create_dataset("pt", data=pt, chunks=(chunk, 3), compression="gzip", track_times=True)
        f.create_dataset("type", data=np.ones((500, 3), np.int8), track_times=True)
        f.attrs["sources"] = json.dumps([f"results/{run}/generation/shard0.root"])
        f.attrs["provenance"] = json.dumps({"settings": [f"Beams:LHEF = results/{run}/generation/"
                                                         f".lhe-shard-{run}x9/events.lhe"], "seed": 3})
        f.attrs["n_events"] = 500
    (d / "run_info.json").write_text(json.dumps({
        "config": {"run": run, "seed": 3}, "created_utc": stamp, "host": host, "git_commit": "abc"}))
    (d / "nis.json").write_text(json.dumps({"integral": 4.91, "time_train": seconds, "time_eval": seconds / 2,
                                            "train_file": f"results/{run}/data/train.h5"}, indent=1))
    (d / "sampling.json").write_text(json.dumps({"n_events": 500, "seconds": seconds,
                                                 "events_per_s": 500 / seconds}))
    with uproot.recreate(d / "data" / "shard0.root") as f:
        f["Events"] = {"Muon_pt": ak.Array([[1.0, 2.0], [], [3.5]]), "weight": np.array([1.0, 0.5, 2.0])}
    torch.save({"state": {"w": torch.arange(6.0).reshape(2, 3) * pt_scale}, "time_train": seconds,
                "step": 10}, d / "net.pt")
    csv, html = nis_table(seconds=seconds)
    (d / "table.csv").write_text(csv)
    (d / "table.html").write_text(html)
    (d / "logs").mkdir()
    (d / "logs" / "job.log").write_text(f"took {seconds} s on {host}\n")
    (d / "plots").mkdir()
    (d / "plots" / ".snakemake_timestamp").write_text(stamp)
    return d


def test_same_content_written_at_different_times_has_the_same_digest(tmp_path):
    a = write_run(tmp_path, "local")
    time.sleep(1.1)  # HDF5 object timestamps have one-second resolution
    b = write_run(tmp_path, "slurm", chunk=100, host="node7", stamp="2026-06-30T12:00:00+00:00", seconds=9.5)
    # The files differ byte for byte (timestamps, chunking, run paths, timings) ...
    assert (a / "data/train.h5").read_bytes() != (b / "data/train.h5").read_bytes()
    assert (a / "run_info.json").read_bytes() != (b / "run_info.json").read_bytes()
    # ... but not in content.
    da, db = digest_tree(a), digest_tree(b)
    assert da == db
    assert set(da) == {"data/train.h5", "data/shard0.root", "run_info.json", "nis.json", "sampling.json",
                       "net.pt", "table.csv", "table.html"}  # logs and Snakemake's markers are not compared
    assert compare(a, b) == []


def test_a_changed_value_changes_the_digest(tmp_path):
    a = write_run(tmp_path, "a")
    b = write_run(tmp_path, "b")
    with h5py.File(b / "data/train.h5", "r+") as f:
        f["pt"][0, 0] += 1.0
    nis = json.loads((b / "nis.json").read_text())
    (b / "nis.json").write_text(json.dumps({**nis, "integral": 4.92}))
    with uproot.recreate(b / "data" / "shard0.root") as f:
        f["Events"] = {"Muon_pt": ak.Array([[1.0, 2.0], [], [3.25]]), "weight": np.array([1.0, 0.5, 2.0])}
    torch.save({"state": {"w": torch.arange(6.0).reshape(2, 3) * 2}, "time_train": 1.0, "step": 10},
               b / "net.pt")
    csv, html = nis_table(integral="4.92")
    (b / "table.csv").write_text(csv)
    (b / "table.html").write_text(html)
    changed = {rel for rel, digest in digest_tree(b).items() if digest_tree(a)[rel] != digest}
    assert changed == {"data/train.h5", "nis.json", "data/shard0.root", "net.pt", "table.csv", "table.html"}
    lines = compare(a, b)
    assert "differs: data/train.h5  [/pt]" in lines
    assert "differs: nis.json  [/integral]" in lines
    assert "differs: data/shard0.root  [Events/Muon_pt]" in lines
    assert "differs: net.pt  [/state/w]" in lines
    assert "differs: table.csv  [column:integral_mean]" in lines and "differs: table.html  [content]" in lines


def test_json_time_host_and_run_keys_are_ignored_but_science_is_not(tmp_path):
    path = tmp_path / "results" / "x" / "m.json"
    path.parent.mkdir(parents=True)
    digests = []
    for stamp, host, secs in [("2026-01-01", "a", 1.0), ("2027-05-05", "b", 99.0)]:
        path.write_text(json.dumps({"created_utc": stamp, "host": host, "wall_time_s": secs,
                                    "time_train_s": secs, "train_events_per_s": 1 / secs,
                                    "events_per_second": 2 / secs,
                                    "nested": {"time_eval": secs, "sigma_pb": 0.0617}}))
        digests.append(file_digest(path, "x"))
    assert digests[0] == digests[1]
    path.write_text(json.dumps({"nested": {"sigma_pb": 0.0618}}))
    assert file_digest(path, "x") != digests[0]
    # a path into another run is a different input, not the run's own directory
    path.write_text(json.dumps({"source": "results/x/data.h5"}))
    own = file_digest(path, "x")
    path.write_text(json.dumps({"source": "results/y/data.h5"}))
    assert file_digest(path, "x") != own


def test_exclusions():
    assert excluded("logs/zjets/train_inn_net1.log") and excluded("checkpoints/zjets/inn/net1.ckpt")
    assert excluded("report.html") and excluded("plots/compare/.snakemake_timestamp")
    assert excluded("data/.train.h5.abc.part")
    assert not excluded("plots/cutflow.html") and not excluded("zjets/inn/metrics.json")


def test_compare_cli_reports_differences_and_exits_non_zero(tmp_path, capsys):
    a = write_run(tmp_path, "default")
    b = write_run(tmp_path, "slurm", seconds=3.0)
    assert main(["compare", str(a), str(b)]) == 0
    assert "same content: 8 files" in capsys.readouterr().out

    (b / "table.csv").write_text(nis_table(integral="5.00")[0])
    (b / "extra.json").write_text("{}")
    (a / "run_info.json").unlink()
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "differs: table.csv  [column:integral_mean]" in out
    assert f"only in {b}: extra.json" in out and f"only in {b}: run_info.json" in out
    assert "3 difference(s)" in out

    assert main(["show", str(a)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 7 and all(len(line.split("  ")[0]) == 64 for line in listing)
    with pytest.raises(SystemExit):
        main(["compare", str(a), str(tmp_path / "missing")])
