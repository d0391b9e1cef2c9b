"""Cluster statistics of representations about stored centroids: :func:`cluster_stats`
(docs/theory.md §3) -> :class:`bounds.clusters.ClusterStats`.

Complexity: O(n K d) for the assignment (per task), O(n d) for radii and offsets and
O(sum_c n_c^2 d) (Gram path, n_c <= d) or O(sum_c (n_c d^2 + d^3)) (covariance path) for
the sketches (:mod:`bounds.sketch`). The points are visited one cluster at a time, each
cluster's rows gathered from Z when needed (cache-resident, no sorted copy of Z: fresh
memory costs more than the work on the bench machine, docs/theory.md §14.7).
"""

from __future__ import annotations

import numpy as np

from ._blas import thread_map
from ._validate import as_float_array, as_index_array, check_positive_int, fmt_list
from .clusters import ClusterStats
from .distances import _AT0, _group_starts, sqdist, unit_exponent
from .sketch import cov_sketch_of

__all__ = ["cluster_stats"]

#: clusters per block of the per-cluster passes (blocks run on threads, bounds/_blas.py)
_CLUSTER_BLOCK = 32


def cluster_stats(Z: object, task: object, centroids: object, centroid_task: object, *,
                  sketch_rank: int | None = None) -> ClusterStats:
    """Cluster geometry of representations ``Z`` about stored centroids (§3).

    Each point is assigned to its nearest *own* centroid (ties -> the lexicographically
    smallest centroid, so relabelling clusters changes nothing; the bounds
    are valid for any own-centroid assignment, docs/theory.md §3.1). Centroids need not be
    cluster means. ``sketch_rank=None`` stores the exact covariance eigendecomposition.
    Computed on ``Z`` and the centroids divided by a power of two (exact) so that squared
    radii and covariances stay in range; multiplying the data by 2**k multiplies every
    length in the result by exactly 2**k.
    """
    Z = as_float_array(Z, "Z", ndim=2)
    mu = as_float_array(centroids, "centroids", ndim=2)
    e = unit_exponent(Z, mu)
    cs = _cluster_stats_unit(Z, e, task, mu if e == 0 else np.ldexp(mu, -e), centroid_task,
                             sketch_rank=sketch_rank).scaled(-e)
    cs.centroid = mu.copy()
    return cs


def _assign(Z: np.ndarray, e: int, task: np.ndarray, mu: np.ndarray, ct: np.ndarray
            ) -> np.ndarray:
    """Each point's nearest own centroid (ties: the lexicographically smallest one)."""
    assign = np.empty(Z.shape[0], dtype=np.int64)
    order = np.argsort(task, kind="stable")
    tasks, starts, sizes = np.unique(task[order], return_index=True, return_counts=True)

    def one_task(i: int) -> None:  # O(n_t K_t d); the tasks write disjoint points
        t = tasks[i]
        pts = order[starts[i] : starts[i] + sizes[i]]
        own = np.flatnonzero(ct == t)
        # canonical tie-break: lexicographically smallest centroid (permutation-invariant)
        own = own[np.lexsort(mu[own].T[::-1])]
        # any own centroid gives valid bounds (§3.1), so large problems may use BLAS
        direct = pts.size * own.size * Z.shape[1] <= (1 << 20)
        Zt = Z[pts]
        if e:
            np.ldexp(Zt, -e, out=Zt)
        assign[pts] = own[np.argmin(sqdist(Zt, mu[own], direct=direct), axis=1)]

    # one BLAS thread per task: small products
    thread_map(one_task, range(tasks.size), elems=Z.size)
    return assign


