"""Content digests of result files: the same science gives the same digest, wherever and whenever it ran.

Two runs of one config (locally with ``--cores 2`` and through SLURM, say) must produce the same
results. Comparing file checksums is too strict: files also record when, where and how fast they
were produced. ``digest_tree`` maps every result file below ``results/<run>/`` to a SHA-256 of its
*content*, and ``python -m lhcflow.digest compare results/A results/B`` lists the files whose
content differs (exit status 1), with the datasets or keys that differ.

Content, by file type:

- HDF5 (``.h5``, ``.hdf5``): every group and dataset by name, each dataset's dtype, shape and
  bytes, and every attribute (JSON-valued attributes such as ``provenance`` and ``sources`` as
  canonical JSON, under the rules below). Not the file's bytes: those depend on chunking,
  compression and object timestamps, none of which is content.
- ROOT (``.root``, read with uproot): every TTree's entry count and each branch's arrays.
- JSON: canonical JSON (sorted keys) under the rules below.
- PyTorch (``.pt``): the loaded object (state dicts of tensors, with their metadata): each
  tensor's dtype, shape and bytes; everything else as canonical JSON under the rules below.
- CSV tables: every column by name, less the run-dependent ones: a column named after a
  run-dependent key, or such a key with a statistic suffix (``time_train_mean``, ``time_eval_std``
  in nis/*/table.csv: mean and spread of the timings over seeds).
- HTML (our tables): the document's tags and text, less the cells of columns whose header mentions
  a time (``training time [s]`` in nis/*/table.html).
- Everything else (PNG figures, LHE event files, ...): the raw bytes. Matplotlib's PNGs are
  byte-stable for equal data (its PNG writer stores no date), so figures are compared, not skipped.

Rules for JSON (also JSON inside HDF5 attributes, metadata inside ``.pt``):

- Keys that record when, where or how fast a run happened, not what it computed, are dropped
  wherever they occur (``RUN_DEPENDENT_KEYS``):

  ``created_utc``        run_info.json: when the run started
  ``host``               run_info.json, generation/*/shard*.json, thj/reco/*/*.json: the machine
                         (a SLURM job's node, not the submit host)
  ``machine``            run_info.json, validation/validation.json: CPU, cores, memory, GPUs of it
  ``output_span_s``      validation/validation.json: first to last output time of the run
  ``report_utc``         validation/validation.json: when the report was written
  ``wall_time_s``        generation and tHj shower shard JSON: elapsed time of the job
  ``events_per_second``  tHj shower shard JSON: throughput, events / wall time
  ``events_per_s``       zjets/*/sampling.json: sampling throughput
  ``seconds``            zjets/*/sampling.json (and checkpoint histories): elapsed times
  ``train_events_per_s`` zjets/*/history_net*.json: training throughput
  ``time_train``, ``time_eval``  nis/*/runs/*.json and .pt: training and evaluation times
  ``time_train_s``       thj/hard/*/shard*.json, thj/cross_sections.json: VEGAS training time
  ``runtime_s``          mem/closure/closure.json: elapsed time of the closure test

- Strings that name the run's own directory ``results/<run>/`` (``sources``, ``train_file``,
  ``hard_file``, ``classifier``, the Pythia ``Beams:LHEF`` setting, ...): it is rewritten to
  ``results/<run>``, so ``results/default/...`` and ``results/slurm/...`` compare equal. The run
  name is the directory's name (the workflow writes to ``results/<config run>/``), and the ``run``
  key of the recorded config is rewritten the same way.
- The LHE-file shards of ``kind: lhe`` samples are showered from a temporary directory
  ``.lhe-shard-<shard>`` (removed afterwards; a random name in runs before it was named after the
  shard) whose name ends up in the recorded Pythia settings: the part after ``.lhe-shard-`` is
  rewritten to ``<tmp>``.

Kept on purpose: ``git_commit``, ``packages`` and ``python`` in run_info.json. They are the same for
two runs of one checkout (as in CI); when they differ, the runs used different code and a
difference elsewhere is no evidence of non-determinism.

Not compared at all (``EXCLUDED``): ``logs/`` (timings, progress bars, hosts), ``checkpoints/``
(resume state of trainings, not an output; it holds RNG states and timings), ``report.html``
(Snakemake's report embeds its creation time and job runtimes), ``validation/validation.html`` and
``validation/front_page.rst`` (rendered from validation.json, which is compared, with its times and
host in the first line), Snakemake's bookkeeping
(``.snakemake*``) and half-written ``*.part`` files.

Everything that is compared is compared exactly: no tolerance. A difference is a real
difference (non-determinism or a changed input), to be explained or fixed, not hidden here.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

RUN_DEPENDENT_KEYS = frozenset({
    "created_utc", "host", "wall_time_s", "events_per_second", "events_per_s", "seconds",
    "train_events_per_s", "time_train", "time_eval", "time_train_s", "runtime_s", "machine", "output_span_s",
    "report_utc",
})

# A CSV column is run-dependent when its name, less one of these suffixes, is a run-dependent key.
_STAT_SUFFIX = re.compile(r"_(mean|std|min|max|median)$")
# An HTML table column is run-dependent when its header mentions a time ("training time [s]").
RUN_DEPENDENT_HEADER = re.compile(r"\btime\b", re.IGNORECASE)

# Glob patterns on the path relative to the results directory (and on each of its parts).
EXCLUDED = ("logs/*", "checkpoints/*", "report.html", ".snakemake*", "*.part", "validation/validation.html",
            "validation/front_page.rst")

_TMP_LHE = re.compile(r"\.lhe-shard-[A-Za-z0-9_]+")
_CHUNK_ELEMENTS = 1 << 22  # HDF5 datasets are read in slabs of at most this many elements


def excluded(relpath: str) -> bool:
    """Whether a path relative to a results directory is left out of the comparison."""
    parts = relpath.split("/")
    return any(fnmatch.fnmatch(relpath, pattern) or any(fnmatch.fnmatch(part, pattern) for part in parts)
               for pattern in EXCLUDED)


def normalize_string(text: str, run: str | None) -> str:
    """Rewrite the run's directory name and temporary directory names (see the module doc)."""
    if run:
        text = re.sub(r"results/" + re.escape(run) + r"(?![\w.-])", "results/<run>", text)
    return _TMP_LHE.sub(".lhe-shard-<tmp>", text)


