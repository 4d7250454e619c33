"""Merging of multi-jet LHE samples, read from the file's header: MLM (MadGraph-style jet matching)
or CKKW-L, applied by Pythia 8; every other scheme is refused before showering.

:func:`detect_merging` reads what the header states (MG5 run card ``ickkw``, ``xqcut``, ``ptj``,
``maxjetflavor``, ``ktdurham``/``ptlund``, the jet multiplicities of the proc card's processes;
POWHEG headers); :func:`plan_merging` checks it against the sample's ``merging`` config and returns
the Pythia settings. The rule (README, "Merging"):

- MG5 ``ickkw = 1``: MLM; ``ickkw = 0`` with ``ktdurham`` or ``ptlund`` (MG5 < 2.3: ``pt_pythia``
  with ``do_pt_pythia``) and several jet multiplicities: CKKW-L; ``ickkw = 2`` (MadEvent CKKW),
  ``3`` (FxFx), ``4`` (UNLOPS) or any other value: refused;
- POWHEG-BOX, or a header with one process and no merging information: no merging;
- several jet multiplicities are never showered without merging: their cross sections would add up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lhcflow.errors import InputError
from lhcflow.generation.lhe import LHEHeader, read_lhe_header

SCHEMES = ("auto", "none", "mlm", "ckkwl")
# MG5_aMC's default JetMatching:qCut when its Pythia 8 card leaves it unset: 1.5 x xqcut
# (madevent_interface.py, setup_Pythia8RunAndCard).
QCUT_OVER_XQCUT = 1.5
ICKKW = {0: "none", 1: "mlm", 2: "ckkw", 3: "fxfx", 4: "unlops"}
DESCRIPTION = {
    "none": "no merging", "mlm": "MLM matching", "ckkwl": "CKKW-L merging",
    "ckkw": "MadEvent CKKW matching (ickkw = 2)", "fxfx": "FxFx NLO merging (MG5_aMC@NLO ickkw = 3)",
    "unlops": "UNLOPS NLO merging (MG5_aMC@NLO ickkw = 4)", "unknown": "an unknown merging scheme",
}
CAN_DO = ("the shower stage applies merging.scheme mlm (MG5 samples with ickkw = 1) or ckkwl (MG5 LO samples "
          "with ktdurham or ptlund), and none for one jet multiplicity")
_LIGHT = {"g", "u", "d", "s", "c", "u~", "d~", "s~", "c~"}
_PARTONS = _LIGHT | {"b", "b~"}


class MergingError(InputError, ValueError):
    """The merging a sample asks for cannot be applied to its LHE file; names the file and the scheme."""


@dataclass(frozen=True)
class MergingInfo:
    """What an LHE header says about merging.

    ``scheme``: none, mlm, ckkwl, ckkw, fxfx, unlops or unknown; ``multiplicities``: the numbers of
    extra jets of the generated processes (empty if the header does not list them); ``parameters``:
    the run-card values that matter (GeV); ``source``: the header text the verdict rests on.
    """
    scheme: str
    source: str
    multiplicities: tuple[int, ...] = ()
    parameters: dict = field(default_factory=dict)
    generator: str = "unknown"
    n_processes: int = 1
    process_jets: dict = field(default_factory=dict)  # LPRUP (the proc card's @N) -> extra jets

    def describe(self) -> str:
        jets = f"; processes with {_jets(self.multiplicities)}" if self.multiplicities else ""
        return f"{DESCRIPTION[self.scheme]} ({self.source}{jets})"


def _jets(multiplicities) -> str:
    return ", ".join(map(str, multiplicities)) + " extra jets"


def _number(card: dict, key: str) -> float | None:
    try:
        return float(card[key].replace("d", "e").replace("D", "e"))
    except (KeyError, ValueError):
        return None


def _final_state(proc_line: str) -> list[str]:
    """Final-state tokens of an MG5 process line (orders, @tags, [QCD], decay chains dropped)."""
    body = re.sub(r"^(generate|add process)\s+", "", proc_line).split("@")[0].split(",")[0]
    body = re.sub(r"\[.*?\]", " ", body)
    final = body.split(">", 1)[1] if ">" in body else ""
    final = re.split(r"\s[/$]", " " + final)[0]
    return [t for t in final.split() if "=" not in t and not t.startswith(("$", "/"))]


def _is_jet(token: str, defines: dict) -> bool:
    return token == "j" or token in _LIGHT or (token in defines and set(defines[token]) <= _PARTONS)


def _proc_jets(header: LHEHeader) -> tuple[list[int], dict]:
    """Extra jets of each process line, and LPRUP (@N tag) -> extra jets where tagged."""
    jets, tags = [], {}
    for line in header.proc_lines:
        n = sum(_is_jet(t, header.defines) for t in _final_state(line))
        jets.append(n)
        tag = re.search(r"@\s*(\d+)", line)
        if tag:
            tags[int(tag.group(1))] = n
    return jets, tags


def _generator(header: LHEHeader) -> str:
    text = header.text
    version = re.search(r"VERSION\s+(\d[\d.]*)", text) or re.search(r"<MGVersion>\s*#?\s*([\d.]+)", text)
    if version or "<MG5ProcCard>" in text or "<MGRunCard>" in text:
        return "MadGraph5_aMC@NLO" + (f" {version.group(1)}" if version else "")
    if re.search(r"POWHEG", text, re.IGNORECASE):
        return "POWHEG-BOX"
    named = re.search(r"<generator[^>]*name=['\"]([^'\"]+)", text)
    return named.group(1) if named else "unknown"


def _ckkwl_scale(card: dict) -> tuple[str | None, float | None]:
    """(merging-scale type, value in GeV) from the run card's ``ktdurham`` / ``ptlund``."""
    if (_number(card, "ktdurham") or -1) > 0:
        return "kt", _number(card, "ktdurham")
    if (_number(card, "ptlund") or -1) > 0:
        return "ptlund", _number(card, "ptlund")
    pt_pythia_on = card.get("do_pt_pythia", "F").upper().startswith(("T", ".T"))
    if (_number(card, "pt_pythia") or -1) > 0 and pt_pythia_on:
        return "ptlund", _number(card, "pt_pythia")  # MG5 < 2.3 name of ptlund
    return None, None


