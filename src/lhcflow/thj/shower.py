"""Shower tHj hard events with forced decays and pass them to a detector (thesis §6.1, Eqs 6.4-6.6).

Pythia 8 reads the LHE file of :mod:`lhcflow.thj.hard`, decays t → bW with W → μν (``leptonic``,
Eq 6.4) or W → quarks (``hadronic``, Eqs 6.5-6.6) and H → γγ, showers (FSR always, ISR switched by
``isr``, no MPI) and hadronizes. ISR and the beam remnants use the hard process's PDF set: the
LHAPDF id of the LHE ``<init>`` block, mapped to Pythia's built-in ``PDF:pSet`` number of the same
grid (:mod:`lhcflow.physics.pdf_sets`). Events come in batches (``Pythia.nextBatch``) so memory is bounded
by the batch. Each batch goes to the detector stage (:mod:`lhcflow.detector`): the parametrized
response, or HepMC3 for Delphes. Either way the output is a Delphes-layout ROOT file whose
``Event.Number`` is the index of the hard event in the LHE file (from the ``#lhcflow ... index=``
comment where Pythia exposes it, else the position in the file) and whose ``Particle`` collection
holds the hard-process record, for pairing in :mod:`lhcflow.thj.paired`.

The forced decays act on both charges (Pythia's ``onMode`` switches a channel and its conjugate):
t → b W⁺ → b μ⁺ ν and t̄ → b̄ W⁻ → b̄ μ⁻ ν̄, so a ``heavy = top`` sample gives the μ⁺ of Eq 6.4 and
a ``top_antitop`` one both charges, with the same branching ratio.

The forced decays change the rate by the product of open branching fractions, which Pythia
computes at initialisation from its own widths (``ParticleData.resOpenFrac``; the top's includes
its W's); it is written to the metadata so that σ × BR can be quoted (Table 6.1).
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm import tqdm

from lhcflow.atomic import write_json
from lhcflow.detector import DelphesLayoutWriter, DetectorConfigError, TruthEvents
from lhcflow.detector.parametrized import ParametrizedDetector
from lhcflow.generation import jets as jetlib
from lhcflow.generation.lhe import count_lhe_events
from lhcflow.generation.pythia import (MB_TO_PB, _descendant_labels, _flat, _init_pythia, lhe_settings,
                                       read_lhe_header, seed_settings)
from lhcflow.physics.kinematics import pt_eta_phi_mass
from lhcflow.physics.pdf_sets import pdf_set_by_id
from lhcflow.seeds import derive_seed

W_DECAYS = {
    "leptonic": ("24:onMode = off", "24:onIfMatch = 13 14"),
    "hadronic": ("24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
}
FORCED_DECAYS = ("6:onMode = off", "6:onIfMatch = 5 24", "25:onMode = off", "25:onIfMatch = 22 22")
SHOWER_DEFAULTS = {"w_decay": "leptonic", "isr": False, "fsr": True, "hadronization": True,
                   "top_mass_gev": 173.0, "higgs_mass_gev": 125.0, "extra_settings": []}
DETECTOR_KEYS = {"parametrized": {"kind", "parameters"}, "delphes": {"kind", "card", "executable"}}
HARD_STATUS = (21, 22, 23)
COMMENT_INDEX = re.compile(r"#lhcflow\b.*?\bindex=(\d+)")


def shower_config(cfg: dict | None) -> dict:
    """Defaults merged with ``cfg``; unknown keys and W decays raise naming them."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(SHOWER_DEFAULTS))
    if unknown:
        raise ValueError(f"shower: unknown option(s) {unknown} (allowed: {sorted(SHOWER_DEFAULTS)})")
    merged = {**SHOWER_DEFAULTS, **cfg}
    if merged["w_decay"] not in W_DECAYS:
        raise ValueError(f"shower.w_decay: {merged['w_decay']!r} is not one of {sorted(W_DECAYS)}")
    return merged


def hard_pdf_settings(lhe_path: str | os.PathLike) -> list[str]:
    """``PDF:pSet`` of the hard process's PDF (the LHAPDF id in the LHE ``<init>`` block)."""
    ids = read_lhe_header(lhe_path).pdf_ids
    if ids[0] != ids[1]:
        raise ValueError(f"{lhe_path}: the two beams have different PDF sets {ids}; Pythia's PDF:pSet is one set")
    try:
        entry = pdf_set_by_id(ids[0])
    except ValueError as err:
        raise ValueError(f"{lhe_path}: <init> PDFSUP: {err}; no Pythia PDF:pSet for the shower") from None
    return [f"PDF:pSet = {entry.pythia_pset}"]


