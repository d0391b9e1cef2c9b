"""The optimal two-moment bound of one cluster and the registered ``moment-opt``
(docs/theory.md §3.7).

:func:`centroid_moment_bound` bounds the misretrieval probability of one cluster of the
nearest-centroid rule (some foreign centroid at least as close as the own one) in the
subspace of the ``r_max`` foreign directions with the largest directional Cantelli terms,
plus the Cantelli union of the others (§3.7.2, §3.7.7).
"""

from __future__ import annotations

import numpy as np

from .._blas import blas_threads
from .._validate import as_float_array, check_positive_int
from ..base import Bound, BoundInputs
from ..centroid import DirectionalBound, _per_task_from_clusters, truncated_union
from ..clusters import ClusterStats
from ..geometry import _cluster_geometry, _directional_tails
from .drive import BACKENDS, Steps, drive, drive_all
from .law import _pow2, _sup_union
from .sdp import _EPS, _SOLVER_TOL, DEFAULT_R_MAX, PRUNE_TOL, ClusterMomentResult


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
                          backend: str = "ipm") -> ClusterMomentResult:
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
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}; got {backend!r}")
    k = foreign.shape[0]
    if tails is None:
        p = _standalone_tails(own, foreign, offset, V, L, resid) if k else np.zeros(0)
    else:
        p = as_float_array(tails, "tails", ndim=1, allow_empty=True)
        if p.shape != (k,):
            raise ValueError(f"tails: shape {p.shape}, expected ({k},)")
    return _cluster_bound(own, foreign, offset, V, L, resid, p, r_max, law, backend,
                          skip=not law)  # the attaining law needs the SDP itself


class _Rows:
    """The rows ``base[idx]`` of an array, copied only when indexed: ``moment-opt`` needs
    at most r_max of a cluster's ~m K foreign centroids (copying all of them cost more
    than the SDPs, issue #21)."""

    def __init__(self, base: np.ndarray, idx: np.ndarray) -> None:
        self.base, self.idx = base, idx
        self.shape = (idx.size, base.shape[1])

    def __getitem__(self, i: np.ndarray) -> np.ndarray:
        return self.base[self.idx[i]]


def _select(foreign: np.ndarray | _Rows, own: np.ndarray, p: np.ndarray, r_max: int) -> np.ndarray:
    """Indices of the (at most r_max) largest Cantelli terms above PRUNE_TOL.

    Ties are broken by distance, then lexicographically by coordinates, so the choice does
    not depend on the order of the centroids.
    """
    cand = np.flatnonzero(p > PRUNE_TOL)
    if cand.size == 0:
        return cand
    if cand.size > r_max:  # only terms >= the r_max-th largest can be chosen (ties kept)
        pc = p[cand]
        cand = cand[pc >= np.partition(pc, pc.size - r_max)[pc.size - r_max]]
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
                   backend: str, *, skip: bool = True) -> ClusterMomentResult:
    """One cluster's bound (§3.7), its SDP solved with ``backend``; ``skip=False`` solves
    the SDP even where §14.1 shows that it cannot change the value (the reference of the
    tests)."""
    return drive(_cluster_steps(own, foreign, offset, V, L, resid, p, r_max, law, skip=skip),
                 backend)


