"""Task-retrieval error bounds (docs/theory.md; contract in docs/architecture.md).

Pure numpy / scipy / sympy; no torch import. Typical use::

    import bounds
    S = bounds.nearest_centroid_scores(Z, centroids, centroid_task)
    cs = bounds.cluster_stats(Z, y, centroids, centroid_task, sketch_rank=16)
    res = bounds.evaluate(bounds.BoundInputs(scores=S, task=y, clusters=cs))

New bounds: subclass :class:`Bound`, declare ``tier``/``reads``/``assumptions`` and call
:func:`register` (or expose it through the ``cft_bounds.bounds`` entry point); check it
with ``python -m bounds.selftest`` (README, "Adding a bound"; :mod:`bounds.testing`).
"""

from typing import Any

from .base import EXACT_TIERS, INPUT_FIELDS, TIERS, Bound, BoundInputs, BoundResult
from .chernoff import gaussian_exponent, pairwise_chernoff
from .cluster_fit import cluster_stats
from .clusters import ClusterStats
from .distances import nearest_centroid_scores, sqdist
from .empirical import empirical_error, retrieval_errors, retrieval_margin
from .mixture import GaussianMixtures, stack_mixtures
from .moment import (
    MomentCertificate,
    MomentOptBound,
    centroid_moment_bound,
    check_law,
    sup_union_probability,
)
from .registry import REGISTRY, evaluate, load_plugins, register, unregister, validate_bound
from .score_moments import ScoreStats, score_stats

__all__ = [
    "EXACT_TIERS",
    "INPUT_FIELDS",
    "REGISTRY",
    "TIERS",
    "Bound",
    "BoundInputs",
    "BoundResult",
    "ClusterStats",
    "GaussianMixtures",
    "MomentCertificate",
    "MomentOptBound",
    "ScoreStats",
    "centroid_moment_bound",
    "check_law",
    "cluster_stats",
    "empirical_error",
    "evaluate",
    "gaussian_exponent",
    "latex",
    "load_plugins",
    "nearest_centroid_scores",
    "pairwise_chernoff",
    "register",
    "retrieval_errors",
    "retrieval_margin",
    "score_stats",
    "sqdist",
    "stack_mixtures",
    "sup_union_probability",
    "unregister",
    "validate_bound",
]


def __getattr__(name: str) -> Any:
    """``bounds.latex`` imports sympy only when used (docs/theory.md §8)."""
    if name == "latex":
        from .symbolic import latex

        return latex
    raise AttributeError(f"module 'bounds' has no attribute {name!r}")
