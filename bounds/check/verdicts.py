"""The checker's words and small formats: the one verdict vocabulary, the vacuous mark,
ratios and short names (shared by the screen, the tables and the JSON)."""

from __future__ import annotations

import math

from .core import Table

#: a bound at or above this value says (almost) nothing: marked ``vacuous``
VACUOUS = 0.95


#: the default ladder fits this many columns (``--wide``: the full one-line layout)
LADDER_WIDTH = 120


def verdict(holds: bool, category: str) -> str:
    """The one verdict vocabulary of the checker: ``holds``; ``VIOLATED`` (a guaranteed
    bound below the error: a bug or a misuse, exit 1); ``fails (PAC)`` / ``fails
    (assumption)`` (a PAC or assumption-dependent bound below the error: allowed, the exit
    code ignores it). A.1 diagnostics say ``flagged`` (and ``-`` otherwise)."""
    if holds:
        return "holds"
    return "VIOLATED" if category == "guaranteed" else \
        f"fails ({'PAC' if category == 'pac' else category})"


def ratio_and_gap(bound: float, error: float) -> tuple[float | None, float]:
    """(ratio bound/error or None when error == 0, gap bound - error) of one value.

    Not ``cft.experiments.analysis.tightness`` (an array ratio with a half-sample floor for a zero
    error): this one reports no ratio for a zero error, and the gap."""
    ratio = bound / error if error > 0 else None
    return ratio, bound - error


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


def _ratio(value: float, error: float) -> str:
    ratio, gap = ratio_and_gap(value, error)
    return f"x{ratio:.2f}" if ratio is not None else f"+{gap:.2g}"


_SHORT = {"pac-clopper-pearson:pooled": "CP-pooled", "pac-clopper-pearson": "CP",
          "pac-hoeffding": "Hoeffding"}


def _short(key: str) -> str:
    return _SHORT.get(key, key.removeprefix("pred:"))


def _a1(text: str) -> str:
    """The ladder's A.1 cell in the verdict vocabulary: ``holds``, ``flagged n/m``, ``-``."""
    if text.startswith("fails (") and text.endswith(" tasks)"):
        return "flagged " + text[len("fails ("):-len(" tasks)")]
    return text


def _rule_verdict(tab: Table, a1: str) -> str:
    """A rule's verdict: its guaranteed bounds (``holds`` / ``VIOLATED: keys``), then the
    A.1 diagnostics when they flag tasks."""
    bad = [row.key for row in tab.rows if row.category == "guaranteed" and not row.holds]
    out = f"VIOLATED: {', '.join(bad)}" if bad else "holds"
    a1 = _a1(a1)
    return f"{out}; A.1 {a1}" if a1.startswith("flagged") else out


def _compact_name(key: str) -> str:
    if key in _SHORT:
        return _SHORT[key]
    return key.removeprefix("pred:").removeprefix("train:").replace(" (earlier)", "(e)")


def _ratio_short(value: float, ref: float) -> str:
    ratio, gap = ratio_and_gap(value, ref)
    if ratio is None:
        return f"+{gap:.2g}"
    return f"x{ratio:.0f}" if ratio >= 10 else f"x{ratio:.2g}"
