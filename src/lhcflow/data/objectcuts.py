"""Object ID and isolation cuts of a column mapping: a small grammar, parsed, never evaluated.

A cut is one branch compared with one number, written as a string or as a mapping::

    Muon_tightId                          # kept where the branch is true (non-zero)
    Muon_pfRelIso04_all < 0.15            # branch, operator, number
    {branch: Electron_cutBased, op: ">=", value: 2}
    {branch: Muon.IsolationVar, op: "<", value: 0.25, optional: true}   # skipped where absent

The operators are ``< <= > >= == !=``; the value is a number or true/false. An object passes
its collection's ``id`` list when it passes every cut. Strings are matched against one regular
expression, so a config can name a branch and a number but cannot run code.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

import awkward as ak
import numpy as np

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
             "!=": operator.ne}
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_.]*)?"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CUT = re.compile(rf"^\s*(?P<branch>{_NAME})\s*(?:(?P<op><=|>=|==|!=|<|>)\s*(?P<value>{_NUMBER}|true|false|True|False))?\s*$")
_CUT_KEYS = {"branch", "op", "value", "optional"}


@dataclass(frozen=True)
class ObjectCut:
    """``branch op value`` on a per-object branch; a bare branch means ``branch != 0``."""

    branch: str
    op: str = "!="
    value: float = 0.0
    optional: bool = False
    bare: bool = False

    def __str__(self) -> str:
        if self.bare:
            return self.branch
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.branch} {self.op} {value}"

    def passes(self, values: ak.Array) -> ak.Array:
        """Boolean per object."""
        return OPERATORS[self.op](values, self.value)


def parse_cut(spec: object) -> ObjectCut:
    """One cut from its string or mapping form; ``ValueError`` says what is wrong."""
    if isinstance(spec, str):
        match = _CUT.match(spec)
        if match is None:
            raise ValueError(f"cannot read cut {spec!r}: write 'BRANCH', or 'BRANCH OP NUMBER' with OP one of "
                             f"{' '.join(OPERATORS)}")
        if match["op"] is None:
            return ObjectCut(match["branch"], bare=True)
        return ObjectCut(match["branch"], match["op"], _number(match["value"]))
    if isinstance(spec, Mapping):
        unknown = set(spec) - _CUT_KEYS
        if unknown or not isinstance(spec.get("branch"), str):
            raise ValueError(f"cut {dict(spec)!r}: needs 'branch' and allows only {sorted(_CUT_KEYS)}")
        op, value = spec.get("op"), spec.get("value")
        if op is None and value is None:
            return ObjectCut(spec["branch"], optional=bool(spec.get("optional", False)), bare=True)
        if op not in OPERATORS or isinstance(value, str) or value is None:
            raise ValueError(f"cut {dict(spec)!r}: 'op' must be one of {list(OPERATORS)} with a numeric 'value'")
        return ObjectCut(spec["branch"], op, float(value), optional=bool(spec.get("optional", False)))
    raise ValueError(f"cut {spec!r}: expected a string such as 'Muon_pfRelIso04_all < 0.15' or {{branch, op, value}}")


def parse_cuts(specs: object) -> list[ObjectCut]:
    """The ``id`` list of a collection (``None`` or ``[]``: no cut)."""
    if specs is None:
        return []
    if isinstance(specs, (str, Mapping)):
        specs = [specs]
    return [parse_cut(s) for s in specs]


def _number(text: str) -> float:
    booleans = {"true": 1.0, "false": 0.0}
    return booleans[text.lower()] if text.lower() in booleans else float(text)


def passes_all(cuts: list[ObjectCut], columns: Mapping[str, ak.Array], like: ak.Array) -> ak.Array:
    """Objects passing every cut whose branch is in ``columns`` (absent optional cuts are skipped)."""
    passed = ak.ones_like(like, dtype=np.bool_)
    for cut in cuts:
        if cut.branch in columns:
            passed = passed & cut.passes(columns[cut.branch])
    return passed


__all__ = ["OPERATORS", "ObjectCut", "parse_cut", "parse_cuts", "passes_all"]
