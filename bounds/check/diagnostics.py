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

A task is flagged when its Bonferroni p-value times the number of tasks is below ``alpha``
(family-wise level ``alpha`` over the whole run: the K^2 tail approximation is not exact
for small components) or when the log-likelihood
gap exceeds ``gap_tol`` nats per dimension *and* ``z_tol`` standard errors (a pure z-test
would flag the unavoidable over-fitting gap of a mixture fitted on finitely many points).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import chdtrc, logsumexp

from .. import GaussianMixtures, sqdist
from .._blas import blas_threads

__all__ = ["A1Expectation", "a1_diagnostics", "dagostino_pearson"]


def _task_mixture(mix: GaussianMixtures, t: int) -> GaussianMixtures:
    return GaussianMixtures(mix.weights[t : t + 1], mix.means[t : t + 1],
                            mix.covariances[t : t + 1])


def dagostino_pearson(x: np.ndarray, group: np.ndarray, n_groups: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D'Agostino-Pearson K^2 normality test for every group of ``x`` at once.

    The same statistic as ``scipy.stats.normaltest`` (skewness test of D'Agostino 1970 and
    kurtosis test of Anscombe & Glynn 1983, combined as Z_s^2 + Z_k^2 ~ chi^2_2), computed
    from grouped central moments in one pass instead of one scipy call per group. Groups
    with fewer than 8 points or zero variance get p = NaN. Returns (p, skew, excess
    kurtosis) per group.
    """
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    safe = np.maximum(n, 1.0)
    mean = np.bincount(group, weights=x, minlength=n_groups) / safe
    dev = x - mean[group]
    m2, m3, m4 = (np.bincount(group, weights=dev**p, minlength=n_groups) / safe
                  for p in (2, 3, 4))
    ok = (n >= 8) & (m2 > 0)
    with np.errstate(all="ignore"):
        b1 = m3 / m2**1.5
        b2 = m4 / m2**2
        # skewness test
        y = b1 * np.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
        beta2 = (3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3)
                 / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9)))
        W2 = -1.0 + np.sqrt(2 * (beta2 - 1))
        dlt = 1.0 / np.sqrt(0.5 * np.log(W2))
        alpha = np.sqrt(2.0 / (W2 - 1))
        y = np.where(y == 0, 1.0, y)
        Zs = dlt * np.log(y / alpha + np.sqrt((y / alpha) ** 2 + 1))
        # kurtosis test
        E = 3.0 * (n - 1) / (n + 1)
        varb2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
        xk = (b2 - E) / np.sqrt(varb2)
        sb1 = (6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
               * np.sqrt((6.0 * (n + 3) * (n + 5)) / (n * (n - 2) * (n - 3))))
        A = 6.0 + 8.0 / sb1 * (2.0 / sb1 + np.sqrt(1 + 4.0 / sb1**2))
        term1 = 1 - 2 / (9.0 * A)
        denom = 1 + xk * np.sqrt(2 / (A - 4.0))
        term2 = np.sign(denom) * np.where(denom == 0, np.nan,
                                          ((1 - 2.0 / A) / np.abs(denom)) ** (1 / 3.0))
        Zk = (term1 - term2) / np.sqrt(2 / (9.0 * A))
        p = chdtrc(2, Zs**2 + Zk**2)  # chi-square(2) survival, as scipy.stats.chi2.sf
    return np.where(ok, p, np.nan), np.where(ok, b1, np.nan), np.where(ok, b2 - 3.0, np.nan)


class A1Expectation:
    """Model-side log-likelihood moments per task, cached across splits (fixed seed)."""

    def __init__(self, mix: GaussianMixtures, *, n_samples: int = 256, seed: int = 0) -> None:
        self.mix = mix
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self._cache: dict[int, tuple[float, float]] = {}
        self._dirs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._nf: np.ndarray | None = None

    def directions(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(U (K, d), u' S_k u (K,)) of task t's components (:func:`_directions`) for
        :attr:`mix`, cached like :meth:`moments` (they depend on the mixtures only)."""
        if t not in self._dirs:
            if self._nf is None:
                self._nf = _nearest_foreign(self.mix)
            self._dirs[t] = _directions(self.mix, self._nf, t)
        return self._dirs[t]

    def moments(self, t: int) -> tuple[float, float]:
        """(mean, variance) of log p_t(z) for z ~ p_t."""
        if t not in self._cache:
            mix_t = _task_mixture(self.mix, t)
            rng = np.random.default_rng([self.seed, t])
            Zs = mix_t.sample(self.n_samples, rng)[0]
            ll = mix_t.logpdf(Zs)[:, 0]
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


def _directions(mix: GaussianMixtures, nf: np.ndarray, t: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per component k of task t: the direction ``u`` from mu_k to its nearest foreign
    component mean (``nf``: :func:`_nearest_foreign`), or for a single task the leading
    axis of the component covariance, and ``u' Sigma_k u``."""
    K = mix.weights.shape[1]
    mu_all = mix.means.reshape(-1, mix.dim)
    U = np.zeros((K, mix.dim))
    for k in range(K):  # direction to the nearest foreign component mean
        j = nf[t * K + k]
        if j >= 0:
            U[k] = mu_all[j] - mix.means[t, k]
        else:  # a single task: the leading axis of the component covariance
            cov = mix.covariances[t, k]
            U[k, int(np.argmax(cov if mix.diagonal else np.diagonal(cov)))] = 1.0
    if mix.diagonal:
        su = (mix.covariances[t] * U * U).sum(axis=1)
    else:
        su = np.einsum("ki,kij,kj->k", U, mix.covariances[t], U)
    return U, su


def a1_diagnostics(
    mix: GaussianMixtures,
    reps: Sequence[np.ndarray],
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
    # directions and their variances depend on the mixtures only: cached by ``exp``
    # across splits when it holds these mixtures
    dirs = exp if exp.mix is mix else A1Expectation(mix)
    out: dict[str, list] = {k: [] for k in (
        "n", "normality_p", "n_directions", "max_abs_kurtosis", "loglik_heldout",
        "loglik_expected", "loglik_gap_per_dim", "loglik_z", "flag", "reason")}
    # one BLAS thread: the per-task products are small, and OpenBLAS thread start-up
    # dominates them (10x slower on a busy machine)
    with blas_threads(1):
        for t in range(m_):
            Z = np.asarray(reps[t], dtype=np.float64)
            mix_t = _task_mixture(mix, t)
            wl = mix_t.weighted_logpdf(Z)[:, 0, :]  # log w_k + log N(z; mu_k, S_k)
            ll = logsumexp(wl, axis=1)  # = mix_t.logpdf(Z)[:, 0], without a second pass
            assign = np.argmax(wl, axis=1)
            U, su = dirs.directions(t)
            proj = np.einsum("nd,nd->n", Z - mix.means[t][assign], U[assign])
            x = proj / np.sqrt(np.where(su > 0, su, 1.0))[assign]
            counts = np.bincount(assign, minlength=K)
            usable = (counts >= min_points) & (mix.weights[t] > 0) & (su > 0)
            pk, _, kurt = dagostino_pearson(x, assign, K)
            usable &= np.isfinite(pk)
            pvals = pk[usable].tolist()
            kurts = kurt[usable].tolist()
            p_task = min(1.0, len(pvals) * min(pvals)) if pvals else None
            e_mean, e_var = exp.moments(t)
            n_t = Z.shape[0]
            h_var = float(ll.var(ddof=1)) if n_t > 1 else 0.0
            se = np.sqrt(h_var / n_t + e_var / exp.n_samples)
            gap = float(ll.mean()) - e_mean
            z = gap / se if se > 0 else (0.0 if gap == 0 else np.copysign(np.inf, gap))
            reasons = []
            if p_task is not None and p_task * m_ < alpha:  # family-wise over the m tasks
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
        thresholds={"alpha_familywise": alpha, "gap_tol_nats_per_dim": gap_tol, "z_tol": z_tol,
                    "min_points": min_points, "n_samples": exp.n_samples, "seed": exp.seed},
        n_flagged=int(sum(out["flag"])),
        test="D'Agostino-Pearson K^2 on projections onto centroid-difference directions "
             "(Bonferroni over components); held-out mean log-likelihood vs. sampled "
             "negative entropy",
    )
    return res
