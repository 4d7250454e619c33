"""Ingest ROOT files of foreign layouts into canonical HDF5 train/val/test splits.

The input is read with :func:`uproot.iterate` in chunks of ``chunk_size`` entries,
so memory is bounded by the chunk, not the file. Each chunk is mapped onto physics
objects through a declared column mapping (:mod:`lhcflow.data.layouts`), selected,
assigned to a split by a hash of (seed, file index, entry) and appended to the
canonical files. Every output, the cut flow included, appears atomically and only
when the whole sample succeeded.
"""

from __future__ import annotations

import contextlib
import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from tqdm import tqdm

from lhcflow.atomic import write_json
from lhcflow.data.events import OBJECT_FIELDS, EventBatch, EventWriter, ObjectType, SampleInfo
from lhcflow.data.layouts import COLLECTIONS, DEFAULT_FIELDS, FIELDS, preset
from lhcflow.data.objectcuts import ObjectCut, parse_cuts, passes_all
from lhcflow.data.overlap import (
    leading_near_lepton,
    linked_by_jet_index,
    linked_by_lepton_index,
    near_leptons,
)
from lhcflow.errors import InputError
from lhcflow.physics import kinematics

SELECTION_KEYS = {"muons": "muon", "electrons": "electron", "photons": "photon", "jets": "jet"}
SLOT_PREFIX = {"muon": "mu", "electron": "e", "photon": "a", "jet": "j"}
TYPE_CODE = {
    "muon": ObjectType.MUON,
    "electron": ObjectType.ELECTRON,
    "photon": ObjectType.PHOTON,
    "jet": ObjectType.JET,
}
REQUIRED_FIELDS = ("pt", "eta", "phi", "mass", "charge", "btag")
MAPPING_FIELDS = (*FIELDS, "px", "py", "pz", "energy")
CHARGED = ("muon", "electron")
LEPTONS = ("muon", "electron")
CLEANING_METHODS = ("auto", "delta_r", "nanoaod_indices", "none")


class IngestError(InputError, ValueError):
    """Bad input for ingestion; the message names the file(s) and the field or branch."""


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class Field:
    """Where one canonical quantity comes from: a branch, or a constant."""

    column: str | None = None
    value: float | None = None
    threshold: float | None = None
    optional: bool = False

    @property
    def is_column(self) -> bool:
        return self.column is not None


@dataclass
class CollectionSpec:
    """Resolved mapping of one collection: jagged ``fields`` or fixed ``objects``, with ID cuts.

    ``cuts`` (one list, or one per fixed object) are the ``id`` entries; ``links`` are extra
    per-object index branches read for NanoAOD's jet-lepton cleaning (name -> branch).
    """

    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    objects: list[dict[str, Field]] | None = None
    cuts: list[ObjectCut] = field(default_factory=list)
    object_cuts: list[list[ObjectCut]] | None = None
    links: dict[str, str] = field(default_factory=dict)

    def field_sets(self) -> list[tuple[str, dict[str, Field]]]:
        """(label, fields) per object for flat layouts, or one entry for jagged ones."""
        if self.objects is None:
            return [(self.name, self.fields)]
        return [(f"{self.name}.objects[{i}]", obj) for i, obj in enumerate(self.objects)]

    def cut_sets(self) -> list[tuple[str, list[ObjectCut]]]:
        """(label, ID cuts) in the order of :meth:`field_sets`."""
        if self.objects is None:
            return [(self.name, self.cuts)]
        return [(f"{self.name}.objects[{i}]", cuts) for i, cuts in enumerate(self.object_cuts)]


@dataclass(frozen=True)
class Cleaning:
    """Jet-lepton overlap removal of one source (the sample's ``cleaning`` block, resolved).

    ``delta_r``: jets within ``radius`` of a selected lepton; ``nanoaod_indices``: jets that the
    file links to a selected lepton, through the leptons' ``jetIdx`` (``indices: lepton``) or the
    jets' lepton indices (``indices: jet``); ``none``. ``radius`` is also the cone of the
    leading-jet overlap diagnostic in the cut flow.
    """

    method: str = "none"
    radius: float = 0.4
    leptons: tuple[str, ...] = LEPTONS
    indices: str = "lepton"

    def to_dict(self) -> dict:
        out = {"method": self.method, "delta_r": self.radius, "leptons": list(self.leptons)}
        return {**out, "indices": self.indices} if self.method == "nanoaod_indices" else out


