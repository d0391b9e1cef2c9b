"""Per-cluster covariance sketches: top-q eigenpairs plus a residual bound (docs/theory.md §3.5).

The sketch ``U diag(L) U'`` with residual ``R >= lambda_{q+1}`` over-states every
directional variance ``u' Sigma_c u`` (so bounds C, D and moment-opt stay valid); it is
computed on the Gram matrix when a cluster has at most d points, on the covariance
otherwise, in batches of clusters of equal size.
"""

from __future__ import annotations

import numpy as np

from .distances import _CHUNK_ELEMS

__all__: list[str] = []


def _padded(Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray,
            idx: np.ndarray) -> np.ndarray:
    nmax = int(counts[idx].max()) if idx.size else 0
    nmax = max(nmax, 1)
    pos = starts[idx, None] + np.arange(nmax)[None, :]
    mask = np.arange(nmax)[None, :] < counts[idx, None]
    P = np.zeros((idx.size, nmax, Xs.shape[1]))
    P[mask] = Xs[pos[mask]]
    return P


def _cov_sketch(
    Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-q eigenpairs of each cluster covariance plus a residual upper bound (§3.5).

    ``Xs`` holds the points minus their cluster mean, sorted by cluster. ``q=None`` gives the
    exact decomposition (q = d, resid = 0). Otherwise ``resid[c]`` is the (q+1)-th eigenvalue
    (0 if the rank is <= q), raised if needed to cover eigen-directions dropped for numerical
    rank deficiency, so ``u' S u <= u' U L U' u + resid ||(I - UU') u||^2`` for every u.
    """
    from threadpoolctl import threadpool_limits  # lazily, like scipy: cheap `import bounds`

    # many small per-cluster products: BLAS threading only adds contention here
    with threadpool_limits(limits=1, user_api="blas"):
        return _cov_sketch_impl(Xs, starts, counts, q)


def _cov_sketch_impl(
    Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import scipy.linalg

    C = counts.shape[0]
    d = Xs.shape[1]
    exact = q is None or q >= d
    qq = d if exact else int(q)
    U = np.zeros((C, d, qq))
    L = np.zeros((C, qq))
    R = np.zeros(C)
    order = np.argsort(counts, kind="stable")
    i = 0
    while i < C:
        nmax = max(int(counts[order[i]]), 1)
        width = d * d if (exact or nmax > d) else nmax * max(nmax, d)
        b = max(1, _CHUNK_ELEMS // max(1, width + nmax * d))
        # extend the chunk only while the padding stays tight
        idx = order[i : i + b]
        idx = idx[counts[idx] <= 2 * max(int(counts[idx[0]]), 1) + 8] if idx.size > 1 else idx
        P = _padded(Xs, starts, counts, idx)
        nc = np.maximum(counts[idx], 1).astype(np.float64)
        nmax = P.shape[1]
        if exact or nmax > d:
            Pt = np.ascontiguousarray(np.transpose(P, (0, 2, 1)))
            Sig = (Pt @ P) / nc[:, None, None]
            w, V = np.linalg.eigh(Sig)
            w = np.clip(w[:, ::-1], 0.0, None)
            V = V[:, :, ::-1]
            U[idx] = V[:, :, :qq]
            L[idx] = w[:, :qq]
            R[idx] = 0.0 if qq >= d else w[:, qq]
        else:
            Pt = np.ascontiguousarray(np.transpose(P, (0, 2, 1)))
            G = P @ Pt
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
            with np.errstate(divide="ignore", invalid="ignore"):
                vec = (Pt @ np.ascontiguousarray(V)) / np.sqrt(np.where(good, w, 1.0))[:, None]
            vec = np.where(good[:, None, :], vec, 0.0)
            k = min(qq, w.shape[1])
            U[idx, :, :k] = vec[:, :, :k]
            L[idx, :k] = np.where(good[:, :k], lam[:, :k], 0.0)
            rest = lam[:, k:].max(axis=1) if w.shape[1] > k else np.zeros(idx.size)
            dropped = np.where(~good[:, :k], lam[:, :k], 0.0).max(axis=1)
            R[idx] = np.maximum(rest, dropped)
        i += idx.size
    return U, L, R

