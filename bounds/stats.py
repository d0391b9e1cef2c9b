"""Statistics the bounds read: score moments, cluster geometry, Gaussian mixtures.

* :func:`score_stats` -> :class:`ScoreStats` (docs/theory.md §2): own / foreign score
  moments with 1/n (biased) variances and the separation factors delta_ts, delta_t.
* :func:`cluster_stats` -> :class:`ClusterStats` (docs/theory.md §3): per stored
  centroid the weight, mean squared radius about the *stored* centroid, max radius, mean
  offset, a top-q covariance eigen-sketch with a valid residual bound, and per point its
  cluster and radius. Separations are computed at bound time so that stats gathered
  task by task can be concatenated (:meth:`ClusterStats.concat`).
* :class:`GaussianMixtures` (docs/theory.md §4): per-task mixture parameters, ``nll``.

Complexity: ``cluster_stats`` costs O(n K d) for the assignment (per task), O(n d) for
radii and offsets and O(sum_c n_c^2 d) (Gram path, n_c <= d) or O(sum_c (n_c d^2 + d^3))
(covariance path) for the sketches. All loops are over tasks or over batches of clusters,
never over sample pairs or centroid pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ._validate import as_float_array, as_index_array, check_positive_int, fmt_list
from .empirical import check_scores, task_counts
from .symbolic import FUNCS

__all__ = [
    "ScoreStats",
    "score_stats",
    "ClusterStats",
    "cluster_stats",
    "GaussianMixtures",
    "sqdist",
    "nearest_centroid_scores",
]

_DIRECT_LIMIT = 1 << 22  # elements of a broadcast difference tensor before switching to BLAS
_CHUNK_ELEMS = 1 << 23


# ------------------------------------------------------------------ scale normalisation
def unit_exponent(*arrays: np.ndarray, squared: tuple[np.ndarray, ...] = ()) -> int:
    """The exponent e with max |x| / 2**e in [0.5, 1) over ``arrays`` (0 if all are 0).

    ``squared`` holds squared lengths (variances, mean squared radii): their square roots
    count. Every bound is scale-invariant (docs/theory.md §2.4, §3.5), so the code divides
    its inputs by 2**e -- exact in floating point -- before squaring anything: squares and
    fourth powers then neither overflow nor underflow for any representable scale.
    """
    mx = 0.0
    for a in arrays:
        if a.size:
            mx = max(mx, float(np.max(np.abs(a))))
    for a in squared:
        if a.size:
            mx = max(mx, float(np.sqrt(np.max(np.abs(a)))))
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
    step = max(1, _CHUNK_ELEMS // max(1, nb_))
    for i0 in range(0, na_, step):
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
    return out


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(sorted_keys, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return starts, counts


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


# ------------------------------------------------------------------ score statistics
@dataclass
class ScoreStats:
    """Own / foreign score moments per task (docs/theory.md §2.3).

    ``M[t] = E S_t``, ``V[t] = Var S_t`` over task t's samples; ``Mf[t, s] = E S_s`` and
    ``Vf[t, s] = Var S_s`` over task t's samples (diagonal = own); variances use 1/n_t.
    ``delta[t, s]`` is the separation factor (diagonal +inf) and ``delta_t`` its
    minimum over s != t (+inf when m = 1). The moments are those of ``S / 2**unit_exp``
    (``unit_exp = 0``: the scores' own units; see :func:`score_stats`).
    """

    n_t: np.ndarray
    M: np.ndarray
    V: np.ndarray
    Mf: np.ndarray
    Vf: np.ndarray
    delta: np.ndarray
    delta_t: np.ndarray
    unit_exp: int = 0

    @property
    def m(self) -> int:
        return int(self.n_t.shape[0])


def _grouped_moments(
    X: np.ndarray, keys: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group mean and biased variance of every column of X, robust to rounding.

    Two-pass with one mean refinement; constant groups get exactly (value, 0), and the
    mean is clamped into the group's [min, max] (docs/theory.md §2.4).
    """
    order = np.argsort(keys, kind="stable")
    Xs = X[order]
    starts, counts = _group_starts(keys[order], n_groups)
    cnt = counts[:, None].astype(np.float64)
    mean = np.add.reduceat(Xs, starts, axis=0) / cnt
    rep = np.repeat(mean, counts, axis=0)
    mean = mean + np.add.reduceat(Xs - rep, starts, axis=0) / cnt
    lo = np.minimum.reduceat(Xs, starts, axis=0)
    hi = np.maximum.reduceat(Xs, starts, axis=0)
    mean = np.clip(mean, lo, hi)
    const = lo == hi
    mean = np.where(const, lo, mean)
    rep = np.repeat(mean, counts, axis=0)
    var = np.add.reduceat((Xs - rep) ** 2, starts, axis=0) / cnt
    var = np.where(const, 0.0, var)
    return mean, var


def separation_factors(M: np.ndarray, V: np.ndarray, Mf: np.ndarray,
                       Vf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """delta_ts from EXPR['separation'] with the zero-denominator limits (§2.3).

    A zero denominator gives +inf for a positive gap, -inf for a negative one and 0 for a
    zero gap. Returns (delta (m, m) with +inf diagonal, delta_t (m,)).
    """
    m_ = M.shape[0]
    Mt = M[:, None]
    Vt = V[:, None]
    gap = Mf - Mt
    den = np.sqrt(Vt) + np.sqrt(Vf)
    raw = FUNCS["separation"](Mt, Mf, Vt, Vf)
    with np.errstate(invalid="ignore"):
        delta = np.where(den > 0, raw, np.sign(gap) * np.inf)
    delta = np.where((den == 0) & (gap == 0), 0.0, delta)
    np.fill_diagonal(delta, np.inf)
    delta_t = delta.min(axis=1) if m_ > 1 else np.full(m_, np.inf)
    return delta, delta_t


def score_stats(S: object, task: object, *, normalised: bool = False) -> ScoreStats:
    """Own / foreign score moments and separation factors (docs/theory.md §2.3).

    The moments are computed from ``S / 2**e`` with ``max |S| / 2**e`` in [0.5, 1) (exact),
    so squared deviations neither overflow nor underflow and ``delta`` is scale-invariant
    (§2.4). ``normalised=True`` returns them in those units (``unit_exp = e``; what the
    bounds read); otherwise they are converted back to the units of ``S`` (``unit_exp =
    0``; a variance beyond the float range then reads inf or 0, ``delta`` stays right).
    """
    S, task = check_scores(S, task)
    m_ = S.shape[1]
    n_t = task_counts(task, m_)
    e = unit_exponent(S)
    Mf, Vf = _grouped_moments(np.ldexp(S, -e) if e else S, task, m_)
    M = np.diag(Mf).copy()
    V = np.diag(Vf).copy()
    delta, delta_t = separation_factors(M, V, Mf, Vf)
    if normalised or e == 0:
        return ScoreStats(n_t=n_t, M=M, V=V, Mf=Mf, Vf=Vf, delta=delta, delta_t=delta_t,
                          unit_exp=e)
    with np.errstate(over="ignore"):
        return ScoreStats(n_t=n_t, M=np.ldexp(M, e), V=np.ldexp(V, 2 * e),
                          Mf=np.ldexp(Mf, e), Vf=np.ldexp(Vf, 2 * e), delta=delta,
                          delta_t=delta_t)


# ------------------------------------------------------------------ cluster statistics
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
    # many small per-cluster products: BLAS threading only adds contention here
    with threadpool_limits(limits=1, user_api="blas"):
        return _cov_sketch_impl(Xs, starts, counts, q)


def _cov_sketch_impl(
    Xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


_CS_FIELDS = (
    "task", "centroid", "count", "weight", "msr", "max_radius", "offset",
    "eigvecs", "eigvals", "resid", "point_cluster", "point_radius",
)
#: physical dimension of the ClusterStats fields: 1 = a length, 2 = a squared length
#: (other fields are scale-free: ids, counts, weights, unit eigenvectors)
_CS_POWER = {"centroid": 1, "max_radius": 1, "offset": 1, "point_radius": 1,
             "msr": 2, "eigvals": 2, "resid": 2, "resid_diag": 2}


@dataclass
class ClusterStats:
    """Per-cluster geometry for the centroid bounds (docs/theory.md §3).

    Cluster c = (task[c], stored centroid centroid[c]). ``weight[c] = count[c] / n_t``,
    ``msr[c]`` = mean ||z - mu_c||^2 about the stored centroid, ``offset[c]`` = cluster
    mean - centroid, covariance sketch ``eigvecs`` (C, d, q), ``eigvals`` (C, q), ``resid``
    (C,) >= every remaining eigenvalue. Per point: ``point_cluster`` (n,), ``point_radius``
    (n,) = ||z - mu_{point_cluster}||.
    """

    task: np.ndarray
    centroid: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    msr: np.ndarray
    max_radius: np.ndarray
    offset: np.ndarray
    eigvecs: np.ndarray
    eigvals: np.ndarray
    resid: np.ndarray
    point_cluster: np.ndarray
    point_radius: np.ndarray
    #: optional (C, d): diagonal of Sigma_c - V diag(L) V' (>= 0), the part of each
    #: coordinate's variance the sketch misses. Used only by the predictions
    #: (docs/theory.md §9); the bounds use the PSD upper bound ``resid``.
    resid_diag: np.ndarray | None = None

    # ------------------------------------------------------------ basic properties
    @property
    def n_clusters(self) -> int:
        return int(self.task.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroid.shape[1])

    @property
    def rank(self) -> int:
        return int(self.eigvals.shape[1])

    @property
    def n_tasks(self) -> int:
        return int(self.task.max()) + 1

    @property
    def point_task(self) -> np.ndarray:
        return self.task[self.point_cluster]

    def task_sizes(self) -> np.ndarray:
        """n_t per task (sum of cluster counts)."""
        return np.bincount(self.task, weights=self.count, minlength=self.n_tasks).astype(
            np.int64
        )

    def validate(self, name: str = "clusters", *, complete: bool = True) -> ClusterStats:
        """Check shapes and finiteness; raises ``ValueError(name: ...)``.

        ``complete=False`` accepts a part of a run (e.g. the training-time statistics of
        task t alone, whose ids are global): every other check still applies.
        """
        C = self.task.shape[0]
        if C == 0:
            raise ValueError(f"{name}: has no clusters")
        d = self.centroid.shape[1] if self.centroid.ndim == 2 else -1
        expect = {
            "task": (C,), "centroid": (C, d), "count": (C,), "weight": (C,), "msr": (C,),
            "max_radius": (C,), "offset": (C, d), "resid": (C,),
        }
        for key, shp in expect.items():
            arr = getattr(self, key)
            if arr.shape != shp:
                raise ValueError(f"{name}: field {key} has shape {arr.shape}, expected {shp}")
        q = self.eigvals.shape[1] if self.eigvals.ndim == 2 else -1
        if self.eigvals.shape != (C, q) or self.eigvecs.shape != (C, d, q):
            raise ValueError(
                f"{name}: sketch shapes eigvecs {self.eigvecs.shape} / eigvals "
                f"{self.eigvals.shape} do not match {C} clusters of dimension {d}"
            )
        for f in _CS_FIELDS:
            arr = getattr(self, f)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: field {f} contains NaN or infinite values")
        if self.point_cluster.shape != self.point_radius.shape:
            raise ValueError(f"{name}: point_cluster and point_radius lengths differ")
        if self.resid_diag is not None:
            if self.resid_diag.shape != (C, d):
                raise ValueError(f"{name}: field resid_diag has shape {self.resid_diag.shape}, "
                                 f"expected {(C, d)}")
            if not np.all(np.isfinite(self.resid_diag)) or np.any(self.resid_diag < 0):
                raise ValueError(f"{name}: field resid_diag must be finite and >= 0")
        if self.point_cluster.size and (
            self.point_cluster.min() < 0 or self.point_cluster.max() >= C
        ):
            raise ValueError(f"{name}: point_cluster ids out of range")
        for f in ("count", "weight", "msr", "max_radius", "point_radius", "eigvals", "resid"):
            arr = getattr(self, f)
            if arr.size and arr.min() < 0:
                raise ValueError(f"{name}: {f}: negative value(s) (min {arr.min():.6g}); "
                                 "counts, weights, radii and second moments are >= 0")
        if self.task.min() < 0:
            raise ValueError(f"{name}: negative task id")
        missing = np.setdiff1d(np.arange(self.n_tasks), self.task)
        if complete and missing.size:
            raise ValueError(f"{name}: task(s) {fmt_list(missing)} have no centroid")
        if not np.array_equal(np.bincount(self.point_cluster, minlength=C), self.count):
            raise ValueError(f"{name}: count disagrees with point_cluster")
        e = self.unit_exponent()
        self.scaled(e)._check_consistency(name, e)
        return self

    def _check_consistency(self, name: str, e: int = 0) -> None:
        """Cross-field checks (on statistics normalised by 2**e, so tolerances are
        relative): weights = count / task size, msr and max_radius = mean and max of the
        point radii (squared), |offset|^2 <= msr, orthonormal sketch eigenvectors (a zero
        column only with eigenvalue 0), and a sketch that covers the spread: trace Sigma_c
        = msr - |offset|^2 <= sum(eigvals) + (d - rank) * resid (docs/theory.md §3.5).
        ``q2``: the absolute rounding of a squared length stored at scale 2**e. A square
        below the float64 normal range (data at ~1e-155 or below) keeps few or no digits:
        such a file cannot carry the bounds' second moments and is refused as such."""
        C, d = self.centroid.shape
        q2 = np.ldexp(4.0, -1074 - 2 * e) + np.ldexp(4.0, -1074 - e)

        def refuse(field: str, bad: np.ndarray, gap: np.ndarray, tol: np.ndarray,
                   what: str) -> None:
            if np.all(gap[bad] <= tol[bad] + q2):
                raise ValueError(
                    f"{name}: {field}: cluster(s) {fmt_list(bad)} have squared lengths below "
                    f"the float64 range at this scale (2**{e}): they underflow; rescale the "
                    "representations (e.g. by a power of two) before gathering statistics")
            raise ValueError(f"{name}: {field}: cluster(s) {fmt_list(bad)} {what}")
        n_t = np.bincount(self.task, weights=self.count, minlength=self.n_tasks)[self.task]
        want = np.where(n_t > 0, self.count / np.where(n_t > 0, n_t, 1.0), 0.0)
        bad = np.flatnonzero(np.abs(self.weight - want) > 1e-9 * want + 1e-12)
        if bad.size:
            c = int(bad[0])
            raise ValueError(
                f"{name}: weight: {bad.size} cluster(s) {fmt_list(bad)} disagree with count "
                f"/ task size, e.g. cluster {c} (task {int(self.task[c])}): weight "
                f"{self.weight[c]:.6g} != {int(self.count[c])}/{int(n_t[c])}")
        pc, pr = self.point_cluster, self.point_radius
        has = self.count > 0
        mean_r2 = np.bincount(pc, weights=pr * pr, minlength=C) / np.maximum(self.count, 1)
        gap = np.abs(self.msr - mean_r2)
        tol = 1e-9 * np.maximum(self.msr, mean_r2) + 1e-200
        bad = np.flatnonzero(has & (gap > tol))
        if bad.size:
            refuse("msr", bad, gap, tol,
                   "disagree with the mean squared point_radius of their points")
        rmax = np.zeros(C)
        np.maximum.at(rmax, pc, pr)
        bad = np.flatnonzero(has & (np.abs(self.max_radius - rmax) > 1e-9 * rmax + 1e-200))
        if bad.size:
            raise ValueError(f"{name}: max_radius: cluster(s) {fmt_list(bad)} disagree with "
                             "the largest point_radius of their points")
        b2 = np.einsum("cd,cd->c", self.offset, self.offset)
        tol = self.msr * 1e-9 + 1e-200
        bad = np.flatnonzero(b2 - self.msr > tol)
        if bad.size:
            refuse("offset", bad, b2 - self.msr, tol,
                   "have a mean offset longer than their root mean squared radius")
        U, L = self.eigvecs, self.eigvals
        if L.shape[1]:
            G = np.einsum("cdq,cdk->cqk", U, U)
            nz = np.einsum("cqq->cq", G) > 0.5
            dev = np.abs(G - nz[:, :, None] * np.eye(L.shape[1]))
            lmax = np.maximum(L.max(axis=1), self.resid)[:, None, None]
            weighted = dev * np.minimum(L[:, :, None], L[:, None, :])
            bad = np.flatnonzero(np.any((dev > 1e-2) | (weighted > 1e-8 * lmax), axis=(1, 2)))
            if bad.size:
                raise ValueError(f"{name}: eigvecs: the sketch eigenvectors of cluster(s) "
                                 f"{fmt_list(bad)} are not orthonormal (eigvecs[c]' eigvecs[c] "
                                 "must be the identity, up to zero columns)")
            bad = np.flatnonzero(np.any(~nz & (L > 0), axis=1))
            if bad.size:
                raise ValueError(f"{name}: eigvecs: cluster(s) {fmt_list(bad)} have a zero "
                                 "eigenvector with a positive eigenvalue")
            rank = nz.sum(axis=1)
        else:
            rank = np.zeros(C, dtype=np.int64)
        spread = self.msr - b2
        cover = L.sum(axis=1) + (d - rank) * self.resid
        tol = 1e-9 * self.msr + 1e-200
        bad = np.flatnonzero(spread - cover > tol)
        if bad.size:
            refuse("eigvals", bad, (spread - cover) / (d + L.shape[1] + 2), tol,
                   "have a covariance sketch (eigvals, resid) smaller than their spread msr "
                   "- |offset|^2: it must bound every eigenvalue")

    # ------------------------------------------------------------ scale
    def unit_exponent(self) -> int:
        """e with the largest length (centroid coordinate, radius, offset, square root of
        a second moment) / 2**e in [0.5, 1); 0 when every length is 0."""
        return unit_exponent(
            *(getattr(self, f) for f, p in _CS_POWER.items() if p == 1),
            squared=tuple(getattr(self, f) for f, p in _CS_POWER.items()
                          if p == 2 and getattr(self, f, None) is not None))

    def scaled(self, e: int) -> ClusterStats:
        """The same statistics with every length divided by 2**e (exact; the bounds are
        scale-invariant, docs/theory.md §3.5). ``e = 0`` returns ``self``."""
        if e == 0:
            return self
        kw = {}
        for f in fields(self):
            val = getattr(self, f.name)
            p = _CS_POWER.get(f.name, 0)
            kw[f.name] = np.ldexp(val, -p * e) if p and val is not None else val
        return type(self)(**kw)

    # ------------------------------------------------------------ composition / IO
    @classmethod
    def concat(cls, parts: list[ClusterStats]) -> ClusterStats:
        """Concatenate stats gathered task by task; weights are recomputed from counts."""
        parts = list(parts)
        if not parts:
            raise ValueError("parts: need at least one ClusterStats")
        d = {p.dim for p in parts}
        q = {p.rank for p in parts}
        if len(d) != 1:
            raise ValueError(f"parts: dimensions differ {sorted(d)}")
        if len(q) != 1:
            raise ValueError(f"parts: sketch ranks differ {sorted(q)}")
        offs = np.cumsum([0] + [p.n_clusters for p in parts[:-1]])
        kw = {}
        if all(p.resid_diag is not None for p in parts):
            kw["resid_diag"] = np.concatenate([p.resid_diag for p in parts], axis=0)
        for f in _CS_FIELDS:
            if f == "point_cluster":
                kw[f] = np.concatenate([p.point_cluster + o for p, o in zip(parts, offs)])
            else:
                kw[f] = np.concatenate([getattr(p, f) for p in parts], axis=0)
        out = cls(**kw)
        sizes = np.bincount(out.task, weights=out.count, minlength=out.n_tasks)
        denom = sizes[out.task]
        out.weight = np.where(denom > 0, out.count / np.where(denom > 0, denom, 1), 0.0)
        return out

    def save(self, path: str | Path) -> None:
        """Write every field to an ``.npz`` archive (no pickled objects)."""
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)
                          if getattr(self, f.name) is not None})

    @classmethod
    def load(cls, path: str | Path, *, complete: bool = True) -> ClusterStats:
        """Read an archive written by :meth:`save` (``allow_pickle=False``).

        ``complete=False`` loads one task's part (see :meth:`validate`)."""
        with np.load(path, allow_pickle=False) as z:
            missing = [f for f in _CS_FIELDS if f not in z.files]
            if missing:
                raise ValueError(f"path: archive lacks fields {missing}")
            extra = {"resid_diag": np.array(z["resid_diag"])} if "resid_diag" in z.files else {}
            return cls(**{f: np.array(z[f]) for f in _CS_FIELDS}, **extra).validate(
                "path", complete=complete
            )

    # ------------------------------------------------------------ bound-time geometry
    def foreign_sqdist(self) -> tuple[np.ndarray, np.ndarray]:
        """(D2 (C, C) squared centroid distances, foreign mask task[c] != task[nu])."""
        D2 = sqdist(self.centroid, self.centroid)
        np.fill_diagonal(D2, 0.0)
        foreign = self.task[:, None] != self.task[None, :]
        return D2, foreign

    def separation_sq(
        self, *, geometry: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """D_c^2 = min over foreign centroids of ||nu - mu_c||^2 (+inf if none), (C,).

        ``geometry``: a result of :meth:`foreign_sqdist` to reuse (saves recomputing it).
        """
        D2, foreign = self.foreign_sqdist() if geometry is None else geometry
        return np.where(foreign, D2, np.inf).min(axis=1)


def cluster_stats(
    Z: object,
    task: object,
    centroids: object,
    centroid_task: object,
    *,
    sketch_rank: int | None = None,
) -> ClusterStats:
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
    cs = _cluster_stats_unit(np.ldexp(Z, -e), task, np.ldexp(mu, -e), centroid_task,
                             sketch_rank=sketch_rank).scaled(-e)
    cs.centroid = mu.copy()
    return cs


def _cluster_stats_unit(
    Z: np.ndarray,
    task: object,
    centroids: np.ndarray,
    centroid_task: object,
    *,
    sketch_rank: int | None = None,
) -> ClusterStats:
    """:func:`cluster_stats` of data whose largest magnitude is about 1."""
    Z = as_float_array(Z, "Z", ndim=2)
    n, d = Z.shape
    mu = as_float_array(centroids, "centroids", ndim=2)
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
    assign = np.empty(n, dtype=np.int64)
    for t in tasks_with_points:  # loop over tasks only: O(n_t K_t d) each
        pts = np.flatnonzero(task == t)
        own = np.flatnonzero(ct == t)
        # canonical tie-break: lexicographically smallest centroid (permutation-invariant)
        own = own[np.lexsort(mu[own].T[::-1])]
        # any own centroid gives valid bounds (§3.1), so large problems may use BLAS
        direct = pts.size * own.size * d <= (1 << 20)
        assign[pts] = own[np.argmin(sqdist(Z[pts], mu[own], direct=direct), axis=1)]
    diff = Z - mu[assign]
    r2 = np.einsum("ij,ij->i", diff, diff)
    counts = np.bincount(assign, minlength=C)
    n_t = np.bincount(task, minlength=has_centroid.size)
    denom = n_t[ct]
    weight = np.where(denom > 0, counts / np.maximum(denom, 1), 0.0)
    safe = np.maximum(counts, 1)
    msr = np.bincount(assign, weights=r2, minlength=C) / safe
    order = np.argsort(assign, kind="stable")
    starts, _ = _group_starts(assign[order], C)
    nonempty = counts > 0
    max_radius = np.zeros(C)
    offset = np.zeros((C, d))
    ds = diff[order]
    if np.any(nonempty):
        st = starts[nonempty]
        max_radius[nonempty] = np.sqrt(np.maximum.reduceat(r2[order], st))
        offset[nonempty] = np.add.reduceat(ds, st, axis=0) / counts[nonempty, None]
    Xs = ds - offset[assign[order]]
    U, L, R = _cov_sketch(Xs, starts, counts, q)
    # diag(Sigma_c) - diag(U L U'): per-coordinate variance the sketch misses (predictions)
    diag = np.zeros((C, d))
    if np.any(nonempty):
        diag[nonempty] = np.add.reduceat(Xs * Xs, starts[nonempty], axis=0) / counts[
            nonempty, None]
    resid_diag = np.maximum(diag - np.einsum("cdq,cq->cd", U * U, L), 0.0)
    return ClusterStats(
        task=ct, centroid=mu.copy(), count=counts.astype(np.int64), weight=weight, msr=msr,
        max_radius=max_radius, offset=offset, eigvecs=U, eigvals=L, resid=R,
        point_cluster=assign, point_radius=np.sqrt(r2), resid_diag=resid_diag,
    )


# ------------------------------------------------------------------ Gaussian mixtures
class GaussianMixtures:
    """Per-task Gaussian-mixture parameters (docs/theory.md §4).

    ``weights`` (m, K) (rows sum to 1; pad tasks with fewer components with weight 0),
    ``means`` (m, K, d), ``covariances`` full (m, K, d, d) or diagonal (m, K, d).
    """

    def __init__(self, weights: object, means: object, covariances: object) -> None:
        w = as_float_array(weights, "weights", ndim=2)
        mu = as_float_array(means, "means", ndim=3)
        cov = as_float_array(covariances, "covariances", ndim=(3, 4))
        m_, K = w.shape
        if mu.shape[:2] != (m_, K):
            raise ValueError(f"means: shape {mu.shape} does not match weights {w.shape}")
        d = mu.shape[2]
        diag = cov.ndim == 3
        want = (m_, K, d) if diag else (m_, K, d, d)
        if cov.shape != want:
            raise ValueError(f"covariances: shape {cov.shape}, expected {want}")
        if np.any(w < 0):
            raise ValueError("weights: must be non-negative")
        sums = w.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-6):
            bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
            raise ValueError(f"weights: each task's weights must sum to 1; task(s) "
                             f"{fmt_list(bad)} sum to {fmt_list(sums[bad])}")
        if diag:
            if np.any(cov <= 0):
                raise ValueError("covariances: diagonal variances must be positive")
        else:
            if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-10, atol=0):
                raise ValueError("covariances: must be symmetric")
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError("covariances: must be positive definite") from None
        self.weights = w
        self.means = mu
        self.covariances = cov

    @property
    def diagonal(self) -> bool:
        return self.covariances.ndim == 3

    def normalised(self) -> tuple[GaussianMixtures, int]:
        """(the mixtures with means / 2**e and covariances / 4**e, e) with the largest
        mean coordinate or standard deviation / 2**e in [0.5, 1) (exact; the Chernoff
        bound is scale-invariant, docs/theory.md §4)."""
        var = self.covariances if self.diagonal else np.diagonal(
            self.covariances, axis1=-2, axis2=-1)
        e = unit_exponent(self.means, squared=(var,))
        if e == 0:
            return self, 0
        out = object.__new__(type(self))  # already validated: skip the Cholesky checks
        out.weights = self.weights
        out.means = np.ldexp(self.means, -e)
        out.covariances = np.ldexp(self.covariances, -2 * e)
        return out, e

    @property
    def n_tasks(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[1])

    @property
    def dim(self) -> int:
        return int(self.means.shape[2])

    def full_covariances(self) -> np.ndarray:
        """Covariances as (m, K, d, d) (expands diagonal ones)."""
        if not self.diagonal:
            return self.covariances
        return self.covariances[..., :, None] * np.eye(self.dim)

    def component_logpdf(self, Z: object) -> np.ndarray:
        """log N(z; mu_k, S_k) for every component, shape (n, m, K)."""
        Z = as_float_array(Z, "Z", ndim=2)
        if Z.shape[1] != self.dim:
            raise ValueError(f"Z: dimension {Z.shape[1]} != mixture dimension {self.dim}")
        n, d = Z.shape
        m_, K = self.weights.shape
        P = m_ * K
        mu = self.means.reshape(P, d)
        if self.diagonal:
            var = self.covariances.reshape(P, d)
            inv_sd = 1.0 / np.sqrt(var)
            logdet = np.log(var).sum(axis=1)
            W = None
        else:
            Lc = np.linalg.cholesky(self.covariances.reshape(P, d, d))
            logdet = 2.0 * np.log(np.diagonal(Lc, axis1=1, axis2=2)).sum(axis=1)
            W = np.linalg.inv(Lc)  # (P, d, d), whitening maps
            Wmu = np.einsum("pij,pj->pi", W, mu)
        out = np.empty((n, P))
        step = max(1, _CHUNK_ELEMS // max(1, P * d))
        for i0 in range(0, n, step):
            Zc = Z[i0 : i0 + step]
            if W is None:
                y = (Zc[:, None, :] - mu[None]) * inv_sd[None]
            else:
                y = (Zc @ W.reshape(P * d, d).T).reshape(-1, P, d) - Wmu[None]
            out[i0 : i0 + step] = np.einsum("npd,npd->np", y, y)
        logpdf = -0.5 * (out + logdet[None] + d * np.log(2 * np.pi))
        return logpdf.reshape(n, m_, K)

    def nll(self, Z: object) -> np.ndarray:
        """Likelihood scores ``S[i, k] = -log p_k(z_i)`` (n, m) (§1, likelihood score)."""
        lp = self.component_logpdf(Z)
        with np.errstate(divide="ignore"):
            lw = np.log(self.weights)[None]
        a = lp + lw
        amax = a.max(axis=2, keepdims=True)
        return -(amax[..., 0] + np.log(np.exp(a - amax).sum(axis=2)))

    def sample(self, n_per_task: object, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        """Draw ``n_per_task[t]`` points from each task's mixture; returns (Z, task)."""
        counts = np.broadcast_to(np.asarray(n_per_task, dtype=np.int64), (self.n_tasks,))
        if np.any(counts < 0):
            raise ValueError("n_per_task: must be non-negative")
        Zs, ts = [], []
        Lc = np.linalg.cholesky(self.full_covariances())
        for t in range(self.n_tasks):
            comp = rng.choice(self.n_components, size=int(counts[t]), p=self.weights[t])
            eps = rng.standard_normal((int(counts[t]), self.dim))
            Zs.append(self.means[t, comp] + np.einsum("nij,nj->ni", Lc[t, comp], eps))
            ts.append(np.full(int(counts[t]), t))
        return np.concatenate(Zs), np.concatenate(ts)

    def save(self, path: str | Path) -> None:
        """Write to ``.npz`` (no pickle)."""
        np.savez(path, weights=self.weights, means=self.means, covariances=self.covariances)

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixtures:
        """Read an archive written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weights"], z["means"], z["covariances"])