def detect_merging(header: LHEHeader) -> MergingInfo:
    """The merging scheme an LHE header states (see the module docstring for the rule)."""
    card = header.run_card
    jets, tags = _proc_jets(header)
    multiplicities = tuple(sorted(set(jets)))
    params = {k: v for k in ("xqcut", "ptj", "maxjetflavor", "alpsfact", "etaj", "ktdurham", "ptlund",
                             "dparameter") if (v := _number(card, k)) is not None}
    generator = _generator(header)
    common = {"multiplicities": multiplicities, "parameters": params, "generator": generator,
              "n_processes": max(len(header.processes), 1), "process_jets": tags}
    if "ickkw" in card:
        try:
            ickkw = int(float(card["ickkw"]))
        except ValueError:
            return MergingInfo("unknown", f"MG5 run card: ickkw = {card['ickkw']}", **common)
        scheme = ICKKW.get(ickkw, "unknown")
        source = f"MG5 run card: ickkw = {ickkw}"
        if scheme == "mlm":
            source += f", xqcut = {params.get('xqcut', 'not set')}"
        if scheme == "none":
            kind, scale = _ckkwl_scale(card)
            if kind is not None and len(multiplicities) > 1:
                scheme, source = "ckkwl", f"{source}, {'ktdurham' if kind == 'kt' else 'ptlund'} = {scale:g}"
        return MergingInfo(scheme, source, **common)
    if generator == "POWHEG-BOX":
        return MergingInfo("none", "POWHEG-BOX header: NLO matched to the shower, one Born jet multiplicity",
                           **common)
    return MergingInfo("none", "no merging information in the header", **common)


