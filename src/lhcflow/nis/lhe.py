"""Write unweighted hard-scattering events as a Les Houches Event file (LHEF 3.0).

The layout follows the Les Houches accord (hep-ph/0609017, arXiv:1405.1067):

    <LesHouchesEvents version="3.0">
    <header> ... </header>
    <init>
     IDBMUP(1) IDBMUP(2) EBMUP(1) EBMUP(2) PDFGUP(1) PDFGUP(2) PDFSUP(1) PDFSUP(2) IDWTUP NPRUP
     XSECUP XERRUP XMAXUP LPRUP
    <generator name='lhcflow' version='...' integrator='VEGAS|MadNIS'> ... </generator>
    </init>
    <event>
     NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP
     IDUP ISTUP MOTHUP(1) MOTHUP(2) ICOLUP(1) ICOLUP(2) PX PY PZ E M VTIMUP SPINUP    (NUP lines)
    </event>
    </LesHouchesEvents>

The PDF of the run fixes PDFSUP (its LHAPDF id, PDFGUP = 0) and every event's AQCDUP (α_s(M_Z)
of the set; the processes written here have no QCD coupling in |M|², so it is informational).
The ``<generator>`` tag (LHEF 3.0, inside ``<init>``) names the integrator that produced the
events. Unweighted events carry the common weight σ/N (IDWTUP = 3). For q q̄ → colourless final states
(Drell-Yan) the colour flow is filled automatically: colour 501 on the incoming quark,
anti-colour 501 on the incoming antiquark. Helicities are "unknown" (9). The file is written
under a temporary name in the target directory and renamed at the end (:mod:`lhcflow.atomic`),
in chunks, so it can be streamed. ``.gz`` targets are gzip-compressed. The output is read by
``pylhe`` and by :func:`lhcflow.generation.pythia.read_lhe_header` / ``count_lhe_events``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from lhcflow import __version__
from lhcflow.atomic import atomic_path

QUARK_COLOUR = 501
#: integration method (``IntegrationResult.method``) → the name written in the generator tag
INTEGRATOR_NAMES = {"vegas": "VEGAS", "madnis": "MadNIS"}


def _array(values: Any, dtype=None) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, possibly on GPU
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def _xml_text(text: str) -> str:
    """Escape only & and < so that MG5-style 'p p > e+ e-' lines stay readable by line parsers."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def qqbar_colours(pdg_ids: np.ndarray, statuses: np.ndarray) -> np.ndarray:
    """Colour flow (n, P, 2) for q q̄ → colourless: quark (501, 0), antiquark (0, 501)."""
    pdg = np.asarray(pdg_ids)
    st = np.asarray(statuses)
    quark = (pdg >= 1) & (pdg <= 6)
    antiquark = (pdg <= -1) & (pdg >= -6)
    coloured = quark | antiquark | (pdg == 21)
    incoming = st == -1
    ok = ((quark & incoming).sum(-1) == 1) & ((antiquark & incoming).sum(-1) == 1) \
        & ((coloured & ~incoming).sum(-1) == 0) & ((pdg == 21).sum(-1) == 0)
    if not ok.all():
        raise ValueError("automatic colour flow only for q qbar -> colourless; pass `colours` explicitly")
    colours = np.zeros(pdg.shape + (2,), dtype=np.int64)
    colours[..., 0] = np.where(quark & incoming, QUARK_COLOUR, 0)
    colours[..., 1] = np.where(antiquark & incoming, QUARK_COLOUR, 0)
    return colours


def default_mothers(statuses: np.ndarray) -> np.ndarray:
    """MOTHUP (n, P, 2): incoming partons (status -1) have none, everything else comes from 1 and 2."""
    st = np.asarray(statuses)
    mothers = np.zeros(st.shape + (2,), dtype=np.int64)
    mothers[..., 0] = np.where(st == -1, 0, 1)
    mothers[..., 1] = np.where(st == -1, 0, 2)
    return mothers


def invariant_masses(momenta: np.ndarray) -> np.ndarray:
    """m = sqrt(E² - p²) of (…, 4) momenta (E, px, py, pz); round-off below 1e-7 E is set to 0."""
    p = np.asarray(momenta, dtype=np.float64)
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)
    m = np.sqrt(np.clip(m2, 0.0, None))
    return np.where(m < 1e-7 * np.abs(p[..., 0]), 0.0, m)


def _open_text(path: Path, gz: bool) -> TextIO:
    return gzip.open(path, "wt", encoding="ascii") if gz else open(path, "w", encoding="ascii")


