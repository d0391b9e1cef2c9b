"""Training-time *predictions* of the retrieval error (tier 4, docs/theory.md §9).

A prediction is never a bound: it rests on a stated, checkable modelling assumption, and
the checker scores it against the realised error (absolute error per task and overall,
Spearman rho over tasks). Every predictor here is a Monte Carlo estimate with a fixed seed
and a reported standard error.

* :func:`gauss_proj` (centroid rule, §9.1): each cluster's representations are Gaussian
  *in the subspace spanned by the centroid differences*, with the stored mean and
  covariance summary. The nearest-centroid decision depends on z only through that
  projection, so this is a weaker assumption than A.1 (a sum of many coordinates).
* :func:`gauss_full` (likelihood rule, §9.2): each task's representations follow the
  Gaussian mixture of its clusters' stored means and *full* covariance summaries (not the
  signature's fitted diagonal mixture); samples are scored by the stored mixtures.
* :func:`gauss_scores` (any rule, earlier-claimed part of the adapted rule, §10): the
  score vector (S_0 .. S_t)(x) of task t is Gaussian with its training-time mean and
  covariance.

Covariance summary (§9.3): the sketch ``V diag(L) V'`` plus the per-coordinate residual
``resid_diag`` (``ClusterStats.resid_diag``); files without it fall back to the isotropic
upper bound ``resid (I - V V')``, which over-states the spread. Fast paths (batched
factorisations, certified screenings, reuse across steps): docs/theory.md §14.2-§14.3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._blas import blas_threads
from ._validate import check_positive_int
from .stats import ClusterStats, GaussianMixtures

__all__ = ["Prediction", "gauss_proj", "gauss_full", "gauss_scores", "likelihood_errors",
           "PREDICTORS"]

#: predictor name -> (rule it predicts, one-line assumption); the checker's display order
PREDICTORS: dict[str, tuple[str, str]] = {
    "pred:gauss-proj": ("shared-centroid", "each cluster Gaussian in the span of the centroid "
                        "differences, training-time mean and covariance summary"),
    "pred:gauss-full": ("shared-nll", "each task the Gaussian mixture of its clusters' "
                        "training-time means and full covariance summaries"),
    "pred:gauss-scores": ("earlier-claimed", "task t's score vector (S_0..S_t) Gaussian with "
                          "its training-time mean and covariance"),
}


@dataclass
class Prediction:
    """Predicted per-task error (m,), overall, Monte Carlo standard errors and details."""

    name: str
    per_task: np.ndarray
    overall: float
    se_task: np.ndarray
    se_overall: float
    details: dict = field(default_factory=dict)


def _finish(name: str, p_t: np.ndarray, var_t: np.ndarray, pi: np.ndarray,
            details: dict) -> Prediction:
    pi = pi / pi.sum()
    return Prediction(name, p_t, float(pi @ p_t), np.sqrt(var_t),
                      float(np.sqrt(pi**2 @ var_t)), {"pi": pi, **details})


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    """A factor F with F F' = S (symmetric PSD part; negative rounding clipped)."""
    w, V = np.linalg.eigh((S + S.T) / 2.0)
    return V * np.sqrt(np.clip(w, 0.0, None))[None, :]


def _projected_cov(cs: ClusterStats, c: int, U: np.ndarray) -> np.ndarray:
    """U' Sigma_c U from the covariance summary of cluster c (§9.3)."""
    W = U.T @ cs.eigvecs[c]  # (r, q)
    S = (W * cs.eigvals[c][None, :]) @ W.T
    if cs.resid_diag is not None:
        S += (U * cs.resid_diag[c][:, None]).T @ U
    elif cs.resid[c] > 0:
        S += cs.resid[c] * (np.eye(U.shape[1]) - W @ W.T)
    return S


