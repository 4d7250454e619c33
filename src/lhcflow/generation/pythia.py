"""Pythia 8 event generation: Z/gamma*(->mu mu)+jets and LHE showering (MLM or CKKW-L merged).

``run_pythia`` is the generic loop: init, generate in batches (``Pythia.nextBatch``),
identify the two hard-process leptons and all their final-state descendants,
cluster the remaining visible final state into jets, write a NanoAOD-like ntuple.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pythia8mc
from tqdm import tqdm

from lhcflow.generation import jets as jetlib
from lhcflow.generation.lhe import (  # noqa: F401 (LHEHeader, count_lhe_events, open_lhe: re-exported)
    PARTON_IDS,
    LHEHeader,
    count_lhe_events,
    open_lhe,
    read_lhe_header,
    reading,
)
from lhcflow.generation.merging import MergingPlan, plan_merging
from lhcflow.generation.ntuple import DJR_BRANCHES, NtupleWriter, make_chunk, write_metadata
from lhcflow.physics.kinematics import pt_eta_phi_mass
from lhcflow.seeds import MAX_SEED as SEED_MAX

MB_TO_PB = 1e9
NEUTRINOS = (12, 14, 16)
CHARGED_LEPTONS = (11, 13)
DEFAULT_PROCESSES = ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on")
QUIET_SETTINGS = ("Next:numberCount = 0", "Next:numberShowEvent = 0", "Next:numberShowInfo = 0",
                  "Next:numberShowProcess = 0", "Next:numberShowLHA = 0")


# --------------------------------------------------------------------------- settings

def _onoff(flag) -> str:
    return "on" if flag else "off"


def physics_switches(cfg: dict) -> list[str]:
    """ISR, FSR, MPI and hadronization switches (all on by default)."""
    return [f"PartonLevel:ISR = {_onoff(cfg.get('isr', True))}",
            f"PartonLevel:FSR = {_onoff(cfg.get('fsr', True))}",
            f"PartonLevel:MPI = {_onoff(cfg.get('mpi', True))}",
            f"HadronLevel:all = {_onoff(cfg.get('hadronization', True))}"]


def zjets_settings(cfg: dict) -> list[str]:
    """Pythia settings for pp -> Z/gamma*(->mu mu) + jet from a config dict."""
    cfg = cfg or {}
    settings = ["Beams:idA = 2212", "Beams:idB = 2212",
                f"Beams:eCM = {float(cfg.get('sqrt_s_gev', 13000.0))}"]
    settings += list(cfg.get("processes", DEFAULT_PROCESSES))
    settings += [f"PhaseSpace:pTHatMin = {float(cfg.get('pthat_min_gev', 20.0))}",
                 f"23:mMin = {float(cfg.get('mll_min_gev', 50.0))}",
                 f"23:mMax = {float(cfg.get('mll_max_gev', 150.0))}",
                 "23:onMode = off", "23:onIfAny = 13"]
    settings += physics_switches(cfg)
    return settings + list(QUIET_SETTINGS) + list(cfg.get("extra_settings", []))


def seed_settings(seed: int) -> list[str]:
    """``Random:setSeed``/``Random:seed`` strings; rejects seeds outside Pythia's range."""
    if not 0 <= int(seed) <= SEED_MAX:
        raise ValueError(f"seed {seed} outside Pythia's range [0, {SEED_MAX}]; use lhcflow.seeds.derive_seed")
    return ["Random:setSeed = on", f"Random:seed = {int(seed)}"]


# --------------------------------------------------------------------------- LHE input

def lhe_settings(lhe_path: str | os.PathLike, cfg: dict, plan: MergingPlan | None = None,
                 name: str | os.PathLike | None = None) -> list[str]:
    """Settings to shower an LHE file, with the merging its header states (:mod:`.merging`).

    ``cfg``: the physics switches, ``extra_settings`` and ``merging`` (the sample's merging config);
    ``plan``: a merging plan already made from the user's file; ``name``: that file, for messages.
    """
    cfg = cfg or {}
    header = read_lhe_header(lhe_path, name)
    if plan is None:
        plan = plan_merging(header, cfg.get("merging"), cfg.get("extra_settings", []), name or header.path)
    settings = ["Beams:frameType = 4", f"Beams:LHEF = {header.path}"]
    settings += physics_switches(cfg) + list(plan.settings)
    return settings + list(QUIET_SETTINGS) + list(cfg.get("extra_settings", []))


