"""Diagnostics of Assumption A.1 (docs/theory.md §4): each task's shared representations
follow that task's fitted Gaussian mixture.

Two per-task checks on held-out shared representations (``tasks/NNN/reps-shared-*.npy``):

* **normality along centroid-difference directions**: every held-out point is assigned to
  its most probable component k of its own task; for each component with enough points the
  projection ``u'(z - mu_k) / sqrt(u' Sigma_k u)`` onto the direction ``u`` from ``mu_k`` to
  the nearest foreign component mean (the direction the Chernoff bound depends on) should
  be standard normal under A.1. Its shape is tested with D'Agostino-Pearson's K^2 test
  (``scipy.stats.normaltest``, invariant to location and scale, so a slightly mis-fitted
  covariance does not trigger it); the task's p-value is Bonferroni-combined over its
  components.
* **held-out log-likelihood vs. the model's expectation**: the mean held-out
  ``log p_t(z)`` is compared with ``E_{p_t} log p_t`` (the negative entropy), estimated
  from ``n_samples`` draws of the mixture with a fixed seed. The gap is reported per
  dimension together with a z-score (sampling noise of both means).

A task is flagged when the Bonferroni p-value is below ``alpha`` or when the log-likelihood
gap exceeds ``gap_tol`` nats per dimension *and* ``z_tol`` standard errors (a pure z-test
would flag the unavoidable over-fitting gap of a mixture fitted on finitely many points).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import logsumexp

from .. import GaussianMixtures, sqdist

__all__ = ["A1Expectation", "a1_diagnostics"]


def _task_mixture(mix: GaussianMixtures, t: int) -> GaussianMixtures:
    return GaussianMixtures(mix.weights[t : t + 1], mix.means[t : t + 1],
                            mix.covariances[t : t + 1])


def _weighted_logpdf(mix_t: GaussianMixtures, Z: np.ndarray) -> np.ndarray:
    """log w_k + log N(z; mu_k, S_k) for task mixture ``mix_t``, shape (n, K)."""
    lp = mix_t.component_logpdf(Z)[:, 0, :]
    with np.errstate(divide="ignore"):
        return lp + np.log(mix_t.weights[0])[None, :]


def _sample(mix_t: GaussianMixtures, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` points from a one-task mixture (grouped by component; no (n, d, d))."""
    w = mix_t.weights[0]
    comp = rng.choice(w.shape[0], size=n, p=w / w.sum())
    eps = rng.standard_normal((n, mix_t.dim))
    mu = mix_t.means[0]
    out = np.empty((n, mix_t.dim))
    for k in np.unique(comp):
        sel = comp == k
        if mix_t.diagonal:
            out[sel] = mu[k] + eps[sel] * np.sqrt(mix_t.covariances[0, k])
        else:
            L = np.linalg.cholesky(mix_t.covariances[0, k])
            out[sel] = mu[k] + eps[sel] @ L.T
    return out


class A1Expectation:
    """Model-side log-likelihood moments per task, cached across splits (fixed seed)."""

    def __init__(self, mix: GaussianMixtures, *, n_samples: int = 512, seed: int = 0) -> None:
        self.mix = mix
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self._cache: dict[int, tuple[float, float]] = {}

    def moments(self, t: int) -> tuple[float, float]:
        """(mean, variance) of log p_t(z) for z ~ p_t."""
        if t not in self._cache:
            mix_t = _task_mixture(self.mix, t)
            rng = np.random.default_rng([self.seed, t])
            Zs = _sample(mix_t, self.n_samples, rng)
            ll = logsumexp(_weighted_logpdf(mix_t, Zs), axis=1)
            self._cache[t] = (float(ll.mean()), float(ll.var(ddof=1)))
        return self._cache[t]


def _nearest_foreign(mix: GaussianMixtures) -> np.ndarray:
    """Index (into the flattened (m*K) components) of each component's nearest foreign one."""
    m_, K = mix.weights.shape
    mu = mix.means.reshape(m_ * K, mix.dim)
    task = np.repeat(np.arange(m_), K)
    valid = mix.weights.reshape(-1) > 0
    D2 = sqdist(mu, mu)
    bad = (task[:, None] == task[None, :]) | ~valid[None, :]
    D2 = np.where(bad, np.inf, D2)
    nf = np.argmin(D2, axis=1)
    return np.where(np.isfinite(D2[np.arange(m_ * K), nf]), nf, -1)


