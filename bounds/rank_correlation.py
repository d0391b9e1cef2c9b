"""Spearman's rank correlation of a prediction with the realised per-task errors
(docs/theory.md §9), in numpy: scipy.stats is not imported by the checker (0.5 s)."""

from __future__ import annotations

import numpy as np

__all__ = ["spearman"]


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, ties given the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(first) - 1
    starts = np.r_[np.flatnonzero(first), x.size]  # tie group g spans ranks starts[g]+1..
    ranks = np.empty(x.size)
    ranks[order] = 0.5 * (starts[group] + 1 + starts[group + 1])
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties; the Pearson correlation of the
    ranks, as ``scipy.stats.spearmanr`` without its import); None when undefined (fewer
    than 3 values, a constant input, or a NaN)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.isnan(a).any() or np.isnan(b).any() or np.ptp(a) == 0 \
            or np.ptp(b) == 0:
        return None
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    return float(np.clip(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))
