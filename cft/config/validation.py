"""The one set of value validators of ``cft``: seeds, integers, reals.

Each returns the value as a plain Python number or raises a one-line ``ValueError`` that
starts with the option's name (the CLI turns it into exit code 2). Bools are refused
where a number is expected (``True`` is an ``int`` in Python, never a count here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_float", "check_int", "check_seed"]


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed: a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"{name}: must be a non-negative int, got {seed!r}")
    return int(seed)


def check_int(name: str, value: Any, *, minimum: int = 0, allow_none: bool = False) -> int | None:
    """An integer ``>= minimum`` (``None`` passes when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, low: float, high: float | None = None,
                strict_low: bool = False) -> float:
    """A finite real in ``[low, high]`` (``(low, high]`` if ``strict_low``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    v = float(value)
    bad_low = v <= low if strict_low else v < low
    if not math.isfinite(v) or bad_low or (high is not None and v > high):
        rng = f"{'(' if strict_low else '['}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name}: must be in {rng}, got {value!r}")
    return v