# --------------------------------------------------------------------------- event record

def _flat(batch: ak.Array, name: str) -> np.ndarray:
    return ak.to_numpy(ak.flatten(batch.prt[name]))


def _descendant_labels(mother: np.ndarray, seeds: np.ndarray, n: int) -> np.ndarray:
    """Label every particle by the seed (1, 2, ...) it descends from via ``mother1``."""
    label = np.zeros(n, dtype=np.int8)
    for k, idx in enumerate(seeds, start=1):
        label[idx] = k
    for _ in range(1000):
        new = np.where(label == 0, label[mother], label)
        if np.array_equal(new, label):
            return label
        label = new
    raise RuntimeError("mother chain did not converge")


def _first_two(mask: np.ndarray, event_of: np.ndarray, n_events: int) -> np.ndarray:
    """Global indices of the first two True entries per event (two required in each)."""
    hits = np.flatnonzero(mask)
    event = event_of[hits]
    first = np.r_[True, event[1:] != event[:-1]]
    second = np.r_[False, (event[1:] == event[:-1]) & first[:-1]]
    a, b = hits[first], hits[second]
    if len(a) != n_events or len(b) != n_events:
        raise RuntimeError("could not find two hard-process charged leptons in every event")
    return np.stack([a, b])


def _lepton_collections(flat: dict, label, final, n_events) -> tuple[ak.Array, ak.Array]:
    """Final copies (highest energy, same id) of each hard lepton, split by flavour."""
    picks = []
    for k in (1, 2):
        cand = final & (label == k) & (flat["id"] == flat["hard_id"][k - 1])
        idx = np.flatnonzero(cand)
        ev = flat["event"][idx]
        order = np.lexsort((-flat["e"][idx], ev))
        idx, ev = idx[order], ev[order]
        keep = np.r_[True, ev[1:] != ev[:-1]] if len(ev) else np.zeros(0, bool)
        picks.append(idx[keep])
    if any(len(p) != n_events for p in picks):
        raise RuntimeError("a hard lepton has no final-state copy")
    idx = np.stack(picks, axis=1).ravel()
    kin = pt_eta_phi_mass(flat["e"][idx], flat["px"][idx], flat["py"][idx], flat["pz"][idx])
    kin["mass"] = flat["m"][idx]
    kin["charge"] = np.where(flat["id"][idx] > 0, -1, 1)
    leptons = ak.unflatten(ak.zip({**kin, "absid": np.abs(flat["id"][idx])}), 2)
    leptons = leptons[ak.argsort(leptons.pt, ascending=False)]
    return leptons[leptons.absid == 13], leptons[leptons.absid == 11]


