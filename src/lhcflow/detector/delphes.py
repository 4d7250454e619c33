"""Delphes as the detector stage (thesis §6.1): showered events to HepMC3, then ``DelphesHepMC3``.

Needs two things this project does not ship: the ``pyhepmc`` package (imported only here, only
when used) and a Delphes build. The HepMC3 events are flat: one vertex per event, the two beam
protons in (status 4), every other particle of the Pythia record out, with HepMC status 1 (stable),
2 (decayed hadron) or |Pythia status| (so the hard-process top keeps status 22 for pairing). The
event number is the LHE index of the hard event. Delphes' ROOT output is read through the
ingestor's ``delphes`` preset, like the parametrized detector's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from lhcflow.atomic import atomic_path

EXECUTABLE = "DelphesHepMC3"
INSTALL_HINT = ("install Delphes (https://github.com/delphes/delphes: `./configure && make` with ROOT "
                "available) and put DelphesHepMC3 on PATH, set detector.executable to its full path, or "
                "use detector.kind: parametrized")


class DelphesNotFound(RuntimeError):
    """No ``DelphesHepMC3`` executable, or no ``pyhepmc`` to feed it."""


def find_delphes(executable: str | os.PathLike | None = None) -> Path:
    """The ``DelphesHepMC3`` binary: ``executable`` (a path or a name on PATH) or the default name."""
    name = str(executable or EXECUTABLE)
    found = shutil.which(name)
    if found is None:
        raise DelphesNotFound(f"Delphes executable {name!r} not found on PATH; {INSTALL_HINT}")
    return Path(found)


def require_pyhepmc():
    """Import ``pyhepmc`` or explain how to get it."""
    try:
        import pyhepmc
    except ImportError:
        raise DelphesNotFound("the Delphes detector needs the pyhepmc package to write HepMC3 "
                              "(pip install pyhepmc), which lhcflow does not install") from None
    return pyhepmc


def hepmc_status(status: np.ndarray) -> np.ndarray:
    """Pythia status → HepMC status: 1 stable, 4 beam, 2 decayed hadron, else |status|."""
    status = np.asarray(status)
    return np.select([status > 0, status == -12, status <= -81], [1, 4, 2], np.abs(status))


class HepMC3Writer:
    """Flat HepMC3 ASCII events from Pythia records (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._hepmc = require_pyhepmc()
        self._writer = None

    def __enter__(self) -> HepMC3Writer:
        self._writer = self._hepmc.io.WriterAscii(str(self.path))
        return self

    def write(self, pid, status, momenta, counts, numbers, weights) -> None:
        """Append events: flat ``pid``, ``status``, ``momenta`` (E, px, py, pz) split by ``counts``."""
        hepmc = self._hepmc
        pid, status, momenta = np.asarray(pid), hepmc_status(status), np.asarray(momenta, float)
        for start, n, number, weight in zip(np.r_[0, np.cumsum(counts)[:-1]], counts, numbers, weights):
            event = hepmc.GenEvent(hepmc.Units.GEV, hepmc.Units.MM)
            event.event_number = int(number)
            event.weights = [float(weight)]
            vertex = hepmc.GenVertex()
            for i in range(start, start + n):
                e, px, py, pz = momenta[i]
                particle = hepmc.GenParticle((px, py, pz, e), int(pid[i]), int(status[i]))
                (vertex.add_particle_in if status[i] == 4 else vertex.add_particle_out)(particle)
            event.add_vertex(vertex)
            self._writer.write_event(event)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()


def run_delphes(card: str | os.PathLike, hepmc_path: str | os.PathLike, out_root: str | os.PathLike,
                executable: str | os.PathLike | None = None) -> Path:
    """Run ``DelphesHepMC3 card out.root events.hepmc``; the output appears atomically."""
    binary = find_delphes(executable)
    card = Path(card)
    if not card.is_file():
        raise FileNotFoundError(f"Delphes card not found: {card}")
    with atomic_path(out_root) as tmp:
        tmp.unlink()  # Delphes refuses to write over an existing file
        command = [str(binary), str(card), str(tmp), str(hepmc_path)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{binary} failed (exit {done.returncode}) on {hepmc_path} with card {card}:\n"
                               f"{done.stderr[-2000:] or done.stdout[-2000:]}")
    return Path(out_root)
