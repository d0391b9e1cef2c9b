"""Input validation shared by the `bounds` package.

Every public function funnels its arguments through these helpers so that bad input
raises ``ValueError("<argument>: <what is wrong>")``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "fmt_list",
    "as_float_array",
    "as_index_array",
    "check_positive_int",
    "check_probability",
]


def fmt_list(items: object, limit: int = 8) -> str:
    """``[a, b, ...]`` for a message, the first ``limit`` items then ``... (N in all)``, so
    that a one-line error stays one short line for any number of tasks."""
    seq = np.asarray(items).ravel().tolist() if isinstance(items, np.ndarray) else list(items)
    if len(seq) <= limit:
        return "[" + ", ".join(map(str, seq)) + "]"
    return "[" + ", ".join(map(str, seq[:limit])) + f", ... ({len(seq)} in all)]"


def as_float_array(
    x: object,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Return ``x`` as a finite float64 array, raising a named ValueError otherwise."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # pragma: no cover - message path
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {arr.shape}"
            )
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: is empty (shape {arr.shape})")
    # a NaN or an infinity makes the sum non-finite; a finite sum needs no (n,) mask (an
    # overflowing one is checked element by element)
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()
    if not np.isfinite(total) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return arr


def as_index_array(
    x: object, name: str, *, length: int | None = None, upper: int | None = None
) -> np.ndarray:
    """Return ``x`` as a 1-D int64 array of non-negative integers (< ``upper`` if given)."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}, got {arr.shape[0]}")
    if arr.size and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: must hold integer task/cluster ids")
    elif arr.size and arr.dtype.kind not in "iub":
        raise ValueError(f"{name}: must hold integers, got dtype {arr.dtype}")
    if arr.size and arr.dtype.kind in "uf" and arr.max() > np.iinfo(np.int64).max:
        # before the int64 cast, which would wrap a uint64 id >= 2**63 to a negative one
        big = int(arr.max())
        where = f"for {upper} task(s)" if upper is not None else "(beyond int64)"
        raise ValueError(f"{name}: id {big} out of range {where}")
    if arr.size and arr.dtype.kind == "f" and arr.min() < np.iinfo(np.int64).min:
        raise ValueError(f"{name}: ids must be non-negative, found {int(arr.min())}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name}: ids must be non-negative, found {int(arr.min())}")
    if upper is not None and arr.size and arr.max() >= upper:
        raise ValueError(f"{name}: id {int(arr.max())} out of range for {upper} task(s)")
    return arr


def check_positive_int(x: object, name: str, *, allow_none: bool = False) -> int | None:
    """Validate a positive integer parameter (``None`` allowed when ``allow_none``)."""
    if x is None and allow_none:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name}: must be a positive integer, got {x!r}")
    if int(x) < 1:
        raise ValueError(f"{name}: must be a positive integer, got {int(x)}")
    return int(x)


def check_probability(x: object, name: str) -> float:
    """Validate a confidence parameter in the open interval (0, 1)."""
    try:
        val = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number in (0, 1), got {x!r}") from None
    if not (0.0 < val < 1.0):
        raise ValueError(f"{name}: must lie in (0, 1), got {val}")
    return val
