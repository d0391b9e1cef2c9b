"""Summaries over seeds shared by the report's tables: mean, sample standard deviation and
the 95 % Student-t interval, and the CSV's number format."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["ci95", "csv_number", "mean_std"]


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """``(mean, sample std with ddof=1)``; ``(None, None)`` when empty, std None for one."""
    n = len(values)
    if n == 0:
        return None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def ci95(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """``(mean, std, half-width)`` of the 95 % t-interval (``None`` with fewer than 2)."""
    mean, std = mean_std(values)
    if mean is None:
        raise ValueError("values: empty")
    if std is None:
        return mean, None, None
    from scipy.stats import t

    return mean, std, float(t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))


def csv_number(x: float | None) -> str:
    """A CSV cell: six decimals, empty for None."""
    return "" if x is None else f"{x:.6f}"
