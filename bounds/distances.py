"""Scale normalisation, squared distances and nearest-centroid scores (docs/theory.md §1, §2.4).

* :func:`unit_exponent`: the power of two that brings a set of lengths into [0.5, 1)
  (exact rescaling, §2.4, §3.5);
* :func:`sqdist`: squared Euclidean distances, exact broadcast differences for small
  blocks and the BLAS expansion in chunks for large ones;
* :func:`nearest_centroid_scores`: the score ``S[i, t] = min_{c of task t} ||z_i - mu_c||^2``
  of the shared nearest-centroid rule (§1).
"""

from __future__ import annotations

import numpy as np

from ._blas import thread_map
from ._validate import as_float_array, as_index_array, check_positive_int, fmt_list

__all__ = ["unit_exponent", "sqdist", "nearest_centroid_scores"]

_DIRECT_LIMIT = 1 << 22  # elements of a broadcast difference tensor before switching to BLAS
_CHUNK_ELEMS = 1 << 23
#: elements of one block of rows of a BLAS distance matrix (threads; 8 MiB) and its
#: fewest rows
_BLOCK_ELEMS, _ROWS_MIN = 1 << 20, 64


# ------------------------------------------------------------------ scale normalisation
def unit_exponent(*arrays: np.ndarray, squared: tuple[np.ndarray, ...] = ()) -> int:
    """The exponent e with max |x| / 2**e in [0.5, 1) over ``arrays`` (0 if all are 0).

    ``squared`` holds squared lengths (variances, mean squared radii): their square roots
    count. Every bound is scale-invariant (docs/theory.md §2.4, §3.5), so the code divides
    its inputs by 2**e -- exact in floating point -- before squaring anything: squares and
    fourth powers then neither overflow nor underflow for any representable scale.
    """
    mx = 0.0  # max |x| = max(max x, -min x): no |x| temporary (NaN is ignored either way)
    for a in arrays:
        if a.size:
            mx = max(mx, float(np.max(a)), -float(np.min(a)))
    for a in squared:
        if a.size:
            mx = max(mx, float(np.sqrt(max(float(np.max(a)), -float(np.min(a))))))
    if not (0.0 < mx < np.inf):
        return 0
    return min(int(np.frexp(mx)[1]), 1023)


# ------------------------------------------------------------------ distances
def sqdist(A: np.ndarray, B: np.ndarray, *, direct: bool | None = None) -> np.ndarray:
    """Squared Euclidean distances between rows of ``A`` (a, d) and ``B`` (b, d).

    Small problems use exact broadcast differences. Large ones use a centred Gram
    expansion (BLAS) and then recompute by direct differences every pair whose squared
    distance is below 1e-6 of its squared norms, where cancellation could matter; so
    coincident points give exactly 0 and every entry has relative error ~1e-10 or better
    (docs/theory.md §3.5). ``direct`` forces (True) or forbids (False) the exact path.
    """
    na_, nb_, d = A.shape[0], B.shape[0], A.shape[1]
    out = np.empty((na_, nb_))
    if direct is None:
        direct = na_ * nb_ * d <= _DIRECT_LIMIT
    if direct:
        step = max(1, _DIRECT_LIMIT // max(1, nb_ * d))
        for i0 in range(0, na_, step):
            diff = A[i0 : i0 + step, None, :] - B[None, :, :]
            out[i0 : i0 + step] = np.einsum("ijk,ijk->ij", diff, diff)
        return out
    center = B.mean(axis=0)
    A0 = A - center
    B0 = B - center
    nA = np.einsum("ij,ij->i", A0, A0)
    nB = np.einsum("ij,ij->i", B0, B0)
    # ~_BLOCK_ELEMS entries, at least _ROWS_MIN rows unless that passes _CHUNK_ELEMS
    step = max(1, min(max(_ROWS_MIN, _BLOCK_ELEMS // max(1, nb_)), _CHUNK_ELEMS // max(1, nb_)))

    def rows(i0: int) -> None:
        """Rows i0 .. i0 + step (a product of fixed shape on one BLAS thread: the same
        bits on any number of threads; OpenBLAS's bits depend on its own thread count)."""
        blk = A0[i0 : i0 + step] @ B0.T
        blk *= -2.0
        blk += nA[i0 : i0 + step, None]
        blk += nB[None, :]
        np.maximum(blk, 0.0, out=blk)
        scale = nA[i0 : i0 + step, None] + nB[None, :]
        ii, jj = np.nonzero(blk <= 1e-6 * scale)
        pstep = max(1, _DIRECT_LIMIT // max(1, d))
        for p0 in range(0, ii.size, pstep):
            a_i = ii[p0 : p0 + pstep]
            b_j = jj[p0 : p0 + pstep]
            diff = A[i0 + a_i] - B[b_j]
            blk[a_i, b_j] = np.einsum("ij,ij->i", diff, diff)
        out[i0 : i0 + step] = blk

    thread_map(rows, range(0, na_, step), elems=na_ * nb_ + (na_ + nb_) * d)
    return out


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(sorted_keys, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return starts, counts


#: the one segment start of a per-segment np.add.reduceat
_AT0 = np.zeros(1, dtype=np.intp)


def _segment_sums(X: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(X, starts, axis=0)`` for segments of ``counts`` (all > 0) rows,
    one segment at a time: the same summation, so the same bits, without reduceat's
    column-by-column walk over all of X (9x faster for 768 columns; issue #21)."""
    out = np.empty((starts.size,) + X.shape[1:], dtype=X.dtype)  # float X
    for i, (s, c) in enumerate(zip(starts.tolist(), counts.tolist())):
        np.add.reduceat(X[s : s + c], _AT0, axis=0, out=out[i : i + 1])
    return out


def nearest_centroid_scores(
    Z: object, centroids: object, centroid_task: object, m: int | None = None
) -> np.ndarray:
    """Nearest-centroid score matrix ``S[i, k] = min_j ||z_i - mu_{k, j}||`` (§1), (n, m)."""
    Z = as_float_array(Z, "Z", ndim=2)
    mu = as_float_array(centroids, "centroids", ndim=2)
    if mu.shape[1] != Z.shape[1]:
        raise ValueError(f"centroids: dimension {mu.shape[1]} != Z dimension {Z.shape[1]}")
    ct = as_index_array(centroid_task, "centroid_task", length=mu.shape[0])
    m_ = int(ct.max()) + 1 if m is None else check_positive_int(m, "m")
    if ct.max() >= m_:
        raise ValueError(f"centroid_task: id {int(ct.max())} out of range for m={m_}")
    order = np.argsort(ct, kind="stable")
    starts, counts = _group_starts(ct[order], m_)
    if np.any(counts == 0):
        raise ValueError(
            f"centroid_task: task(s) {fmt_list(np.flatnonzero(counts == 0))} have no "
            "centroid"
        )
    e = unit_exponent(Z, mu)  # squared distances of the normalised data: no overflow
    D2 = sqdist(np.ldexp(Z, -e), np.ldexp(mu[order], -e))
    return np.ldexp(np.sqrt(np.minimum.reduceat(D2, starts, axis=1)), e)


