"""The optimal two-moment bound: a certified generalized Chebyshev SDP (docs/theory.md §3.7).

For a law of ``x`` with mean ``mu`` and covariance ``Sigma`` and closed halfspaces
``H_j = {x : a_j'x >= b_j}``, :func:`sup_union_probability` returns a *certified* upper
bound on

    sup { P(x in H_1 u ... u H_k) : E x = mu, Cov x = Sigma },

which equals the supremum up to the solver tolerance (Vandenberghe, Boyd & Comanor,
"Generalized Chebyshev bounds via semidefinite programming", SIAM Review 49(1), 2007;
Boyd & Vandenberghe, *Convex Optimization*, §7.4.3). The printed value is never the
solver's number: it is the objective ``E f(x)`` of a quadratic majorant ``f`` of the
indicator of the union whose feasibility is verified in floating point with rigorous
margins (docs/theory.md §3.7, "Certification").

:func:`centroid_moment_bound` applies it to one cluster of the shared nearest-centroid rule
(misretrieval = some foreign centroid at least as close as the own one), in the subspace
spanned by the ``r_max`` foreign directions with the largest directional Cantelli terms,
plus the Cantelli union of the others; :class:`MomentOptBound` is the registered bound
``moment-opt``.

Solver: Clarabel (interior point) on the VBC primal with the ``Z_j`` eliminated, one LMI
of size ``r + 1 + k``; ``backend="cvxpy"`` solves the S-lemma dual (k + 1 LMIs of size
``r + 1``) through cvxpy instead, an independent formulation used as a cross-check. Both
are imported lazily.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ._validate import as_float_array, check_positive_int
from .registry import (
    Bound,
    BoundInputs,
    DirectionalBound,
    _cluster_geometry,
    _directional_tails,
    _per_task_from_clusters,
)
from .stats import ClusterStats
from .symbolic import FUNCS

__all__ = [
    "DEFAULT_R_MAX",
    "PRUNE_TOL",
    "MomentCertificate",
    "ClusterMomentResult",
    "LawCheck",
    "sup_union_probability",
    "centroid_moment_bound",
    "check_law",
    "certify_majorant",
    "MomentOptBound",
]

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
    """
    n = M.shape[-1]
    lam = np.linalg.eigvalsh(M)[:, 0]
    fro = np.sqrt(np.einsum("kij,kij->k", Mabs, Mabs))
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


# ------------------------------------------------------------------ core (normalised)
def _pow2(x: float) -> float:
    """The power of two nearest to x > 0 (exact scaling factor)."""
    return float(np.ldexp(1.0, int(np.round(np.log2(x)))))