def analyse_batch(batch: ak.Array, jet_def: dict, djr: bool = False) -> dict:
    """Leptons, jets (with truth b-tag) and weights of a batch of events; with ``djr`` also the
    differential jet rates of the jet-clustering input."""
    counts = ak.to_numpy(ak.num(batch.prt))
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    flat = {name: _flat(batch, name) for name in ("id", "status", "mother1")}
    for comp in ("px", "py", "pz", "e"):
        flat[comp] = ak.to_numpy(ak.flatten(batch.prt.p[comp]))
    flat["m"] = _flat(batch, "m")
    n_events = len(counts)
    flat["event"] = np.repeat(np.arange(n_events), counts)
    absid = np.abs(flat["id"])
    is_hard = (np.abs(flat["status"]) == 23) & np.isin(absid, CHARGED_LEPTONS)
    hard = _first_two(is_hard, flat["event"], n_events)
    flat["hard_id"] = (flat["id"][hard[0]][flat["event"]], flat["id"][hard[1]][flat["event"]])
    mother = flat["mother1"] + offsets[flat["event"]]
    label = _descendant_labels(mother, hard, len(absid))
    final = flat["status"] > 0
    muons, electrons = _lepton_collections(flat, label, final, n_events)
    jet_in = final & (label == 0) & ~np.isin(absid, NEUTRINOS)
    jets = _cluster(flat, jet_in, n_events, jet_def)
    jets["btag"] = jetlib.btag_jets(jets, _b_hadrons(flat, mother, n_events), jet_def["radius"])
    weights = ak.to_numpy(batch.info.weights[:, 0])
    out = {"muons": muons, "electrons": electrons, "jets": jets, "weights": weights,
           "hard": _hard_particles(flat, n_events)}
    if djr:
        parts = _per_event({"px": flat["px"], "py": flat["py"], "pz": flat["pz"], "E": flat["e"]},
                           jet_in, flat["event"], n_events)
        rates = jetlib.jet_rates(parts, len(DJR_BRANCHES))
        out["djr"] = {name: rates[:, k] for k, name in enumerate(DJR_BRANCHES)}
    return out


def _hard_particles(flat: dict, n_events: int) -> ak.Array:
    """Outgoing particles of the hard process (|status| 23) before showering: x_hard of §6.4.2.

    Fixed order per event: negatively charged leptons, positively charged leptons, then the
    rest (partons) by decreasing pT, so that a slot means the same particle in every event.
    """
    idx = np.flatnonzero(np.abs(flat["status"]) == 23)
    pid = flat["id"][idx]
    kin = pt_eta_phi_mass(flat["e"][idx], flat["px"][idx], flat["py"][idx], flat["pz"][idx])
    is_lepton = np.isin(np.abs(pid), CHARGED_LEPTONS)
    category = np.where(is_lepton, np.where(pid > 0, 0, 1), 2)
    order = np.lexsort((-kin["pt"], category, flat["event"][idx]))
    idx, pid = idx[order], pid[order]
    counts = np.bincount(flat["event"][idx], minlength=n_events)
    values = {k: v[order] for k, v in kin.items()}
    values["mass"] = flat["m"][idx]
    values["pdgId"] = pid
    return ak.unflatten(ak.zip(values), counts)


def _per_event(values: dict, mask: np.ndarray, event: np.ndarray, n_events: int) -> ak.Array:
    """Jagged per-event record array from flat ``values`` selected by ``mask``."""
    counts = np.bincount(event[mask], minlength=n_events)
    return ak.unflatten(ak.zip({k: v[mask] for k, v in values.items()}), counts)


def _cluster(flat: dict, mask: np.ndarray, n_events: int, jet_def: dict) -> ak.Array:
    parts = _per_event({"px": flat["px"], "py": flat["py"], "pz": flat["pz"], "E": flat["e"]},
                       mask, flat["event"], n_events)
    return jetlib.cluster_jets(parts, jet_def["radius"], jet_def["pt_min_gev"], jet_def["abs_eta_max"])


def _b_hadrons(flat: dict, mother: np.ndarray, n_events: int) -> ak.Array:
    """Weakly decaying B hadrons (no B-hadron daughter) with pT above threshold."""
    is_b = jetlib.is_b_hadron(flat["id"])
    has_b_child = np.zeros(len(is_b), bool)
    has_b_child[mother[is_b]] = True
    kin = pt_eta_phi_mass(flat["e"], flat["px"], flat["py"], flat["pz"])
    weak = is_b & ~has_b_child & (kin["pt"] > jetlib.B_HADRON_PT_MIN_GEV)
    return _per_event({"eta": kin["eta"], "phi": kin["phi"]}, weak, flat["event"], n_events)


# --------------------------------------------------------------------------- event loop

def _init_pythia(settings: list[str], seed: int):
    pythia = pythia8mc.Pythia("", False)
    for line in list(settings) + seed_settings(seed):
        if not pythia.readString(line):
            raise ValueError(f"Pythia rejected setting: {line!r}")
    if pythia.flag("JetMatching:merge"):
        # MLM: Pythia's MadGraph-style matching is a UserHooks object; Pythia keeps it alive.
        pythia.setUserHooksPtr(pythia8mc.JetMatchingMadgraph())
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed (see Pythia output above)")
    return pythia