# --------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class MergingPlan:
    """The merging a shower applies: scheme, Pythia settings, and the values to record."""
    scheme: str
    settings: tuple[str, ...]
    info: MergingInfo
    parameters: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {"scheme": self.scheme, "header_scheme": self.info.scheme, "header_source": self.info.source,
                "generator": self.info.generator, "multiplicities": list(self.info.multiplicities),
                "run_card": dict(self.info.parameters), **self.parameters}


def _setting(lines, key: str) -> str | None:
    """The last value given to the Pythia setting ``key`` (case-insensitive) in ``lines``."""
    value = None
    for line in lines:
        name, sep, rest = line.partition("=")
        if sep and name.strip().lower() == key.lower():
            value = rest.split("!")[0].strip()
    return value


def _prefixed(lines, prefix: str) -> list[str]:
    return [line for line in lines if line.strip().lower().startswith(prefix.lower())]


def plan_merging(header: LHEHeader, cfg: dict | None, extra_settings=(), name=None) -> MergingPlan:
    """Check the sample's ``merging`` config against what the header states; the Pythia settings.

    ``cfg``: ``scheme`` (auto | none | mlm | ckkwl), ``qcut_gev`` (MLM), ``scale_gev`` (CKKW-L);
    ``extra_settings``: the user's extra Pythia lines (``JetMatching:*`` need MLM, ``Merging:*``
    CKKW-L). ``name`` is the user's file, for messages. Raises :class:`MergingError`.
    """
    cfg = {"scheme": "auto", **(cfg or {})}
    name = name or header.path
    unknown = sorted(set(cfg) - {"scheme", "qcut_gev", "scale_gev"})
    if unknown:
        raise MergingError(f"merging: unknown key(s) {unknown} (allowed: scheme, qcut_gev, scale_gev)")
    info = detect_merging(header)
    requested = cfg["scheme"]
    if requested not in SCHEMES:
        raise MergingError(f"merging.scheme: {requested!r} is not one of {', '.join(SCHEMES)}")
    if info.scheme not in ("none", "mlm", "ckkwl"):
        raise MergingError(f"{name}: the header states {info.describe()}, which lhcflow cannot apply; "
                           f"{CAN_DO}. Shower this sample with its own tools and ingest the result as "
                           "kind: root")
    scheme = info.scheme if requested == "auto" else requested
    if requested != "auto" and requested != info.scheme:
        _check_override(requested, info, name)
    if scheme == "none":
        _check_unmerged(info, requested, name)
    for key, owner in (("qcut_gev", "mlm"), ("scale_gev", "ckkwl")):
        if cfg.get(key) is not None and scheme != owner:
            raise MergingError(f"{name}: merging.{key} is a setting of scheme {owner}, but this sample is "
                               f"showered with scheme {scheme} (header: {info.describe()}); remove it")
    for prefix, owner in (("JetMatching:", "mlm"), ("Merging:", "ckkwl")):
        given = _prefixed(extra_settings, prefix)
        if given and scheme != owner:
            raise MergingError(f"{name}: pythia.extra_settings {given} would do nothing: {prefix}* settings "
                               f"act only with merging.scheme {owner}, and this sample is showered with "
                               f"scheme {scheme}")
    if scheme == "mlm":
        return _mlm_plan(info, cfg, extra_settings, name)
    if scheme == "ckkwl":
        return _ckkwl_plan(header, info, cfg, name)
    return MergingPlan("none", (), info)


def sample_merging(sample: dict) -> MergingPlan:
    """The merging plan of an LHE sample of the workflow config (kind ``lhe``), from its file's header."""
    extra = sample.get("pythia", {}).get("extra_settings", [])
    return plan_merging(read_lhe_header(sample["file"]), sample.get("merging"), extra, sample["file"])


def _check_override(requested: str, info: MergingInfo, name) -> None:
    """An explicit scheme may differ from the header's only where the header leaves it open: ``none``
    (checked by :func:`_check_unmerged`), or ``ckkwl`` for a multi-jet sample whose header names no
    scheme (MG5 ``ickkw = 0`` without ``ktdurham``/``ptlund``)."""
    multijet = len(info.multiplicities) > 1
    if requested == "none" or (requested == "ckkwl" and info.scheme == "none" and multijet):
        return
    raise MergingError(f"{name}: merging.scheme: {requested} contradicts the header, which states "
                       f"{info.describe()}; use merging.scheme: auto ({info.scheme}) or regenerate the "
                       "sample for the scheme you want")


