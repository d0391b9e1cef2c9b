"""Notebook-level looks at Assumption A.1 (docs/theory.md §4): projections of clusters on
their nearest foreign-centroid directions, normality statistics of a 1-d sample, held-out
likelihood calibration of the fitted mixtures, and the likelihood-retrieval inputs of a run.

The checker's own A.1 verdict (per task, with a family-wise level) is
:mod:`bounds.check.diagnostics`; these functions return the raw quantities to plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

import bounds

from .run import Run

__all__ = ["direction_projections", "likelihood_calibration", "normality_tests",
           "run_likelihood_inputs"]


def direction_projections(Z: np.ndarray, task: np.ndarray, centroids: np.ndarray,
                          centroid_task: np.ndarray, min_points: int = 8
                          ) -> list[dict[str, Any]]:
    """Projections of each cluster onto its nearest foreign-centroid direction (§3.4, §4).

    Points are assigned to their nearest own centroid ``mu_c`` (as in
    :func:`bounds.cluster_stats`); for each cluster with at least ``min_points`` points the
    unit direction ``u = (nu - mu_c) / ||nu - mu_c||`` to the nearest foreign centroid ``nu``
    is taken and ``<z - mu_c, u>`` returned. Under Assumption A.1 (Gaussian clusters) each
    projection is exactly normal. Returns one dict per cluster: ``task``, ``cluster``,
    ``foreign``, ``distance`` (= ||nu - mu_c||), ``proj`` (n_c,); sorted by task, then
    by decreasing size.
    """
    cs = bounds.cluster_stats(Z, task, centroids, centroid_task)
    D2, foreign = cs.foreign_sqdist()
    if not foreign.any():
        return []
    D2f = np.where(foreign, D2, np.inf)
    out = []
    Z = np.asarray(Z, dtype=np.float64)
    for c in np.flatnonzero(cs.count >= min_points):
        nu = int(np.argmin(D2f[c]))
        diff = cs.centroid[nu] - cs.centroid[c]
        dist = float(np.linalg.norm(diff))
        if dist == 0.0:
            continue
        pts = np.flatnonzero(cs.point_cluster == c)
        proj = (Z[pts] - cs.centroid[c]) @ (diff / dist)
        out.append({"task": int(cs.task[c]), "cluster": int(c), "foreign": nu,
                    "distance": dist, "proj": proj})
    out.sort(key=lambda r: (r["task"], -r["proj"].size))
    return out


def normality_tests(x: np.ndarray) -> dict[str, float]:
    """Skewness, excess kurtosis and normality p-values of a 1-d sample (scipy.stats).

    ``shapiro_p`` (Shapiro-Wilk, n >= 3) and ``dagostino_p`` (D'Agostino-Pearson K^2,
    n >= 20; NaN below).
    """
    from scipy import stats as sps

    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 3:
        raise ValueError(f"x: need at least 3 values, got {x.size}")
    if np.ptp(x) == 0:
        return {"n": float(x.size), "skew": 0.0, "excess_kurtosis": 0.0,
                "shapiro_p": 0.0, "dagostino_p": float("nan")}
    return {
        "n": float(x.size),
        "skew": float(sps.skew(x)),
        "excess_kurtosis": float(sps.kurtosis(x)),
        "shapiro_p": float(sps.shapiro(x[:5000]).pvalue),
        "dagostino_p": float(sps.normaltest(x).pvalue) if x.size >= 20 else float("nan"),
    }


def likelihood_calibration(mixtures: bounds.GaussianMixtures, Z: np.ndarray,
                           task: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out calibration of each task's fitted mixture (Assumption A.1, §4).

    For every point ``z`` of task ``t``: its own-task negative log-likelihood
    ``-log p_t(z)``; and the probability integral transform ``u = F_chi2_d(q)`` of its
    squared Mahalanobis distance ``q`` to the most responsible component of ``p_t``.
    Under A.1 (and a correct fit) ``u`` is uniform on [0, 1]. Also returns the same NLL for
    an equal number of points sampled from the mixtures themselves (the model's own NLL
    distribution; a calibrated model has matching held-out and sampled NLLs).
    """
    from scipy import stats as sps

    Z = np.asarray(Z, dtype=np.float64)
    task = np.asarray(task, dtype=np.int64)
    if Z.ndim != 2 or task.shape != (Z.shape[0],):
        raise ValueError("Z: expected (n, d) with task (n,)")
    d = mixtures.dim
    rows = np.arange(len(Z))
    lp = mixtures.component_logpdf(Z)[rows, task]  # (n, K)
    with np.errstate(divide="ignore"):  # log w_k + log N_k (as weighted_logpdf), (n, K)
        post = lp + np.log(mixtures.weights[task])
    nll = -logsumexp(post, axis=1)  # -log p_t(z), as GaussianMixtures.nll
    k = np.argmax(post, axis=1)
    # log N = -(q + logdet + d log 2 pi) / 2 -> q from the log-density and log-det
    cov = mixtures.full_covariances()[task, k]
    logdet = np.linalg.slogdet(cov)[1]
    q = np.maximum(-2.0 * lp[rows, k] - logdet - d * np.log(2 * np.pi), 0.0)
    u = sps.chi2.cdf(q, df=d)
    counts = np.bincount(task, minlength=mixtures.n_tasks)
    Zs, ts = mixtures.sample(counts, np.random.default_rng(0))
    nll_model = mixtures.nll(Zs)[np.arange(len(Zs)), ts]
    return {"task": task, "nll": nll, "pit": u, "mahalanobis_sq": q,
            "model_task": ts, "model_nll": nll_model}


def run_likelihood_inputs(run: Run, step: int, delta: float = 0.05
                          ) -> tuple[bounds.BoundInputs | None, str]:
    """Inputs for likelihood retrieval in the shared space at ``step`` (Gaussian bound).

    Uses the run's ``shared-nll`` score files when present; otherwise, if
    ``mixtures-shared.npz`` exists, scores the stored shared representations with
    :meth:`bounds.GaussianMixtures.nll`. Returns ``(None, reason)`` when the run has no
    mixtures (e.g. k-means signatures).
    """
    mix = run.mixtures(step)
    if mix is None:
        return None, "no mixtures-shared.npz at this step (non-mixture signatures)"
    if run.has_scores(step, "test", "shared", "nll"):
        return run.inputs(step, "shared", "nll", delta), "shared-nll score files"
    Zt, yt = run.stacked_reps(step, "test")
    Zc, yc = run.stacked_reps(step, "calibration")
    return bounds.BoundInputs(scores=mix.nll(Zt), task=yt, cal_scores=mix.nll(Zc),
                              cal_task=yc, mixtures=mix, delta=delta), \
        "mixtures-shared.npz applied to reps-shared-*.npy"