def _cantelli_terms(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Cantelli terms v/(v+c^2) for c > 0, inflated for the rounding of v and c^2."""
    v = np.maximum(v, 0.0) * (1.0 + 16 * _EPS)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        p = FUNCS["cantelli"](v, c)
    return np.where((v == 0) & (c > 0), 0.0, np.minimum(1.0, p * (1.0 + 8 * _EPS)))


def _core(Sig: np.ndarray, U: np.ndarray, c: np.ndarray, *, law: bool, backend: str,
          tol: float, u_err: np.ndarray | float = 0.0) -> dict:
    """Certified sup of P(exists j: u_j'y >= c_j) over laws with mean 0, covariance Sig.

    ``U`` (k, r) unit rows, ``c`` (k,) > 0, ``Sig`` (r, r) PSD of order 1 (normalised
    coordinates). Works in the whitened coordinates xi of a factor ``F`` with
    ``Sig <= F F'`` (y = F xi): there the covariance is <= I, the halfspaces are
    ``g_j'xi >= c_j`` with ``g_j = F'u_j`` computed forward (no inverse), and the objective
    of a majorant is exactly ``tr(P) + r0`` (docs/theory.md §3.7, "Certification"). Returns
    the certified value and diagnostics; with ``law`` the attaining law (atoms (N, r) in
    the y coordinates, weights). ``u_err`` bounds |u_j - u_j*|, the error of the given unit
    normals against the exact ones (rounding of their computation).
    """
    k, r = U.shape
    # factor: F = chol(Sig + delta I), delta covering a negative eigenvalue of Sig (input
    # rounding) and the Cholesky backward error, so Sig <= F F'. Cholesky (unlike an
    # eigenbasis) is unique and continuous in Sig: equivalent inputs reach the solver in
    # the same coordinates, so the certified values agree to rounding
    Sig = 0.5 * (Sig + Sig.T)
    lam_min = float(np.linalg.eigvalsh(Sig)[0]) if r else 0.0
    delta = 2.0 * (max(0.0, -lam_min) + (_EIG_C * r + 4 * (r + 1) ** 2) * _EPS
                   * float(np.linalg.norm(Sig)))
    # Sig = 0 (a point mass): F = 0, so every halfspace (gap > 0) has probability 0
    F = np.linalg.cholesky(Sig + delta * np.eye(r)) if delta > 0 else np.zeros((r, r))
    G = U @ F  # rows g_j' = u_j'F
    # |g_j - g_j*| <= rounding of F'u_j + ||F||_2 |u_j - u_j*|
    eg = 1.01 * (r * _EPS * np.linalg.norm(np.abs(U) @ np.abs(F), axis=1)
                 + np.asarray(u_err, dtype=np.float64) * float(np.linalg.norm(F)))
    N = np.linalg.norm(G, axis=1)
    Ng = N + eg  # >= |g*_j|: Cantelli in xi-space, Var(g*'xi) <= |g*|^2
    p = _cantelli_terms(Ng * Ng, c)
    cant = float(min(1.0, p.sum() * (1.0 + k * _EPS)))
    keep = (p > PRUNE_TOL) & (N > 0)
    pruned = float(p[~keep].sum() * (1.0 + k * _EPS))
    out: dict[str, Any] = {
        "cantelli": cant, "pruned": pruned, "k_sdp": int(keep.sum()), "r": 0, "primal": np.nan,
        "status": "not solved", "iterations": 0, "solve_time": 0.0, "eps_repair": 0.0,
        "note": "", "atoms": None, "weights": None,
    }
    if not np.any(keep):
        out.update(value=min(1.0, pruned), method="cantelli-union",
                   note="every halfspace has a Cantelli term <= PRUNE_TOL")
        if law:
            out["atoms"], out["weights"] = _law_from_atoms(
                Sig, np.zeros((0, r)), np.zeros(0), U, c)
        return out
    Nk = N[keep]
    Gh = G[keep] / Nk[:, None]  # unit normals in xi-space
    h = c[keep] / Nk
    # data error of the normalised halfspaces against the exact ones (see certify_majorant)
    err_g = eg[keep] / Nk + 2 * _EPS
    err_h = 2 * _EPS * h
    # solve in span{g_j} (any basis: the point is re-verified in xi-space below); the xi
    # coordinates themselves when the normals span them (no arbitrary rotation)
    _, sv, Vt = np.linalg.svd(Gh, full_matrices=False)
    r1 = int(np.sum(sv > 1e-12 * sv[0]))
    Q1 = np.eye(r) if r1 == r else Vt[:r1].T
    W = Q1.T @ Gh.T  # (r1, kk)
    out["r"] = r1
    try:
        if backend == "cvxpy":
            sol = _solve_slemma_cvxpy(W, h, tol)
        else:
            sol = _solve_compact_clarabel(W, h, tol)
    except Exception as exc:  # solver failure: the Cantelli union is still valid
        out.update(value=cant, method="cantelli-fallback",
                   note=f"solver failed ({type(exc).__name__}: {exc}); Cantelli union")
        return out
    out.update(primal=sol["primal"] + pruned, status=sol["status"],
               iterations=sol["iterations"], solve_time=sol["solve_time"])
    P = Q1 @ sol["P"] @ Q1.T
    q = Q1 @ sol["q"]
    val, eps = certify_majorant(P, q, sol["r0"], sol["tau"], Gh, h, None,
                                err_normal=err_g, err_offset=err_h)
    if not np.isfinite(val):
        out.update(value=cant, method="cantelli-fallback",
                   note=f"dual point not repairable (status {sol['status']}); Cantelli union")
        return out
    value = min(1.0, max(0.0, (val + pruned) * (1.0 + 2 * _EPS)))
    out.update(value=value, method="dual-feasible", eps_repair=eps)
    if law:
        lam = np.asarray(sol["lam"], dtype=np.float64)
        # an atom's second moment |z_j|^2 / lam_j amplifies the solver's error by 1/lam_j:
        # atoms below 1e-8 are left to the residual (error mass lost: at most k * 1e-8)
        good = lam > 1e-8
        xi = (sol["z"][good] @ Q1.T) / lam[good, None]  # error atoms in xi-space
        at, w = _law_from_atoms(np.eye(r), xi, lam[good], Gh, h,
                                owner=np.flatnonzero(good))
        out["atoms"], out["weights"] = at @ F.T, w
    return out


def _law_from_atoms(Sig: np.ndarray, Y: np.ndarray, lam: np.ndarray, U: np.ndarray,
                    c: np.ndarray, owner: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A discrete law with mean 0 and covariance Sig that puts mass ~lam_j on error atoms.

    Error atom j is nudged onto the closed side of its halfspace ``owner[j]``. The residual
    moment matrix [[Sig, 0], [0, 1]] - (1 - theta) sum_j lam_j [y_j; 1][y_j; 1]' (theta >= 0
    the smallest value found that makes it PSD) is realised by a symmetric set of atoms
    around its mean (docs/theory.md §3.7, "The attaining law"). If no error atom is given,
    the Cantelli-extremal atom of the halfspace with the largest Cantelli term is used.
    """
    r = Sig.shape[0]
    Y = np.array(Y, dtype=np.float64).reshape(-1, r)
    lam = np.array(lam, dtype=np.float64)
    if owner is None:
        owner = np.arange(Y.shape[0])
    if Y.shape[0] == 0 and U.shape[0] > 0:
        v = np.einsum("ki,ij,kj->k", U, Sig, U)
        p = np.where(c > 0, v / np.maximum(v + c * c, 1e-300), 1.0)
        j = int(np.argmax(p))
        if p[j] > 0:
            y = (Sig @ U[j]) * (c[j] / v[j]) if c[j] > 0 else np.zeros(r)
            Y, lam, owner = y[None, :], np.array([p[j]]), np.array([j])
    # nudge onto the closed error side (relative 1e-9 beyond the boundary)
    for i in range(Y.shape[0]):
        j = owner[i]
        deficit = c[j] + 1e-9 * abs(c[j]) + 1e-300 - U[j] @ Y[i]
        if deficit > 0:
            Y[i] = Y[i] + deficit * U[j]
    Mt = np.zeros((r + 1, r + 1))
    Mt[:r, :r] = Sig
    Mt[r, r] = 1.0
    scale = max(float(np.abs(Mt).max()), 1e-300)
    Ev = np.zeros((r + 1, r + 1))
    if Y.shape[0]:
        Ya = np.hstack([Y, np.ones((Y.shape[0], 1))])
        Ev = (Ya * lam[:, None]).T @ Ya
    # the solver's primal point and the nudges violate R >= 0 by ~1e-9: accept a negative
    # part up to tol (clipped below, a moment mismatch of at most ~tol)
    tol = 1e-8 * scale

    def ok(theta: float) -> bool:
        R = Mt - (1.0 - theta) * Ev
        return bool(np.linalg.eigvalsh(R)[0] >= -tol) and R[r, r] > 0

    theta = 0.0
    if not ok(theta):
        theta = 1e-15
        while theta < 1.0 and not ok(theta):
            theta *= 4.0
        hi = min(theta, 1.0)
        lo = hi / 4.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if ok(mid):
                hi = mid
            else:
                lo = mid
        theta = hi
    R = Mt - (1.0 - theta) * Ev
    rho = float(R[r, r])
    if rho < _LAW_DELTA and theta < _LAW_DELTA:
        # (almost) all mass on error atoms: leave ~_LAW_DELTA for the residual atoms
        # (raising theta adds theta * Ev >= 0, so R stays PSD)
        theta = _LAW_DELTA
        R = Mt - (1.0 - theta) * Ev
        rho = float(R[r, r])
    m0 = R[:r, r] / rho
    C0 = R[:r, :r] / rho - np.outer(m0, m0)
    mu_e, V_e = np.linalg.eigh(0.5 * (C0 + C0.T))
    pos = mu_e > 1e-15 * max(float(mu_e[-1]), 0.0) if mu_e.size else np.zeros(0, bool)
    pos &= mu_e > 0
    npos = int(pos.sum())
    atoms = [Y]
    weights = [(1.0 - theta) * lam]
    if npos == 0:
        atoms.append(m0[None, :])
        weights.append(np.array([rho]))
    else:
        D = V_e[:, pos] * np.sqrt(mu_e[pos] * npos)
        atoms += [m0[None, :] + D.T, m0[None, :] - D.T]
        weights += [np.full(npos, rho / (2 * npos))] * 2
    return np.vstack(atoms), np.concatenate(weights)


# ------------------------------------------------------------------ public: general
def _check_cov(cov: object, r: int) -> np.ndarray:
    cov = as_float_array(cov, "cov", ndim=2)
    if cov.shape != (r, r):
        raise ValueError(f"cov: shape {cov.shape}, expected ({r}, {r})")
    big = float(np.abs(cov).max())
    if np.any(np.abs(cov - cov.T) > 1e-10 * big):
        raise ValueError("cov: must be symmetric")
    cov = 0.5 * (cov + cov.T)
    if big > 0:
        s = _pow2(big)
        w = np.linalg.eigvalsh(cov / s)
        if w[0] < -1e-9 * max(w[-1], 0.0) - 1e-300:
            raise ValueError(f"cov: not positive semidefinite (eigenvalue {w[0] * s:.3g})")
    return cov


def sup_union_probability(mean: object, cov: object, A: object, b: object, *,
                          law: bool = False, backend: str = "clarabel",
                          tol: float = _SOLVER_TOL) -> MomentCertificate:
    """Certified sup of P(exists j: a_j'x >= b_j) over laws with this mean and covariance.

    ``mean`` (r,), ``cov`` (r, r) PSD, ``A`` (k, r), ``b`` (k,); closed halfspaces (ties
    count as errors). Coordinates are normalised (shift to the mean, halfspaces to unit
    normals, scale by a power of two) before solving, so the value is invariant under
    translation, rotation and scaling (docs/theory.md §3.7). A zero row ``a_j = 0`` is the
    whole space if ``b_j <= 0`` (value 1) and empty otherwise. ``law=True`` also returns
    the attaining discrete law (``atoms`` (N, r), ``weights`` (N,)); see :func:`check_law`.
    ``backend``: ``"clarabel"`` (compact VBC primal, default) or ``"cvxpy"`` (S-lemma dual).
    """
    mean = as_float_array(mean, "mean", ndim=1)
    r = mean.size
    cov = _check_cov(cov, r)
    A = as_float_array(A, "A", ndim=2)
    if A.shape[1] != r:
        raise ValueError(f"A: shape {A.shape}, expected (k, {r})")
    k = A.shape[0]
    b = as_float_array(b, "b", ndim=1)
    if b.shape != (k,):
        raise ValueError(f"b: shape {b.shape}, expected ({k},)")
    if backend not in ("clarabel", "cvxpy"):
        raise ValueError(f"backend: must be 'clarabel' or 'cvxpy', got {backend!r}")
    if not (isinstance(tol, float) and 0 < tol < 1e-3):
        raise ValueError(f"tol: must be a float in (0, 1e-3), got {tol!r}")
    return _sup_union(mean, cov, A, b, law=law, backend=backend, tol=tol)


def _sup_union(mean: np.ndarray, cov: np.ndarray, A: np.ndarray, b: np.ndarray, *,
               law: bool, backend: str, tol: float, normal_err: np.ndarray | float = 0.0,
               gap_err: np.ndarray | float = 0.0) -> MomentCertificate:
    """:func:`sup_union_probability` on validated input.

    ``normal_err`` (relative, per row) and ``gap_err`` (absolute, in units of x) bound the
    error of the rows' directions and of ``b_j / |a_j|`` against the exact halfspaces when
    the caller computed them with rounding (the cluster projection, §3.7.9 step 7).
    """
    r = mean.size
    k = A.shape[0]
    amax = np.abs(A).max(axis=1)
    zero = amax == 0
    base = dict(primal=np.nan, gap=np.nan, status="not solved", k=k, k_sdp=0, r=0,
                pruned=0.0, eps_repair=0.0, solve_time=0.0, iterations=0)

    def finish(y_atoms: np.ndarray | None, w: np.ndarray | None, s: float,
               **kw: Any) -> MomentCertificate:
        atoms = None if y_atoms is None else mean[None, :] + s * y_atoms
        return MomentCertificate(**{**base, **kw}, atoms=atoms, weights=w)

    # halfspaces with zero normal: everything (b <= 0) or nothing (b > 0)
    if np.any(zero & (b <= 0)):
        at = w = None
        s0 = _pow2(np.sqrt(np.abs(np.diag(cov)).max())) if np.any(cov) else 1.0
        if law:  # every point is an error: mass 1 - _LAW_DELTA at the mean
            at, w = _law_from_atoms(cov / s0 / s0, np.zeros((1, r)), np.ones(1),
                                    np.zeros((1, r)), np.array([-1.0]))
        return finish(at, w, s0, value=1.0, cantelli=1.0, method="trivial",
                      note="a halfspace with zero normal covers the space")
    A_, b_ = A[~zero], b[~zero]
    amx = amax[~zero]
    An = A_ / amx[:, None]
    nrm = np.linalg.norm(An, axis=1)
    U = An / nrm[:, None]
    na = amx * nrm
    bn = b_ / na
    um = U @ mean
    g = bn - um
    # rounding of g (dot product of length r, two divisions) and the callers' data errors:
    # shrink the gap (enlarges the error set, so the bound stays valid)
    nerr = np.broadcast_to(np.asarray(normal_err, dtype=np.float64), zero.shape)[~zero]
    gerr = np.broadcast_to(np.asarray(gap_err, dtype=np.float64), zero.shape)[~zero]
    g = g - 4.0 * (r + 4) * _EPS * (np.abs(bn) + np.abs(U) @ np.abs(mean)) \
        - nerr * float(np.linalg.norm(mean)) - gerr
    sd = float(np.sqrt(np.abs(np.diag(cov)).max())) if cov.size else 0.0
    if sd > 0:
        s = _pow2(sd)
    elif np.any(g > 0):
        s = _pow2(float(g[g > 0].min()))
    else:
        s = 1.0
    Sig = cov / s / s
    c = g / s
    if U.shape[0] == 0:
        at = w = None
        if law:
            at, w = _law_from_atoms(Sig, np.zeros((0, r)), np.zeros(0), U, c)
        return finish(at, w, s, value=0.0, cantelli=0.0, method="trivial",
                      note="every halfspace is empty")
    if np.any(c <= 0):
        at = w = None
        if law:
            j = int(np.argmin(c))
            at, w = _law_from_atoms(Sig, np.zeros((1, r)), np.ones(1), U[j:j + 1],
                                    c[j:j + 1])
        return finish(at, w, s, value=1.0, cantelli=1.0, method="trivial",
                      note="the mean lies in a closed error halfspace")
    # |u - a/|a|| <= 3 eps from the two scalings and the division
    res = _core(Sig, U, c, law=law, backend=backend, tol=tol, u_err=3.03 * _EPS + nerr)
    value = float(res["value"])
    gap = value - res["primal"] if np.isfinite(res["primal"]) else np.nan
    return finish(res["atoms"], res["weights"], s, value=value, primal=float(res["primal"]),
                  gap=float(gap), cantelli=float(res["cantelli"]), method=res["method"],
                  status=res["status"], k_sdp=res["k_sdp"], r=res["r"],
                  pruned=float(res["pruned"]), eps_repair=float(res["eps_repair"]),
                  solve_time=float(res["solve_time"]), iterations=int(res["iterations"]),
                  note=res["note"])


def check_law(atoms: object, weights: object, mean: object, cov: object, A: object,
              b: object) -> LawCheck:
    """Total mass, relative mean / covariance mismatch and error fraction of a law.

    ``mean_error = |m_hat - mean| / (|mean| + sqrt(tr cov))``, ``cov_error = ||C_hat -
    cov||_F / ||cov||_F`` (absolute if cov = 0), ``error_fraction`` = weight of the atoms
    with some ``a_j'x >= b_j`` (docs/theory.md §3.7).
    """
    X = as_float_array(atoms, "atoms", ndim=2)
    w = as_float_array(weights, "weights", ndim=1)
    if w.shape != (X.shape[0],):
        raise ValueError(f"weights: shape {w.shape}, expected ({X.shape[0]},)")
    mean = as_float_array(mean, "mean", ndim=1)
    cov = as_float_array(cov, "cov", ndim=2)
    A = as_float_array(A, "A", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    if X.shape[1] != mean.size or cov.shape != (mean.size, mean.size) or \
            A.shape != (b.size, mean.size):
        raise ValueError("atoms: dimensions of atoms, mean, cov, A, b do not match")
    tot = float(w.sum())
    # moments in units of a power of two (no overflow at scales up to ~1e150)
    spread = max(float(np.abs(X - mean[None, :]).max()),
                 float(np.sqrt(np.abs(np.diag(cov)).max())))
    s = _pow2(spread) if spread > 0 else 1.0
    D = (X - mean[None, :]) / s
    dm = w @ D
    C_hat = (D * w[:, None]).T @ D - np.outer(dm, dm)
    covs = cov / s / s
    ref = float(np.linalg.norm(mean / s) + np.sqrt(max(np.trace(covs), 0.0)))
    mean_err = float(np.linalg.norm(dm) / ref) if ref > 0 else float(np.linalg.norm(dm))
    cref = float(np.linalg.norm(covs))
    cov_err = float(np.linalg.norm(C_hat - covs) / cref) if cref > 0 else float(
        np.linalg.norm(C_hat))
    err = np.any(X @ A.T >= b[None, :], axis=1)
    return LawCheck(total_mass=tot, mean_error=mean_err, cov_error=cov_err,
                    error_fraction=float(w[err].sum()), min_weight=float(w.min()))


# ------------------------------------------------------------------ public: one cluster
def _standalone_tails(own: np.ndarray, foreign: np.ndarray, offset: np.ndarray,
                      V: np.ndarray, L: np.ndarray, resid: float) -> np.ndarray:
    """Bound C's directional Cantelli terms p_nu of this cluster (via _directional_tails)."""
    k, d = foreign.shape
    q = L.shape[0]
    C = k + 1
    cs = ClusterStats(
        task=np.r_[0, np.ones(k, dtype=np.int64)].astype(np.int64),
        centroid=np.vstack([own[None, :], foreign]), count=np.ones(C, dtype=np.int64),
        weight=np.r_[1.0, np.full(k, 1.0 / k)], msr=np.zeros(C), max_radius=np.zeros(C),
        offset=np.vstack([offset[None, :], np.zeros((k, d))]),
        eigvecs=np.concatenate([V[None], np.zeros((k, d, q))]),
        eigvals=np.vstack([L[None, :], np.zeros((k, q))]), resid=np.r_[resid, np.zeros(k)],
        point_cluster=np.arange(C), point_radius=np.zeros(C),
    )
    return _directional_tails(cs, _cluster_geometry(cs))[0, 1:]


def centroid_moment_bound(own: object, foreign: object, offset: object, eigvecs: object,
                          eigvals: object, resid: float, *, r_max: int = DEFAULT_R_MAX,
                          tails: object | None = None, law: bool = False,
                          backend: str = "clarabel") -> ClusterMomentResult:
    """Moment bound on the misretrieval probability of one cluster (docs/theory.md §3.7).

    ``own`` (d,): the stored centroid o; ``foreign`` (k, d): the other tasks' centroids f_j;
    ``offset`` (d,): cluster mean - o; covariance sketch ``eigvecs`` (d, q), ``eigvals``
    (q,), ``resid`` with Sigma <= V diag(L) V' + resid (I - V V') (exact when q = d and
    resid = 0). A point is misretrieved only if some f_j is at least as close as o:
    a_j'x >= b_j with a_j = 2 (f_j - o), b_j = |f_j|^2 - |o|^2. The exact SDP runs over the
    ``r_max`` foreign centroids with the largest directional Cantelli terms (bound C's
    p_nu; ``tails`` (k,) may pass them precomputed), in the subspace spanned by their
    f_j - o; the others add their Cantelli terms. Returns ``min(1, sdp + rest, Cantelli
    union)``.
    """
    own = as_float_array(own, "own", ndim=1)
    d = own.size
    foreign = as_float_array(foreign, "foreign", ndim=2, allow_empty=True)
    if foreign.size == 0:
        foreign = foreign.reshape(0, d)
    if foreign.shape[1] != d:
        raise ValueError(f"foreign: shape {foreign.shape}, expected (k, {d})")
    offset = as_float_array(offset, "offset", ndim=1)
    if offset.shape != (d,):
        raise ValueError(f"offset: shape {offset.shape}, expected ({d},)")
    V = as_float_array(eigvecs, "eigvecs", ndim=2)
    if V.shape[0] != d:
        raise ValueError(f"eigvecs: shape {V.shape}, expected ({d}, q)")
    L = as_float_array(eigvals, "eigvals", ndim=1)
    if L.shape != (V.shape[1],):
        raise ValueError(f"eigvals: shape {L.shape}, expected ({V.shape[1]},)")
    if np.any(L < 0):
        raise ValueError("eigvals: must be non-negative")
    resid = float(as_float_array(resid, "resid", ndim=0))
    if resid < 0:
        raise ValueError("resid: must be non-negative")
    r_max = check_positive_int(r_max, "r_max")
    if backend not in ("clarabel", "cvxpy"):
        raise ValueError(f"backend: must be 'clarabel' or 'cvxpy', got {backend!r}")
    k = foreign.shape[0]
    if tails is None:
        p = _standalone_tails(own, foreign, offset, V, L, resid) if k else np.zeros(0)
    else:
        p = as_float_array(tails, "tails", ndim=1, allow_empty=True)
        if p.shape != (k,):
            raise ValueError(f"tails: shape {p.shape}, expected ({k},)")
    return _cluster_bound(own, foreign, offset, V, L, resid, p, r_max, law, backend)


def _select(foreign: np.ndarray, own: np.ndarray, p: np.ndarray, r_max: int) -> np.ndarray:
    """Indices of the (at most r_max) largest Cantelli terms above PRUNE_TOL.

    Ties are broken by distance, then lexicographically by coordinates, so the choice does
    not depend on the order of the centroids.
    """
    cand = np.flatnonzero(p > PRUNE_TOL)
    if cand.size == 0:
        return cand
    Fc = foreign[cand]
    diff = Fc - own[None, :]
    d2 = np.einsum("ij,ij->i", diff, diff)
    pc = p[cand]
    order = np.lexsort((d2, -pc))  # last key sorts first
    ps, ds = pc[order], d2[order]
    if np.any((ps[1:] == ps[:-1]) & (ds[1:] == ds[:-1])):  # exact ties: coordinates decide
        order = np.lexsort(np.vstack([Fc.T[::-1], d2[None, :], -pc[None, :]]))
    return cand[order[:r_max]]


def _cluster_bound(own: np.ndarray, foreign: np.ndarray, offset: np.ndarray, V: np.ndarray,
                   L: np.ndarray, resid: float, p: np.ndarray, r_max: int, law: bool,
                   backend: str) -> ClusterMomentResult:
    k, d = foreign.shape
    cant = float(min(1.0, p.sum()))
    if k == 0:
        return ClusterMomentResult(0.0, 0.0, 0.0, 0.0, np.zeros(0, np.int64), 0, 0)
    if np.any(p >= 1.0):
        return ClusterMomentResult(1.0, 1.0, float(p.sum() - p.max()), cant,
                                   np.array([int(np.argmax(p))]), 0, k - 1)
    sel = _select(foreign, own, p, r_max)
    rest_mask = np.ones(k, dtype=bool)
    rest_mask[sel] = False
    rest = float(p[rest_mask].sum())
    n_pruned = int(rest_mask.sum())
    if sel.size <= 1:  # one halfspace: the SDP equals Cantelli (docs/theory.md §3.7)
        sdp = float(p[sel].sum())
        val = min(1.0, (sdp + rest) * (1.0 + 2 * _EPS), cant)
        return ClusterMomentResult(val, sdp, rest, cant, sel, 0, n_pruned)
    E = foreign[sel] - own[None, :]
    s0 = _pow2(float(np.abs(E).max()))
    Es = E / s0
    Q, R = np.linalg.qr(Es.T)  # span{e_j} in orthonormal coordinates, r = min(d, k)
    sgn = np.where(np.diag(R) < 0, -1.0, 1.0)  # canonical signs: diag(R) >= 0
    Q, R = Q * sgn[None, :], R * sgn[:, None]
    rdim = Q.shape[1]
    A_loc = R.T  # a_j / 2 in local coordinates (the factor 2 cancels in u_j, c_j)
    b_loc = 0.5 * np.einsum("ij,ij->i", Es, Es)
    m_loc = Q.T @ (offset / s0)
    QV = Q.T @ V
    Ls = L / s0 / s0
    rs = resid / s0 / s0
    cov = (QV * Ls[None, :]) @ QV.T + rs * (np.eye(rdim) - QV @ QV.T)
    cov = 0.5 * (cov + cov.T)
    # rounding of the projection: inflate by a PSD ridge (monotone in Sigma, §3.7)
    cov += 8.0 * (d + V.shape[1] + 4) * _EPS * (float(Ls.max(initial=0.0)) + rs) \
        * np.eye(rdim)
    w = np.linalg.eigvalsh(cov)
    if w[0] < 0:  # sketch rounding made it indefinite: lift to PSD (only enlarges Sigma)
        cov += (-w[0]) * 2.0 * np.eye(rdim)
    # rounding of the QR and of the projections, as data errors of the local halfspaces
    en = np.sqrt(2.0 * b_loc)  # |e_j| / s0
    qerr = 64.0 * (d + sel.size) * _EPS
    cert = _sup_union(m_loc, cov, A_loc, b_loc, law=law, backend=backend,
                      tol=_SOLVER_TOL, normal_err=qerr * float(np.linalg.norm(Es)) / en,
                      gap_err=qerr * (en + float(np.linalg.norm(offset / s0))))
    sdp = float(cert.value)
    val = float(min(1.0, (sdp + rest) * (1.0 + 2 * _EPS), cant))
    out = ClusterMomentResult(val, sdp, rest, cant, sel, rdim, n_pruned, cert)
    if law and cert.atoms is not None:
        perp = offset - s0 * (Q @ m_loc)
        out.atoms = own[None, :] + s0 * (cert.atoms @ Q.T) + perp[None, :]
        out.weights = cert.weights
    return out


# ------------------------------------------------------------------ registered bound
class MomentOptBound(Bound):
    """moment-opt: per cluster the optimal two-moment bound (SDP) (docs/theory.md §3.7).

    eps_c = min(1, SDP over the r_max largest Cantelli directions + Cantelli union of the
    rest, Cantelli union of all); per task sum_c w_c eps_c. Exact on the empirical measure
    (the sample is one law with these moments); a sketch keeps it valid (monotone in Sigma).
    """

    name, title, section = "moment-opt", "optimal two-moment bound (SDP)", "docs/theory.md §3.7"
    assumptions = DirectionalBound.assumptions + (
        "exact SDP over the r_max foreign centroids with the largest Cantelli terms, "
        "Cantelli union over the rest; certified dual-feasible value",
    )
    reads = ("clusters",)
    guaranteed = True

    def __init__(self, r_max: int = DEFAULT_R_MAX) -> None:
        self.r_max = check_positive_int(r_max, "r_max")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        # bound C's tails; a non-finite one (overflow at extreme scales) is replaced by the
        # trivial 1, which keeps every use below valid
        p = inputs.directional()
        p = np.where(np.isfinite(p), p, 1.0)
        C = cs.n_clusters
        eps_c = np.minimum(1.0, p.sum(axis=1))
        sdp = np.full(C, np.nan)
        primal = np.full(C, np.nan)
        gap = np.full(C, np.nan)
        r_used = np.zeros(C, dtype=np.int64)
        n_pruned = np.zeros(C, dtype=np.int64)
        methods = [""] * C
        t0 = time.perf_counter()
        solver_time = 0.0
        for c in range(C):  # loop over clusters: one small SDP each
            if cs.count[c] == 0:  # weight 0: contributes nothing
                methods[c] = "empty"
                continue
            fidx = np.flatnonzero(g["foreign"][c])
            res = _cluster_bound(cs.centroid[c], cs.centroid[fidx], cs.offset[c],
                                 cs.eigvecs[c], cs.eigvals[c], float(cs.resid[c]),
                                 p[c, fidx], self.r_max, False, "clarabel")
            eps_c[c] = res.value
            sdp[c] = res.sdp
            r_used[c] = res.r
            n_pruned[c] = res.n_pruned
            cert = res.certificate
            if cert is not None:
                primal[c] = cert.primal + res.rest
                gap[c] = cert.gap
                methods[c] = cert.method
                solver_time += cert.solve_time
            else:
                methods[c] = "closed-form"
        details = {
            "per_cluster": eps_c, "sdp": sdp, "primal": primal, "gap": gap, "r": r_used,
            "n_pruned": n_pruned, "method": methods, "r_max": self.r_max,
            "solver_time": solver_time, "time": time.perf_counter() - t0,
        }
        return _per_task_from_clusters(cs, eps_c), details