@dataclass
class ResolvedSource:
    """A source config with preset and overrides merged."""

    files: list[Path]
    layout: str
    tree: str
    collections: dict[str, CollectionSpec]
    weight: Field | None
    mapping: dict
    generator: str | None = None
    cross_section_pb: float | None = None
    cleaning: Cleaning = field(default_factory=Cleaning)

    def branches(self, collections: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Branch name -> mapping entries using it (e.g. ``muon.pt``, ``muon.id``); weight included."""
        used: dict[str, list[str]] = {}
        for name in self._names(collections):
            spec = self.collections[name]
            for label, fields in spec.field_sets():
                for key, f in fields.items():
                    if f.is_column:
                        used.setdefault(f.column, []).append(f"{label}.{key}")
            for label, cuts in spec.cut_sets():
                for cut in cuts:
                    if not cut.optional:
                        used.setdefault(cut.branch, []).append(f"{label}.id '{cut}'")
            for key, branch in spec.links.items():
                used.setdefault(branch, []).append(f"cleaning ({name}.{key})")
        if self.weight is not None and self.weight.is_column:
            used.setdefault(self.weight.column, []).append("weight")
        return used

    def optional_branches(self, collections: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Branches of optional ID cuts (skipped in files without them) -> the cuts."""
        used: dict[str, list[str]] = {}
        for name in self._names(collections):
            for label, cuts in self.collections[name].cut_sets():
                for cut in cuts:
                    if cut.optional:
                        used.setdefault(cut.branch, []).append(f"{label}.id '{cut}'")
        return used

    def _names(self, collections: Sequence[str] | None) -> list[str]:
        return list(self.collections) if collections is None else [c for c in collections if c in self.collections]


def resolve_source(source: Mapping) -> ResolvedSource:
    """Merge the layout preset with the user mapping and parse every field."""
    files = [Path(f) for f in _as_list(source.get("files"))]
    if not files:
        raise IngestError("source.files: no input files given")
    layout = source.get("layout") or "flat"
    try:
        base = preset(layout)
    except ValueError as exc:
        raise IngestError(f"{_names(files)}: source.layout: {exc}") from None
    tree = source.get("tree") or base["tree"]
    if not tree:
        raise IngestError(f"{_names(files)}: source.tree: layout {layout!r} has no default tree; set source.tree")
    mapping = _merge_mapping(base["mapping"], source.get("mapping") or {}, files)
    collections = {
        name: _parse_collection(name, entry, files) for name, entry in mapping.items() if name != "weight" and entry
    }
    cleaning = _resolve_cleaning(source.get("cleaning") or {}, base, layout, collections, files)
    return ResolvedSource(
        files=files,
        layout=layout,
        tree=tree,
        collections=collections,
        weight=_parse_weight(mapping.get("weight"), files),
        mapping=mapping,
        generator=source.get("generator"),
        cross_section_pb=source.get("cross_section_pb"),
        cleaning=cleaning,
    )


def _resolve_cleaning(cfg: Mapping, base: dict, layout: str, collections: dict, files: list[Path]) -> Cleaning:
    """The sample's cleaning block on the layout's default; NanoAOD links become per-object branches."""
    unknown = set(cfg) - {"method", "delta_r", "leptons", "indices"}
    if unknown:
        raise IngestError(f"{_names(files)}: cleaning: unknown key(s) {sorted(unknown)} "
                          "(allowed: method, delta_r, leptons, indices)")
    method = cfg.get("method") or "auto"
    if method not in CLEANING_METHODS:
        raise IngestError(f"{_names(files)}: cleaning.method: {method!r} is not one of {CLEANING_METHODS}")
    if method == "auto":
        method = base.get("cleaning", {}).get("method", "none")
    radius = float(cfg.get("delta_r", 0.4))
    if not radius > 0:
        raise IngestError(f"{_names(files)}: cleaning.delta_r: must be positive, got {radius}")
    leptons = tuple(cfg.get("leptons") or LEPTONS)
    if not set(leptons) <= set(LEPTONS):
        raise IngestError(f"{_names(files)}: cleaning.leptons: {list(leptons)}; choose from {list(LEPTONS)}")
    indices = cfg.get("indices") or "lepton"
    if indices not in ("lepton", "jet"):
        raise IngestError(f"{_names(files)}: cleaning.indices: {indices!r}; choose 'lepton' or 'jet'")
    cleaning = Cleaning(method, radius, leptons, indices)
    if method == "nanoaod_indices":
        _attach_links(cleaning, base.get("cleaning", {}), layout, collections, files)
    return cleaning


def _attach_links(cleaning: Cleaning, preset_cleaning: dict, layout: str, collections: dict, files) -> None:
    """Add the NanoAOD index branches (``Muon_jetIdx`` or ``Jet_muonIdx1/2``) to the collections."""
    key = "lepton_jet_index" if cleaning.indices == "lepton" else "jet_lepton_index"
    links = preset_cleaning.get(key)
    if not links:
        raise IngestError(f"{_names(files)}: cleaning.method: nanoaod_indices needs NanoAOD's jet-lepton index "
                          f"branches, which layout {layout!r} does not have; use method: delta_r")
    for lepton in cleaning.leptons:
        spec = collections.get("jet" if cleaning.indices == "jet" else lepton)
        if spec is None or lepton not in collections:
            continue
        if spec.objects is not None:
            raise IngestError(f"{_names(files)}: cleaning.method: nanoaod_indices needs jagged {spec.name} "
                              "branches, not a fixed objects list")
        if cleaning.indices == "lepton":
            spec.links["jet_index"] = links[lepton]
        else:
            spec.links.update({f"{lepton}_index{i + 1}": branch for i, branch in enumerate(links[lepton])})


def _merge_mapping(base: dict, user: Mapping, files: list[Path]) -> dict:
    """User entries replace preset entries field by field (``objects`` replaces all)."""
    merged = dict(base)
    for name, entry in user.items():
        if name not in (*COLLECTIONS, "weight"):
            raise IngestError(f"{_names(files)}: mapping.{name}: unknown collection (allowed: {COLLECTIONS}, weight)")
        if name == "weight" or entry is None or "objects" in entry or not isinstance(merged.get(name), dict):
            merged[name] = entry
        else:
            merged[name] = {**merged[name], **entry}
    return merged


def _parse_collection(name: str, entry: Mapping, files: list[Path]) -> CollectionSpec:
    shared = {k: v for k, v in entry.items() if k != "objects"}
    if "objects" not in entry:
        return CollectionSpec(name, fields=_parse_fields(name, name, _without_id(shared), files),
                              cuts=_parse_id(name, shared.get("id"), files))
    merged = [{**shared, **obj} for obj in entry["objects"]]
    labels = [f"{name}.objects[{i}]" for i in range(len(merged))]
    return CollectionSpec(
        name,
        objects=[_parse_fields(name, label, _without_id(obj), files) for label, obj in zip(labels, merged)],
        object_cuts=[_parse_id(label, obj.get("id"), files) for label, obj in zip(labels, merged)],
    )


def _without_id(entry: Mapping) -> dict:
    return {k: v for k, v in entry.items() if k != "id"}


def _parse_id(label: str, specs: object, files: list[Path]) -> list[ObjectCut]:
    try:
        return parse_cuts(specs)
    except ValueError as exc:
        raise IngestError(f"{_names(files)}: mapping.{label}.id: {exc}") from None


def _parse_fields(collection: str, label: str, entry: Mapping, files: list[Path]) -> dict[str, Field]:
    unknown = set(entry) - set(MAPPING_FIELDS)
    if unknown:
        raise IngestError(f"{_names(files)}: mapping.{label}: unknown field(s) {sorted(unknown)} "
                          f"(allowed: {MAPPING_FIELDS} and id)")
    given = {k: v for k, v in entry.items() if v is not None}
    values = {**DEFAULT_FIELDS[collection], **given}
    required = _required_fields(given)
    if "energy" in given:
        values.pop("mass", None)
    missing = [k for k in required if k not in values]
    if missing:
        raise IngestError(f"{_names(files)}: mapping.{label}: no column or constant for {missing}; a "
                          f"{collection} needs pt, eta, phi with mass (a column or a number), or the Cartesian "
                          f"px, py, pz with energy or mass, plus charge and btag where the layout has no default")
    return {key: _parse_field(f"{label}.{key}", values[key], files) for key in required}


def _required_fields(given: Mapping) -> tuple[str, ...]:
    """pt/eta/phi/mass, or px/py/pz with mass or energy; plus charge and btag."""
    if not {"px", "py", "pz"} <= set(given):
        return REQUIRED_FIELDS
    return ("px", "py", "pz", "energy" if "energy" in given else "mass", "charge", "btag")


def _parse_field(label: str, value: object, files: list[Path]) -> Field:
    if isinstance(value, str):
        return Field(column=value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Field(value=float(value))
    if isinstance(value, Mapping) and isinstance(value.get("column"), str):
        threshold = value.get("threshold")
        return Field(
            column=value["column"],
            threshold=None if threshold is None else float(threshold),
            optional=bool(value.get("optional", False)),
        )
    raise IngestError(f"{_names(files)}: mapping.{label}: expected a branch name, a number or {{column: ...}}, got {value!r}")


def _parse_weight(value: object, files: list[Path]) -> Field | None:
    return None if value is None else _parse_field("weight", value, files)


# --------------------------------------------------------------------------- validation


@dataclass
class FilePlan:
    """One validated input file: entries and the uproot expression per branch.

    ``skipped`` lists the optional ID cuts whose branch this file lacks.
    """

    path: Path
    index: int
    entries: int
    keys: dict[str, str]
    weight_key: str | None
    skipped: list[str] = field(default_factory=list)


def validate_files(resolved: ResolvedSource, collections: Sequence[str],
                   cleaning_only: Sequence[str] = ()) -> list[FilePlan]:
    """Open every file and check tree and branches before anything is written.

    ``cleaning_only``: collections read only to clean jets against (named so in a missing-branch error).
    """
    needed = resolved.branches(collections)
    for name in cleaning_only:
        for uses in needed.values():
            uses[:] = [f"{u} (jets are cleaned against {name}s: cleaning.leptons)" if u.startswith(name) else u
                       for u in uses]
    optional = resolved.optional_branches(collections)
    return [_validate_file(path, i, resolved, needed, optional) for i, path in enumerate(resolved.files)]


def _validate_file(path: Path, index: int, resolved: ResolvedSource, needed: dict[str, list[str]],
                   optional: dict[str, list[str]]) -> FilePlan:
    tree = _open_tree(path, resolved.tree)
    available = _branch_index(tree)
    keys: dict[str, str] = {}
    weight_key = None
    for branch, uses in needed.items():
        if branch in available:
            keys[branch] = available[branch]
        elif uses == ["weight"] and resolved.weight.optional:
            continue
        else:
            raise IngestError(_missing_branch_message(path, resolved.tree, branch, uses, available))
    skipped = []
    for branch, uses in optional.items():
        if branch in available:
            keys[branch] = available[branch]
        else:
            skipped += uses
    if resolved.weight is not None and resolved.weight.column in keys:
        weight_key = keys[resolved.weight.column]
    return FilePlan(path, index, int(tree.num_entries), keys, weight_key, skipped)


def _open_tree(path: Path, tree_name: str):
    if not path.exists():
        raise IngestError(f"{path}: input file does not exist (tree {tree_name!r})")
    check_complete(path)
    try:
        handle = uproot.open(path)
    except Exception as exc:  # uproot raises many types for non-ROOT input
        raise IngestError(f"{path}: not a readable ROOT file ({type(exc).__name__}: {exc})") from None
    found = sorted(handle.keys(cycle=False))
    if tree_name not in found:
        raise IngestError(f"{path}: no TTree {tree_name!r} (found keys: {', '.join(found) or 'none'})")
    try:
        obj = handle[tree_name]
    except Exception as exc:
        raise IngestError(f"{path}: TTree {tree_name!r} is unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, uproot.behaviors.TTree.TTree):
        raise IngestError(f"{path}: {tree_name!r} is a {type(obj).__name__}, not a TTree")
    return obj


def check_complete(path: Path) -> None:
    """Raise if ``path`` is a ROOT file shorter than its header's ``fEND`` (a cut-off copy).

    Only the header is read (uproot's ``ReadOnlyFile`` with a first chunk of header size): a
    truncated file may still open and hand back its first baskets, so opening is no test.
    """
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path}: empty file (0 bytes); copy it again")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"root":
        return  # not ROOT at all: uproot.open names that
    header = uproot.reading._file_header_fields_big.size
    if size < header:
        raise IngestError(f"{path}: truncated: {size} bytes, shorter than a ROOT file header ({header}); "
                          "copy incomplete?")
    try:
        with uproot.reading.ReadOnlyFile(str(path), begin_chunk_size=header) as handle:
            end = int(handle.fEND)
    except Exception as exc:  # uproot raises many types for a damaged header
        raise IngestError(f"{path}: not a readable ROOT file header ({type(exc).__name__}: {exc})") from None
    if size < end:
        raise IngestError(f"{path}: truncated: ROOT header says {end} bytes, file has {size} (copy incomplete?)")


def _branch_index(tree) -> dict[str, str]:
    """Branch name (full path or leaf name, e.g. ``Muon.PT``) -> uproot key."""
    index = {}
    for key in tree.keys(recursive=True):
        index.setdefault(key.rsplit("/", 1)[-1], key)
        index[key] = key
    return index


def _missing_branch_message(path: Path, tree: str, branch: str, uses: list[str], available: dict) -> str:
    close = difflib.get_close_matches(branch, list(available), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{path}: tree {tree!r} has no branch {branch!r} (needed for mapping {', '.join(uses)}){hint}"


# --------------------------------------------------------------------------- per chunk


@dataclass
class Chunk:
    """One uproot chunk of one file."""

    arrays: ak.Array
    plan: FilePlan
    entry_start: int

    def __len__(self) -> int:
        return len(self.arrays)

    def column(self, branch: str) -> ak.Array:
        return self.arrays[self.plan.keys[branch]]

    def entries(self) -> np.ndarray:
        return np.arange(self.entry_start, self.entry_start + len(self), dtype=np.int64)


def check_finite(chunk: Chunk) -> None:
    """Raise on the first NaN/inf in any float branch of the chunk."""
    for branch in chunk.plan.keys:
        values = chunk.column(branch)
        flat = ak.to_numpy(ak.flatten(values, axis=None))
        if flat.dtype.kind != "f" or np.isfinite(flat).all():
            continue
        bad = ~np.isfinite(values)
        per_event = ak.to_numpy(ak.any(bad, axis=1) if values.ndim > 1 else bad)
        entry = chunk.entry_start + int(np.argmax(per_event))
        raise IngestError(f"{chunk.plan.path}: branch {branch!r} has a non-finite value (NaN/inf) at entry {entry}")


def build_objects(chunk: Chunk, spec: CollectionSpec) -> ak.Array:
    """Jagged records: pt, eta, phi, mass, charge, btag; ``id`` (passes the ID cuts), ``index``
    (position in the stored collection) and the collection's cleaning links."""
    if spec.objects is None:
        values = _jagged_values(chunk, spec)
    else:
        keys = list(spec.objects[0])
        values = {
            key: ak.from_regular(np.stack([_flat_field(chunk, obj, key) for obj in spec.objects], axis=1), axis=1)
            for key in keys
        }
        values["id"] = ak.from_regular(np.stack(
            [ak.to_numpy(_passes_id(chunk, cuts, values[keys[0]][:, i])) for i, cuts in enumerate(spec.object_cuts)],
            axis=1), axis=1)
    try:
        objects = ak.zip(to_canonical(values))
    except ValueError as exc:
        used = sorted({f.column for _, fs in spec.field_sets() for f in fs.values() if f.is_column})
        raise IngestError(f"{chunk.plan.path}: branches of mapping {spec.name} {used} differ in length: {exc}") from None
    return ak.with_field(objects, ak.local_index(objects.pt, axis=1), "index")


def _passes_id(chunk: Chunk, cuts: list[ObjectCut], like: ak.Array) -> ak.Array:
    columns = {c.branch: chunk.column(c.branch) for c in cuts if c.branch in chunk.plan.keys}
    return passes_all(cuts, columns, like)


def to_canonical(values: dict) -> dict:
    """Convert px/py/pz (+ energy) to pt/eta/phi/mass (:mod:`lhcflow.physics.kinematics`); pass
    pt/eta/phi/mass through. Without an energy the mass stays what the mapping gives."""
    if "px" not in values:
        return values
    px, py, pz = values.pop("px"), values.pop("py"), values.pop("pz")
    values.update(pt=kinematics.pt(px, py), eta=kinematics.eta(px, py, pz), phi=kinematics.phi(px, py))
    if "energy" in values:
        values["mass"] = kinematics.mass(values.pop("energy"), px, py, pz)
    return values


def _jagged_values(chunk: Chunk, spec: CollectionSpec) -> dict:
    columns = [f.column for f in spec.fields.values() if f.is_column]
    like = chunk.column(columns[0]) if columns else None
    if like is None or like.ndim != 2:
        raise IngestError(
            f"{chunk.plan.path}: mapping {spec.name} (branches {columns}) must use jagged "
            f"per-object branches; for flat ntuples use {spec.name}: {{objects: [{{pt: ..., eta: ...}}, ...]}}"
        )
    values = {key: _jagged_field(chunk, f, like) for key, f in spec.fields.items()}
    values.update({key: chunk.column(branch) for key, branch in spec.links.items()})
    values["id"] = _passes_id(chunk, spec.cuts, like)
    return values


def _jagged_field(chunk: Chunk, spec: Field, like: ak.Array) -> ak.Array:
    if not spec.is_column:
        return ak.full_like(like, spec.value, dtype=np.float64)
    return _apply_threshold(chunk.column(spec.column), spec)


def _flat_field(chunk: Chunk, fields: dict[str, Field], key: str) -> np.ndarray:
    spec = fields[key]
    if not spec.is_column:
        return np.full(len(chunk), spec.value, dtype=np.float64)
    values = chunk.column(spec.column)
    if values.ndim != 1:
        raise IngestError(f"{chunk.plan.path}: branch {spec.column!r} (flat mapping field {key}) is not one value per event")
    return ak.to_numpy(_apply_threshold(values, spec)).astype(np.float64)


def _apply_threshold(values: ak.Array, spec: Field) -> ak.Array:
    return values > spec.threshold if spec.threshold is not None else values


def event_weights(chunk: Chunk, weight: Field | None) -> np.ndarray:
    """Event weights; a jagged weight (Delphes ``Event.Weight``) contributes its first entry."""
    if weight is None or (weight.is_column and chunk.plan.weight_key is None):
        return np.ones(len(chunk))
    if not weight.is_column:
        return np.full(len(chunk), weight.value)
    values = chunk.column(weight.column)
    if values.ndim > 1:
        values = ak.fill_none(ak.firsts(values, axis=1), np.nan)
    return ak.to_numpy(values).astype(np.float64)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Cuts:
    """Selection of one collection (a ``selection.<collection>`` entry)."""

    name: str
    min: int = 0
    max: int | None = None
    keep: int = 0
    pt_min_gev: float = 0.0
    abs_eta_max: float | None = None
    opposite_charge: bool = False

    @classmethod
    def from_config(cls, key: str, cfg: Mapping) -> Cuts:
        known = {k: cfg[k] for k in cls.__dataclass_fields__ if k != "name" and cfg.get(k) is not None}
        return cls(name=SELECTION_KEYS[key], **known)

    @property
    def slots(self) -> list[str]:
        return [f"{SLOT_PREFIX[self.name]}{i + 1}" for i in range(self.keep)]


def parse_selection(selection: Mapping) -> list[Cuts]:
    """Per-collection cuts in slot order (muons, electrons, photons, jets)."""
    unknown = set(selection) - set(SELECTION_KEYS)
    if unknown:
        raise IngestError(f"selection: unknown collection(s) {sorted(unknown)} (allowed: {sorted(SELECTION_KEYS)})")
    return [Cuts.from_config(key, selection[key] or {}) for key in SELECTION_KEYS if key in selection]


def select_objects(objects: ak.Array, cuts: Cuts) -> ak.Array:
    """Objects passing pT and |eta| cuts, ordered by decreasing pT."""
    mask = objects.pt > cuts.pt_min_gev
    if cuts.abs_eta_max is not None:
        mask = mask & (abs(objects.eta) < cuts.abs_eta_max)
    passed = objects[mask]
    return passed[ak.argsort(passed.pt, axis=1, ascending=False)]


def event_steps(objects: dict[str, ak.Array], cuts: list[Cuts]) -> list[tuple[str, np.ndarray]]:
    """(step name, per-event pass flag) in cut-flow order; not yet cumulative."""
    steps = []
    for c in cuts:
        n = ak.to_numpy(ak.num(objects[c.name], axis=1))
        ok = n >= c.min
        if c.max is not None:
            ok &= n <= c.max
        steps.append((f"{c.name}s_multiplicity", ok))
        if c.opposite_charge and c.name in CHARGED:
            steps.append((f"{c.name}s_opposite_charge", _opposite_charge(objects[c.name])))
    return steps


def _opposite_charge(objects: ak.Array) -> np.ndarray:
    """Leading two objects of opposite charge; events with fewer than two pass."""
    charge = ak.fill_none(ak.pad_none(objects.charge, 2, axis=1, clip=True), 0)
    q = ak.to_numpy(charge).astype(np.int64)
    fewer = ak.to_numpy(ak.num(objects, axis=1)) < 2
    return fewer | (q[:, 0] * q[:, 1] < 0)


def to_slots(objects: ak.Array, cuts: Cuts) -> dict[str, np.ndarray]:
    """The first ``keep`` objects as padded ``(n, keep)`` arrays (canonical dtypes)."""
    padded = ak.pad_none(objects, cuts.keep, axis=1, clip=True)
    present = ~ak.to_numpy(ak.is_none(padded, axis=1))
    out = {key: ak.to_numpy(ak.fill_none(padded[key], 0)).astype(np.float32) for key in ("pt", "eta", "phi", "mass")}
    out["charge"] = np.rint(ak.to_numpy(ak.fill_none(padded.charge, 0))).astype(np.int8)
    out["btag"] = (ak.to_numpy(ak.fill_none(padded.btag, 0)) != 0).astype(np.int8)
    out["type"] = np.where(present, int(TYPE_CODE[cuts.name]), 0).astype(np.int8)
    return out


def _empty_objects(n: int) -> ak.Array:
    counts = np.zeros(n, dtype=np.int64)
    empty = {key: ak.unflatten(np.zeros(0), counts) for key in FIELDS}
    return ak.zip({**empty, "id": ak.unflatten(np.zeros(0, bool), counts),
                   "index": ak.unflatten(np.zeros(0, np.int64), counts)})


# --------------------------------------------------------------------------- split


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def split_uniform(seed: int, file_index: int, entries: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per entry from a hash of (seed, file index, entry number)."""
    key = splitmix64(np.array([seed], dtype=np.uint64) & _MASK64)
    key = splitmix64(key ^ np.uint64(file_index))
    h = splitmix64(np.asarray(entries, dtype=np.uint64) ^ key)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def assign_split(u: np.ndarray, fractions: Mapping[str, float]) -> np.ndarray:
    """Index into ``fractions`` (in order) per event, by cumulative fraction."""
    weights = np.array([float(f) for f in fractions.values()])
    edges = np.cumsum(weights / weights.sum())
    edges[-1] = np.inf
    return np.searchsorted(edges, u, side="right")


# --------------------------------------------------------------------------- cut flow


@dataclass
class CutFlow:
    """Running event counts and weight sums per step, objects, ID cuts, cleaning and split."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    objects: dict[str, dict[str, int]] = field(default_factory=dict)
    splits: dict[str, list[float]] = field(default_factory=dict)
    id_cuts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    cleaning: dict = field(default_factory=dict)

    def add_step(self, name: str, passed: np.ndarray, weights: np.ndarray) -> None:
        entry = self.steps.setdefault(name, [0, 0.0])
        entry[0] += int(passed.sum())
        entry[1] += float(weights[passed].sum())

    def add_objects(self, name: str, **counts: ak.Array) -> None:
        """Objects per stage (``read``, ``passed_id``, ``removed_by_cleaning``, ``selected``)."""
        entry = self.objects.setdefault(name, {})
        for stage, objects in counts.items():
            entry[stage] = entry.get(stage, 0) + _count(objects)

    def add_id_cuts(self, name: str, cuts: list[tuple[str, ak.Array]]) -> None:
        """Objects tested and passing, per single ID cut (each on its own, not in sequence)."""
        entry = self.id_cuts.setdefault(name, {})
        for label, passed in cuts:
            tested, n_pass = entry.setdefault(label, [0, 0]), int(ak.sum(passed))
            tested[0] += int(ak.count(passed))
            tested[1] += n_pass

    def add_cleaning(self, key: str, passed: np.ndarray, weights: np.ndarray) -> None:
        entry = self.cleaning.setdefault(key, [0, 0.0])
        entry[0] += int(passed.sum())
        entry[1] += float(weights[passed].sum())

    def add_split(self, name: str, weights: np.ndarray) -> None:
        entry = self.splits.setdefault(name, [0, 0.0])
        entry[0] += len(weights)
        entry[1] += float(weights.sum())

    def first_empty_step(self) -> str | None:
        return next((name for name, (n, _) in self.steps.items() if n == 0), None)

    def to_dict(self) -> dict:
        out = {
            "steps": [{"name": k, "events": int(n), "sum_weights": w} for k, (n, w) in self.steps.items()],
            "objects": self.objects,
            "splits": {k: {"events": int(n), "sum_weights": w} for k, (n, w) in self.splits.items()},
        }
        if self.id_cuts:
            out["id_cuts"] = {name: {cut: {"tested": t, "passed": p} for cut, (t, p) in cuts.items()}
                              for name, cuts in self.id_cuts.items()}
        if self.cleaning:
            out["cleaning"] = {k: {"events": int(n), "sum_weights": w} for k, (n, w) in self.cleaning.items()}
        return out


def _count(objects: ak.Array) -> int:
    return int(ak.sum(ak.num(objects, axis=1)))


# --------------------------------------------------------------------------- driver


@dataclass
class Ingestor:
    """Turns chunks into canonical batches, per split, while filling the cut flow.

    Per chunk: objects of every collection in the selection (and of the cleaning's leptons) are
    built, cut on their ``id``, the leptons on the selection's pT/|eta|; jets overlapping a
    selected lepton are removed (:class:`Cleaning`) before the jets' pT/|eta| cuts; then the
    event steps. The cut flow also records what the same selection keeps without cleaning.
    """

    resolved: ResolvedSource
    cuts: list[Cuts]
    split_names: list[str]
    fractions: Mapping[str, float]
    seed: int
    cutflow: CutFlow = field(default_factory=CutFlow)

    @property
    def cleaning(self) -> Cleaning:
        return self.resolved.cleaning

    @property
    def cleans(self) -> bool:
        """Cleaning applies: a method, a selected jet collection and a lepton collection to clean against."""
        names = {c.name for c in self.cuts}
        return (self.cleaning.method != "none" and "jet" in names
                and any(lep in self.resolved.collections for lep in self.cleaning.leptons))

    @property
    def collections(self) -> list[str]:
        """Collections to read: the selection's, plus the leptons that jets are cleaned against."""
        names = [c.name for c in self.cuts]
        extra = [lep for lep in self.cleaning.leptons if lep not in names] if self.cleans else []
        return names + extra

    def select(self, chunk: Chunk) -> tuple[dict[str, ak.Array], np.ndarray, np.ndarray]:
        """Selected objects per collection, event weights and the per-event pass flag."""
        check_finite(chunk)
        weights = event_weights(chunk, self.resolved.weight)
        if not np.isfinite(weights).all():
            entry = chunk.entry_start + int(np.argmax(~np.isfinite(weights)))
            raise IngestError(f"{chunk.plan.path}: weight {self.resolved.weight.column!r} missing or non-finite at entry {entry}")
        cuts = {c.name: c for c in self.cuts}
        identified = {name: self._identified(chunk, name) for name in self.collections}
        selected = {name: select_objects(identified[name], cuts.get(name, Cuts(name)))
                    for name in identified if name != "jet"}
        if "jet" in cuts:
            jets = identified["jet"]
            removed = self._overlaps(jets, selected) if self.cleans else ak.zeros_like(jets.pt, dtype=np.bool_)
            selected["jet"] = select_objects(jets[~removed], cuts["jet"])
            unclean = select_objects(jets, cuts["jet"])
            self.cutflow.add_objects("jet", removed_by_cleaning=jets[removed])
        for name, objects in selected.items():
            self.cutflow.add_objects(name, selected=objects)
        passed = self._steps(selected, weights)
        if self.cleans:
            self._record_cleaning(selected, unclean, removed, weights)
        return {c.name: selected[c.name] for c in self.cuts}, weights, passed

    def _steps(self, objects: dict[str, ak.Array], weights: np.ndarray, record: bool = True) -> np.ndarray:
        passed = np.ones(len(weights), dtype=bool)
        if record:
            self.cutflow.add_step("read", passed, weights)
        for name, ok in event_steps(objects, self.cuts):
            passed &= ok
            if record:
                self.cutflow.add_step(name, passed, weights)
        return passed

    def _identified(self, chunk: Chunk, name: str) -> ak.Array:
        """Objects of one collection passing its ID cuts (``id``), counted in the cut flow."""
        spec = self.resolved.collections.get(name)
        raw = build_objects(chunk, spec) if spec is not None else _empty_objects(len(chunk))
        identified = raw[raw.id]
        self.cutflow.add_objects(name, read=raw, passed_id=identified)
        if spec is not None:
            self.cutflow.add_id_cuts(name, list(_single_cuts(chunk, spec, raw)))
        return identified

    def _overlaps(self, jets: ak.Array, selected: dict[str, ak.Array]) -> ak.Array:
        """Jets to remove: near, or linked by the file's indices to, a selected lepton."""
        removed = ak.zeros_like(jets.pt, dtype=np.bool_)
        for lepton in self.cleaning.leptons:
            if lepton not in self.resolved.collections:
                continue
            leptons = selected[lepton]
            if self.cleaning.method == "delta_r":
                removed = removed | near_leptons(jets, leptons, self.cleaning.radius)
            elif self.cleaning.indices == "lepton":
                removed = removed | linked_by_lepton_index(jets, leptons.jet_index)
            else:
                links = [jets[f"{lepton}_index{i}"] for i in (1, 2) if f"{lepton}_index{i}" in jets.fields]
                removed = removed | linked_by_jet_index(links, leptons.index)
        return removed

    def _record_cleaning(self, selected: dict, unclean: ak.Array, removed: ak.Array, weights: np.ndarray) -> None:
        """Events with a jet removed; the selection without cleaning; leading jets near a lepton."""
        flow = self.cutflow
        flow.add_cleaning("events_with_jets_removed", ak.to_numpy(ak.any(removed, axis=1)), weights)
        flow.add_cleaning("selected_without_cleaning", self._steps({**selected, "jet": unclean}, weights, False),
                          weights)
        leptons = ak.concatenate([selected[lep][["pt", "eta", "phi", "mass"]] for lep in self.cleaning.leptons
                                  if lep in self.resolved.collections], axis=1)
        for tag, jets in (("before", unclean), ("after", selected["jet"])):
            has_jet = ak.to_numpy(ak.num(jets, axis=1)) > 0
            flow.add_cleaning(f"leading_jet_{tag}", has_jet, weights)
            flow.add_cleaning(f"leading_jet_near_lepton_{tag}",
                              leading_near_lepton(jets, leptons, self.cleaning.radius), weights)

    def process(self, chunk: Chunk) -> dict[str, EventBatch]:
        objects, weights, passed = self.select(chunk)
        batch = self._batch(chunk, objects, weights, passed)
        split = assign_split(split_uniform(self.seed, chunk.plan.index, chunk.entries()[passed]), self.fractions)
        return {name: batch.select(split == i) for i, name in enumerate(self.split_names)}

    def _batch(self, chunk: Chunk, objects: dict, weights: np.ndarray, passed: np.ndarray) -> EventBatch:
        n = int(passed.sum())
        slots = [to_slots(objects[c.name][passed], c) for c in self.cuts if c.keep > 0]
        arrays = {
            key: np.concatenate([s[key] for s in slots], axis=1) if slots else np.zeros((n, 0))
            for key in OBJECT_FIELDS
        }
        jets = objects.get("jet")
        n_jets = ak.to_numpy(ak.num(jets[passed], axis=1)) if jets is not None else np.zeros(n)
        return EventBatch(**arrays, weight=weights[passed], n_jets_all=n_jets, source_index=chunk.entries()[passed])


def _single_cuts(chunk: Chunk, spec: CollectionSpec, raw: ak.Array):
    """(cut label, per-object pass flag) of every ID cut on its own (jagged mappings only)."""
    if spec.objects is not None:
        return
    for cut in spec.cuts:
        if cut.branch in chunk.plan.keys:
            yield str(cut), cut.passes(chunk.column(cut.branch))


def iter_chunks(plans: list[FilePlan], tree: str, chunk_size: int, bar: tqdm):
    """Yield :class:`Chunk` objects over all files, in order."""
    for plan in plans:
        if plan.entries == 0:
            continue
        expressions = sorted(set(plan.keys.values()))
        try:
            for arrays, report in uproot.iterate(
                {str(plan.path): tree}, expressions, step_size=chunk_size, report=True, library="ak"
            ):
                bar.update(len(arrays))
                yield Chunk(arrays, plan, int(report.tree_entry_start))
        except (IngestError, GeneratorExit):
            raise
        except Exception as exc:
            raise IngestError(f"{plan.path}: failed reading tree {tree!r} ({type(exc).__name__}: {exc})") from exc


def ingest_sample(
    source: dict,
    selection: dict,
    split: dict,
    outputs: dict[str, Path],
    cutflow_path: Path,
    *,
    sample_name: str,
    cross_section_pb: float | None = None,
    cross_section_err_pb: float | None = None,
    generator: str | None = None,
    seed: int | None = None,
    provenance: dict | None = None,
    chunk_size: int = 100_000,
    progress: bool = True,
) -> dict:
    """Ingest one sample into canonical split files plus a cut-flow JSON; return the cut flow.

    On any error none of ``outputs`` nor ``cutflow_path`` exists afterwards.
    """
    targets = [Path(p) for p in outputs.values()] + [Path(cutflow_path)]
    try:
        return _ingest(
            source, selection, split, {k: Path(v) for k, v in outputs.items()}, Path(cutflow_path),
            sample_name=sample_name, cross_section_pb=cross_section_pb, cross_section_err_pb=cross_section_err_pb,
            generator=generator, seed=seed, provenance=provenance or {}, chunk_size=chunk_size, progress=progress,
        )
    except BaseException:
        for path in targets:
            path.unlink(missing_ok=True)
        raise


def _ingest(source, selection, split, outputs, cutflow_path, *, sample_name, chunk_size, progress, **meta) -> dict:
    resolved = resolve_source(source)
    cuts = parse_selection(selection)
    _check_collections(resolved, cuts)
    fractions = dict(split.get("fractions") or {"train": 0.45, "val": 0.1, "test": 0.45})
    if set(fractions) != set(outputs):
        raise IngestError(f"{_names(resolved.files)}: split fractions {sorted(fractions)} do not match outputs {sorted(outputs)}")
    ingestor = Ingestor(resolved, cuts, list(fractions), fractions, int(split.get("seed", 0)))
    plans = validate_files(resolved, ingestor.collections, ingestor.collections[len(cuts):])
    slots = [s for c in cuts for s in c.slots]
    total = sum(p.entries for p in plans)
    with contextlib.ExitStack() as stack:
        writers = {
            name: stack.enter_context(EventWriter(path, _sample_info(resolved, slots, name, meta)))
            for name, path in outputs.items()
        }
        bar = stack.enter_context(
            tqdm(total=total, unit="evt", desc=f"ingest {sample_name}", disable=not progress, file=sys.stderr)
        )
        for chunk in iter_chunks(plans, resolved.tree, chunk_size, bar):
            for name, batch in ingestor.process(chunk).items():
                ingestor.cutflow.add_split(name, batch.weight)
                if len(batch):
                    writers[name].write(batch)
        _check_id_cuts(ingestor.cutflow, resolved)
        _check_not_empty(ingestor.cutflow, sample_name, resolved)
    report = _report(sample_name, resolved, plans, selection, split, slots, ingestor.cutflow)
    write_json(cutflow_path, report)
    return report


def _check_collections(resolved: ResolvedSource, cuts: list[Cuts]) -> None:
    for c in cuts:
        if c.name not in resolved.collections and c.min > 0:
            raise IngestError(
                f"{_names(resolved.files)}: selection.{c.name}s requires at least {c.min} but the mapping "
                f"(layout {resolved.layout!r}) has no '{c.name}' collection"
            )


def _check_id_cuts(cutflow: CutFlow, resolved: ResolvedSource) -> None:
    """Stop when one ID cut rejects every object of a collection: the file most likely does not fill
    that branch (CMS 2015 open-data NanoAOD has ``Muon_tightId`` false for every muon)."""
    for name, cuts in cutflow.id_cuts.items():
        for cut, (tested, passed) in cuts.items():
            if tested > 0 and passed == 0:
                raise IngestError(
                    f"{_names(resolved.files)}: mapping.{name}.id: the cut '{cut}' rejects all {tested} "
                    f"{name}s of the sample (is the branch filled in these files?); set mapping.{name}.id "
                    f"to cuts on branches the files fill, or to [] for no ID cut"
                )


def _check_not_empty(cutflow: CutFlow, sample_name: str, resolved: ResolvedSource) -> None:
    step = cutflow.first_empty_step()
    if step is not None:
        raise IngestError(
            f"sample {sample_name!r}: no event passes the selection ({_names(resolved.files)}); "
            f"the count drops to zero at cut-flow step {step!r}"
        )


def _sample_info(resolved: ResolvedSource, slots: list[str], split_name: str, meta: dict) -> SampleInfo:
    xsec = meta["cross_section_pb"] if meta["cross_section_pb"] is not None else resolved.cross_section_pb
    return SampleInfo(
        slots=slots,
        cross_section_pb=_float_or_nan(xsec),
        cross_section_err_pb=_float_or_nan(meta["cross_section_err_pb"]),
        generator=meta["generator"] or resolved.generator or "unknown",
        seed=-1 if meta["seed"] is None else int(meta["seed"]),
        sources=[str(f) for f in resolved.files],
        split=split_name,
        provenance={**meta["provenance"], "layout": resolved.layout, "tree": resolved.tree, "mapping": resolved.mapping,
                    "cleaning": resolved.cleaning.to_dict()},
    )


def _report(sample_name, resolved, plans, selection, split, slots, cutflow: CutFlow) -> dict:
    flow = cutflow.to_dict()
    return {
        "sample": sample_name,
        "files": [{"path": str(p.path), "entries": p.entries, "weight_branch": p.weight_key,
                   **({"skipped_id_cuts": p.skipped} if p.skipped else {})} for p in plans],
        "layout": resolved.layout,
        "tree": resolved.tree,
        "mapping": resolved.mapping,
        "branches": sorted({b for p in plans for b in p.keys}),
        "selection": selection,
        "split": split,
        "slots": slots,
        **flow,
        "cleaning": {**resolved.cleaning.to_dict(), "applied": "cleaning" in flow, **flow.get("cleaning", {})},
    }


def _float_or_nan(value) -> float:
    return float("nan") if value is None else float(value)


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else list(value)


def _names(files: Sequence[Path]) -> str:
    return ", ".join(str(f) for f in files) or "<no files>"


__all__ = [
    "CollectionSpec",
    "Field",
    "IngestError",
    "ResolvedSource",
    "assign_split",
    "ingest_sample",
    "resolve_source",
    "split_uniform",
    "splitmix64",
    "validate_files",
]