def _cluster_stats_unit(Z: np.ndarray, e: int, task: object, mu: np.ndarray,
                        centroid_task: object, *, sketch_rank: int | None = None
                        ) -> ClusterStats:
    """:func:`cluster_stats` of the data ``Z / 2**e`` (largest magnitude about 1; the
    points scaled where they are copied, exactly) about the scaled centroids ``mu``."""
    n, d = Z.shape
    if mu.shape[1] != d:
        raise ValueError(f"centroids: dimension {mu.shape[1]} != Z dimension {d}")
    C = mu.shape[0]
    ct = as_index_array(centroid_task, "centroid_task", length=C)
    task = as_index_array(task, "task", length=n)
    q = check_positive_int(sketch_rank, "sketch_rank", allow_none=True)
    tasks_with_points = np.unique(task)
    has_centroid = np.zeros(max(int(task.max()), int(ct.max())) + 1, dtype=bool)
    has_centroid[ct] = True
    lacking = tasks_with_points[~has_centroid[tasks_with_points]]
    if lacking.size:
        raise ValueError(f"task: task(s) {fmt_list(lacking)} have points but no centroid")
    assign = _assign(Z, e, task, mu, ct)
    order = np.argsort(assign, kind="stable")
    counts = np.bincount(assign, minlength=C)
    starts, _ = _group_starts(assign[order], C)
    r2 = np.empty(n)
    max_radius, offset, diag = np.zeros(C), np.zeros((C, d)), np.zeros((C, d))

    def rows(c: int) -> np.ndarray:
        return order[starts[c] : starts[c] + counts[c]]

    def about_centroid(c: int) -> np.ndarray:
        """Cluster c's points (scaled), less its centroid: a fresh, small array."""
        X = Z[rows(c)]
        if e:
            np.ldexp(X, -e, out=X)
        X -= mu[c]
        return X

    def first_pass(cs: list[int]) -> None:
        """Radii, offsets and per-coordinate variances of clusters ``cs`` (their own rows)."""
        for c in cs:
            X = about_centroid(c)
            r2c = np.einsum("ij,ij->i", X, X)
            r2[rows(c)] = r2c
            max_radius[c] = np.sqrt(np.maximum.reduce(r2c))
            offset[c] = np.add.reduceat(X, _AT0, axis=0)[0] / counts[c]
            X -= offset[c]
            np.square(X, out=X)
            # diag(Sigma_c): the per-coordinate variance (the predictions' residual below)
            diag[c] = np.add.reduceat(X, _AT0, axis=0)[0] / counts[c]

    # one cluster at a time (module docstring), blocks of clusters on threads
    nonempty = np.flatnonzero(counts).tolist()
    cb = _CLUSTER_BLOCK
    thread_map(first_pass, [nonempty[i : i + cb] for i in range(0, len(nonempty), cb)],
               elems=Z.size)

    def centred(c: int) -> np.ndarray:
        """Cluster c's points less their mean (the same operations, so the same bits)."""
        X = about_centroid(c)
        X -= offset[c]
        return X

    U, L, R = cov_sketch_of(centred, counts, d, q)
    weight_den = np.bincount(task, minlength=has_centroid.size)[ct]
    weight = np.where(weight_den > 0, counts / np.maximum(weight_den, 1), 0.0)
    msr = np.bincount(assign, weights=r2, minlength=C) / np.maximum(counts, 1)
    # diag(Sigma_c) - diag(U L U'): per-coordinate variance the sketch misses (predictions)
    resid_diag = np.empty((C, d))

    def residual(c0: int) -> None:  # blocks of clusters: no (C, d, q) temporary
        b = slice(c0, c0 + _CLUSTER_BLOCK)
        np.maximum(diag[b] - np.einsum("cdq,cq->cd", U[b] * U[b], L[b]), 0.0,
                   out=resid_diag[b])

    thread_map(residual, range(0, C, _CLUSTER_BLOCK), elems=U.size)
    return ClusterStats(
        task=ct, centroid=mu.copy(), count=counts.astype(np.int64), weight=weight, msr=msr,
        max_radius=max_radius, offset=offset, eigvecs=U, eigvals=L, resid=R,
        point_cluster=assign, point_radius=np.sqrt(r2), resid_diag=resid_diag,
    )
