"""Task-retrieval error bounds (docs/theory.md; contract in docs/architecture.md).

Pure numpy / scipy / sympy; no torch import. Typical use::

    import bounds
    S = bounds.nearest_centroid_scores(Z, centroids, centroid_task)
    cs = bounds.cluster_stats(Z, y, centroids, centroid_task, sketch_rank=16)
    res = bounds.evaluate(bounds.BoundInputs(scores=S, task=y, clusters=cs))
"""

# the registry first: it registers moment.MomentOptBound, a subclass of registry.Bound
from .registry import REGISTRY, Bound, BoundInputs, BoundResult, evaluate

# isort: split
from .chernoff import gaussian_exponent, pairwise_chernoff
from .empirical import empirical_error, retrieval_errors, retrieval_margin
from .moment import (
    MomentCertificate,
    MomentOptBound,
    centroid_moment_bound,
    check_law,
    sup_union_probability,
)
from .stats import (
    ClusterStats,
    GaussianMixtures,
    ScoreStats,
    cluster_stats,
    nearest_centroid_scores,
    score_stats,
    sqdist,
)
from .symbolic import latex

__all__ = [
    "REGISTRY",
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
    "nearest_centroid_scores",
    "pairwise_chernoff",
    "retrieval_errors",
    "retrieval_margin",
    "score_stats",
    "sqdist",
    "sup_union_probability",
]
