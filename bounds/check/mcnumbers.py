"""How a Monte-Carlo estimate is printed: with the digits its standard error justifies.

A prediction of ``pred:*`` (docs/theory.md §9-§10) is a Monte-Carlo frequency over a
finite number of draws. Printing ``0.020`` when its standard error is 0.003 claims a
third digit that another machine (another BLAS kernel, hence other last bits of the
draws' transform) does not reproduce. The convention here is the usual one of
experimental physics: the standard error rounded to one significant digit, the estimate
rounded to the same decimal place (``0.034±0.002``, ``0.21±0.03``).
"""

from __future__ import annotations

import math

__all__ = ["mc_decimals", "fmt_mc"]

#: decimals when the standard error is 0 or not finite (an exact frequency, e.g. task 0
#: of ``pred:gauss-scores``, which has no earlier module) and the most ever printed
DEFAULT_DECIMALS = 3
MAX_DECIMALS = 6


def mc_decimals(se: float, *, at_most: int = MAX_DECIMALS) -> int:
    """Decimal places justified by a standard error ``se``: the place of its first
    significant digit after rounding to one digit (0.0034 -> 3, 0.0096 -> 2, 0.03 -> 2);
    ``DEFAULT_DECIMALS`` when ``se`` is 0 or not finite; never more than ``at_most``."""
    if not math.isfinite(se) or se <= 0.0:
        return min(DEFAULT_DECIMALS, at_most)
    d = -math.floor(math.log10(se))
    if round(se, d) >= 10.0 ** (1 - d):  # 0.0096 rounds to 0.01: one place fewer
        d -= 1
    return max(0, min(d, at_most))


def fmt_mc(value: float, se: float, *, pm: bool = True, at_most: int = MAX_DECIMALS) -> str:
    """``value±se`` (or ``value`` alone with ``pm=False``) at :func:`mc_decimals` places."""
    d = mc_decimals(se, at_most=at_most)
    text = f"{value:.{d}f}"
    if pm:
        text += f"±{se:.{d}f}" if math.isfinite(se) else "±?"
    return text