def _check_unmerged(info: MergingInfo, requested: str, name) -> None:
    """No merging: only for one jet multiplicity (their cross sections would otherwise add up)."""
    if len(info.multiplicities) > 1:
        advice = ("set merging.scheme: ckkwl with merging.scale_gev if it was generated for CKKW-L, or "
                  "shower each multiplicity as its own sample" if info.scheme == "none"
                  else f"use merging.scheme: auto ({info.scheme})")
        raise MergingError(f"{name}: the header lists processes with {_jets(info.multiplicities)} "
                           f"({info.describe()}); showering them without merging would add the "
                           f"multiplicities up and double count; {advice}")
    unknown = not info.multiplicities and info.n_processes > 1 and info.generator != "POWHEG-BOX"
    if requested == "auto" and unknown:
        raise MergingError(f"{name}: the header lists {info.n_processes} processes but says nothing about "
                           "their jet multiplicities or a merging scheme; if they are not multiplicities of "
                           "one merged sample, set merging.scheme: none")


def _mlm_plan(info: MergingInfo, cfg: dict, extra_settings, name) -> MergingPlan:
    """Pythia's MadGraph-style kT-MLM jet matching (JetMatchingMadgraph) with the run card's parameters.

    ``JetMatching:setMad`` stays off: on, it replaces ``qCut`` by the run card's ``xqcut``, so the
    matching scale would sit on the generation cut. ``exclusive = 2`` with ``nJetMax`` the highest
    multiplicity of the proc card: Pythia matches each event exclusively unless it has the highest
    parton multiplicity, which it counts event by event from the hard process.
    """
    p = info.parameters
    xqcut = p.get("xqcut", 0.0)
    if xqcut <= 0:
        raise MergingError(f"{name}: MLM (ickkw = 1) with xqcut = {xqcut:g} in the run card: Pythia's "
                           "MadGraph matching is the kT-jet MLM scheme, which needs the generation cut "
                           "xqcut > 0")
    if not info.multiplicities:
        raise MergingError(f"{name}: MLM needs the jet multiplicities of the generated processes, but the "
                           "header has no MG5 proc card ('generate'/'add process' lines)")
    qcut = float(cfg["qcut_gev"]) if cfg.get("qcut_gev") is not None else QCUT_OVER_XQCUT * xqcut
    override = _setting(extra_settings, "JetMatching:qCut")
    where = f"the default {QCUT_OVER_XQCUT} x xqcut"
    if cfg.get("qcut_gev") is not None:
        where = "merging.qcut_gev"
    if override is not None:
        qcut, where = float(override), "pythia.extra_settings JetMatching:qCut"
    floor = max(xqcut, p.get("ptj", 0.0))
    if qcut <= floor:
        raise MergingError(f"{name}: MLM matching scale qCut = {qcut:g} GeV ({where}) is not above the run "
                           f"card's xqcut = {xqcut:g} GeV and ptj = {p.get('ptj', 0.0):g} GeV: jets between "
                           f"the cut and qCut would be missing; set merging.qcut_gev above {floor:g} (MG5 "
                           f"uses {QCUT_OVER_XQCUT} x xqcut = {QCUT_OVER_XQCUT * xqcut:g})")
    merge = _setting(extra_settings, "JetMatching:merge")
    if merge is not None and merge.lower() in ("off", "0", "false"):
        raise MergingError(f"{name}: pythia.extra_settings switches JetMatching:merge off on an MLM sample: "
                           "the jet multiplicities would add up; use merging.scheme to choose the scheme")
    njetmax = max(info.multiplicities)
    eta = p.get("etaj", -1.0)
    settings = ("JetMatching:merge = on", "JetMatching:scheme = 1", "JetMatching:setMad = off",
                f"JetMatching:qCut = {qcut}", f"JetMatching:nQmatch = {int(p.get('maxjetflavor', 5))}",
                f"JetMatching:clFact = {p.get('alpsfact', 1.0)}", "JetMatching:jetAlgorithm = 2",
                "JetMatching:slowJetPower = 1", "JetMatching:coneRadius = 1.0",
                f"JetMatching:etaJetMax = {eta if eta > 0 else 1000.0}", "JetMatching:exclusive = 2",
                f"JetMatching:nJetMax = {njetmax}")
    return MergingPlan("mlm", settings, info, {"qcut_gev": qcut, "qcut_from": where, "njet_max": njetmax,
                                                "merging_scale_gev": qcut})


