"""Per-cluster covariance sketches: top-q eigenpairs plus a residual bound (docs/theory.md §3.5).

The sketch ``U diag(L) U'`` with residual ``R >= lambda_{q+1}`` over-states every
directional variance ``u' Sigma_c u`` (so bounds C, D and moment-opt stay valid); it is
computed on the Gram matrix when a cluster has at most d points, on the covariance
otherwise, in batches of clusters of equal size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._blas import thread_map
from .distances import _CHUNK_ELEMS

__all__: list[str] = []


def _pad_into(buf: np.ndarray, bufT: np.ndarray, X: np.ndarray) -> None:
    """``buf`` = X padded with zero rows, ``bufT`` = its transpose (both contiguous)."""
    n = X.shape[0]
    buf[:n] = X
    buf[n:] = 0.0
    np.copyto(bufT, buf.T)


def cov_sketch_of(
    points: Callable[[int], np.ndarray], counts: np.ndarray, d: int, q: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-q eigenpairs of each cluster covariance plus a residual upper bound (§3.5).

    ``points(c)``: cluster c's ``counts[c]`` points less their mean, (counts[c], d)
    (called up to twice per cluster, only read). ``q=None`` gives the exact decomposition
    (q = d, resid = 0). Otherwise ``resid[c]`` is the (q+1)-th eigenvalue (0 if the rank
    is <= q), raised if needed to cover eigen-directions dropped for numerical rank
    deficiency, so ``u' S u <= u' U L U' u + resid ||(I - UU') u||^2`` for every u.
    """
    import scipy.linalg

    counts = np.asarray(counts)

    C = counts.shape[0]
    exact = q is None or q >= d
    qq = d if exact else int(q)
    U = np.zeros((C, d, qq))
    L = np.zeros((C, qq))
    R = np.zeros(C)
    order = np.argsort(counts, kind="stable")
    chunks = []  # clusters of similar size, padded to the largest of each
    i = 0
    while i < C:
        nmax = max(int(counts[order[i]]), 1)
        width = d * d if (exact or nmax > d) else nmax * max(nmax, d)
        b = max(1, _CHUNK_ELEMS // max(1, width + nmax * d))
        # extend the chunk only while the padding stays tight
        idx = order[i : i + b]
        idx = idx[counts[idx] <= 2 * max(int(counts[idx[0]]), 1) + 8] if idx.size > 1 else idx
        chunks.append(idx)
        i += idx.size

    def chunk(idx: np.ndarray) -> None:
        """The sketches of clusters ``idx`` (their own rows of U, L, R)."""
        nc = np.maximum(counts[idx], 1).astype(np.float64)
        nmax = max(int(counts[idx].max()), 1)
        buf, bufT = np.zeros((nmax, d)), np.empty((d, nmax))
        if exact or nmax > d:
            # one cluster at a time in the reused padded buffer (the Gram branch below):
            # the products of a (b, nmax, d) padded batch, without it
            Sig = np.empty((idx.size, d, d))
            for j, c in enumerate(idx.tolist()):
                _pad_into(buf, bufT, points(c))
                np.matmul(bufT, buf, out=Sig[j])
            Sig /= nc[:, None, None]
            w, V = np.linalg.eigh(Sig)
            w = np.clip(w[:, ::-1], 0.0, None)
            V = V[:, :, ::-1]
            U[idx] = V[:, :, :qq]
            L[idx] = w[:, :qq]
            R[idx] = 0.0 if qq >= d else w[:, qq]
        else:
            # one cluster at a time, its points padded with zero rows to nmax in a reused
            # buffer: the same products as a (b, nmax, d) padded copy of all of them, without
            # its fresh memory (issue #21); gemm on these shapes, not syrk
            G = np.empty((idx.size, nmax, nmax))
            for j, c in enumerate(idx.tolist()):
                _pad_into(buf, bufT, points(c))
                np.matmul(buf, bufT, out=G[j])
            k1 = min(qq + 1, nmax)
            if nmax > 8 * k1:  # large clusters: only the top q+1 eigenpairs (LAPACK syevr)
                w = np.empty((idx.size, k1))
                V = np.empty((idx.size, nmax, k1))
                for b_ in range(idx.size):  # loop over a batch of clusters
                    w[b_], V[b_] = scipy.linalg.eigh(
                        G[b_], subset_by_index=[nmax - k1, nmax - 1], check_finite=False
                    )
            else:
                w, V = np.linalg.eigh(G)
            w = w[:, ::-1]
            V = V[:, :, ::-1]
            wmax = np.maximum(w[:, :1], 0.0)
            tol = wmax * nmax * np.finfo(np.float64).eps * 64
            good = w > tol
            lam = np.clip(w, 0.0, None) / nc[:, None]
            k = min(qq, w.shape[1])
            V = np.ascontiguousarray(V[:, :, :k])  # the kept eigenvectors only
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.sqrt(np.where(good[:, :k], w[:, :k], 1.0))
            for j, c in enumerate(idx.tolist()):  # U_c = X' V / sqrt(w), in place
                _pad_into(buf, bufT, points(c))
                Uc = U[c, :, :k]
                np.matmul(bufT, V[j], out=Uc)
                np.divide(Uc, scale[j], out=Uc)
                Uc[:, ~good[j, :k]] = 0.0
            L[idx, :k] = np.where(good[:, :k], lam[:, :k], 0.0)
            rest = lam[:, k:].max(axis=1) if w.shape[1] > k else np.zeros(idx.size)
            dropped = np.where(~good[:, :k], lam[:, :k], 0.0).max(axis=1)
            R[idx] = np.maximum(rest, dropped)

    # largest first (balance); one BLAS thread each; the covariance path costs d^2 more
    thread_map(chunk, chunks[::-1], elems=int(counts.sum()) * d + int((counts > d).sum()) * d * d)
    return U, L, R

