"""Cluster geometry shared by the centroid bounds: separations and directional tails
(docs/theory.md §3.1, §3.4, §3.5)."""

from __future__ import annotations

import numpy as np

from ._blas import thread_map
from ._validate import fmt_list
from .clusters import ClusterStats
from .distances import _CHUNK_ELEMS, _DIRECT_LIMIT
from .forms import FUNCS, TAIL_GUARD

__all__ = []

#: elements of one block's projections in the directional tails (2 MiB: a core's cache)
_BLOCK_ELEMS = 1 << 18


def _cluster_geometry(cs: ClusterStats) -> dict[str, np.ndarray]:
    n_t = cs.task_sizes()
    empty = np.flatnonzero(n_t == 0)
    if empty.size:
        raise ValueError(f"clusters: task(s) {fmt_list(empty)} have no points")
    D2, foreign = cs.foreign_sqdist()
    Dc2 = cs.separation_sq(geometry=(D2, foreign))
    return {"n_t": n_t, "D2": D2, "foreign": foreign, "Dc2": Dc2}


def _directional_tails(cs: ClusterStats, geom: dict[str, np.ndarray]) -> np.ndarray:
    """p[c, nu]: directional Cantelli tail of cluster c towards foreign centroid nu (§3.4).

    v = u' Sigma_c u is replaced by its sketch upper bound u'ULU'u + resid ||(I-UU')u||^2
    (§3.5); p = 1 for coincident centroids; 0 for non-foreign nu. Computed in blocks of
    clusters whose projections fit in a core's cache, fixed by (C, q), on the threads
    :func:`bounds._blas.thread_map` gives: the same bits on any number of threads.
    """
    D2, foreign = geom["D2"], geom["foreign"]
    C, d = cs.centroid.shape
    mu = cs.centroid
    mu0 = mu - mu.mean(axis=0)
    mu0T = np.ascontiguousarray(mu0.T)  # (d, C), contiguous: the faster product
    U, L, R, b = cs.eigvecs, cs.eigvals, cs.resid, cs.offset
    q = L.shape[1]
    p = np.empty((C, C))
    direct = C * C * max(d, q) <= _DIRECT_LIMIT
    if direct:
        step = max(1, _CHUNK_ELEMS // max(1, C * max(q, 1)))
    else:  # a block's (nb, q, C) projections ~2 MiB; at least 64 rows for the product
        step = max(-(-64 // max(q, 1)), _BLOCK_ELEMS // max(1, C * max(q, 1)))

    def block(c0: int) -> None:
        sl = slice(c0, min(C, c0 + step))
        if direct:
            diff = mu[None, :, :] - mu[sl, None, :]  # (b, C, d): nu - mu_c exactly
            proj = np.einsum("bdq,bnd->bqn", U[sl], diff)
            mproj = np.einsum("bd,bnd->bn", b[sl], diff)
        else:
            Ub = U[sl]
            nb = Ub.shape[0]
            proj = (np.transpose(Ub, (0, 2, 1)).reshape(nb * q, d) @ mu0T).reshape(nb, q, C)
            proj -= np.einsum("bdq,bd->bq", Ub, mu0[sl])[:, :, None]
            mproj = b[sl] @ mu0T - np.einsum("bd,bd->b", b[sl], mu0[sl])[:, None]
        d2 = D2[sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            D = np.sqrt(d2)
            cos = np.divide(proj, D[:, None, :], out=proj)  # U'u for the unit direction u:
            m_nu = mproj / D  # no 4th powers
        cos2 = np.multiply(cos, cos, out=cos)
        quad = np.einsum("bq,bqn->bn", L[sl], cos2)
        nrm = cos2.sum(axis=1)
        v = quad + R[sl, None] * np.maximum(1.0 - nrm, 0.0)
        # rounding guard §3.5: the gap a = D/2 - m_nu is reduced by a slack covering its own
        # cancellation (D/2 + |m_nu|) and the rounding of the scores that decide a point's
        # retrieval: ||z-nu||^2 - ||z-mu||^2 = 2 D (D/2 - <z-mu, u>) is resolved only to
        # ~1e-10 of ||z-mu||^2 + ||z-nu||^2 <= r^2 + (r + D)^2 (r = max_radius), so points
        # within that of the bisector may be counted as errors; a <= slack gives tail 1
        rad = cs.max_radius[sl, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slack = TAIL_GUARD * (D / 2.0 + np.abs(m_nu)
                                  + (rad * rad + (rad + D) ** 2) / (2.0 * D))
            a = D / 2.0 - m_nu
            a = np.where(a <= slack, 0.0, a - slack)
        pc = FUNCS["cantelli"](np.where(d2 > 0, v, 1.0), np.where(d2 > 0, a, 0.0))
        pc = np.where(d2 > 0, pc, 1.0)
        p[sl] = np.where(foreign[sl], pc, 0.0)

    thread_map(block, range(0, C, step), elems=C * C * max(q, 1))
    return p
