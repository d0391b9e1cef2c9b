"""Certified generalized Chebyshev SDP: results, certification, solvers
(docs/theory.md §3.7.1, §3.7.9).

The printed value is never the solver's number: it is the objective of a quadratic
majorant whose feasibility is verified in floating point with rigorous margins
(:func:`certify_majorant`, §3.7.9). Clarabel solves the compact VBC primal, cvxpy the
S-lemma dual (a cross-check); both are imported lazily.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

#: Default number of foreign centroids per cluster in the exact SDP (bench/bench_moment.py).
DEFAULT_R_MAX = 8

#: Halfspaces whose Cantelli term is at most this are bounded by that term (union bound)
#: instead of entering the SDP: it keeps the whitened SDP data below ~1e5 (§3.7, pruning).
PRUNE_TOL = 1e-10

_EPS = float(np.finfo(np.float64).eps)
_EIG_C = 8.0  # eigvalsh backward error |lambda_hat - lambda| <= _EIG_C * n * eps * ||M||_F
_SOLVER_TOL = 1e-10
_LAW_DELTA = 1e-7  # mass left for the residual atoms when the supremum is 1


# ------------------------------------------------------------------ results
@dataclass
class MomentCertificate:
    """A certified upper bound on the two-moment supremum (docs/theory.md §3.7).

    ``value``: certified bound in [0, 1] (objective of a verified dual-feasible point plus
    the Cantelli terms of the pruned halfspaces); ``primal``: the solver's primal objective
    (a lower bound on the supremum up to solver feasibility; nan if no SDP was solved);
    ``gap = value - primal``; ``cantelli``: the union of Cantelli terms (always valid);
    ``method``: ``"dual-feasible"`` (SDP certified), ``"trivial"`` (value 1: some halfspace
    contains the mean, or 0: no halfspace can be hit), ``"cantelli-union"`` (every halfspace
    negligible) or ``"cantelli-fallback"`` (solver failed); ``status``: the solver status.
    ``k_sdp``: halfspaces in the SDP; ``r``: dimension of the solved (whitened) problem;
    ``pruned``: Cantelli mass added for the pruned halfspaces; ``eps_repair``: the diagonal
    shift that made the dual point feasible. ``atoms`` (N, r_in) / ``weights`` (N,): the
    attaining law in the input coordinates (only with ``law=True``).
    """

    value: float
    primal: float
    gap: float
    cantelli: float
    method: str
    status: str
    k: int
    k_sdp: int
    r: int
    pruned: float
    eps_repair: float
    solve_time: float
    iterations: int
    note: str = ""
    atoms: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass
class ClusterMomentResult:
    """One cluster's moment bound (docs/theory.md §3.7).

    ``value = min(1, sdp + rest, cantelli)``; ``sdp``: the certified SDP value over the
    chosen foreign centroids (their Cantelli term when only one is chosen, exact then);
    ``rest``: Cantelli union of the others; ``cantelli``: Cantelli union of all (bound C's
    term); ``chosen``: indices into ``foreign``; ``r``: dimension of the subspace;
    ``certificate``: the :class:`MomentCertificate` of the SDP (None if not solved);
    ``atoms`` (N, d) / ``weights``: a law in the d-dim space whose projection on
    span{f_j - o} has the cluster's projected mean and covariance and whose nearest-centroid
    error fraction attains ``sdp`` (``law=True`` only).
    """

    value: float
    sdp: float
    rest: float
    cantelli: float
    chosen: np.ndarray
    r: int
    n_pruned: int
    certificate: MomentCertificate | None = None
    atoms: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass
class LawCheck:
    """Moments and error fraction of a discrete law (see :func:`check_law`)."""

    total_mass: float
    mean_error: float
    cov_error: float
    error_fraction: float
    min_weight: float = 0.0


# ------------------------------------------------------------------ certification
def _lmi_stack(P: np.ndarray, q: np.ndarray, r0: float, tau: np.ndarray, U: np.ndarray,
               c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k+1 S-lemma matrices and their entrywise bound matrices |terms|.

    M_0 = [[P, q], [q', r0]], M_j = [[P, q - tau_j u_j / 2], [., r0 - 1 + tau_j c_j]].
    """
    k, r = U.shape
    n = r + 1
    M = np.empty((k + 1, n, n))
    Mabs = np.empty((k + 1, n, n))
    M[:, :r, :r] = P
    Mabs[:, :r, :r] = np.abs(P)
    col = np.empty((k + 1, r))
    col[0] = q
    col[1:] = q[None, :] - tau[:, None] * U / 2.0
    cabs = np.empty((k + 1, r))
    cabs[0] = np.abs(q)
    cabs[1:] = np.abs(q)[None, :] + np.abs(tau[:, None] * U) / 2.0
    M[:, :r, r] = col
    M[:, r, :r] = col
    Mabs[:, :r, r] = cabs
    Mabs[:, r, :r] = cabs
    M[0, r, r] = r0
    M[1:, r, r] = r0 - 1.0 + tau * c
    Mabs[0, r, r] = abs(r0)
    Mabs[1:, r, r] = abs(r0) + 1.0 + np.abs(tau * c)
    return M, Mabs