def _next_batch(pythia, n: int) -> tuple[ak.Array, int, bool]:
    """Generate up to ``n`` events: (good events, failures, reached end of LHE file)."""
    batch = pythia.nextBatch(n, "none")
    missing = ak.to_numpy(ak.is_none(batch))
    eof = bool(pythia.infoPython().atEndOfFile())
    if eof and missing.any():
        last_good = np.flatnonzero(~missing)
        missing = missing[: last_good[-1] + 1] if len(last_good) else missing[:0]
    return ak.drop_none(batch, axis=0), int(missing.sum()), eof


def _is_lhe(settings: list[str]) -> bool:
    return any(re.match(r"\s*Beams:frameType\s*=\s*4\b", s) for s in settings)


def run_pythia(settings: list[str], n_events: int | None, seed: int, out_root, out_meta, *,
               progress: bool = True, chunk_size: int = 200, jet_cfg: dict | None = None,
               max_failures: int | None = None, extra_meta: dict | None = None, djr: bool = False) -> dict:
    """Generate ``n_events`` (``None``: whole LHE file), write ntuple + metadata; return metadata.

    ``djr``: also store the differential jet rates (:func:`lhcflow.generation.jets.jet_rates`) of
    every event, branches ``DJR_d01``, ``DJR_d12``, ``DJR_d23`` (merging validation).
    """
    lhe = _is_lhe(settings)
    if n_events is None and not lhe:
        raise ValueError("n_events=None is only allowed when showering an LHE file")
    jet_def = jetlib.jet_config(jet_cfg)
    max_failures = max_failures if max_failures is not None else max(20, int(0.05 * (n_events or 1000)))
    pythia = _init_pythia(settings, seed)
    start, n_failed, n_zero, sum_w, eof = time.perf_counter(), 0, 0, 0.0, False
    partons = np.zeros(0, dtype=np.int64)  # written events per hard-process parton multiplicity
    bar = tqdm(total=n_events, disable=not progress, unit="ev", file=sys.stderr, desc="pythia")
    with NtupleWriter(out_root, extra=DJR_BRANCHES if djr else None) as writer:
        n_done = 0  # events generated: written ones plus dropped zero-weight ones
        while not eof and (n_events is None or n_done < n_events):
            todo = chunk_size if n_events is None else min(chunk_size, n_events - n_done)
            batch, failed, eof = _next_batch(pythia, todo)
            n_failed += failed
            if n_failed > max_failures:
                raise RuntimeError(f"too many failed events: {n_failed} > {max_failures}")
            if len(batch):
                objs = analyse_batch(batch, jet_def, djr=djr)
                # CKKW-L gives some events zero weight: they carry nothing, so they are not written.
                keep = objs["weights"] != 0
                n_zero += int((~keep).sum())
                extra = {k: v[keep] for k, v in objs["djr"].items()} if djr else None
                writer.write(make_chunk(objs["muons"][keep], objs["electrons"][keep], objs["jets"][keep],
                                        objs["weights"][keep], objs["hard"][keep], extra=extra))
                sum_w += float(np.sum(objs["weights"], dtype=np.float64))
                partons = _add_counts(partons, hard_partons(objs["hard"][keep]))
            n_done += len(batch)
            bar.update(len(batch))
        n_written = writer.n_written
    bar.close()
    meta = _metadata(pythia, settings, seed, n_events, n_written, n_failed, sum_w, jet_def,
                     time.perf_counter() - start)
    meta["n_zero_weight"] = n_zero
    meta["written_by_partons"] = {str(k): int(n) for k, n in enumerate(partons) if n}
    meta.update(extra_meta or {})
    if meta.get("merging", {}).get("scheme") == "mlm" and meta["n_tried"]:  # Pythia vetoes only by matching
        meta["merging"]["matching_efficiency"] = meta["n_accepted"] / meta["n_tried"]
    write_metadata(out_meta, meta)
    return meta