def thj_settings(lhe_path: str | os.PathLike, cfg: dict | None = None) -> list[str]:
    """Pythia settings: LHE input, the hard process's PDF, forced t/W/H decays, ISR switch, FSR and
    hadronization on, no MPI."""
    cfg = shower_config(cfg)
    # keep the hard momenta exactly as generated (x_hard of the paired data): Pythia would otherwise
    # give the massless outgoing c quarks their mass and reshuffle the top momentum
    decays = [f"6:m0 = {float(cfg['top_mass_gev'])}", f"25:m0 = {float(cfg['higgs_mass_gev'])}",
              "LesHouches:setQuarkMass = 0", *FORCED_DECAYS, *W_DECAYS[cfg["w_decay"]]]
    return lhe_settings(lhe_path, {"isr": cfg["isr"], "fsr": cfg["fsr"], "mpi": False,
                                   "hadronization": cfg["hadronization"], "merging": {"scheme": "none"},
                                   "extra_settings": hard_pdf_settings(lhe_path) + decays
                                   + list(cfg["extra_settings"])})


def branching_ratios(pythia) -> dict:
    """Open fractions of the forced decays after ``init`` (top includes W); product = BR of Table 6.1."""
    data = pythia.particleData
    top, antitop, higgs, w = (data.resOpenFrac(pid, 0, 0) for pid in (6, -6, 25, 24))
    return {"top": top, "antitop": antitop, "w": w, "higgs": higgs, "product": top * higgs}


def scan_lhe(lhe_path: str | os.PathLike) -> int:
    """Number of events of a complete LHE file; raises naming the file if it is not LHE, damaged or
    truncated (:mod:`lhcflow.generation.lhe`)."""
    read_lhe_header(lhe_path)
    return count_lhe_events(lhe_path)


# --------------------------------------------------------------------------- one batch


@dataclass
class ShoweredBatch:
    """Events of one batch: the flat Pythia record, the detector's view and the hard process."""

    record: dict
    truth: TruthEvents
    hard: ak.Array
    weight: np.ndarray
    number: np.ndarray


def _first_per_event(mask: np.ndarray, event: np.ndarray, number: np.ndarray, what: str,
                     lhe_path) -> np.ndarray:
    """Global index of the first entry per event satisfying ``mask``; raises if an event has none."""
    hits = np.flatnonzero(mask)
    first = hits[np.r_[True, event[hits][1:] != event[hits][:-1]]] if len(hits) else hits
    if len(first) != len(number):
        missing = np.setdiff1d(np.arange(len(number)), event[first])[0]
        raise ValueError(f"{lhe_path}: LHE event {number[missing]} has no {what} after showering; "
                         "is this a pp -> tHj sample?")
    return first


def _weak_hadrons(flat: dict, mother: np.ndarray, kind, n_events: int) -> ak.Array:
    """Hadrons of a flavour (``kind``: pdg id → bool) with no daughter of the same flavour."""
    of_kind = kind(flat["id"]) & (np.abs(flat["status"]) >= 81)
    has_same_child = np.zeros(len(of_kind), bool)
    has_same_child[mother[of_kind]] = True
    weak = of_kind & ~has_same_child
    kin = pt_eta_phi_mass(flat["e"][weak], flat["px"][weak], flat["py"][weak], flat["pz"][weak])
    counts = np.bincount(flat["event"][weak], minlength=n_events)
    return ak.unflatten(ak.zip({"pt": kin["pt"], "eta": kin["eta"], "phi": kin["phi"]}), counts)