def centroid_basis(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g0, U): an anchor centroid and an orthonormal basis (d, r) of span{g - g0}."""
    g0 = centroids[0]
    D = centroids - g0
    if D.shape[0] < 2:
        return g0, np.zeros((centroids.shape[1], 0))
    _, s, Vt = np.linalg.svd(D, full_matrices=False)
    tol = s.max(initial=0.0) * max(D.shape) * np.finfo(np.float64).eps
    return g0, Vt[s > tol].T


def _bases(cent: np.ndarray, comps: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`centroid_basis` of each competitor set, one batched SVD per set size (the
    same LAPACK call per matrix as the unbatched one, so the same bases)."""
    out: list[np.ndarray] = [np.zeros((cent.shape[1], 0))] * len(comps)
    sizes = np.array([c.size for c in comps])
    for k in np.unique(sizes[sizes >= 2]):
        idx = np.flatnonzero(sizes == k)
        for b0 in range(0, idx.size, 64):  # (64, k, d) per batch
            ii = idx[b0 : b0 + 64]
            cc = np.stack([comps[i] for i in ii])
            D = cent[cc] - cent[cc[:, :1]]
            _, sv, Vt = np.linalg.svd(D, full_matrices=False)
            tol = sv.max(axis=1) * max(k, cent.shape[1]) * np.finfo(np.float64).eps
            for j, i in enumerate(ii):
                out[i] = Vt[j][sv[j] > tol[j]].T
    return out


def _competitors(cs: ClusterStats, means: np.ndarray, live: np.ndarray,
                 n: int) -> list[np.ndarray]:
    """Per live cluster: its task's centroids, then the ``n`` foreign centroids nearest to
    its mean (stable order of the squared distances ``einsum((g - mean)^2)``). The
    distances come from one BLAS product; the candidates within its rounding bound of the
    n-th are re-measured exactly, so the choice is the one the exact distances make."""
    cent = cs.centroid
    d = cent.shape[1]
    ctr = cent.mean(axis=0)
    A, B = means[live] - ctr, cent - ctr
    nA, nB = np.einsum("ij,ij->i", A, A), np.einsum("ij,ij->i", B, B)
    out = []
    for i0 in range(0, live.size, 256):
        G = nA[i0 : i0 + 256, None] + nB[None, :] - 2.0 * (A[i0 : i0 + 256] @ B.T)
        for j, c in enumerate(live[i0 : i0 + 256]):
            own = np.flatnonzero(cs.task == cs.task[c])
            foreign = np.flatnonzero(cs.task != cs.task[c])
            if foreign.size > n:
                g = G[j, foreign]
                delta = 8.0 * (d + 4) * np.finfo(np.float64).eps * (nA[i0 + j] + nB.max())
                cand = foreign[g <= np.partition(g, n - 1)[n - 1] + 2.0 * delta]
                X = cent[cand] - means[c]
                d2 = np.einsum("fd,fd->f", X, X)
                foreign = cand[np.argsort(d2, kind="stable")[:n]]
            out.append(np.concatenate([own, foreign]))
    return out


def _screen(cs: ClusterStats, means: np.ndarray, live: np.ndarray,
            comps: list[np.ndarray]) -> np.ndarray:
    """Per live cluster an upper bound of its modelled error probability (docs/theory.md
    §14.3): the union over its foreign competitors g of ``P(||z - g|| <= ||z - o||)``, o
    its own centroid nearest to the mean, for z ~ N(mean_c, Sigma_c): a Gaussian tail
    ``Phi(-(|mean - g|^2 - |mean - o|^2) / (2 sqrt((g - o)' Sigma_c (g - o))))``."""
    from scipy.special import ndtr

    cent = cs.centroid
    out = np.ones(live.size)
    for j, c in enumerate(live):
        comp = comps[j]
        n_own = int(np.sum(cs.task[comp] == cs.task[c]))
        if comp.size == n_own:
            out[j] = 0.0
            continue
        X = cent[comp] - means[c]
        r2 = np.einsum("fd,fd->f", X, X)
        o = int(np.argmin(r2[:n_own]))
        Dl = X[n_own:] - X[o]  # g - o
        W = Dl @ cs.eigvecs[c]
        v = (W * W) @ cs.eigvals[c]
        if cs.resid_diag is not None:
            v += (Dl * Dl) @ cs.resid_diag[c]
        else:
            v += cs.resid[c] * np.maximum(np.einsum("fd,fd->f", Dl, Dl)
                                          - np.einsum("fq,fq->f", W, W), 0.0)
        gap = r2[n_own:] - r2[o] - 1e-9 * (r2[n_own:] + r2[o])  # minus rounding slack
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(gap > 0, gap / (2.0 * np.sqrt(v) * (1 + 1e-9)), -np.inf)
        out[j] = float(np.minimum(1.0, ndtr(-z).sum()))
    return out