class LHEWriter:
    """Streaming LHEF 3.0 writer: header and ``<init>`` at :meth:`open`, events in chunks.

    ``pdf`` is the :class:`~lhcflow.physics.pdf.PDFGrid` both beams used (its ``lhapdf_id`` and
    ``alphas_mz`` are written), ``integrator`` the method that sampled the events (``vegas`` or
    ``madnis``). Use as a context manager; the target only appears (atomically) if the block exits
    cleanly::

        with LHEWriter(path, cross_section=σ, pdf=grid, integrator="madnis", event_weight=σ / n) as lhe:
            for chunk in chunks:
                lhe.write(momenta, pdg_ids, statuses)
    """

    def __init__(self, path: str | os.PathLike, *, cross_section: float, pdf: Any, integrator: str,
                 cross_section_error: float = 0.0, event_weight: float | None = None,
                 beam_ids: tuple[int, int] = (2212, 2212), beam_energies: tuple[float, float] = (6500.0, 6500.0),
                 weighting_strategy: int = 3, process_id: int = 1, scale: float = 91.188,
                 alpha_qed: float = 1.0 / 132.507, process: str | list[str] | None = None,
                 header: Mapping[str, str] | None = None):
        if integrator not in INTEGRATOR_NAMES:
            raise ValueError(f"LHE writer: integrator {integrator!r} is not one of {sorted(INTEGRATOR_NAMES)}")
        if pdf.alphas_mz is None:
            raise ValueError(f"LHE writer: PDF grid {pdf.path} has no alpha_s(M_Z) (AlphaS_MZ or _as_0118 in the name)")
        self.path = Path(path)
        self.cross_section = float(cross_section)
        self.cross_section_error = float(cross_section_error)
        self.event_weight = event_weight
        self.beam_ids, self.beam_energies = beam_ids, beam_energies
        self.pdf_ids = (pdf.lhapdf_id,) * 2
        self.weighting_strategy, self.process_id = int(weighting_strategy), int(process_id)
        self.scale, self.alpha_qed, self.alpha_s = scale, alpha_qed, float(pdf.alphas_mz)
        self.process = [process] if isinstance(process, str) else list(process or [])
        self.header = dict(header or {})
        self.integrator = INTEGRATOR_NAMES[integrator]
        self.n_written = 0
        self._stack: contextlib.ExitStack | None = None
        self._fh: TextIO | None = None

    # ------------------------------------------------------------------ file structure
    def _header_text(self) -> str:
        lines = ["<header>"]
        if self.process:
            lines.append("<MGProcCard>")
            lines += [_xml_text(f"generate {p}" if i == 0 else f"add process {p}") for i, p in enumerate(self.process)]
            lines.append("</MGProcCard>")
        for tag, text in self.header.items():
            lines.append(f"<{tag}>")
            lines.append(_xml_text(str(text)).rstrip("\n"))
            lines.append(f"</{tag}>")
        lines.append("</header>")
        return "\n".join(lines) + "\n"

    def _init_text(self) -> str:
        (b1, b2), (e1, e2) = self.beam_ids, self.beam_energies
        s1, s2 = self.pdf_ids
        xmax = self.event_weight if self.event_weight is not None else self.cross_section
        return ("<init>\n"
                f"{int(b1)} {int(b2)} {e1:.8e} {e2:.8e} 0 0 {int(s1)} {int(s2)} "
                f"{self.weighting_strategy} 1\n"
                f"{self.cross_section:.10e} {self.cross_section_error:.10e} {abs(xmax):.10e} {self.process_id}\n"
                f"<generator name='lhcflow' version='{__version__}' integrator='{self.integrator}'>"
                f"unweighted events from {self.integrator} importance sampling</generator>\n"
                "</init>\n")

    def open(self) -> LHEWriter:
        if self._fh is not None:
            raise RuntimeError("LHE writer already open")
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        self._fh = stack.enter_context(_open_text(tmp, self.path.suffix == ".gz"))
        self._stack = stack
        self._fh.write('<LesHouchesEvents version="3.0">\n')
        self._fh.write(self._header_text())
        self._fh.write(self._init_text())
        return self

    def close(self, exc: BaseException | None = None) -> None:
        """Finish the file and rename it onto the target (or drop it if ``exc`` is given)."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        if exc is None:
            self._fh.write("</LesHouchesEvents>\n")
            self._fh = None
            stack.close()
        else:
            self._fh = None
            stack.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> LHEWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)

    # ------------------------------------------------------------------ events
    def write(self, momenta: Any, pdg_ids: Any, statuses: Any, *, weights: Any | None = None,
              scales: Any | None = None, colours: Any | None = None, mothers: Any | None = None,
              masses: Any | None = None, helicities: Any | None = None,
              comments: Any | None = None) -> int:
        """Append events: ``momenta`` (n, P, 4) as (E, px, py, pz) in GeV, ``pdg_ids`` and ``statuses``
        (n, P) or (P,) shared by all events. ``comments`` (n strings) are written as a ``#`` line after
        each event's particles (LHEF optional information). Returns the number of events written."""
        if self._fh is None:
            raise RuntimeError("LHE writer is not open")
        p = _array(momenta, np.float64)
        n, n_part = p.shape[:2]
        if p.shape[2:] != (4,):
            raise ValueError(f"momenta must have shape (n, P, 4), got {p.shape}")
        pdg = np.broadcast_to(_array(pdg_ids, np.int64), (n, n_part))
        st = np.broadcast_to(_array(statuses, np.int64), (n, n_part))
        col = qqbar_colours(pdg, st) if colours is None else np.broadcast_to(_array(colours, np.int64), (n, n_part, 2))
        mot = default_mothers(st) if mothers is None else np.broadcast_to(_array(mothers, np.int64), (n, n_part, 2))
        m = invariant_masses(p) if masses is None else np.broadcast_to(_array(masses, np.float64), (n, n_part))
        spin = np.full((n, n_part), 9.0) if helicities is None else np.broadcast_to(_array(helicities, np.float64), (n, n_part))
        if weights is None:
            if self.event_weight is None:
                raise ValueError("give event weights or construct the writer with event_weight (σ/N)")
            weights = self.event_weight
        w = np.broadcast_to(_array(weights, np.float64), (n,))
        mu = np.broadcast_to(_array(self.scale if scales is None else scales, np.float64), (n,))
        fh = self._fh
        for i in range(n):
            lines = [f"<event>\n{n_part} {self.process_id} {w[i]:+.10e} {mu[i]:.8e} "
                     f"{self.alpha_qed:.8e} {self.alpha_s:.8e}\n"]
            for j in range(n_part):
                lines.append(f"{pdg[i, j]:>9d} {st[i, j]:>2d} {mot[i, j, 0]:>4d} {mot[i, j, 1]:>4d} "
                             f"{col[i, j, 0]:>4d} {col[i, j, 1]:>4d} {p[i, j, 1]:+.10e} {p[i, j, 2]:+.10e} "
                             f"{p[i, j, 3]:+.10e} {p[i, j, 0]:.10e} {m[i, j]:.10e} 0.0000e+00 {spin[i, j]:.1f}\n")
            if comments is not None:
                lines.append(f"#{comments[i]}\n")
            lines.append("</event>\n")
            fh.write("".join(lines))
        self.n_written += n
        return n


