"""A stage's bad-input error is one line on the terminal; its traceback is in the job log."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lhcflow.data.ingest import IngestError
from lhcflow.errors import InputError
from lhcflow.logs import log_to

STAGE = textwrap.dedent("""
    import sys
    from lhcflow.logs import log_to
    from lhcflow.data.ingest import IngestError
    with log_to(sys.argv[1]):
        print("working on it")
        if sys.argv[2] == "input":
            raise IngestError("events.root: branch 'Muon_pt' not found; map muon.pt to one of: Muon_PT")
        raise RuntimeError("a bug")
""")


def _run(tmp_path, kind):
    log = tmp_path / "job.log"
    result = subprocess.run([sys.executable, "-c", STAGE, str(log), kind], capture_output=True, text=True)
    return result, log.read_text()


def test_input_error_is_one_line_on_stderr_and_the_traceback_is_in_the_log(tmp_path):
    result, log = _run(tmp_path, "input")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "events.root" in lines[0] and "Muon_pt" in lines[0] and "job.log" in lines[0]
    assert "Traceback" not in result.stderr
    assert "Traceback" in log and "working on it" in log and "IngestError" in log


def test_a_bug_keeps_its_traceback(tmp_path):
    result, log = _run(tmp_path, "bug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr
    assert "Traceback" in log


def test_project_input_errors_are_input_errors_and_still_value_errors(tmp_path):
    from lhcflow.config import ConfigError
    from lhcflow.detector import DetectorConfigError
    from lhcflow.physics.pdf_sets import UnknownPDFSetError
    from lhcflow.data.events import EventFileError
    from lhcflow.thj.hard import HardEventError
    from lhcflow.thj.files import PairedFileError

    for cls in (ConfigError, DetectorConfigError, UnknownPDFSetError, HardEventError, IngestError, EventFileError,
                PairedFileError):
        assert issubclass(cls, InputError) and issubclass(cls, ValueError)
    with pytest.raises(SystemExit) as exit_info, log_to(tmp_path / "x.log"):
        raise ConfigError("config.yaml: samples.x.kind: 'pythya' is not one of pythia, lhe, root")
    assert exit_info.value.code == 1


def test_a_failing_stage_in_the_workflow_shows_one_line_and_leaves_no_output(tmp_path, shared_data):
    """Snakemake run of an ingest whose mapping names a branch the user's file lacks."""
    import shutil

    import yaml

    REPO_ROOT = Path(__file__).resolve().parents[1]

    run = f"pytest_bad_input_{tmp_path.name}"
    config = {"run": run, "samples": {"bad": {
        "kind": "root", "files": [str(shared_data / "cms2010_dimuon_zmumu.root")], "layout": "flat", "tree": "events",
        "mapping": {"muon": {"objects": [{"pt": "no_such_branch", "eta": "eta1", "phi": "phi1", "charge": "Q1"},
                                         {"pt": "pt2", "eta": "eta2", "phi": "phi2", "charge": "Q2"}],
                             "mass": 0.1056583755}},
        "selection": {"jets": {"min": 0}}}}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    out = REPO_ROOT / "results" / run
    try:
        result = subprocess.run([sys.executable, "-m", "snakemake", f"results/{run}/data/bad/train.h5", "--cores", "1",
                                 "--configfile", str(path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        terminal = result.stdout + result.stderr
        assert result.returncode != 0
        ours = [line for line in terminal.splitlines() if line.startswith("lhcflow: ")]
        assert len(ours) == 1 and "cms2010_dimuon_zmumu.root" in ours[0] and "no_such_branch" in ours[0], terminal
        assert "Traceback" not in terminal
        assert "Ingest sample bad" in terminal  # the rule's message, not "message: None"
        assert not (out / "data" / "bad").exists() or not any((out / "data" / "bad").glob("*.h5"))
        assert "Traceback" in (out / "logs" / "ingest" / "bad.log").read_text()
    finally:
        shutil.rmtree(out, ignore_errors=True)
