"""Reading Les Houches event files (LHEF 1 and 3, plain or gzipped): the one LHE reader.

Every error names the user's file (``name``; the path read may be a temporary shard copy) and says
what is wrong with it: a damaged or truncated gzip stream, a file that is not LHE, a missing
``<init>`` block, a truncated event list, an event with non-finite momenta (with its number).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lhcflow.errors import InputError

# Quarks and gluons: the partons whose number in the final state of an event is its jet multiplicity.
PARTON_IDS = frozenset({1, 2, 3, 4, 5, 21})


class LHEError(InputError, ValueError):
    """An LHE file that cannot be showered as it is; the message names the file and the problem."""


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_lhe(path: str | os.PathLike):
    """An LHE file, plain or gzipped (by its content, whatever its suffix), opened for reading text."""
    path = Path(path)
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if path.suffix == ".gz":
        raise LHEError(f"{path}: named .gz but not gzip-compressed (it does not start with the gzip magic "
                       "bytes); rename it or compress it with gzip")
    return open(path, encoding="utf-8", errors="replace")


@contextlib.contextmanager
def reading(path: str | os.PathLike, name: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn the bare errors of reading ``path`` (gzip, zlib, OS) into :class:`LHEError` naming ``name``."""
    name = name or path
    try:
        yield
    except LHEError:
        raise
    except FileNotFoundError:
        raise LHEError(f"{name}: LHE file not found") from None
    except EOFError as exc:
        raise LHEError(f"{name}: truncated gzip file: the compressed stream ends before its end marker "
                       f"({exc}); the file was cut off while copying or writing; copy or regenerate "
                       "it") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise LHEError(f"{name}: corrupt gzip data ({type(exc).__name__}: {exc}); the file is damaged; copy "
                       "or regenerate it") from None
    except OSError as exc:
        raise LHEError(f"{name}: cannot be read ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- header

@dataclass
class LHEHeader:
    """What we need from an LHE file's header and ``<init>`` block."""
    path: str
    beam_ids: tuple[int, int]
    beam_energies_gev: tuple[float, float]
    weight_strategy: int
    pdf_ids: tuple[int, int] = (0, 0)  # PDFSUP of the two beams (LHAPDF ids)
    proc_lines: list[str] = field(default_factory=list)
    defines: dict[str, list[str]] = field(default_factory=dict)
    run_card: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[int, float, float]] = field(default_factory=list)  # (LPRUP, XSECUP, XERRUP) in pb
    text: str = ""  # everything before <init>


def _read_until_init(path: Path, name) -> tuple[list[str], list[str]]:
    """Header lines (before ``<init>``) and the ``<init>`` block lines."""
    header, init, in_init, first = [], [], False, None
    with reading(path, name), open_lhe(path) as fh:
        for line in fh:
            if first is None and line.strip():
                first = line.strip()
                if not first.startswith(("<LesHouchesEvents", "<?xml", "<!--")):
                    raise LHEError(f"{name}: not a Les Houches event file: it starts with {first[:60]!r}, "
                                   "not <LesHouchesEvents>")
            if "<init" in line:
                in_init = True
                continue
            if "</init>" in line:
                return header, init
            (init if in_init else header).append(line.rstrip("\n"))
            if "<event" in line:
                break
    if first is None:
        raise LHEError(f"{name}: empty file, not a Les Houches event file")
    raise LHEError(f"{name}: no complete <init> block: the file is truncated or not a Les Houches event file")


def _block(lines: list[str], tag: str) -> list[str] | None:
    """Lines between ``<tag>`` and ``</tag>``, or None if the header has no such block."""
    text = "\n".join(lines)
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
    return match.group(1).splitlines() if match else None


def _parse_run_card(lines: list[str]) -> dict[str, str]:
    """``value = name`` pairs of an MG5 run card (names lower case)."""
    card = {}
    for line in lines:
        m = re.match(r"^\s*(\S+)\s*=\s*(\w+)", line.split("!")[0])
        if m:
            card[m.group(2).lower()] = m.group(1)
    return card


def _init_processes(init: list[str]) -> list[tuple[int, float, float]]:
    """(LPRUP, XSECUP, XERRUP) of every process line of the ``<init>`` block."""
    processes = []
    for line in init[1:]:
        fields = line.split()
        if len(fields) < 4 or line.lstrip().startswith(("<", "#")):
            continue
        try:
            processes.append((int(fields[3]), float(fields[0]), float(fields[1])))
        except ValueError:
            continue
    return processes