def iter_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def write_lhe(path: str | os.PathLike, momenta: Any, pdg_ids: Any, statuses: Any, *, cross_section: float,
              cross_section_error: float = 0.0, event_weight: float | None = None, scales: Any | None = None,
              colours: Any | None = None, chunk_size: int = 10_000, **writer_kwargs: Any) -> Path:
    """Write n unweighted events with weight σ/n (unless ``event_weight`` is given), atomically.

    ``writer_kwargs`` go to :class:`LHEWriter` (``pdf`` and ``integrator`` are required; beam
    ids/energies, scale μ_F, α_QED, ``process`` = MG5-style process string written as a proc card,
    extra ``header`` blocks).
    """
    p = _array(momenta, np.float64)
    n = p.shape[0]
    weight = event_weight if event_weight is not None else (cross_section / n if n else 0.0)
    pdg = _array(pdg_ids, np.int64)
    st = _array(statuses, np.int64)
    sc = None if scales is None else _array(scales, np.float64)
    col = None if colours is None else _array(colours, np.int64)

    with LHEWriter(path, cross_section=cross_section, cross_section_error=cross_section_error,
                   event_weight=weight, **writer_kwargs) as writer:
        for sl in iter_chunks(n, chunk_size):
            writer.write(p[sl], pdg if pdg.ndim == 1 else pdg[sl], st if st.ndim == 1 else st[sl],
                         scales=None if sc is None else (sc if sc.ndim == 0 else sc[sl]),
                         colours=None if col is None else (col if col.ndim == 2 else col[sl]))
    return Path(path)
