"""Atomic writes leave no file behind that a rerun could mistake for an output, and remove what a killed
write left: a temporary ``.<target>.<8 hex digits>.part`` that no handler could delete (SIGKILL)."""

from __future__ import annotations

import os
import stat

import pytest

from lhcflow.atomic import atomic_path, scratch_dir, temporaries, write_json


def test_the_next_write_of_a_target_removes_the_temporaries_a_killed_write_left(tmp_path):
    target = tmp_path / "train.h5"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        os.link(tmp, tmp_path / "killed")  # what a SIGKILL leaves: the handler below never runs
        raise KeyboardInterrupt
    (tmp_path / "killed").rename(tmp)
    assert temporaries(target) == [tmp] and tmp.name.startswith(".train.h5.") and tmp.name.endswith(".part")
    others = [tmp_path / ".train.h5.json.0123abcd.part",  # a temporary of another target
              tmp_path / ".train.h5.hepmc.part",  # an intermediate file named after the target
              tmp_path / ".train.h5.0123abcdef.part"]  # not one of ours: the token has 8 hex digits
    for other in others:
        other.write_text("keep")

    with atomic_path(target) as new:
        assert not tmp.exists() and temporaries(target) == [new]  # gone before the new write starts
        new.write_text("whole")
    assert target.read_text() == "whole" and temporaries(target) == []
    assert all(other.read_text() == "keep" for other in others)


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640


def test_scratch_dir_replaces_what_a_killed_run_left_and_is_removed_after(tmp_path):
    path = tmp_path / ".lhe-shard-shard0_root"
    (path / "sub").mkdir(parents=True)
    (path / "events.lhe").write_text("left by a killed run")
    with scratch_dir(path) as scratch:
        assert scratch == path and list(scratch.iterdir()) == []
        (scratch / "events.lhe").write_text("this run")
    assert not path.exists()
