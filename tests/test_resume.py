"""A training killed by SIGTERM (what SLURM sends at the time limit) resumes on the rerun.

The end-to-end test runs the real zjets_train rule through Snakemake on a tiny INN and synthetic
Z+jets events, waits for the first per-epoch checkpoint, sends SIGTERM to the whole process
group (Snakemake and the training script, as SLURM signals every process of a job), and checks
that the job died without its declared outputs, that the checkpoint (outside the outputs) is
loadable, and that the rerun continues with the next epoch instead of starting over.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import GaussianModel, data
from test_zjets_data import synthetic_zjets

from lhcflow.data.events import SampleInfo, write_events
from lhcflow.training.termination import Terminated, deferred_sigterm, exit_on_sigterm
from lhcflow.training.trainer import TrainingConfig, train
from lhcflow.zjets.preprocessing import ZJETS_SLOTS
from lhcflow.zjets.stages import PreprocessSettings, preprocess_stage

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
EPOCHS = 5
CONFIG = f"""
run: resume
seed: 7
samples:
  zj: {{kind: pythia, n_events: 100, n_shards: 1}}
zjets:
  sample: zj
  models:
    inn:
      kind: inn
      network: {{n_blocks: 2, hidden: 16, layers_per_block: 1, bins: 4}}
      training: {{epochs: {EPOCHS}, batch_size: 32}}
classifier: {{enabled: false}}
nis: {{enabled: false}}
thj: {{enabled: false}}
"""
RUN = "results/resume"
OUTPUTS = [f"{RUN}/zjets/inn/net1.pt", f"{RUN}/zjets/inn/history_net1.json"]
CHECKPOINT = f"{RUN}/checkpoints/zjets/inn/net1.ckpt"
LOG = f"{RUN}/logs/zjets/train_inn_net1.log"


def snakemake(work: Path, **kwargs) -> subprocess.Popen:
    """The zjets_train job alone (--allowed-rules: the prepared data files count as sources)."""
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--cores", "1", OUTPUTS[0], "--allowed-rules", "zjets_train"]
    return subprocess.Popen(cmd, cwd=work, stdout=open(work / "snakemake.out", "a"), stderr=subprocess.STDOUT,
                            **kwargs)


def epochs_logged(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"INFO inn net1 epoch (\d+)/\d+:", log)]


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed next to this Python")
def test_sigterm_mid_training_then_rerun_continues_from_the_checkpoint(tmp_path):
    work = tmp_path
    info = SampleInfo(slots=list(ZJETS_SLOTS))
    data_dir = work / RUN / "data" / "zj"
    write_events(data_dir / "train.h5", synthetic_zjets(8000, seed=0), info)  # about 1 s per epoch
    write_events(data_dir / "val.h5", synthetic_zjets(200, seed=1), info)
    preprocess_stage(PreprocessSettings(), train=data_dir / "train.h5", out=work / RUN / "zjets" / "preprocessing.json")
    (work / "config.yaml").write_text(CONFIG)

    job = snakemake(work, start_new_session=True)
    checkpoint, deadline = work / CHECKPOINT, time.monotonic() + 120
    while not checkpoint.exists():
        assert job.poll() is None, "the training ended before its first checkpoint:\n" + (work / LOG).read_text()
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGTERM)  # the batch system signals every process of the job
    assert job.wait(timeout=60) != 0
    for out in OUTPUTS:
        assert not (work / out).exists(), f"{out} exists after the kill"
    assert not list(checkpoint.parent.glob("*.part")), "temporary checkpoint file left behind"
    killed_log = (work / LOG).read_text()
    assert "SIGTERM received" in killed_log
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # loadable after the kill
    last = state["epoch"] + 1  # epochs finished and checkpointed (1-based)
    before = epochs_logged(killed_log)
    assert before[:last] == list(range(1, last + 1)) and state["history"]["epoch"] == before[:last]
    assert last < EPOCHS, "killed too late: every epoch had finished"

    assert snakemake(work).wait(timeout=300) == 0, (work / "snakemake.out").read_text()
    log = (work / LOG).read_text()
    after = epochs_logged(log)
    print(f"\nkilled run: epochs {before} logged, checkpoint after epoch {last}; rerun: epochs {after}")
    assert f"resuming from {CHECKPOINT} after epoch {last}" in log
    assert after == list(range(last + 1, EPOCHS + 1)), "the rerun did not continue from the checkpoint"
    history = json.loads((work / OUTPUTS[1]).read_text())
    assert history["epoch"] == list(range(1, EPOCHS + 1))  # every epoch exactly once
    assert len(history["train_loss"]) == EPOCHS and np.isfinite(history["train_loss"]).all()
    assert torch.load(work / OUTPUTS[0], weights_only=True)


def test_checkpoint_of_another_training_is_not_resumed(tmp_path, caplog):
    """Changed data or config behind the same checkpoint path: the training starts over."""
    cfg = TrainingConfig(epochs=2, batch_size=256, seed=1)
    ckpt = tmp_path / "net.ckpt"
    first = train(GaussianModel(), data(seed=0), cfg, ckpt, progress=False)
    with caplog.at_level("INFO", logger="lhcflow"):
        again = train(GaussianModel(), data(seed=0), cfg, ckpt, progress=False)  # finished: nothing to do
        assert "resuming" in caplog.text and again.train_loss == first.train_loss
        caplog.clear()
        other = train(GaussianModel(), data(seed=9), cfg, ckpt, progress=False)  # other data
        assert "starting over" in caplog.text and other.epoch == [1, 2] and other.train_loss != first.train_loss
        caplog.clear()
        longer = TrainingConfig(epochs=3, batch_size=256, seed=1)  # another one-cycle schedule
        assert train(GaussianModel(), data(seed=9), longer, ckpt, progress=False).epoch == [1, 2, 3]
        assert "starting over" in caplog.text


def test_sigterm_raises_terminated_and_waits_for_a_checkpoint_write():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as err, exit_on_sigterm():
        with deferred_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs here, but the write in this block goes on
            written = True
        pytest.fail("SIGTERM was not delivered after the deferred block")
    assert written and err.value.code == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # handler restored