def canonical(value: Any, run: str | None = None) -> Any:
    """A JSON-able value with run-dependent keys dropped and run paths rewritten (recursively)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if str(key) in RUN_DEPENDENT_KEYS:
                continue
            if str(key) == "run" and isinstance(item, str) and item == run:
                item = "<run>"
            out[str(key)] = canonical(item, run)
        return out
    if isinstance(value, (list, tuple)):
        return [canonical(item, run) for item in value]
    if isinstance(value, str):
        return normalize_string(value, run)
    if isinstance(value, bytes):
        return normalize_string(value.decode("utf-8", "surrogateescape"), run)
    if isinstance(value, np.generic):
        return canonical(value.item(), run)
    if isinstance(value, np.ndarray):
        return {"ndarray": value.dtype.str, "shape": list(value.shape),
                "values": canonical(value.tolist(), run)}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # NaN and inf: canonical JSON has no literal for them
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # object addresses change from run to run
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}",
            "repr": normalize_string(text, run)}


def _json_bytes(value: Any, run: str | None) -> bytes:
    return json.dumps(canonical(value, run), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sha(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)
    return h.hexdigest()


def _flatten(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    """Leaves of nested mappings (lists stay whole), for naming what differs."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}/{key}")
    else:
        yield prefix or "/", value


# --- per file type: {part name: sha256} ---------------------------------------------------------------


def _json_parts(path: Path, run: str | None) -> dict[str, str]:
    data = canonical(json.loads(path.read_text()), run)
    return {name: _sha(_json_bytes(value, None)) for name, value in _flatten(data, "")}


def _attr_value(value: Any, run: str | None) -> bytes:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        try:  # JSON-valued attributes (provenance, sources, slots, ...) follow the JSON rules
            return b"json:" + _json_bytes(json.loads(value), run)
        except ValueError:
            return b"str:" + normalize_string(value, run).encode()
    return b"value:" + _json_bytes(value, run)