def _cluster_steps(own: np.ndarray, foreign: np.ndarray | _Rows, offset: np.ndarray, V: np.ndarray,
                   L: np.ndarray, resid: float, p: np.ndarray, r_max: int, law: bool, *,
                   skip: bool = True) -> Steps[ClusterMomentResult]:
    """:func:`_cluster_bound` as a computation whose SDP the caller solves (law.Steps)."""
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
    # one halfspace: the SDP equals Cantelli (§3.7.3); several: the SDP is at least their
    # largest Cantelli term (§3.7.4), so when that plus the rest already reaches the union
    # cap min(1, sum p) no SDP can lower the value (§14.1): it is not solved
    if sel.size <= 1 or (skip and float(p[sel].max()) + rest >= cant):
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
    cert = yield from _sup_union(
        m_loc, cov, A_loc, b_loc, law=law, tol=_SOLVER_TOL,
        normal_err=qerr * float(np.linalg.norm(Es)) / en,
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
#: D replaces the two-moment value only when smaller by more than this (relative): at
#: rounding-level ties the certified SDP value (and its optimality law) is kept
_MATERIAL = 1e-6

#: why a cluster's SDP was not solved (docs/theory.md §14.1), as printed in the details
SKIP_REASONS = {
    "one": "a foreign centroid's Cantelli term is 1 (coincident centroid, or the mean on "
           "its side of the bisector): the cluster's term is 1",
    "cap": "largest Cantelli term + Cantelli rest >= the Cantelli union min(1, sum p): "
           "no SDP over the r_max largest terms can lower it",
    "D": "bound D's truncated union (Markov screening of far centroids) <= the SDP's "
         "lower bound (largest Cantelli term + Cantelli rest)",
}


def sdp_lower_bound(p: np.ndarray, r_max: int) -> np.ndarray:
    """Per row of ``p`` (C, k) >= 0, a lower bound of ``SDP_T + rest`` (§3.7.4, §3.7.7):
    the largest Cantelli term above PRUNE_TOL plus every term outside the ``r_max``
    largest of them (which set T is chosen among ties does not change either sum)."""
    if p.shape[1] == 0:
        return np.zeros(p.shape[0])
    pk = np.where(p > PRUNE_TOL, p, 0.0)
    r = min(r_max, p.shape[1])
    top = -np.partition(-pk, r - 1, axis=1)[:, :r]
    return top.max(axis=1) + (p.sum(axis=1) - top.sum(axis=1))


class MomentOptBound(Bound):
    """moment-opt: per cluster the optimal two-moment bound (SDP) (docs/theory.md §3.7),
    screened by bound D's truncated union (§14.1).

    eps_c = min(D_c, SDP over the r_max largest Cantelli directions + Cantelli union of
    the rest, Cantelli union of all, 1); per task sum_c w_c eps_c. Exact on the empirical
    measure (the sample is one law with these moments; D_c is exact on it, §3.6); a
    sketch keeps it valid (monotone in Sigma). The SDP is skipped, with the reason in
    ``details["method"]``, where its lower bound already reaches min(1, C_c, D_c).
    """

    name, title, section = "moment-opt", "optimal two-moment bound (SDP)", "docs/theory.md §3.7"
    assumptions = DirectionalBound.assumptions + (
        "exact SDP over the r_max foreign centroids with the largest Cantelli terms, "
        "Cantelli union over the rest; certified dual-feasible value",
    )
    tier = "training-time"
    at_most = ("C", "D")  # §3.7.4, §14.1: never above bound C nor bound D
    reads = ("clusters",)

    def __init__(self, r_max: int = DEFAULT_R_MAX) -> None:
        self.r_max = check_positive_int(r_max, "r_max")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        plan = self.prepare(inputs)
        return self.finish(inputs.clusters, plan, self.solve(inputs.clusters, plan))

    # the three stages, so that a caller may solve the SDPs of several clusters in parallel
    # (``python -m bounds.check --jobs``): prepare -> solve (any split of plan["todo"]) ->
    # finish; the result does not depend on the split
    def prepare(self, inputs: BoundInputs) -> dict:
        """Everything but the SDPs: bound C's and D's terms, the SDPs' lower bounds, the
        clusters skipped (with the reason, §14.1) and ``todo``, the clusters whose
        closed form or SDP is computed by :meth:`solve` (with their rows of p)."""
        cs = inputs.clusters
        # bound C's tails; a non-finite one (overflow at extreme scales) is replaced by the
        # trivial 1, which keeps every use below valid
        p = inputs.directional()
        p = np.where(np.isfinite(p), p, 1.0)
        d_c = truncated_union(inputs)[0]
        d_c = np.where(np.isfinite(d_c), d_c, 1.0)
        cap = np.minimum(1.0, p.sum(axis=1))
        lower = sdp_lower_bound(p, self.r_max)
        live = cs.count > 0
        # D below anything the SDP can return: the SDP is not solved (§14.1)
        by_d = live & (d_c <= np.minimum(lower, cap) * (1.0 - _MATERIAL))
        # the largest term plus the rest reach 1: the term is 1 whatever the SDP (the
        # closed form of _cluster_bound gives exactly 1.0 there), nothing to solve
        at_one = live & ~by_d & (lower >= 1.0)
        todo = np.flatnonzero(live & ~by_d & ~at_one)
        fidx = inputs.cluster_geometry()["foreign"][todo]
        return {"cap": cap, "d_c": d_c, "by_d": by_d, "at_one": at_one, "todo": todo,
                "p_rows": p[todo], "foreign": fidx, "live": live, "pmax": p.max(axis=1)}

    def solve(self, cs: ClusterStats, plan: dict) -> list[ClusterMomentResult]:
        """:func:`_cluster_bound` of the clusters ``plan["todo"]`` (a plan, or a piece of
        one: its rows of ``todo``, ``foreign`` and ``p_rows``)."""
        steps = []
        with blas_threads(1):  # small products: one BLAS thread
            for i in range(plan["todo"].size):  # one small SDP per cluster, solved together
                c, fidx = int(plan["todo"][i]), np.flatnonzero(plan["foreign"][i])
                steps.append(_cluster_steps(
                    cs.centroid[c], _Rows(cs.centroid, fidx), cs.offset[c], cs.eigvecs[c],
                    cs.eigvals[c], float(cs.resid[c]), plan["p_rows"][i, fidx], self.r_max,
                    False))
            return drive_all(steps)

    def finish(self, cs: ClusterStats, plan: dict, results: list[ClusterMomentResult]
               ) -> tuple[np.ndarray, dict]:
        """Per-task values and details from the plan and the results of every ``todo``."""
        C = cs.n_clusters
        cap, d_c = plan["cap"], plan["d_c"]
        at_one = plan["at_one"]
        eps_c = np.where(plan["by_d"], d_c, np.where(at_one, 1.0, cap))
        sdp, primal, gap = np.full(C, np.nan), np.full(C, np.nan), np.full(C, np.nan)
        r_used = np.zeros(C, dtype=np.int64)
        n_pruned = np.zeros(C, dtype=np.int64)
        one = at_one & (plan["pmax"] >= 1.0)
        methods = ["empty" if not ok else "skipped (D)" if b else "skipped (one)" if o else
                   "skipped (cap)" if a else "" for ok, b, o, a in
                   zip(plan["live"], plan["by_d"], one, at_one)]
        skipped = dict.fromkeys(SKIP_REASONS, 0)
        skipped.update(D=int(plan["by_d"].sum()), one=int(one.sum()),
                       cap=int((at_one & ~one).sum()))
        solver_time = 0.0
        for i, (c, res) in enumerate(zip(plan["todo"], results)):
            eps_c[c] = res.value
            if d_c[c] < res.value * (1.0 - _MATERIAL):
                eps_c[c] = d_c[c]
            sdp[c], r_used[c], n_pruned[c] = res.sdp, res.r, res.n_pruned
            cert = res.certificate
            pmax = float(plan["p_rows"][i].max(initial=0.0))
            if cert is not None:
                primal[c] = cert.primal + res.rest
                gap[c] = cert.gap
                methods[c] = cert.method
                solver_time += cert.solve_time
            elif res.chosen.size <= 1 and pmax < 1.0:
                methods[c] = "closed-form"  # one halfspace: the SDP is its Cantelli term
            else:
                why = "one" if pmax >= 1.0 else "cap"
                skipped[why] += 1
                methods[c] = f"skipped ({why})"
                sdp[c] = np.nan if why == "cap" else sdp[c]
        details = {
            "per_cluster": eps_c, "sdp": sdp, "primal": primal, "gap": gap, "r": r_used,
            "n_pruned": n_pruned, "method": methods, "r_max": self.r_max,
            "skipped": skipped, "n_sdp": int(np.isfinite(gap).sum()),
            # clusters whose value is bound D's (below the Cantelli union cap)
            "from_D": int(np.sum((eps_c == d_c) & (d_c < cap) & plan["live"])),
            "solver_time": solver_time,
        }
        return _per_task_from_clusters(cs, eps_c), details
