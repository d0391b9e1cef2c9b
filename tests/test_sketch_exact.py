"""Per-cluster covariance sketches computed one cluster at a time (bounds/sketch.py,
issue #21) against the earlier formulation that copied every cluster of a chunk into one
zero-padded (b, nmax, d) array first: the same products on the same padded shapes, so
the same bits; and the input check's finite-sum shortcut (bounds/_validate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from bounds._validate import as_float_array
from bounds.clusters import _group_starts
from bounds.sketch import _cov_sketch, _padded


def _gram_reference(Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, idx: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The padded copy and its Gram matrices, as the sketch formed them before."""
    P = _padded(Xs, starts, counts, idx)
    Pt = np.ascontiguousarray(np.transpose(P, (0, 2, 1)))
    return Pt, P @ Pt


def _reference_sketch(Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The earlier Gram branch (clusters of at most d points, one chunk), verbatim but for
    the chunking: every cluster, sorted by size, in chunks of equal padded width."""
    import scipy.linalg

    C, d = counts.shape[0], Xs.shape[1]
    U, L, R = np.zeros((C, d, q)), np.zeros((C, q)), np.zeros(C)
    order = np.argsort(counts, kind="stable")
    from bounds.distances import _CHUNK_ELEMS

    i = 0
    while i < C:
        nmax = max(int(counts[order[i]]), 1)
        b = max(1, _CHUNK_ELEMS // max(1, nmax * max(nmax, d) + nmax * d))
        idx = order[i: i + b]
        idx = idx[counts[idx] <= 2 * max(int(counts[idx[0]]), 1) + 8] if idx.size > 1 else idx
        nc = np.maximum(counts[idx], 1).astype(np.float64)
        Pt, G = _gram_reference(Xs, starts, counts, idx)
        nmax = G.shape[1]
        k1 = min(q + 1, nmax)
        if nmax > 8 * k1:
            w, V = np.empty((idx.size, k1)), np.empty((idx.size, nmax, k1))
            for j in range(idx.size):
                w[j], V[j] = scipy.linalg.eigh(G[j], subset_by_index=[nmax - k1, nmax - 1],
                                               check_finite=False)
        else:
            w, V = np.linalg.eigh(G)
        w, V = w[:, ::-1], V[:, :, ::-1]
        tol = np.maximum(w[:, :1], 0.0) * nmax * np.finfo(np.float64).eps * 64
        good = w > tol
        lam = np.clip(w, 0.0, None) / nc[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            vec = (Pt @ np.ascontiguousarray(V)) / np.sqrt(np.where(good, w, 1.0))[:, None]
        vec = np.where(good[:, None, :], vec, 0.0)
        k = min(q, w.shape[1])
        U[idx, :, :k] = vec[:, :, :k]
        L[idx, :k] = np.where(good[:, :k], lam[:, :k], 0.0)
        rest = lam[:, k:].max(axis=1) if w.shape[1] > k else np.zeros(idx.size)
        R[idx] = np.maximum(rest, np.where(~good[:, :k], lam[:, :k], 0.0).max(axis=1))
        i += idx.size
    return U, L, R


@settings(max_examples=30, deadline=None)
@given(C=st.integers(1, 40), d=st.sampled_from([3, 16, 200, 768]), q=st.integers(1, 6),
       sizes=st.sampled_from(["equal", "mixed", "tiny", "large"]),
       seed=st.integers(0, 2**32 - 1), scale_exp=st.integers(-30, 30))
def test_sketch_same_bits_as_padded_copy(C: int, d: int, q: int, sizes: str, seed: int,
                                         scale_exp: int) -> None:
    """Clusters of equal, mixed, one-point and many-point sizes (the LAPACK subset path),
    duplicated points and rank deficiency, at any scale: U, L and R bit-identical."""
    rng = np.random.default_rng(seed)
    lo, hi = {"equal": (9, 9), "mixed": (1, 60), "tiny": (1, 3),
              "large": (min(d, 150), min(d, 190))}[sizes]
    counts = rng.integers(lo, hi + 1, size=C)
    counts = np.minimum(counts, d)  # the Gram branch: at most d points per cluster
    n = int(counts.sum())
    X = rng.normal(size=(n, d)) * 2.0**scale_exp
    if n > 2:
        X[1] = X[0]  # a duplicate point
        X[:, -1] = 0.0  # a zero-variance coordinate
    assign = np.repeat(np.arange(C), counts)
    starts, _ = _group_starts(assign, C)
    Xs = X.copy()
    for c in range(C):  # centred per cluster, as cluster_stats passes them
        Xs[starts[c]: starts[c] + counts[c]] -= Xs[starts[c]: starts[c] + counts[c]].mean(0)
    qq = min(q, d - 1)
    got = _cov_sketch(Xs, starts, counts, qq)
    with threadpool_limits(limits=1, user_api="blas"):  # as _cov_sketch runs
        want = _reference_sketch(Xs, starts, counts, qq)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_finite_check_shortcut() -> None:
    """Finite values whose sum overflows are accepted; a NaN, an infinity, or both signs
    of infinity (whose sum is NaN) are refused with their count."""
    big = np.full((3, 4), np.finfo(np.float64).max)
    assert as_float_array(big, "x") is not None
    for bad, count in ((np.nan, 1), (np.inf, 1), (-np.inf, 1)):
        x = np.ones((5, 3))
        x[2, 1] = bad
        with pytest.raises(ValueError, match=f"x: contains {count} NaN or infinite"):
            as_float_array(x, "x")
    x = np.zeros(10)
    x[[1, 7]] = np.inf, -np.inf
    with pytest.raises(ValueError, match="x: contains 2 NaN or infinite"):
        as_float_array(x, "x")


_FIRST_CALL = r"""
import numpy as np, sys
from bounds.clusters import _group_starts
from bounds.sketch import _cov_sketch
rng = np.random.default_rng(0)
counts = np.array([184, 170])
X = rng.normal(size=(int(counts.sum()), 200))
starts, _ = _group_starts(np.repeat([0, 1], counts), 2)
Xs = X - X.mean(0)
first = _cov_sketch(Xs, starts, counts, 2)
second = _cov_sketch(Xs, starts, counts, 2)
print(all(np.array_equal(a, b) for a, b in zip(first, second)))
"""


def test_first_call_same_bits() -> None:
    """In a fresh process (scipy not yet imported), the first sketch equals the second:
    scipy's BLAS is limited to one thread on the first call too (it was not, and the
    subset eigensolver's vectors differed in the last bits)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]