def _dataset_digest(ds) -> str:
    import h5py

    h = hashlib.sha256()
    h.update(f"{ds.dtype.descr!r}{ds.shape!r}".encode())
    if ds.shape is None:  # empty dataspace
        return h.hexdigest()
    if not ds.shape:
        rows = [ds[()]]
    else:
        step = max(1, _CHUNK_ELEMENTS // max(1, math.prod(ds.shape[1:])))
        rows = (ds[start:start + step] for start in range(0, ds.shape[0], step))
    variable = h5py.check_vlen_dtype(ds.dtype) is not None or ds.dtype.kind == "O"
    for block in rows:
        if variable:
            for item in np.asarray(block, dtype=object).ravel():
                item = item.encode() if isinstance(item, str) else np.asarray(item).tobytes()
                h.update(len(item).to_bytes(8, "little"))
                h.update(item)
        else:
            h.update(np.ascontiguousarray(block).tobytes())
    return h.hexdigest()


def _hdf5_parts(path: Path, run: str | None) -> dict[str, str]:
    import h5py

    parts: dict[str, str] = {}

    def attributes(name: str, obj) -> None:
        for key in sorted(obj.attrs):
            if key not in RUN_DEPENDENT_KEYS:
                parts[f"{name}@{key}"] = _sha(_attr_value(obj.attrs[key], run))

    def visit(name: str, obj) -> None:
        name = "/" + name
        if isinstance(obj, h5py.Dataset):
            parts[name] = _dataset_digest(obj)
        else:
            parts[name + "/"] = _sha(b"group")
        attributes(name, obj)

    with h5py.File(path, "r") as f:
        attributes("/", f)
        f.visititems(visit)
    return parts


def _awkward_digest(array) -> str:
    import awkward as ak

    form, length, buffers = ak.to_buffers(ak.to_packed(array))
    chunks = [form.to_json().encode(), str(length).encode()]
    for key in sorted(buffers):
        chunks += [key.encode(), np.asarray(buffers[key]).tobytes()]
    return _sha(*chunks)


def _root_parts(path: Path, run: str | None) -> dict[str, str]:
    import uproot

    parts: dict[str, str] = {}
    with uproot.open(path) as f:
        for key, classname in sorted(f.classnames().items()):
            obj = f[key]
            name = key.rsplit(";", 1)[0]
            if classname == "TTree" or hasattr(obj, "num_entries"):
                parts[f"{name}@entries"] = _sha(str(obj.num_entries).encode())
                for branch in obj.keys(recursive=True):
                    if not obj[branch].keys():  # leaves only: parents are their leaves together
                        parts[f"{name}/{branch}"] = _awkward_digest(obj[branch].array(library="ak"))
            elif hasattr(obj, "to_numpy"):  # histograms
                parts[name] = _sha(*(np.ascontiguousarray(a).tobytes() for a in obj.to_numpy(flow=True)))
            else:
                parts[name] = _sha(classname.encode())
    return parts


def _torch_parts(path: Path, run: str | None) -> dict[str, str]:
    import torch

    parts: dict[str, str] = {}

    def walk(value: Any, name: str) -> None:
        if torch.is_tensor(value):
            t = value.detach().cpu().contiguous()
            data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            parts[name] = _sha(f"{t.dtype}{tuple(t.shape)}".encode(), data)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if str(key) not in RUN_DEPENDENT_KEYS:
                    walk(item, f"{name}/{key}")
        elif isinstance(value, (list, tuple)) and any(torch.is_tensor(v) or isinstance(v, Mapping)
                                                      for v in value):
            for i, item in enumerate(value):
                walk(item, f"{name}/{i}")
        else:
            parts[name or "/"] = _sha(_json_bytes(value, run))

    walk(torch.load(path, map_location="cpu", weights_only=False), "")
    return parts


def _csv_parts(path: Path, run: str | None) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {"empty": _sha(b"")}
    header, body = rows[0], rows[1:]
    parts = {}
    for i, name in enumerate(header):
        if _STAT_SUFFIX.sub("", name) not in RUN_DEPENDENT_KEYS:
            column = [normalize_string(row[i], run) if i < len(row) else "" for row in body]
            parts[f"column:{name}"] = _sha(_json_bytes(column, None))
    return parts


class _HTMLContent(HTMLParser):
    """Tags and text of an HTML document in order, with the cells of run-dependent table columns
    (by their ``<th>`` header) left out."""

    def __init__(self, run: str | None):
        super().__init__(convert_charrefs=True)
        self.run, self.tokens = run, []
        self.headers: list[str] = []   # the current table's column headers
        self.column, self.skip, self.in_header = -1, False, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.headers = []
        elif tag == "tr":
            self.column = -1
        elif tag in ("td", "th"):
            self.column += 1
            self.in_header = tag == "th"
            if self.in_header:
                self.headers.append("")
            header = self.headers[self.column] if self.column < len(self.headers) else ""
            self.skip = tag == "td" and bool(RUN_DEPENDENT_HEADER.search(header))
        self.tokens.append(f"<{tag} {sorted(attrs)}>")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.skip = self.in_header = False
        self.tokens.append(f"</{tag}>")

    def handle_data(self, data):
        if self.in_header and self.headers:
            self.headers[-1] += data
        if not self.skip:
            self.tokens.append(normalize_string(data, self.run))


def _html_parts(path: Path, run: str | None) -> dict[str, str]:
    parser = _HTMLContent(run)
    parser.feed(path.read_text())
    parser.close()
    return {"content": _sha(_json_bytes(parser.tokens, None))}


def _raw_parts(path: Path, run: str | None) -> dict[str, str]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"bytes": h.hexdigest()}


