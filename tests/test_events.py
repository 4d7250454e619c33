"""The canonical HDF5 event format: round trip, streaming, atomic writes."""

import h5py
import numpy as np
import pytest

from lhcflow.data.events import (
    EventBatch, EventFileError, EventWriter, ObjectType, SampleInfo, count_events, iter_events, read_events,
    read_info, write_events,
)


def random_batch(n, rng, slots=5):
    batch = EventBatch.empty(n, slots)
    batch.type[:, :2] = ObjectType.MUON
    batch.type[:, 2:] = np.where(rng.random((n, slots - 2)) < 0.5, ObjectType.JET, ObjectType.NONE)
    present = batch.type != ObjectType.NONE
    batch.pt[:] = np.where(present, rng.exponential(40.0, (n, slots)) + 20.0, 0.0)
    batch.eta[:] = np.where(present, rng.normal(0.0, 2.0, (n, slots)), 0.0)
    batch.phi[:] = np.where(present, rng.uniform(-np.pi, np.pi, (n, slots)), 0.0)
    batch.charge[:, 0], batch.charge[:, 1] = 1, -1
    batch.weight[:] = rng.normal(1.0, 0.1, n)
    return batch


def info(**kw):
    return SampleInfo(slots=["mu1", "mu2", "j1", "j2", "j3"], cross_section_pb=123.4, generator="test",
                      seed=42, sources=["a.root"], **kw)


def test_round_trip_and_attributes(tmp_path):
    batch = random_batch(1000, np.random.default_rng(1))
    path = tmp_path / "sample.h5"
    write_events(path, batch, info(split="train", provenance={"note": "x"}))
    back = read_events(path)
    for name in ("type", "pt", "eta", "phi", "mass", "charge", "btag", "weight", "n_jets_all", "source_index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(batch, name))
    meta = read_info(path)
    assert meta.slots == ["mu1", "mu2", "j1", "j2", "j3"] and meta.cross_section_pb == pytest.approx(123.4)
    assert meta.split == "train" and meta.provenance == {"note": "x"} and meta.sources == ["a.root"]
    assert count_events(path) == 1000
    with h5py.File(path) as f:
        assert f["pt"].dtype == np.float32 and f["pt"].chunks is not None and f.attrs["n_events"] == 1000


def test_streaming_append_equals_one_shot(tmp_path):
    rng = np.random.default_rng(2)
    blocks = [random_batch(n, rng) for n in (10, 333, 1, 700)]
    path = tmp_path / "streamed.h5"
    with EventWriter(path, info(), chunk_events=128) as writer:
        for block in blocks:
            writer.write(block)
    whole = EventBatch.concatenate(blocks)
    chunks = list(iter_events(path, chunk_size=100))
    assert [len(c) for c in chunks] == [100] * 10 + [44]
    np.testing.assert_array_equal(EventBatch.concatenate(chunks).pt, whole.pt)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with EventWriter(path, info()) as writer:
            writer.write(random_batch(10, np.random.default_rng(3)))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_previous_file(tmp_path):
    path = tmp_path / "out.h5"
    write_events(path, random_batch(5, np.random.default_rng(4)), info())
    with pytest.raises(ValueError, match="slots"):
        with EventWriter(path, info()) as writer:
            writer.write(random_batch(5, np.random.default_rng(5), slots=4))
    assert count_events(path) == 5 and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_shape_checks_and_missing_file(tmp_path):
    batch = EventBatch.empty(3, 5)
    with pytest.raises(ValueError, match="field 'weight'"):
        EventBatch(**{**batch.__dict__, "weight": np.ones(4)})
    with pytest.raises(EventFileError, match="missing.h5: cannot open the canonical event file: file not f"):
        read_events(tmp_path / "missing.h5")


def test_bad_event_files_name_the_file_and_dataset(tmp_path):
    """The one reader of the format (read_events, read_info, count_events) raises EventFileError naming the
    file and the dataset or attribute, and what to do."""
    good = tmp_path / "good.h5"
    write_events(good, random_batch(20, np.random.default_rng(3)), info())
    assert count_events(good) == 20 and read_info(good).slots == info().slots

    def broken(name, edit):
        path = tmp_path / name
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    def narrow_phi(f):
        del f["phi"]
        f["phi"] = np.zeros((20, 4), np.float32)

    def short_weight(f):
        del f["weight"]
        f["weight"] = np.ones(19)

    (tmp_path / "junk.h5").write_text("not HDF5")
    cases = [(tmp_path / "junk.h5", read_events, "junk.h5: cannot open the canonical event file: not a"),
             (broken("no_eta.h5", lambda f: f.__delitem__("eta")), read_events,
              "no_eta.h5: the canonical event file has no dataset 'eta'"),
             (broken("short.h5", short_weight), count_events,
              r"short.h5: dataset 'weight' .* \(19,\), expected \(N\) with N = 20"),
             (broken("phi.h5", narrow_phi), read_events,
              r"phi.h5: dataset 'phi' .* \(20, 4\), expected \(N, S\) with N = 20, S = 5"),
             (broken("no_slots.h5", lambda f: f.attrs.__delitem__("slots")), read_info,
              "no_slots.h5: attribute 'slots' missing"),
             (broken("version.h5", lambda f: f.attrs.__setitem__("schema_version", 0)), read_info,
              "version.h5: unsupported canonical schema version 0")]
    for path, reader, match in cases:
        with pytest.raises(EventFileError, match=match) as err:
            reader(path)
        assert "rerun the rule that wrote it" in str(err.value)