def a1_diagnostics(
    mix: GaussianMixtures,
    reps: list[np.ndarray],
    *,
    expectation: A1Expectation | None = None,
    min_points: int = 20,
    alpha: float = 1e-3,
    gap_tol: float = 0.1,
    z_tol: float = 4.0,
) -> dict[str, Any]:
    """Per-task A.1 diagnostics (module docstring) for held-out representations ``reps[t]``.

    Returns a dict of per-task lists (``normality_p``, ``n_directions``, ``max_abs_kurtosis``,
    ``loglik_heldout``, ``loglik_expected``, ``loglik_gap_per_dim``, ``loglik_z``, ``flag``,
    ``reason``) plus the thresholds used and ``n_flagged``.
    """
    m_, K = mix.weights.shape
    if len(reps) != m_:
        raise ValueError(f"reps: {len(reps)} tasks, mixtures hold {m_}")
    exp = expectation if expectation is not None else A1Expectation(mix)
    nf = _nearest_foreign(mix)
    mu_all = mix.means.reshape(m_ * K, mix.dim)
    out: dict[str, list] = {k: [] for k in (
        "n", "normality_p", "n_directions", "max_abs_kurtosis", "loglik_heldout",
        "loglik_expected", "loglik_gap_per_dim", "loglik_z", "flag", "reason")}
    for t in range(m_):
        Z = np.asarray(reps[t], dtype=np.float64)
        mix_t = _task_mixture(mix, t)
        wl = _weighted_logpdf(mix_t, Z)
        ll = logsumexp(wl, axis=1)
        assign = np.argmax(wl, axis=1)
        pvals, kurts = [], []
        for k in range(K):
            sel = assign == k
            if sel.sum() < min_points or mix.weights[t, k] <= 0:
                continue
            mu_k = mix.means[t, k]
            j = nf[t * K + k]
            if j >= 0:
                u = mu_all[j] - mu_k
            else:  # a single task: the leading axis of the component covariance
                cov = mix.covariances[t, k]
                var = cov if mix.diagonal else np.diagonal(cov)
                u = np.eye(mix.dim)[int(np.argmax(var))]
            cov = mix.covariances[t, k]
            su = (cov * u * u).sum() if mix.diagonal else float(u @ cov @ u)
            if not su > 0:
                continue
            x = (Z[sel] - mu_k) @ u / np.sqrt(su)
            if np.ptp(x) == 0:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pvals.append(float(sps.normaltest(x).pvalue))
                kurts.append(float(sps.kurtosis(x)))
        p_task = min(1.0, len(pvals) * min(pvals)) if pvals else None
        e_mean, e_var = exp.moments(t)
        n_t = Z.shape[0]
        h_var = float(ll.var(ddof=1)) if n_t > 1 else 0.0
        se = np.sqrt(h_var / n_t + e_var / exp.n_samples)
        gap = float(ll.mean()) - e_mean
        z = gap / se if se > 0 else (0.0 if gap == 0 else np.copysign(np.inf, gap))
        reasons = []
        if p_task is not None and p_task < alpha:
            reasons.append(f"non-normal projections (p={p_task:.1e})")
        if abs(gap) / mix.dim > gap_tol and abs(z) > z_tol:
            reasons.append(f"held-out log-lik off by {gap / mix.dim:+.2f} nats/dim")
        out["n"].append(n_t)
        out["normality_p"].append(p_task)
        out["n_directions"].append(len(pvals))
        out["max_abs_kurtosis"].append(max(map(abs, kurts)) if kurts else None)
        out["loglik_heldout"].append(float(ll.mean()))
        out["loglik_expected"].append(e_mean)
        out["loglik_gap_per_dim"].append(gap / mix.dim)
        out["loglik_z"].append(float(z))
        out["flag"].append(bool(reasons))
        out["reason"].append("; ".join(reasons))
    res: dict[str, Any] = dict(out)
    res.update(
        thresholds={"alpha": alpha, "gap_tol_nats_per_dim": gap_tol, "z_tol": z_tol,
                    "min_points": min_points, "n_samples": exp.n_samples, "seed": exp.seed},
        n_flagged=int(sum(out["flag"])),
        test="D'Agostino-Pearson K^2 on projections onto centroid-difference directions "
             "(Bonferroni over components); held-out mean log-likelihood vs. sampled "
             "negative entropy",
    )
    return res
