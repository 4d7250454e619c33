"""One heavy-line choice (thj.process.heavy: top | top_antitop) across the tHj outputs and the MEM."""

from __future__ import annotations

import json

import h5py
import pytest

from lhcflow.thj import heavy


def _paired(path, choice):
    with h5py.File(path, "w") as f:
        f["alpha"] = [0.0]
        if choice is not None:
            f.attrs["heavy"] = choice
    return path


def _fiducial(path, choice):
    record = {"fit": {"parameters": {"A": 1e-3, "B": 5e-3, "C": -2e-3, "D": 0.0, "E": 0.0}}}
    path.write_text(json.dumps(record if choice is None else {**record, "heavy": choice}))
    return path


def test_require_same_names_every_source():
    assert heavy.require_same({"a": "top", "b": None, "c": "top"}) == "top"
    assert heavy.require_same({"a": None}) is None
    with pytest.raises(ValueError, match="a: heavy = top; c: heavy = top_antitop"):
        heavy.require_same({"a": "top", "b": None, "c": "top_antitop"})
    with pytest.raises(ValueError, match="thj.process.heavy: 'tops'"):
        heavy.require_same({"a": "tops"})


def test_mem_refuses_a_fiducial_record_of_another_choice(tmp_path):
    """The MEM stages stop, naming the files, before they load a network or integrate an event."""
    from lhcflow.mem.setup import load_mem_setup
    from lhcflow.mem.stages import LikelihoodSettings, likelihood_stage

    paired = _paired(tmp_path / "paired.h5", "top")
    wrong = _fiducial(tmp_path / "fiducial.json", "top_antitop")
    with pytest.raises(ValueError, match="different heavy-line choices") as err:
        load_mem_setup([paired], tmp_path / "no_transfer.pt", tmp_path / "no_sampler.pt", wrong, {"heavy": "top"})
    assert str(paired) in str(err.value) and str(wrong) in str(err.value)
    with pytest.raises(ValueError, match=r"thj.process.heavy \(the MEM's density\): heavy = top_antitop"):
        load_mem_setup([paired], tmp_path / "t.pt", tmp_path / "s.pt", _fiducial(tmp_path / "f.json", "top"),
                       {"heavy": "top_antitop"})
    with pytest.raises(ValueError, match="different heavy-line choices"):
        analysis = {"small_set": 4, "large_set": 10, "events_per_set": 2, "calibration_sets": 2, "pull_sets": 3}
        settings = LikelihoodSettings.from_config({"alpha_deg": {"alpha0": 0.0}, "analysis": analysis, "label": "cinn",
                                                   "seed": 0})
        likelihood_stage(settings, integrals=[], stats=[], test_paired={"alpha0": [paired]}, fiducial=wrong,
                         out_metrics=tmp_path / "m.json", out_likelihood=tmp_path / "l.png",
                         out_calibration=tmp_path / "c.png", out_diagnostics=tmp_path / "d.png")


def test_mem_checks_the_default_choice(tmp_path):
    """An empty process config means the schema default, top; records that state nothing are not checked."""
    assert heavy.check_mem_inputs([_paired(tmp_path / "p.h5", None)], _fiducial(tmp_path / "f.json", None), {}) \
        == heavy.DEFAULT_HEAVY == "top"
    with pytest.raises(ValueError, match="top_antitop"):
        heavy.check_mem_inputs([_paired(tmp_path / "q.h5", "top_antitop")], tmp_path / "f.json", {})
