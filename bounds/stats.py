"""The statistics the bounds read, gathered in one namespace (docs/theory.md §2-§4).

Kept for existing imports; each topic has its own module:

* :mod:`bounds.distances`: scale normalisation, squared distances, nearest-centroid scores;
* :mod:`bounds.score_moments`: :class:`ScoreStats` (own / foreign score moments, §2);
* :mod:`bounds.clusters`: :class:`ClusterStats` (cluster geometry, §3), computed by
  :mod:`bounds.cluster_fit` with its sketches in :mod:`bounds.sketch`;
* :mod:`bounds.mixture`: :class:`GaussianMixtures` (§4), the one mixture density/sampler.
"""

from __future__ import annotations

from .cluster_fit import cluster_stats
from .clusters import ClusterStats
from .distances import nearest_centroid_scores, sqdist, unit_exponent
from .mixture import GaussianMixtures
from .score_moments import ScoreStats, score_stats, separation_factors

__all__ = [
    "ScoreStats",
    "score_stats",
    "separation_factors",
    "ClusterStats",
    "cluster_stats",
    "GaussianMixtures",
    "sqdist",
    "nearest_centroid_scores",
    "unit_exponent",
]
