"""Which heavy lines the tHj chain simulates, and the check that its outputs agree on it (thesis §6.1).

``thj.process.heavy`` is ``top`` (pp → tHj only: the datasets of Eq 6.4, t → b μ⁺ ν) or
``top_antitop`` (tHj + t̄Hj; t̄ → b̄ W⁻ → b̄ μ⁻ ν̄ under the same forced decays). The thesis' cut
flow is consistent with top-only datasets normalised to σ(t + t̄) = 43.6 fb (:mod:`lhcflow.thj.thesis`).
Every output of the chain records the choice (cross_sections.json ``heavy``, the ``heavy`` attribute
of hard.h5 and paired files, the LHE header, the fiducial record), and :func:`require_same` refuses to
combine records that disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from lhcflow.thj.files import read_paired_file

#: choice → heavy-line kinds of :mod:`lhcflow.thj.matrix_element` (HEAVY_KINDS)
HEAVY_CHOICES = {"top": ("top",), "top_antitop": ("top", "antitop")}
#: the thesis datasets (Eq 6.4: a μ⁺, i.e. top production)
DEFAULT_HEAVY = "top"


def kinds(choice: str) -> tuple[str, ...]:
    """Heavy-line kinds of a choice; an unknown choice raises naming the config field."""
    if choice not in HEAVY_CHOICES:
        raise ValueError(f"thj.process.heavy: {choice!r} is not one of {sorted(HEAVY_CHOICES)} "
                         "(top: pp -> tHj as in Eq 6.4; top_antitop: tHj + t~Hj)")
    return HEAVY_CHOICES[choice]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def of_paired_file(path: str | Path) -> str | None:
    """The ``heavy`` attribute of a paired file, None if it has none."""
    value = read_paired_file(path, fields=())[1].get("heavy")
    return None if value is None else _text(value)


def of_json(path: str | Path) -> str | None:
    """The ``heavy`` field of a cross-section or fiducial record, None if it has none."""
    return json.loads(Path(path).read_text()).get("heavy")


def require_same(sources: Mapping[str, str | None]) -> str | None:
    """The one choice recorded by all ``sources`` (name → choice; None: not recorded, not checked).

    Raises naming every source and its choice when they differ: a paired dataset of top events must
    not be analysed with a σ_fid or a density of t + t̄ (or the reverse).
    """
    known = {name: choice for name, choice in sources.items() if choice is not None}
    for name, choice in known.items():
        kinds(choice)
    if len(set(known.values())) > 1:
        listing = "; ".join(f"{name}: heavy = {choice}" for name, choice in known.items())
        raise ValueError(f"tHj outputs of different heavy-line choices cannot be combined ({listing}); "
                         "regenerate them with one thj.process.heavy")
    return next(iter(known.values()), None)


def check_mem_inputs(paired: Sequence[str | Path], fiducial_json: str | Path,
                     process: Mapping | None = None) -> str | None:
    """The MEM's paired test files, fiducial record and (if given) process config, whose ``heavy``
    sets the density dσ/dx_hard of the integrand, describe one heavy choice; raises if not."""
    sources = {str(p): of_paired_file(p) for p in paired}
    sources[str(fiducial_json)] = of_json(fiducial_json)
    if process is not None:
        sources["thj.process.heavy (the MEM's density)"] = process.get("heavy", DEFAULT_HEAVY)
    return require_same(sources)