def read_lhe_header(lhe_path: str | os.PathLike, name: str | os.PathLike | None = None) -> LHEHeader:
    """Parse beams and processes (``<init>``), MG5 proc card and run card of an LHE file.

    ``name`` is the file the user gave, for messages (``lhe_path`` may be a copy of it).
    """
    path = Path(lhe_path)
    name = name or path
    if not path.is_file():
        raise LHEError(f"{name}: LHE file not found")
    header, init = _read_until_init(path, name)
    fields = init[0].split() if init else []
    try:
        beams = (int(fields[0]), int(fields[1])), (float(fields[2]), float(fields[3]))
        pdfs, strategy = (int(fields[6]), int(fields[7])), int(fields[8])
    except (IndexError, ValueError):
        raise LHEError(f"{name}: malformed <init> block: its first line {init[:1]} must hold IDBMUP(2), "
                       "EBMUP(2), PDFGUP(2), PDFSUP(2), IDWTUP, NPRUP") from None
    proc_card = _block(header, "MG5ProcCard")
    defines, procs = {}, []
    for line in header if proc_card is None else proc_card:
        text = line.split("#")[0].strip()
        if text.startswith("define "):
            label, _, rest = text[len("define "):].partition("=")
            defines[label.strip()] = rest.split()
        elif text.startswith(("generate ", "add process ")):
            procs.append(text)
    run_card = _block(header, "MGRunCard")
    return LHEHeader(path=str(path), beam_ids=beams[0], beam_energies_gev=beams[1], weight_strategy=strategy,
                     pdf_ids=pdfs, proc_lines=procs, defines=defines,
                     run_card=_parse_run_card(header if run_card is None else run_card),
                     processes=_init_processes(init), text="\n".join(header))


# --------------------------------------------------------------------------- events

@dataclass(frozen=True)
class BadEvent:
    """An event that cannot be showered: its number in the file (1-based), line number, reason."""
    number: int
    line: int
    reason: str


def count_lhe_events(lhe_path: str | os.PathLike, name: str | os.PathLike | None = None) -> int:
    """Number of events of a complete LHE file, read as a stream.

    Raises :class:`LHEError` naming ``name`` for damaged gzip data and for a truncated file (an
    unclosed ``<event>``, or no ``</LesHouchesEvents>`` at the end).
    """
    path = Path(lhe_path)
    name = name or path
    opened = closed = 0
    complete, last = False, ""
    with reading(path, name), open_lhe(path) as fh:
        for line in fh:
            text = line.strip()
            if text.startswith("<event"):
                opened += 1
            elif text.startswith("</event"):
                closed += 1
            elif text.startswith("</LesHouchesEvents"):
                complete = True
            last = text or last
    if opened != closed or not complete:
        end = "ends with </LesHouchesEvents>" if complete else "no </LesHouchesEvents> at the end"
        raise LHEError(f"{name}: truncated LHE file: {opened} <event> blocks, {closed} closed, {end} (last "
                       f"line {last[:60]!r}); copy or regenerate it")
    return opened


def check_event(lines: list[str]) -> tuple[str | None, int]:
    """(problem or None, number of final-state partons) of one event's lines (inside ``<event>``).

    The problem is a malformed particle list, a non-finite weight or a non-finite momentum or mass.
    """
    body = [t for t in lines if t.strip() and not t.lstrip().startswith(("<", "#"))]
    try:
        n_up, weight = int(body[0].split()[0]), float(body[0].split()[2])
    except (IndexError, ValueError):
        return f"malformed event line {body[0][:60] if body else ''!r}", 0
    if not math.isfinite(weight):
        return f"non-finite event weight {weight}", 0
    if len(body) < n_up + 1:
        return f"{n_up} particles declared, {len(body) - 1} given", 0
    partons = 0
    for k, particle in enumerate(body[1:n_up + 1], start=1):
        fields = particle.split()
        try:
            pid, status = int(fields[0]), int(fields[1])
            values = [float(v) for v in fields[6:11]]
        except (IndexError, ValueError):
            return f"malformed particle line {k}: {particle.strip()[:60]!r}", 0
        if len(values) < 5:
            return f"particle {k} has {len(fields)} fields, 13 expected", 0
        if not all(math.isfinite(v) for v in values):
            given = ", ".join(fields[6:11])
            return f"non-finite momentum or mass (px, py, pz, E, m = {given}) of particle {k}", 0
        partons += status == 1 and abs(pid) in PARTON_IDS
    return None, partons