def merging_process(header: LHEHeader, name=None) -> tuple[str, int]:
    """``Merging:Process`` and ``Merging:nJetMax`` from the MG5 proc card in the header."""
    if not header.proc_lines:
        raise MergingError(f"{name or header.path}: no MG5 'generate'/'add process' lines in the header; "
                           "CKKW-L needs the merged process")
    finals = [_final_state(p) for p in header.proc_lines]
    n_jets = [sum(_is_jet(t, header.defines) for t in f) for f in finals]
    core = [t for t in finals[n_jets.index(min(n_jets))] if not _is_jet(t, header.defines)]
    labels = [_pythia_token(t, header.defines, name or header.path) for t in core]
    containers = sorted({lab for lab in labels if lab.isupper()})
    if containers == ["LEPTONS"]:
        # Pythia 8.317 rejects every event with a parton for the lone container 'pp>LEPTONS'
        # ("no clusterings found"); the documented form for lepton pairs is LEPTONS,NEUTRINOS.
        containers.append("NEUTRINOS")
    plain = "".join(lab for lab in labels if not lab.isupper())
    process = "pp>" + (",".join(containers) if containers else "") + plain
    return process, max(n_jets) - min(n_jets)


def _pythia_token(token: str, defines: dict, name) -> str:
    """MG5 final-state label -> Pythia merging label (multiparticles -> containers)."""
    members = defines.get(token, [token])
    if len(members) == 1:
        return members[0]
    if all(m.startswith(("e", "mu", "ta")) for m in members):
        return "LEPTONS"
    if all(m.startswith("v") for m in members):
        return "NEUTRINOS"
    raise MergingError(f"{name}: cannot translate the MG5 multiparticle {token} = {' '.join(members)} into a "
                       "Pythia Merging:Process")


def _ckkwl_plan(header: LHEHeader, info: MergingInfo, cfg: dict, name) -> MergingPlan:
    """CKKW-L: the merging scale from ``merging.scale_gev`` or the run card's ``ktdurham``/``ptlund``."""
    process, njetmax = merging_process(header, name)
    card_type, card_scale = _ckkwl_scale(header.run_card)
    kind = card_type or "kt"
    tms = cfg.get("scale_gev") if cfg.get("scale_gev") is not None else card_scale
    if tms is None or float(tms) <= 0:
        raise MergingError(f"{name}: CKKW-L needs a merging scale: the run card has no ktdurham or ptlund; "
                           "set merging.scale_gev")
    if card_scale is not None and float(tms) < card_scale:
        raise MergingError(f"{name}: merging.scale_gev = {float(tms):g} GeV is below the run card's "
                           f"generation cut ({'ktdurham' if kind == 'kt' else 'ptlund'} = {card_scale:g} "
                           "GeV): the matrix elements do not cover the phase space in between; choose a "
                           "scale at or above the cut")
    switch = {"kt": "Merging:doKTMerging = on", "ptlund": "Merging:doPTLundMerging = on"}[kind]
    settings = [switch, f"Merging:Process = {process}", f"Merging:nJetMax = {njetmax}",
                f"Merging:TMS = {float(tms)}", "Merging:includeWeightInXsection = on"]
    if kind == "kt":
        settings.append(f"Merging:Dparameter = {info.parameters.get('dparameter', 0.4)}")
    return MergingPlan("ckkwl", tuple(settings), info, {"merging_scale_gev": float(tms), "scale_type": kind,
                                                         "process": process, "njet_max": njetmax})
