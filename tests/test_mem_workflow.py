"""The MEM rules hand every test sample exactly its own paired shards, whatever the shard counts.

Runs the real mem_transfer_plots rule through Snakemake on a config whose two test samples have one and
two shards, with a tiny transfer network and synthetic paired files that are already in place
(--allowed-rules: they count as sources), and checks the events each sample was evaluated on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_mem_networks import MH, MT, TINY_INN, make_paired_file

from lhcflow.mem.data import read_paired_events
from lhcflow.mem.features import hard_features
from lhcflow.mem.transfer import build_transfer

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
RUN = "results/memwf"
SHARDS = {"alpha0": 1, "alpha45": 2}
CONFIG = f"""
run: memwf
seed: 3
samples:
  zj: {{kind: pythia, n_events: 100, n_shards: 1}}
zjets: {{sample: zj, models: {{}}}}
classifier: {{enabled: false}}
hard_classifiers: {{}}
nis: {{enabled: false}}
thj:
  samples:
    train: {{n_events: 400, shards: 1}}
    alpha0: {{alpha_deg: 0, n_events: 400, shards: {SHARDS["alpha0"]}}}
    alpha45: {{alpha_deg: 45, n_events: 800, shards: {SHARDS["alpha45"]}}}
  distributions: [alpha0]
  datasets:
    leptonic: {{shower: {{w_decay: leptonic, isr: false}}, train: train, test: [alpha0, alpha45]}}
mem:
  datasets:
    leptonic: {{test: [alpha0, alpha45], transfers: [cinn]}}
  transfers:
    cinn: {{kind: cinn, network: {json.dumps(TINY_INN)}}}
  closure: {{enabled: false}}
"""


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to this Python")
def test_test_samples_with_different_shard_counts_get_their_own_files(tmp_path):
    work = tmp_path
    (work / "config.yaml").write_text(CONFIG)
    paired_dir = work / RUN / "thj" / "paired" / "leptonic"
    own = {}
    for k, (sample, shards) in enumerate(SHARDS.items()):
        own[sample] = [make_paired_file(_mkdir(paired_dir / sample) / f"shard{i}.h5", n=300 + 100 * (2 * k + i),
                                        seed=10 * k + i) for i in range(shards)]
    data = read_paired_events(own["alpha0"], accepted_only=True)
    net = build_transfer({"kind": "cinn", "network": TINY_INN}, data, (MT, MH))
    net.fit_preprocessing(net.reco_rows(data["x_reco"], data["x_reco_ptetaphim"], data["x_reco_present"]),
                          hard_features(data["x_hard"]))
    model_dir = _mkdir(work / RUN / "mem" / "leptonic" / "cinn")
    net.save(model_dir / "transfer.pt")
    (model_dir / "transfer_history.json").write_text("{}")

    target = f"{RUN}/mem/leptonic/cinn/transfer_metrics.json"
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "1",
           target, "--allowed-rules", "mem_transfer_plots"]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((work / target).read_text())
    expected = {s: len(read_paired_events(files, accepted_only=True)["alpha"]) for s, files in own.items()}
    assert metrics["events"] == expected  # each sample: the accepted events of exactly its own shards
    assert all(m["any"] == 0.0 for m in metrics["outside_selection"].values())


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