def analyse_batch(batch: ak.Array, number: np.ndarray, lhe_path) -> ShoweredBatch:
    """Label the decay products of the W and the H, find B/C hadrons and the hard-process record."""
    counts = ak.to_numpy(ak.num(batch.prt))
    n_events = len(counts)
    flat = {name: _flat(batch, name) for name in ("id", "status", "mother1")}
    for comp in ("px", "py", "pz", "e"):
        flat[comp] = ak.to_numpy(ak.flatten(batch.prt.p[comp]))
    flat["event"] = np.repeat(np.arange(n_events), counts)
    mother = flat["mother1"] + np.r_[0, np.cumsum(counts)[:-1]][flat["event"]]
    intermediate = flat["status"] == -22  # decayed particles of the hard process, as read from the LHE file
    first = {name: _first_per_event(intermediate & np.isin(flat["id"], ids), flat["event"], number, name,
                                    lhe_path)
             for name, ids in (("top", (6, -6)), ("W", (24, -24)), ("Higgs", (25,)))}
    # _descendant_labels numbers its seeds 1, 2, ...: W first, Higgs second, as ORIGIN_W and ORIGIN_HIGGS
    origin = _descendant_labels(mother, np.stack([first["W"], first["Higgs"]]), len(mother))
    final = flat["status"] > 0
    columns = {"px": flat["px"], "py": flat["py"], "pz": flat["pz"], "E": flat["e"], "pdgId": flat["id"],
               "origin": origin}
    particles = ak.unflatten(ak.zip({k: v[final] for k, v in columns.items()}),
                             np.bincount(flat["event"][final], minlength=n_events))
    truth = TruthEvents(particles, _weak_hadrons(flat, mother, jetlib.is_b_hadron, n_events),
                        _weak_hadrons(flat, mother, jetlib.is_c_hadron, n_events), number)
    hard_mask = np.isin(np.abs(flat["status"]), HARD_STATUS)
    hard = ak.unflatten(ak.zip({"PID": flat["id"][hard_mask], "Status": np.abs(flat["status"][hard_mask]),
                                "Px": flat["px"][hard_mask], "Py": flat["py"][hard_mask],
                                "Pz": flat["pz"][hard_mask], "E": flat["e"][hard_mask]}),
                        np.bincount(flat["event"][hard_mask], minlength=n_events))
    flat["counts"] = counts
    weight = ak.to_numpy(batch.info.weights[:, 0]).astype(np.float64)
    return ShoweredBatch(flat, truth, hard, weight, number)


# --------------------------------------------------------------------------- event loop


def _comment_index(pythia) -> int | None:
    """The ``index=`` of the ``#lhcflow`` comment of the event Pythia read last, if any."""
    match = COMMENT_INDEX.search(pythia.infoPython().getEventComments() or "")
    return int(match.group(1)) if match else None


class _Batches:
    """``nextBatch`` with LHE indices: positions in the file, corrected by the comment index."""

    def __init__(self, pythia, lhe_path):
        self.pythia, self.lhe_path = pythia, lhe_path
        self.read = 0  # LHE events consumed so far
        self.failed = 0
        self.eof = False

    def next(self, n: int) -> tuple[ak.Array, np.ndarray]:
        batch = self.pythia.nextBatch(n, "none")
        missing = ak.to_numpy(ak.is_none(batch)) if batch.layout.is_option else np.zeros(len(batch), bool)
        self.eof = bool(self.pythia.infoPython().atEndOfFile())
        if self.eof and missing.any():  # the padding after the last event is not a failure
            good = np.flatnonzero(~missing)
            missing = missing[: good[-1] + 1] if len(good) else missing[:0]
        position = self.read + np.arange(len(missing))
        comment = None if self.eof or missing[-1:].all() else _comment_index(self.pythia)
        if comment is not None and comment != position[-1]:
            position += comment - position[-1]
        self.read = int(position[-1]) + 1 if len(position) else self.read
        self.failed += int(missing.sum())
        return ak.drop_none(batch[: len(missing)], axis=0), position[~missing]


class _ParametrizedSink:
    def __init__(self, out_path, parameters, seed: int):
        self.detector = ParametrizedDetector(parameters, seed=seed)
        self.writer = DelphesLayoutWriter(out_path)

    def __enter__(self):
        self.writer.__enter__()
        return self

    def write(self, batch: ShoweredBatch) -> None:
        reco = self.detector.simulate(batch.truth)
        self.writer.write({**reco, "Particle": batch.hard}, batch.number, batch.weight)

    def __exit__(self, *exc) -> bool:
        return self.writer.__exit__(*exc)


class _DelphesSink:
    """HepMC3 next to the output while showering, then Delphes; the HepMC3 file is removed after."""

    def __init__(self, out_path, card, executable):
        from lhcflow.detector import delphes
        delphes.find_delphes(executable)  # fail before showering
        delphes.require_pyhepmc()
        self.delphes, self.out_path, self.card, self.executable = delphes, Path(out_path), card, executable
        self.hepmc = self.out_path.with_name(f".{self.out_path.name}.hepmc.part")
        self.writer = None

    def __enter__(self):
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = self.delphes.HepMC3Writer(self.hepmc).__enter__()
        return self

    def write(self, batch: ShoweredBatch) -> None:
        r = batch.record
        momenta = np.stack([r["e"], r["px"], r["py"], r["pz"]], axis=-1)
        self.writer.write(r["id"], r["status"], momenta, r["counts"], batch.number, batch.weight)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.writer.__exit__(exc_type, exc, tb)
            if exc_type is None:
                self.delphes.run_delphes(self.card, self.hepmc, self.out_path, self.executable)
        finally:
            self.hepmc.unlink(missing_ok=True)
        return False


