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
upper bound ``resid (I - V V')``, which over-states the spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_positive_int
from .stats import ClusterStats, GaussianMixtures

__all__ = ["Prediction", "gauss_proj", "gauss_full", "gauss_scores", "spearman", "PREDICTORS"]

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


def gauss_proj(cs: ClusterStats, *, n_samples: int = 4000, seed: int = 0,
               n_competitors: int = 32) -> Prediction:
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
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    n_competitors = check_positive_int(n_competitors, "n_competitors")
    cs.validate("clusters")
    rng = np.random.default_rng(seed)
    C, m_ = cs.n_clusters, cs.n_tasks
    p_c = np.zeros(C)
    dims = np.zeros(C, dtype=np.int64)
    for c in range(C):
        if cs.count[c] == 0:
            continue
        mean_c = cs.centroid[c] + cs.offset[c]
        own = np.flatnonzero(cs.task == cs.task[c])
        foreign = np.flatnonzero(cs.task != cs.task[c])
        if foreign.size > n_competitors:
            d2 = np.einsum("fd,fd->f", cs.centroid[foreign] - mean_c,
                           cs.centroid[foreign] - mean_c)
            foreign = foreign[np.argsort(d2, kind="stable")[:n_competitors]]
        comp = np.concatenate([own, foreign])
        g0, U = centroid_basis(cs.centroid[comp])
        P = (cs.centroid[comp] - g0) @ U  # (k, r) projected competitors
        Pn = np.einsum("cr,cr->c", P, P)
        F = _sqrt_psd(_projected_cov(cs, c, U))
        Y = ((mean_c - g0) @ U)[None, :] + rng.standard_normal((n_samples, F.shape[1])) @ F.T
        D2 = Pn[None, :] - 2.0 * (Y @ P.T)  # ||Y - P_g||^2 - ||Y||^2
        n_own = own.size
        err = D2[:, n_own:].min(axis=1, initial=np.inf) <= D2[:, :n_own].min(axis=1)
        p_c[c] = err.mean()
        dims[c] = U.shape[1]
    w = cs.weight
    p_t = np.bincount(cs.task, weights=w * p_c, minlength=m_)
    var_t = np.bincount(cs.task, weights=w**2 * p_c * (1 - p_c) / n_samples, minlength=m_)
    return _finish("pred:gauss-proj", p_t, var_t, cs.task_sizes().astype(np.float64),
                   {"per_cluster": p_c, "subspace_dim": dims, "n_samples": n_samples,
                    "n_competitors": n_competitors, "seed": seed,
                    "residual": "diag" if cs.resid_diag is not None else "iso"})


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
    p_t = np.zeros(m_)
    for t in range(m_):
        idx = np.flatnonzero((cs.task == t) & (cs.count > 0))
        w = cs.weight[idx] / cs.weight[idx].sum()
        counts = rng.multinomial(n_per_task, w)
        Z = np.concatenate([_sample_cluster(cs, c, k, rng) for c, k in zip(idx, counts)])
        S = mixtures.nll(Z)
        own = S[:, t].copy()
        S[:, t] = np.inf
        p_t[t] = float(np.mean(S.min(axis=1) <= own)) if m_ > 1 else 0.0
    var_t = p_t * (1 - p_t) / n_per_task
    return _finish("pred:gauss-full", p_t, var_t, cs.task_sizes().astype(np.float64),
                   {"n_per_task": n_per_task, "seed": seed,
                    "residual": "diag" if cs.resid_diag is not None else "iso"})


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


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when undefined."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)