def _psd_verified(M: np.ndarray, Mabs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(computed min eigenvalue, rigorous margin) per matrix of the stack.

    The exact matrix (exact arithmetic on the stored floats) is PSD when the computed
    minimum eigenvalue is >= the margin: the margin covers the eigvalsh backward error
    (_EIG_C * n * eps * ||M||_2) and the rounding of forming M (3 eps per entry).
    ``Mabs`` bounds the terms M was formed from; the margin uses the larger of its norm
    and ||M||_F, so it is >= (8 n + 3) eps ||M||_F > 0 for any non-zero M whatever Mabs
    says: a computed minimum eigenvalue of exactly 0 is never accepted (the zero matrix,
    exactly PSD, excepted). Tested in tests/test_bounds_holes.py.
    """
    n = M.shape[-1]
    lam = np.linalg.eigvalsh(M)[:, 0]
    fro = np.maximum(np.sqrt(np.einsum("kij,kij->k", Mabs, Mabs)),
                     np.sqrt(np.einsum("kij,kij->k", M, M)))
    margin = (_EIG_C * n + 3.0) * _EPS * fro * 1.01
    return lam, margin


def certify_majorant(P: np.ndarray, q: np.ndarray, r0: float, tau: np.ndarray,
                     U: np.ndarray, c: np.ndarray, Sigma: np.ndarray | None = None, *,
                     err_normal: np.ndarray | None = None,
                     err_offset: np.ndarray | None = None) -> tuple[float, float]:
    """Repair a candidate dual point into a verified one; return (certified value, eps).

    The quadratic ``f(y) = y'Py + 2q'y + r0`` majorises the indicator of
    ``{y : exists j, u_j'y >= c_j}`` when ``M_0 = [[P, q], [q', r0]] >= 0`` and every
    ``M_j = [[P, q - tau_j u_j/2], [., r0 - 1 + tau_j c_j]] >= 0`` with ``tau_j >= 0``
    (S-lemma, docs/theory.md §3.7). Then ``P(error) <= E f = tr(P Sigma) + r0`` for every law
    with mean 0 and covariance ``Sigma``; ``Sigma=None`` means any covariance ``<= I``, where
    ``E f <= tr(P) + r0`` because ``M_0 >= 0`` gives ``P >= 0``.

    ``tau`` is clipped at 0, then ``P += eps I`` and ``r0 += eps`` with the smallest tried
    ``eps`` (from the most negative computed eigenvalue plus the margins, doubled until
    verified). A matrix counts as PSD when its computed smallest eigenvalue is at least the
    eigvalsh backward error plus the rounding of forming it (:func:`_psd_verified`) plus,
    for ``M_j``, ``tau_j (err_normal_j / 2 + err_offset_j)``: then ``f`` majorises the
    indicator for every exact halfspace ``u*'y >= c*`` with ``|u* - u_j| <= err_normal_j``
    and ``|c* - c_j| <= err_offset_j`` (since ``|y| <= (|y|^2 + 1) / 2``). The value adds the
    rounding bound of its own float evaluation. Returns (inf, inf) if nothing verifies.
    """
    U = np.asarray(U, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    P = 0.5 * (np.asarray(P, dtype=np.float64) + np.asarray(P, dtype=np.float64).T)
    q = np.asarray(q, dtype=np.float64).ravel()
    r0 = float(r0)
    tau = np.maximum(np.asarray(tau, dtype=np.float64).ravel(), 0.0)
    k, r = U.shape
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(q)) and np.isfinite(r0)
            and np.all(np.isfinite(tau))):
        return np.inf, np.inf
    extra = np.zeros(k + 1)
    if err_normal is not None:
        extra[1:] += tau * np.asarray(err_normal, dtype=np.float64) / 2.0
    if err_offset is not None:
        extra[1:] += tau * np.asarray(err_offset, dtype=np.float64)
    extra *= 1.01

    def deficit(Pr: np.ndarray, r0r: float) -> np.ndarray:
        M, Mabs = _lmi_stack(Pr, q, r0r, tau, U, c)
        lam, margin = _psd_verified(M, Mabs)
        return margin + extra - lam

    need = float(np.max(deficit(P, r0)))
    eps = 0.0
    if need > 0:
        eps = need * (1.0 + 1e-6) + _EPS * (np.abs(np.diag(P)).max(initial=0.0) + abs(r0) + 1)
    for _ in range(200):
        Pr = P + eps * np.eye(r) if eps > 0 else P
        r0r = r0 + eps
        dfc = deficit(Pr, r0r)
        if np.all(dfc <= 0):
            break
        eps = max(2.0 * eps, float(np.max(dfc)), 1e-300)
    else:
        return np.inf, np.inf
    if Sigma is None:
        terms = np.append(np.diag(Pr), r0r)
        nterm = r + 1
    else:
        terms = np.append((Pr * np.asarray(Sigma, dtype=np.float64)).ravel(), r0r)
        nterm = r * r + 1
    val = float(terms.sum())
    val += 1.01 * (nterm + 2) * _EPS * float(np.abs(terms).sum())
    return val, eps


# ------------------------------------------------------------------ SDP solvers
@lru_cache(maxsize=256)
def _compact_pattern(r: int, k: int) -> tuple[Any, ...]:
    """Sparse pattern of the compact VBC LMI [[I_{r+1}, B], [B', diag(lam)]] for Clarabel.

    Variables x = [vec(Zc) (column-major, r*k), lam (k)], B = [Zc; lam']. Clarabel's
    PSDTriangleConeT stores the upper triangle column by column, off-diagonals times sqrt 2.
    """
    n = r + 1 + k
    iu, ju = np.triu_indices(n)
    order = np.lexsort((iu, ju))  # column-major upper triangle
    iu, ju = iu[order], ju[order]
    pos = np.full((n, n), -1, dtype=np.int64)
    pos[iu, ju] = np.arange(iu.size)
    ns = iu.size
    s2 = np.sqrt(2.0)
    jj = np.arange(k)
    zi = np.repeat(np.arange(r), k).reshape(r, k)  # row i of Zc
    zj = np.tile(jj, (r, 1))  # column j
    zvar = zi + zj * r
    rows = [pos[zi, r + 1 + zj].ravel(), pos[r, r + 1 + jj], pos[r + 1 + jj, r + 1 + jj]]
    cols = [zvar.ravel(), r * k + jj, r * k + jj]
    vals = [np.full(r * k, -s2), np.full(k, -s2), np.full(k, -1.0)]
    b_psd = np.zeros(ns)
    b_psd[pos[np.arange(r + 1), np.arange(r + 1)]] = 1.0
    return (ns, iu, ju, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals),
            b_psd, zvar)


def _solve_compact_clarabel(W: np.ndarray, h: np.ndarray, tol: float) -> dict:
    """max sum lam s.t. [[I, B], [B', diag lam]] >= 0, w_j'z_j >= h_j lam_j (mean 0, cov I).

    Returns the dual point (P, q, r0, tau) of the S-lemma form (read from the LMI's dual
    Y = [[P, q, .], [q', r0, .], ...] and the multipliers) and the primal (z_j, lam_j).
    """
    import clarabel
    import scipy.sparse as sps

    r, k = W.shape
    ns, iu, ju, rows, cols, vals, b_psd, zvar = _compact_pattern(r, k)
    nv = r * k + k
    jj = np.arange(k)
    lin_rows = np.concatenate([ns + np.repeat(jj, r), ns + jj])
    lin_cols = np.concatenate([zvar.T.ravel(), r * k + jj])
    lin_vals = np.concatenate([-W.T.ravel(), h])
    A = sps.csc_matrix(
        (np.concatenate([vals, lin_vals]),
         (np.concatenate([rows, lin_rows]), np.concatenate([cols, lin_cols]))),
        shape=(ns + k, nv))
    b = np.concatenate([b_psd, np.zeros(k)])
    c = np.zeros(nv)
    c[r * k:] = -1.0
    st = clarabel.DefaultSettings()
    st.verbose = False
    st.tol_gap_abs = tol
    st.tol_gap_rel = tol
    st.tol_feas = tol
    st.max_iter = 100
    st.max_threads = 1
    # a dense LMI of order r + 1 + k <= 17: chordal decomposition, presolve and iterative
    # refinement only cost time here (docs/theory.md §14.5: 1.9x faster on the bench's 517
    # SDPs, every one 'Solved' with primal-dual gap <= 1e-10; with them 10 ended
    # 'AlmostSolved' and the certified values were up to 1.2e-7 higher)
    for name in ("chordal_decomposition_enable", "presolve_enable",
                 "iterative_refinement_enable"):
        if hasattr(st, name):  # older Clarabel releases lack some of them
            setattr(st, name, False)
    cones = [clarabel.PSDTriangleConeT(r + 1 + k), clarabel.NonnegativeConeT(k)]
    solver = clarabel.DefaultSolver(sps.csc_matrix((nv, nv)), c, A, b, cones, st)
    sol = solver.solve()
    x = np.asarray(sol.x, dtype=np.float64)
    z = np.asarray(sol.z, dtype=np.float64)
    n = r + 1 + k
    Y = np.zeros((n, n))
    sv = z[:ns] / np.where(iu == ju, 1.0, np.sqrt(2.0))
    Y[iu, ju] = sv
    Y[ju, iu] = sv
    return {
        "P": Y[:r, :r], "q": Y[:r, r].copy(), "r0": float(Y[r, r]), "tau": z[ns:].copy(),
        "z": x[: r * k].reshape(k, r), "lam": x[r * k:].copy(),
        "primal": float(x[r * k:].sum()), "status": str(sol.status),
        "iterations": int(sol.iterations), "solve_time": float(sol.solve_time),
    }


def _solve_slemma_cvxpy(W: np.ndarray, h: np.ndarray, tol: float) -> dict:
    """The S-lemma dual through cvxpy + Clarabel (cross-check formulation).

    min tr(P) + r0 s.t. [[P, q], [q', r0]] >= 0, [[P, q - tau_j w_j/2], [., r0-1+tau_j h_j]]
    >= 0, tau >= 0. The LMI duals are the VBC primal blocks [[Z_j, z_j], [z_j', lam_j]].
    """
    import cvxpy as cp

    r, k = W.shape
    P = cp.Variable((r, r), symmetric=True)
    q = cp.Variable((r, 1))
    r0 = cp.Variable((1, 1))
    tau = cp.Variable(k, nonneg=True)
    cons = [cp.bmat([[P, q], [q.T, r0]]) >> 0]
    for j in range(k):
        col = q - tau[j] * W[:, j].reshape(r, 1) / 2.0
        cons.append(cp.bmat([[P, col], [col.T, r0 - 1.0 + tau[j] * h[j]]]) >> 0)
    prob = cp.Problem(cp.Minimize(cp.trace(P) + r0[0, 0]), cons)
    t0 = time.perf_counter()
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol,
               max_iter=100)
    elapsed = time.perf_counter() - t0
    if P.value is None:
        raise RuntimeError(f"cvxpy: no solution ({prob.status})")
    Xs = [np.asarray(cn.dual_value) for cn in cons[1:]]
    zs = np.array([X[:r, r] for X in Xs])
    lam = np.array([X[r, r] for X in Xs])
    return {
        "P": np.asarray(P.value), "q": np.asarray(q.value).ravel(),
        "r0": float(r0.value[0, 0]), "tau": np.asarray(tau.value).ravel(), "z": zs,
        "lam": lam, "primal": float(lam.sum()), "status": str(prob.status),
        "iterations": int(prob.solver_stats.num_iters or 0), "solve_time": elapsed,
    }