def detector_sink(detector: dict | None, out_path, seed: int):
    """The detector stage named by ``detector.kind`` (``parametrized`` by default)."""
    detector = dict(detector or {})
    kind = detector.get("kind", "parametrized")
    if kind not in DETECTOR_KEYS:
        raise DetectorConfigError(f"detector.kind: {kind!r} is not one of {sorted(DETECTOR_KEYS)}")
    unknown = sorted(set(detector) - DETECTOR_KEYS[kind])
    if unknown:
        raise DetectorConfigError(f"detector: unknown key(s) {unknown} for kind {kind!r} "
                                  f"(allowed: {sorted(DETECTOR_KEYS[kind])})")
    if kind == "parametrized":
        return _ParametrizedSink(out_path, detector.get("parameters"), seed)
    if "card" not in detector:
        raise DetectorConfigError("detector.card: the Delphes card (e.g. cards/delphes_card_CMS.tcl) "
                                  "is required")
    return _DelphesSink(out_path, detector["card"], detector.get("executable"))


def shower_thj(lhe_path: str | os.PathLike, out_root: str | os.PathLike, out_meta: str | os.PathLike, *,
               seed: int, cfg: dict | None = None, detector: dict | None = None, n_events: int | None = None,
               chunk_size: int = 200, max_failures: int | None = None, progress: bool = True) -> dict:
    """Shower (``n_events`` or all) tHj events, run the detector, write its ROOT file and metadata JSON.

    Returns the metadata: settings, branching ratios, σ from the LHE header, counts and timing.
    On any error neither output exists.
    """
    lhe_path = Path(lhe_path)
    n_in_file = scan_lhe(lhe_path)
    header = read_lhe_header(lhe_path)
    total = n_in_file if n_events is None else min(int(n_events), n_in_file)
    sink = detector_sink(detector, out_root, derive_seed(seed, "detector"))  # config errors before the file's
    settings = thj_settings(lhe_path, cfg)
    max_failures = max_failures if max_failures is not None else max(20, int(0.05 * total))
    start = time.perf_counter()
    pythia = _init_pythia(settings, seed)
    ratios = branching_ratios(pythia)
    batches = _Batches(pythia, lhe_path)
    n_written = 0
    bar = tqdm(total=total, disable=not progress, unit="ev", file=sys.stderr, desc="shower tHj")
    with sink, bar:
        while not batches.eof and batches.read < total:
            before = batches.read
            batch, number = batches.next(min(chunk_size, total - batches.read))
            if batches.failed > max_failures:
                raise RuntimeError(f"{lhe_path}: too many failed events: {batches.failed} > {max_failures}")
            if batches.read == before and not batches.eof:
                raise RuntimeError(f"{lhe_path}: Pythia returned no events before the end of the file")
            if len(batch):
                sink.write(analyse_batch(batch, number, lhe_path))
                n_written += len(batch)
            bar.update(batches.read - before)
    wall = time.perf_counter() - start
    if n_written == 0:
        Path(out_root).unlink(missing_ok=True)
        raise ValueError(f"{lhe_path}: no event was showered")
    info = pythia.infoPython()
    meta = {"generator": f"Pythia {pythia.parm('Pythia:versionNumber'):.3f}", "source_lhe": str(lhe_path),
            "seed": int(seed), "shower": shower_config(cfg),
            "detector": dict(detector or {"kind": "parametrized"}),
            "detector_parameters": getattr(getattr(sink, "detector", None), "parameters", None),
            "settings": settings + seed_settings(seed), "pdf_pset": pythia.settings.word("PDF:pSet"),
            "pdf_lhapdf_id": header.pdf_ids[0], "branching_ratios": ratios,
            "branching_ratio": ratios["product"], "sigma_gen_pb": info.sigmaGen() * MB_TO_PB,
            "beam_energies_gev": list(header.beam_energies_gev), "n_lhe_events": n_in_file,
            "n_requested": n_events, "n_written": n_written, "n_failed": batches.failed,
            "wall_time_s": wall, "events_per_second": n_written / wall, "host": platform.node()}
    try:
        write_json(out_meta, meta)
    except BaseException:
        Path(out_root).unlink(missing_ok=True)
        raise
    return meta