#: a cluster whose modelled error probability is certified below SCREEN / n_samples is
#: not sampled (its frequency would be 0 except with probability < SCREEN; docs/theory.md §14.3)
SCREEN = 1e-9


def gauss_proj(cs: ClusterStats, *, n_samples: int = 4000, seed: int = 0,
               n_competitors: int = 32, cache: dict | None = None) -> Prediction:
    """``pred:gauss-proj``: nearest-centroid error if each cluster were Gaussian in the
    centroid-difference subspace (docs/theory.md §9.1).

    For cluster c of task t, Y ~ N(U'(mean_c - g0), U' Sigma_c U) with U an orthonormal
    basis of span{g - g0 : g a competing centroid}; ||z - g||^2 differs between those
    centroids only through Y, so the error is ``min_{foreign g} ||Y - U'(g-g0)|| <=
    min_{own g} ...`` (ties are errors). Competitors: every centroid of task t and the
    ``n_competitors`` foreign centroids nearest to the cluster mean (all of them on small
    runs; the far ones almost never win, and dropping them keeps the cost at
    O(C n k^2) for C clusters instead of O(C^2 n)). Per task: sum_c w_c p_c, standard error
    sqrt(sum_c w_c^2 p_c (1 - p_c) / n_samples).

    Cluster c draws from its own stream ``default_rng([seed, c])``; a cluster whose error
    probability under the model is certified below ``SCREEN / n_samples`` (:func:`_screen`)
    is not sampled (``details["screened"]``). ``cache``: a dict shared by calls on
    prefixes (:meth:`ClusterStats.first_tasks`) of one ClusterStats (steps of a run): a
    cluster with the same competitors and statistics is not recomputed (§14.3).
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    n_competitors = check_positive_int(n_competitors, "n_competitors")
    cs.validate("clusters")
    C, m_ = cs.n_clusters, cs.n_tasks
    means = cs.centroid + cs.offset
    live = np.flatnonzero(cs.count > 0)
    with blas_threads(1):  # small products: one BLAS thread
        comps = _competitors(cs, means, live, n_competitors)
        ub = _screen(cs, means, live, comps)
    p_c, dims = np.zeros(C), np.zeros(C, dtype=np.int64)
    screened = np.isin(np.arange(C), live[ub * n_samples <= SCREEN])
    keys, todo = {}, []
    for j, c in enumerate(live):
        if screened[c]:
            continue
        if cache is not None:
            keys[c] = _cache_key(cs, c, comps[j], seed, n_samples)
            if keys[c] in cache:
                p_c[c], dims[c] = cache[keys[c]]
                continue
        todo.append(j)
    with blas_threads(1):
        bases = _bases(cs.centroid, [comps[j] for j in todo])
        for j, U in zip(todo, bases):
            c, comp = live[j], comps[j]
            g0 = cs.centroid[comp[0]]
            P = (cs.centroid[comp] - g0) @ U  # (k, r) projected competitors
            Pn = np.einsum("cr,cr->c", P, P)
            F = _sqrt_psd(_projected_cov(cs, c, U))
            rng = np.random.default_rng([seed, int(c)])
            Y = ((means[c] - g0) @ U)[None, :] + rng.standard_normal(
                (n_samples, F.shape[1])) @ F.T
            D2 = Pn[None, :] - 2.0 * (Y @ P.T)  # ||Y - P_g||^2 - ||Y||^2
            n_own = int(np.sum(cs.task[comp] == cs.task[c]))
            err = D2[:, n_own:].min(axis=1, initial=np.inf) <= D2[:, :n_own].min(axis=1)
            p_c[c], dims[c] = err.mean(), U.shape[1]
            if cache is not None:
                cache[keys[c]] = (p_c[c], dims[c])
    w = cs.weight
    p_t = np.bincount(cs.task, weights=w * p_c, minlength=m_)
    var_t = np.bincount(cs.task, weights=w**2 * p_c * (1 - p_c) / n_samples, minlength=m_)
    return _finish("pred:gauss-proj", p_t, var_t, cs.task_sizes().astype(np.float64),
                   {"per_cluster": p_c, "subspace_dim": dims, "n_samples": n_samples,
                    "n_competitors": n_competitors, "seed": seed, "screened": screened,
                    "error_upper": np.bincount(live, weights=ub, minlength=C),
                    "residual": "diag" if cs.resid_diag is not None else "iso"})


def _cache_key(cs: ClusterStats, c: int, comp: np.ndarray, seed: int, n: int) -> tuple:
    """What cluster c's estimate depends on: its statistics, its competitors, the draws."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for a in (cs.centroid[comp], cs.offset[c], cs.eigvecs[c], cs.eigvals[c], cs.resid[c],
              cs.resid_diag[c] if cs.resid_diag is not None else np.zeros(0), cs.task[comp]):
        h.update(np.ascontiguousarray(a).tobytes())
    return (int(c), h.hexdigest(), int(seed), int(n))


