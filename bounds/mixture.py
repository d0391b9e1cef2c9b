"""Gaussian mixtures: the one mixture density and sampler of the project (docs/theory.md §4).

:class:`GaussianMixtures` holds per-task mixtures ``p_t = sum_k w_tk N(mu_tk, S_tk)``
(Assumption A.1, §4) with diagonal or full covariances:

* :meth:`~GaussianMixtures.component_logpdf` ``log N(z; mu_tk, S_tk)`` (n, m, K),
  :meth:`~GaussianMixtures.weighted_logpdf` ``log w_tk + log N(...)`` (n, m, K),
  :meth:`~GaussianMixtures.logpdf` ``log p_t(z)`` (n, m) and
  :meth:`~GaussianMixtures.nll` ``-log p_t(z)``, the likelihood score of §1;
* :meth:`~GaussianMixtures.sample`: draws from each task's mixture;
* :func:`stack_mixtures`: per-task mixtures with different numbers of components,
  padded with weight-0 components into one :class:`GaussianMixtures` (what a run stores
  as ``mixtures-shared.npz``); :func:`one_mixture`: a single mixture as a one-task one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._validate import as_float_array, fmt_list
from .distances import _CHUNK_ELEMS, unit_exponent
from .npz import save_npz

__all__ = ["GaussianMixtures", "stack_mixtures", "one_mixture"]


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
                chol = _cholesky_reused(cov)
            except np.linalg.LinAlgError:
                raise ValueError("covariances: must be positive definite") from None
        self.weights = w
        self.means = mu
        self.covariances = cov
        if not diag:
            self._chol = chol

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
        else:  # one factorisation per mixture object, reused by every call
            logdet, W, Wmu = self._whitening()
        out = np.empty((n, P))
        # diagonal: blocks of ~1 MiB (cache-resident; each entry is the same arithmetic),
        # one buffer reused by every block
        step = max(1, (_CHUNK_ELEMS if W is not None else 1 << 17) // max(1, P * d))
        buf = np.empty((min(step, n), P, d)) if W is None else None
        for i0 in range(0, n, step):
            Zc = Z[i0 : i0 + step]
            if buf is not None:
                y = buf[: Zc.shape[0]]
                np.subtract(Zc[:, None, :], mu[None], out=y)
                y *= inv_sd[None]
            else:
                y = (Zc @ W.reshape(P * d, d).T).reshape(-1, P, d) - Wmu[None]
            np.einsum("npd,npd->np", y, y, out=out[i0 : i0 + step])
        logpdf = -0.5 * (out + logdet[None] + d * np.log(2 * np.pi))
        return logpdf.reshape(n, m_, K)

    def _whitening(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logdet (P,), W (P, d, d) = L^{-1}, W mu (P, d)) of full covariances S = L L',
        computed once per object (the Cholesky factors of the constructor, which reuses
        those of an earlier object with the same task covariances: :func:`_cholesky_reused`)."""
        cached = getattr(self, "_white", None)
        if cached is None:
            P, d = self.n_tasks * self.n_components, self.dim
            Lc = getattr(self, "_chol", None)
            Lc = np.linalg.cholesky(self.covariances) if Lc is None else Lc
            Lc = Lc.reshape(P, d, d)
            logdet = 2.0 * np.log(np.diagonal(Lc, axis1=1, axis2=2)).sum(axis=1)
            W = np.linalg.inv(Lc)  # (P, d, d), whitening maps
            cached = (logdet, W, np.einsum("pij,pj->pi", W, self.means.reshape(P, d)))
            self._white = cached
        return cached

    def nll_screen(self, Z: object, *, tasks: np.ndarray | None = None,
                   dims: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(S, u): likelihood scores ``S`` (n, len(tasks)) as :meth:`nll` (all tasks by
        default), and per row a bound ``u`` (n,) with ``|S[i, k] - nll(Z)[i, k]| <= u[i]``
        for every k (docs/theory.md §14.2). ``dims`` (diagonal covariances only): the
        quadratic forms summed over these coordinates only, so that ``S - u`` is a *lower*
        bound of the scores (the other coordinates add ``(z_j - mu_j)^2 / v_j >= 0``).

        Diagonal covariances: ``sum_j (z_j - mu_j)^2 / v_j`` is expanded into two BLAS
        products (about centred data), with the worst-case rounding of a dot product of
        length 2d, ``gamma_{2d+8} * sum |terms|`` (``|2 z mu| <= z^2 + mu^2``), as ``u``
        (the log-sum-exp is 1-Lipschitz in the max norm). Full covariances: :meth:`nll`
        itself (``u = 0``). A caller needing the exact scores of a row recomputes it."""
        Z = as_float_array(Z, "Z", ndim=2)
        tasks = np.arange(self.n_tasks) if tasks is None else np.asarray(tasks)
        if not self.diagonal:
            return self.nll(Z)[:, tasks], np.zeros(Z.shape[0])
        K, d = self.n_components, self.dim
        mu = self.means[tasks].reshape(-1, d)
        var = self.covariances[tasks].reshape(-1, d)
        const = np.log(var).sum(axis=1) + d * np.log(2 * np.pi)
        with np.errstate(divide="ignore"):
            lw = np.log(self.weights[tasks]).reshape(-1)
        if dims is not None:
            Z, mu, var = Z[:, dims], mu[:, dims], var[:, dims]
        return _nll_expanded(Z, mu, var, const, lw, tasks.size, K)

    def nll_lower(self, Z: object, dims: np.ndarray) -> np.ndarray:
        """A lower bound (n, m) of :meth:`nll` (diagonal covariances): per task the least
        ``(q_k + log det S_k + d log 2 pi) / 2`` over its components of positive weight,
        with ``q_k`` summed over the coordinates ``dims`` only, minus the rounding bound of
        :meth:`nll_screen` (``sum_k w_k e^{a_k} <= max_k e^{a_k}`` and the other coordinates
        add non-negative terms; docs/theory.md §14.2)."""
        Z = as_float_array(Z, "Z", ndim=2)
        m_, K, d = self.n_tasks, self.n_components, self.dim
        mu = self.means.reshape(-1, d)[:, dims]
        var = self.covariances.reshape(-1, d)
        const = np.log(var).sum(axis=1) + d * np.log(2 * np.pi)
        iv = 1.0 / var[:, dims]
        center = mu.mean(axis=0)
        mu0 = mu - center
        B = np.ascontiguousarray(np.concatenate([iv, -2.0 * mu0 * iv], axis=1).T)
        mq = np.einsum("pd,pd->p", mu0 * mu0, iv)
        add = np.where(self.weights.reshape(-1) > 0, mq + const, np.inf)
        iv_max = iv.max(axis=0)  # sum_j y_j^2 / v_kj <= sum_j y_j^2 max_k (1 / v_kj)
        gam = 1.01 * (2 * dims.size + 8) * np.finfo(np.float64).eps
        c_max = float(np.abs(const).max())
        out = np.empty((Z.shape[0], m_))
        step = max(1, _CHUNK_ELEMS // max(1, mu.shape[0] + 2 * dims.size))
        for i0 in range(0, Z.shape[0], step):
            Z0 = Z[i0 : i0 + step, dims] - center
            Z2 = Z0 * Z0
            quad = np.concatenate([Z2, Z0], axis=1) @ B  # sum y^2/v - 2 sum y m/v
            quad += add
            low = 0.5 * _last_axis(np.minimum, quad.reshape(-1, m_, K))
            slack = gam * (Z2 @ iv_max + mq.max()) + 1e-11 * (
                1.0 + np.abs(low).max(axis=1) + c_max)
            out[i0 : i0 + step] = low - slack[:, None]
        return out

    def weighted_logpdf(self, Z: object) -> np.ndarray:
        """``log w_tk + log N(z; mu_tk, S_tk)`` (n, m, K); -inf for weight-0 components."""
        with np.errstate(divide="ignore"):
            lw = np.log(self.weights)[None]
        return self.component_logpdf(Z) + lw

    def logpdf(self, Z: object) -> np.ndarray:
        """``log p_t(z_i)`` (n, m): a log-sum-exp over each task's components (§4)."""
        a = self.weighted_logpdf(Z)
        amax = _last_axis(np.maximum, a)[..., None]
        return amax[..., 0] + np.log(np.exp(a - amax).sum(axis=2))

    def nll(self, Z: object) -> np.ndarray:
        """Likelihood scores ``S[i, k] = -log p_k(z_i)`` (n, m) (§1, likelihood score)."""
        return -self.logpdf(Z)

    def sample(self, n_per_task: object, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        """Draw ``n_per_task[t]`` points from each task's mixture; returns (Z, task).

        Per task: the components (``rng.choice`` with the task's weights), then standard
        normals (n, d), mapped by each component's mean and covariance factor (the square
        root of a diagonal covariance, the Cholesky factor of a full one)."""
        counts = np.broadcast_to(np.asarray(n_per_task, dtype=np.int64), (self.n_tasks,))
        if np.any(counts < 0):
            raise ValueError("n_per_task: must be non-negative")
        Zs, ts = [], []
        for t in range(self.n_tasks):
            n = int(counts[t])
            comp = rng.choice(self.n_components, size=n, p=self.weights[t])
            eps = rng.standard_normal((n, self.dim))
            if self.diagonal:  # each row: its component's mean + eps * its sd
                Z = eps * np.sqrt(self.covariances[t])[comp]
                Z += self.means[t][comp]
            else:  # grouped by component: no (n, d, d) array
                Z = np.empty((n, self.dim))
                for k in np.unique(comp):
                    L = np.linalg.cholesky(self.covariances[t, k])
                    Z[comp == k] = self.means[t, k] + eps[comp == k] @ L.T
            Zs.append(Z)
            ts.append(np.full(n, t))
        return np.concatenate(Zs), np.concatenate(ts)

    def save(self, path: str | Path) -> None:
        """Write to ``.npz`` (no pickle)."""
        save_npz(path, {"weights": self.weights, "means": self.means,
                        "covariances": self.covariances})

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixtures:
        """Read an archive written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weights"], z["means"], z["covariances"])


def one_mixture(weights: object, means: object, covariances: object) -> GaussianMixtures:
    """One mixture (``weights`` (K,), ``means`` (K, d), ``covariances`` (K, d) diagonal or
    (K, d, d) full) as a one-task :class:`GaussianMixtures`; weights are renormalised to
    sum to 1 (a fitted mixture's may be off by rounding)."""
    w = as_float_array(weights, "weights", ndim=1)
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights: must be non-negative with a positive sum")
    return GaussianMixtures((w / w.sum())[None], np.asarray(means)[None],
                            np.asarray(covariances)[None])


def stack_mixtures(parts: Sequence[tuple[object, object, object]]) -> GaussianMixtures:
    """Per-task mixtures ``(weights (K_t,), means (K_t, d), covariances (K_t, d) or
    (K_t, d, d))`` stacked into one :class:`GaussianMixtures` with K = max_t K_t.

    Tasks with fewer components are padded with weight-0 components (mean 0, unit
    variances / identity covariance), which change no density, score or bound (§4.2:
    zero-weight components are dropped); each task's weights are renormalised to sum to 1.
    All tasks must share the dimension and the covariance type.
    """
    if len(parts) == 0:
        raise ValueError("parts: at least one task's mixture is needed")
    ws, mus, covs = [], [], []
    for t, (w, mu, cov) in enumerate(parts):
        w = as_float_array(w, f"parts[{t}].weights", ndim=1)
        mu = as_float_array(mu, f"parts[{t}].means", ndim=2)
        cov = as_float_array(cov, f"parts[{t}].covariances", ndim=(2, 3))
        if mu.shape[0] != w.shape[0] or cov.shape[0] != w.shape[0]:
            raise ValueError(f"parts[{t}]: {w.shape[0]} weights, {mu.shape[0]} means and "
                             f"{cov.shape[0]} covariances")
        if np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"parts[{t}].weights: must be non-negative with a positive sum")
        ws.append(w / w.sum())
        mus.append(mu)
        covs.append(cov)
    d, diag = mus[0].shape[1], covs[0].ndim == 2
    bad = [t for t in range(len(parts))
           if mus[t].shape[1] != d or (covs[t].ndim == 2) != diag]
    if bad:
        raise ValueError(f"parts: task(s) {fmt_list(bad)} differ from task 0 in dimension "
                         "or covariance type")
    m_, kmax = len(parts), max(w.shape[0] for w in ws)
    W = np.zeros((m_, kmax))
    MU = np.zeros((m_, kmax, d))
    C = np.ones((m_, kmax, d)) if diag else np.tile(np.eye(d), (m_, kmax, 1, 1))
    for t, (w, mu, cov) in enumerate(zip(ws, mus, covs)):
        k = w.shape[0]
        W[t, :k], MU[t, :k], C[t, :k] = w, mu, cov
    return GaussianMixtures(W, MU, C)


def _last_axis(op: np.ufunc, a: np.ndarray) -> np.ndarray:
    """``op.reduce(a, axis=-1)`` (np.minimum / np.maximum) over the K components; for
    2 <= K <= 16 in K - 1 slice operations (faster than numpy's reduction over a short
    axis, slower over a long one): the same values, NaN included; a zero's sign may
    differ, which no caller sees (a slack is subtracted, or it is exponentiated)."""
    if not 2 <= a.shape[-1] <= 16:
        return op.reduce(a, axis=-1)
    out = op(a[..., 0], a[..., 1])
    for k in range(2, a.shape[-1]):
        op(out, a[..., k], out=out)
    return out


def _nll_expanded(Z: np.ndarray, mu: np.ndarray, var: np.ndarray, const: np.ndarray,
                  lw: np.ndarray, m_: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`GaussianMixtures.nll_screen` of diagonal components ``mu``, ``var`` (m K, d')
    with the constants ``const`` = log det + d log 2 pi and log weights ``lw`` (m K,)."""
    n, d = Z.shape
    P = mu.shape[0]
    iv = 1.0 / var
    center = mu.mean(axis=0)
    mu0 = mu - center
    ivT = np.ascontiguousarray(iv.T)
    BT = np.ascontiguousarray((-2.0 * mu0 * iv).T)
    mq = np.einsum("pd,pd->p", mu0 * mu0, iv)
    gam = 1.01 * (2 * d + 8) * np.finfo(np.float64).eps
    S = np.empty((n, m_))
    u = np.empty(n)
    step = max(1, _CHUNK_ELEMS // max(1, P + 2 * d))
    for i0 in range(0, n, step):
        Z0 = Z[i0 : i0 + step] - center
        Z2 = Z0 * Z0
        bound = Z2 @ ivT  # sum z^2 / v
        quad = Z0 @ BT  # -2 sum z mu / v
        quad += bound
        quad += mq
        bound += mq  # >= (sum |terms|) / 2
        quad += const
        # 0.5 |error of quad| <= gam * bound; the rest (constants, log-sum-exp and the
        # reference's own rounding, <= d eps |quad|) is covered by the relative term
        u[i0 : i0 + step] = gam * bound.max(axis=1) + 1e-11 * (1.0 + np.abs(quad).max(axis=1))
        a = (-0.5 * quad + lw).reshape(-1, m_, K)
        amax = _last_axis(np.maximum, a)[..., None]
        S[i0 : i0 + step] = -(amax[..., 0] + np.log(np.exp(a - amax).sum(axis=2)))
    return S, u


#: Cholesky factors of the last task covariances seen, per (task index, K, d): a mixture
#: file of step t repeats the tasks of step t - 1 (docs/theory.md §14.2), whose factors
#: are then reused instead of recomputed (compared exactly, element by element)
_CHOL_CACHE: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _cholesky_reused(cov: np.ndarray) -> np.ndarray:
    """``np.linalg.cholesky(cov)`` for (m, K, d, d) covariances, task by task, reusing
    the factor of a task whose covariances equal those of the previous call's task with
    the same index (bitwise the same factor: the same LAPACK call on the same numbers)."""
    m_, K, d, _ = cov.shape
    out = np.empty_like(cov)
    todo = []
    for t in range(m_):
        hit = _CHOL_CACHE.get((t, K, d))
        if hit is not None and np.array_equal(hit[0], cov[t]):
            out[t] = hit[1]
        else:
            todo.append(t)
    if todo:
        out[todo] = np.linalg.cholesky(cov[todo])
    if K * d * d * m_ <= _CACHE_ELEMS:  # keep at most one run's factors
        _CHOL_CACHE.clear()
        for t in range(m_):
            _CHOL_CACHE[(t, K, d)] = (cov[t].copy(), out[t].copy())
    return out


_CACHE_ELEMS = 1 << 24  # 128 MiB of covariances and as much of factors