def hard_partons(hard: ak.Array) -> np.ndarray:
    """Quarks and gluons among the outgoing hard-process particles of each event (its jet multiplicity)."""
    pid = ak.flatten(np.abs(hard.pdgId))
    parton = ak.unflatten(np.isin(ak.to_numpy(pid), list(PARTON_IDS)), ak.num(hard.pdgId))
    return ak.to_numpy(ak.sum(parton, axis=1)).astype(np.int64)


def _add_counts(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    new = np.bincount(values, minlength=len(counts)) if len(values) else np.zeros(len(counts), np.int64)
    counts = np.pad(counts, (0, max(0, len(new) - len(counts))))
    return counts + np.pad(new, (0, len(counts) - len(new)))


def _metadata(pythia, settings, seed, n_requested, n_written, n_failed, sum_w, jet_def, wall) -> dict:
    info = pythia.infoPython()
    return {"generator": f"Pythia {pythia.parm('Pythia:versionNumber'):.3f}", "seed": int(seed),
            "n_requested": n_requested, "n_written": n_written, "n_failed": n_failed,
            "n_tried": int(info.nTried()), "n_accepted": int(info.nAccepted()),
            "sigma_gen_pb": info.sigmaGen() * MB_TO_PB, "sigma_err_pb": info.sigmaErr() * MB_TO_PB,
            "sum_weights": sum_w, "beam_energies_gev": [info.eA(), info.eB()],
            "settings": list(settings) + seed_settings(seed), "jet_definition": jet_def,
            "wall_time_s": wall, "host": platform.node()}


def _decompressed(lhe_path: Path, out_root: Path, name) -> Path:
    """Copy of a gzipped LHE file, decompressed next to ``out_root`` and named after it (caller deletes
    it; a rerun after a kill overwrites the copy the killed run left)."""
    tmp = out_root.with_name(f".{out_root.name}.lhe.part")
    try:
        with reading(lhe_path, name), open(tmp, "wb") as dst, gzip.open(lhe_path, "rb") as src:
            shutil.copyfileobj(src, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def shower_lhe(lhe_path, cfg: dict, n_events: int | None, seed: int, out_root, out_meta, *,
               plan: MergingPlan | None = None, source: str | os.PathLike | None = None, **kwargs) -> dict:
    """Shower an LHE file with :func:`run_pythia`, merged as its header states (MLM or CKKW-L).

    ``cfg``: physics switches, ``extra_settings``, ``merging`` (the sample's merging config) and
    ``lhe_decompress``; ``plan``: the merging plan, if already made; ``source``: the user's file when
    ``lhe_path`` is a copy of it (messages and metadata name it). Merged samples also store their
    differential jet rates. This pythia8mc wheel reads ``.gz`` directly; ``lhe_decompress: true``
    decompresses next to the output first, for builds that cannot (the copy is deleted afterwards).
    """
    cfg = cfg or {}
    source = Path(source or lhe_path)
    header = read_lhe_header(lhe_path, source)
    if plan is None:
        plan = plan_merging(header, cfg.get("merging"), cfg.get("extra_settings", []), source)
    path = Path(header.path)
    tmp = None
    if cfg.get("lhe_decompress", False) and path.suffix == ".gz":
        Path(out_root).parent.mkdir(parents=True, exist_ok=True)
        tmp = _decompressed(path, Path(out_root), source)
    try:
        settings = lhe_settings(tmp or path, cfg, plan, source)
        extra = {"source_lhe": str(source), "merging": plan.metadata(),
                 "lhe_init": {"beam_ids": list(header.beam_ids),
                              "beam_energies_gev": list(header.beam_energies_gev),
                              "weight_strategy": header.weight_strategy,
                              "sigma_pb": sum(xsec for _, xsec, _ in header.processes)}}
        extra.update(kwargs.pop("extra_meta", None) or {})
        meta = run_pythia(settings, n_events, seed, out_root, out_meta, extra_meta=extra,
                          djr=plan.scheme != "none", **kwargs)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return meta