def _sample_cluster(cs: ClusterStats, c: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws from N(mean_c, V L V' + residual) in d dimensions, O(n d q)."""
    V, L = cs.eigvecs[c], cs.eigvals[c]
    Z = (rng.standard_normal((n, L.shape[0])) * np.sqrt(L)[None, :]) @ V.T
    E = rng.standard_normal((n, cs.dim))
    if cs.resid_diag is not None:
        Z += E * np.sqrt(cs.resid_diag[c])[None, :]
    elif cs.resid[c] > 0:
        Z += np.sqrt(cs.resid[c]) * (E - (E @ V) @ V.T)
    return Z + (cs.centroid[c] + cs.offset[c])[None, :]


#: multiply-adds of the mixture scoring in :func:`gauss_full` (keeps m = 100 in seconds)
FULL_BUDGET = 4e9
_BLOCK = 1 << 23  # draws x dimension scored at once by gauss_full


def gauss_full(cs: ClusterStats, mixtures: GaussianMixtures, *, n_per_task: int = 2000,
               seed: int = 0) -> Prediction:
    """``pred:gauss-full``: likelihood-rule error if each task's representations were the
    Gaussian mixture of its clusters (training-time means and full covariance summaries),
    scored through the stored mixtures (docs/theory.md §9.2).

    ``n_per_task`` is lowered (not below 200) when scoring m * n draws against all m K
    components would exceed ``FULL_BUDGET`` multiply-adds; the standard error says so."""
    n_per_task = check_positive_int(n_per_task, "n_per_task")
    per_draw = cs.n_tasks * mixtures.n_components * mixtures.dim * (
        1 if mixtures.diagonal else mixtures.dim)
    n_per_task = int(min(n_per_task, max(200, FULL_BUDGET / (cs.n_tasks * per_draw))))
    cs.validate("clusters")
    if mixtures.n_tasks != cs.n_tasks or mixtures.dim != cs.dim:
        raise ValueError(f"mixtures: {mixtures.n_tasks} tasks of dimension {mixtures.dim} do "
                         f"not match the cluster statistics ({cs.n_tasks}, {cs.dim})")
    rng = np.random.default_rng(seed)
    m_ = cs.n_tasks
    n_err = np.zeros(m_)
    draws: list[np.ndarray] = []
    t0 = 0
    for t in range(m_):  # the draws in the order of the random stream, scored in blocks
        idx = np.flatnonzero((cs.task == t) & (cs.count > 0))
        w = cs.weight[idx] / cs.weight[idx].sum()
        counts = rng.multinomial(n_per_task, w)
        draws += [_sample_cluster(cs, c, k, rng) for c, k in zip(idx, counts)]
        if m_ > 1 and ((t + 1 - t0) * n_per_task * cs.dim >= _BLOCK or t == m_ - 1):
            own = np.repeat(np.arange(t0, t + 1), n_per_task)
            err = likelihood_errors(mixtures, np.concatenate(draws), own)
            n_err[t0 : t + 1] = np.bincount(own - t0, weights=err, minlength=t + 1 - t0)
            draws, t0 = [], t + 1
    p_t = n_err / n_per_task
    var_t = p_t * (1 - p_t) / n_per_task
    return _finish("pred:gauss-full", p_t, var_t, cs.task_sizes().astype(np.float64),
                   {"n_per_task": n_per_task, "seed": seed,
                    "residual": "diag" if cs.resid_diag is not None else "iso"})


#: coordinates of the first, partial pass of :func:`likelihood_errors` (§14.2)
SCREEN_DIMS = 64


def likelihood_errors(mixtures: GaussianMixtures, Z: np.ndarray, own: np.ndarray,
                      ) -> np.ndarray:
    """Retrieval errors of the likelihood rule: ``min_{s != own} S_s(z) <= S_own(z)`` with
    ``S = mixtures.nll(Z)`` (ties are errors; docs/theory.md §1, §14.2).

    First pass (diagonal covariances, d > 2 SCREEN_DIMS): every foreign score is bounded
    below through its quadratic forms over ``SCREEN_DIMS`` coordinates
    (:meth:`GaussianMixtures.nll_lower`) and the own score above; a draw whose every
    foreign lower bound exceeds its own upper bound is correctly retrieved. The others are
    scored over all coordinates by :meth:`GaussianMixtures.nll_screen` (BLAS), and a draw
    whose margin is within the rounding bound by :meth:`GaussianMixtures.nll`: every
    decision is the one the exact scores make."""
    n = own.size
    sure = np.zeros(n, dtype=bool)
    if mixtures.diagonal and mixtures.dim > 2 * SCREEN_DIMS:
        mu0 = mixtures.means - mixtures.means.reshape(-1, mixtures.dim).mean(axis=0)
        spread = np.einsum("mkd,mkd->d", mu0 * mu0, 1.0 / mixtures.covariances)
        dims = np.sort(np.argsort(-spread, kind="stable")[:SCREEN_DIMS])
        own_ub = np.empty(n)
        with blas_threads(1):  # small products: one BLAS thread
            for t in np.unique(own):  # the own score over every coordinate, from above
                sel = own == t
                s_t, u_t = mixtures.nll_screen(Z[sel], tasks=np.array([t]))
                own_ub[sel] = s_t[:, 0] + u_t
        low = mixtures.nll_lower(Z, dims)
        low[np.arange(n), own] = np.inf
        sure = low.min(axis=1) > own_ub + 1e-9 * (1.0 + np.abs(own_ub))
    err = np.zeros(n, dtype=bool)
    rest = np.flatnonzero(~sure)
    if rest.size:
        err[rest] = _errors_scored(mixtures, Z[rest], own[rest])
    return err


def _errors_scored(mixtures: GaussianMixtures, Z: np.ndarray, own: np.ndarray) -> np.ndarray:
    rows = np.arange(own.size)
    S, u = mixtures.nll_screen(Z)
    s_own = S[rows, own]
    S[rows, own] = np.inf
    margin = S.min(axis=1) - s_own
    err = margin <= 0.0
    unsure = np.flatnonzero(np.abs(margin) <= 2.0 * u)
    if unsure.size:
        Se = mixtures.nll(Z[unsure])
        so = Se[np.arange(unsure.size), own[unsure]].copy()
        Se[np.arange(unsure.size), own[unsure]] = np.inf
        err[unsure] = Se.min(axis=1) <= so
    return err


def gauss_scores(mean: list[np.ndarray], cov: list[np.ndarray], n_t: np.ndarray, *,
                 n_samples: int = 4000, seed: int = 0) -> Prediction:
    """``pred:gauss-scores``: P(exists s < t: S_s <= S_t) if task t's score vector
    (S_0, ..., S_t) were N(mean[t], cov[t]) (docs/theory.md §10; task 0 has no earlier
    module, so its prediction is 0)."""
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(seed)
    m_ = len(mean)
    p_t = np.zeros(m_)
    for t in range(1, m_):
        F = _sqrt_psd(np.asarray(cov[t], dtype=np.float64))
        X = np.asarray(mean[t])[None, :] + rng.standard_normal((n_samples, t + 1)) @ F.T
        p_t[t] = float(np.mean(X[:, :t].min(axis=1) <= X[:, t]))
    var_t = p_t * (1 - p_t) / n_samples
    return _finish("pred:gauss-scores", p_t, var_t, np.asarray(n_t, dtype=np.float64),
                   {"n_samples": n_samples, "seed": seed})