READERS = {".h5": _hdf5_parts, ".hdf5": _hdf5_parts, ".root": _root_parts, ".json": _json_parts,
           ".pt": _torch_parts, ".csv": _csv_parts, ".html": _html_parts}


def file_parts(path: str | Path, run: str | None = None) -> dict[str, str]:
    """{part (dataset, attribute, JSON key, branch, tensor): sha256} of one file's content."""
    path = Path(path)
    return READERS.get(path.suffix.lower(), _raw_parts)(path, run)


def file_digest(path: str | Path, run: str | None = None) -> str:
    """SHA-256 of one file's content (see the module doc); ``run`` is the run name to rewrite."""
    parts = file_parts(path, run)
    return _sha(*(f"{name}\0{digest}".encode() for name, digest in sorted(parts.items())))


def result_files(root: str | Path) -> list[str]:
    """Paths (relative, POSIX) of the files below ``root`` that are compared."""
    root = Path(root)
    return sorted(rel for p in root.rglob("*") if p.is_file()
                  and not excluded(rel := p.relative_to(root).as_posix()))


def digest_tree(root: str | Path, run: str | None = None) -> dict[str, str]:
    """{relative path: content sha256} of every compared file below a results directory.

    ``run`` defaults to the directory's name (``results/<run>``)."""
    root = Path(root)
    run = root.resolve().name if run is None else run
    return {rel: file_digest(root / rel, run) for rel in result_files(root)}


def compare(a: str | Path, b: str | Path, *, details: int = 5) -> list[str]:
    """Differences between two results directories, one line each (empty: same content)."""
    a, b = Path(a), Path(b)
    run_a, run_b = a.resolve().name, b.resolve().name
    da, db = digest_tree(a, run_a), digest_tree(b, run_b)
    lines = [f"only in {a}: {rel}" for rel in sorted(da.keys() - db.keys())]
    lines += [f"only in {b}: {rel}" for rel in sorted(db.keys() - da.keys())]
    for rel in sorted(da.keys() & db.keys()):
        if da[rel] == db[rel]:
            continue
        pa, pb = file_parts(a / rel, run_a), file_parts(b / rel, run_b)
        differing = sorted(k for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k))
        more = f", ... ({len(differing)} parts)" if len(differing) > details else ""
        shown = ", ".join(differing[:details]) + more
        lines.append(f"differs: {rel}  [{shown}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lhcflow.digest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print 'sha256  path' for every compared file of a results directory")
    show.add_argument("root", type=Path)
    cmp_ = sub.add_parser("compare", help="compare two results directories (results/A results/B); "
                                          "exit status 1 when their content differs")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    args = parser.parse_args(argv)

    for root in [args.root] if args.command == "show" else [args.a, args.b]:
        if not root.is_dir():
            parser.error(f"{root} is not a directory")
    if args.command == "show":
        for rel, digest in digest_tree(args.root).items():
            print(f"{digest}  {rel}")
        return 0
    differences = compare(args.a, args.b)
    for line in differences:
        print(line)
    n = len(result_files(args.a))
    if differences:
        print(f"{len(differences)} difference(s) between {args.a} and {args.b} ({n} files in {args.a})")
        return 1
    print(f"same content: {n} files in {args.a} and {args.b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
