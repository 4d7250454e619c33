"""A thesis claim as one row of the validation report: a measured value, its reference and the target.

A :class:`Target` says how the value is judged against the reference: within ``n`` combined standard
deviations, within a relative tolerance, at most ``k`` times the reference (a deviation against its
statistical floor), inside an interval, or not at all (``info``: a number the thesis does not quote, or a
row the run is too small to test). The verdict is computed, never stored by hand, so a row cannot say
"pass" for a value that misses its target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

STATUSES = ("pass", "fail", "info", "missing")


@dataclass(frozen=True)
class Target:
    """How ``value ± error`` is compared with ``reference ± reference_error``.

    ``kind`` is one of ``sigma`` (|v − r| ≤ limit·√(e² + e_r²)), ``relative`` (|v/r − 1| ≤ limit),
    ``at_most_times`` (v ≤ limit·r), ``interval`` (limit[0] ≤ v ≤ limit[1]), ``abs_at_most`` (|v| ≤ limit),
    ``at_least`` (v ≥ limit) or ``info`` (no verdict).
    """

    kind: str
    limit: float | tuple[float, float] | None = None

    KINDS = ("sigma", "relative", "at_most_times", "interval", "abs_at_most", "at_least", "info")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown target kind {self.kind!r} (expected one of {', '.join(self.KINDS)})")
        if self.kind != "info" and self.limit is None:
            raise ValueError(f"target {self.kind!r} needs a limit")

    @classmethod
    def sigma(cls, n: float) -> Target:
        return cls("sigma", float(n))

    @classmethod
    def relative(cls, tolerance: float) -> Target:
        return cls("relative", float(tolerance))

    @classmethod
    def at_most_times(cls, factor: float) -> Target:
        return cls("at_most_times", float(factor))

    @classmethod
    def interval(cls, lo: float, hi: float) -> Target:
        return cls("interval", (float(lo), float(hi)))

    @classmethod
    def abs_at_most(cls, bound: float) -> Target:
        return cls("abs_at_most", float(bound))

    @classmethod
    def at_least(cls, bound: float) -> Target:
        return cls("at_least", float(bound))

    @classmethod
    def info(cls) -> Target:
        return cls("info")

    @property
    def needs_reference(self) -> bool:
        return self.kind in ("sigma", "relative", "at_most_times")

    def passes(self, value: float, error: float | None, reference: float | None,
               reference_error: float | None) -> bool | None:
        """The verdict, or None for ``info``. Errors that are not given count as zero."""
        if self.kind == "info":
            return None
        if self.needs_reference and (reference is None or not math.isfinite(reference)):
            raise ValueError(f"target {self.kind!r} needs a finite reference, got {reference!r}")
        err = math.hypot(_finite_or_zero(error), _finite_or_zero(reference_error))
        if self.kind == "sigma":
            return abs(value - reference) <= self.limit * err
        if self.kind == "relative":
            return abs(value / reference - 1.0) <= self.limit
        if self.kind == "at_most_times":
            return value <= self.limit * reference
        if self.kind == "interval":
            return self.limit[0] <= value <= self.limit[1]
        if self.kind == "abs_at_most":
            return abs(value) <= self.limit
        return value >= self.limit  # at_least

    def describe(self) -> str:
        """The target as text for the table, e.g. ``≤ 2 × reference``."""
        if self.kind == "sigma":
            return f"within {self.limit:g}σ"
        if self.kind == "relative":
            return f"within {100 * self.limit:g} %"
        if self.kind == "at_most_times":
            return f"≤ {self.limit:g} × reference"
        if self.kind == "interval":
            return f"in [{self.limit[0]:g}, {self.limit[1]:g}]"
        if self.kind == "abs_at_most":
            return f"|value| ≤ {self.limit:g}"
        if self.kind == "at_least":
            return f"≥ {self.limit:g}"
        return "no verdict"


@dataclass(frozen=True)
class Row:
    """One thesis claim the run can test: our value ± error against the reference, judged by ``target``.

    ``reference_label`` says what the reference is (``thesis``, ``Train/Truth floor``, ``hard-level
    truth``), ``source`` where the thesis states the claim (``Table 5.1``, ``Fig. 4.4``), ``note`` what
    limits the row (sample size, a known difference of setup).
    """

    chain: str
    group: str
    quantity: str
    value: float | None
    target: Target
    source: str
    error: float | None = None
    reference: float | None = None
    reference_error: float | None = None
    reference_label: str = "thesis"
    unit: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``pass`` / ``fail`` by the target, ``info`` without a verdict, ``missing`` without a value."""
        if self.value is None or not math.isfinite(self.value):
            return "missing"
        if self.target.needs_reference and (self.reference is None or not math.isfinite(self.reference)):
            return "missing"
        verdict = self.target.passes(self.value, self.error, self.reference, self.reference_error)
        return "info" if verdict is None else ("pass" if verdict else "fail")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["target"] = {"kind": self.target.kind, "limit": self.target.limit, "text": self.target.describe()}
        out["status"] = self.status
        return out


def _finite_or_zero(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(x) else 0.0
