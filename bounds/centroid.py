"""Centroid-geometry bounds A, B', B, C, D (docs/theory.md §3.2-§3.6).

Shared representation space, nearest-centroid retrieval; each bound reads only the
:class:`~bounds.clusters.ClusterStats` of the sample it bounds (exact on that sample).
"""

from __future__ import annotations

import numpy as np

from .base import Bound, BoundInputs
from .clusters import ClusterStats
from .forms import FUNCS, GUARD

__all__ = ["MarginBound", "ClippedMarkovBound", "SecondMomentBound", "DirectionalBound",
           "TruncatedUnionBound", "truncated_union"]


def _per_task_from_clusters(cs: ClusterStats, eps_c: np.ndarray) -> np.ndarray:
    return np.bincount(cs.task, weights=cs.weight * eps_c, minlength=cs.n_tasks)


# ------------------------------------------------------------------ centroid bounds
_CENTROID_ASSUMPTIONS = (
    "shared representation space, nearest-centroid retrieval over all stored centroids",
    "P is the distribution of the points summarised in the ClusterStats",
)


class MarginBound(Bound):
    """Bound A: eps_t <= sum_c w_c P_c(||z - mu_c|| >= D_c / 2) (docs/theory.md §3.2)."""

    name, title, section = "A", "margin fraction", "docs/theory.md §3.2"
    at_most = ("Bprime",)
    assumptions = _CENTROID_ASSUMPTIONS + ("needs per-point radii",)
    tier = "training-time"
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        r2 = cs.point_radius**2
        ind = FUNCS["margin_indicator"](r2, g["Dc2"][cs.point_cluster], GUARD)
        per = np.bincount(cs.point_task, weights=ind, minlength=cs.n_tasks) / g["n_t"]
        zero = not np.any(FUNCS["margin_indicator"](cs.max_radius**2, g["Dc2"], GUARD))
        return per, {"all_radii_below_half_separation": bool(zero)}


class ClippedMarkovBound(Bound):
    """Bound B': eps_t <= sum_c w_c E_c min(1, 4||z-mu_c||^2 / D_c^2) (§3.3)."""

    name, title, section = "Bprime", "clipped Markov per point", "docs/theory.md §3.3"
    at_most = ("B",)
    assumptions = _CENTROID_ASSUMPTIONS + ("needs per-point radii",)
    tier = "training-time"
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        term = FUNCS["markov"](cs.point_radius**2, g["Dc2"][cs.point_cluster], GUARD)
        per = np.bincount(cs.point_task, weights=term, minlength=cs.n_tasks) / g["n_t"]
        return per, {}


class SecondMomentBound(Bound):
    """Bound B: eps_t <= sum_c w_c min(1, 4 s_c^2 / D_c^2) (§3.3)."""

    name, title, section = "B", "second moment (Markov)", "docs/theory.md §3.3"
    continuous = 1e-6
    assumptions = _CENTROID_ASSUMPTIONS
    tier = "training-time"
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        eps_c = FUNCS["markov"](cs.msr, g["Dc2"], GUARD)
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c}


class DirectionalBound(Bound):
    """Bound C: eps_c <= min(1, sum_nu v_nu / (v_nu + a_nu^2)) (§3.4)."""

    name, title, section = "C", "directional Cantelli + union", "docs/theory.md §3.4"
    continuous = 1e-6
    assumptions = _CENTROID_ASSUMPTIONS + (
        "covariance sketch: top-q eigenpairs + residual upper bound (exact if q = d)",
    )
    tier = "training-time"
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        eps_c = np.minimum(1.0, inputs.directional().sum(axis=1))
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c}


class TruncatedUnionBound(Bound):
    """Bound D: min over r in {D_(k)/2} U {inf} of Markov(r) + truncated union (§3.6)."""

    name, title, section = "D", "truncated union", "docs/theory.md §3.6"
    at_most = ("B", "C")
    assumptions = DirectionalBound.assumptions
    tier = "training-time"
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        eps_c, r2 = truncated_union(inputs)
        r_best = np.ldexp(np.sqrt(r2) / 2.0, inputs.unit_exp["clusters"])
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c, "r": r_best}


def truncated_union(inputs: BoundInputs) -> tuple[np.ndarray, np.ndarray]:
    """Bound D's per-cluster term (docs/theory.md §3.6) and the squared distance ``(2r)^2``
    of its best truncation radius r (+inf: the whole union), both (C,); cached on
    ``inputs`` (``moment-opt`` reads it too, §14.1)."""
    if "truncated_union" in inputs._cache:
        return inputs._cache["truncated_union"]
    cs = inputs.clusters
    g = inputs.cluster_geometry()
    p = inputs.directional()
    C = cs.n_clusters
    Df = np.where(g["foreign"], g["D2"], np.inf)
    order = np.argsort(Df, axis=1, kind="stable")
    Ds = np.take_along_axis(Df, order, axis=1)
    ps = np.take_along_axis(p, order, axis=1)
    cum = np.concatenate([np.zeros((C, 1)), np.cumsum(ps, axis=1)], axis=1)
    # first index of each run of equal sorted distances: strict "D_nu < 2r"
    new = np.ones_like(Ds, dtype=bool)
    new[:, 1:] = Ds[:, 1:] != Ds[:, :-1]
    first = np.maximum.accumulate(np.where(new, np.arange(C)[None, :], 0), axis=1)
    markov = FUNCS["markov"](cs.msr[:, None], Ds, GUARD)
    vals = markov + np.take_along_axis(cum, first, axis=1)
    k = np.argmin(vals, axis=1)
    eps_c = np.minimum(1.0, vals[np.arange(C), k])
    out = (eps_c, Ds[np.arange(C), k])
    inputs._cache["truncated_union"] = out
    return out
