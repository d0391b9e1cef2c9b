"""Who claims a retrieval error: earlier or later tasks (docs/theory.md §10).

For x of task t, an error is *claimed* by the winning foreign task
``w(x) = argmin_{s != t} S_s(x)`` (ties to the lowest index). Under the adapted rule a
module s < t exists, with task t's data, at training time t; a module s > t does not.

* :func:`claim_split`: per task, the fractions of samples misretrieved towards an earlier
  and towards a later task (they add up to the error, ``bounds.empirical_error``).
* :func:`earlier_event`: ``1[exists s < t: S_s(x) <= S_t(x)]``, a superset of the
  earlier-claimed errors that depends only on modules 0..t.
* :func:`earlier_cantelli`: the threshold-lemma Cantelli bound (§2.2) of that event from the
  own and earlier-task score moments, exact on the sample the moments come from.
* :func:`train_score_moments`: those moments from the training-time score matrices
  ``tasks/NNN/train-scores.npz`` (the tier-3 statistics of the adapted rule).
"""

from __future__ import annotations

import numpy as np

from .empirical import _own_and_foreign_min, check_scores, task_counts
from .threshold import cantelli_tail

__all__ = ["claim_split", "earlier_event", "earlier_cantelli", "train_score_moments"]


def claim_split(S: object, task: object) -> dict[str, np.ndarray]:
    """Per-task fractions of errors claimed by an earlier / a later task.

    Returns ``{"error", "earlier", "later"}`` (m,) fractions of each task's samples and
    ``"n_t"``; ``error = earlier + later`` exactly (ties count as errors, §1).
    """
    S, task = check_scores(S, task)
    n, m_ = S.shape
    n_t = task_counts(task, m_)
    if m_ == 1:
        z = np.zeros(1)
        return {"error": z, "earlier": z.copy(), "later": z.copy(), "n_t": n_t}
    own, fmin, win = _own_and_foreign_min(S, task, winner=True)
    err = fmin <= own
    early = err & (win < task)
    late = err & (win > task)
    frac = lambda b: np.bincount(task, weights=b.astype(np.float64), minlength=m_) / n_t
    return {"error": frac(err), "earlier": frac(early), "later": frac(late), "n_t": n_t}


def earlier_event(S: object, task: object) -> np.ndarray:
    """``1[exists s < t: S_s(x) <= S_t(x)]`` per sample (False for task 0)."""
    S, task = check_scores(S, task)
    cols = np.arange(S.shape[1])[None, :]
    own = S[np.arange(S.shape[0]), task][:, None]
    return np.any((cols < task[:, None]) & (S <= own), axis=1)


def _objective(M: float, V: float, Mf: np.ndarray, Vf: np.ndarray,
               r: np.ndarray) -> np.ndarray:
    own = cantelli_tail(np.full_like(r, V), r - M)
    fo = cantelli_tail(Vf[None, :], Mf[None, :] - r[:, None]).sum(axis=1)
    return own + fo


def earlier_cantelli(M: float, V: float, Mf: np.ndarray, Vf: np.ndarray,
                     n_grid: int = 257) -> tuple[float, float]:
    """``inf_r C(V, r - M) + sum_s C(Vf_s, Mf_s - r)`` and its minimiser (§10, §2.2).

    ``M, V``: mean and (1/n) variance of the own score S_t; ``Mf, Vf``: those of the earlier
    tasks' scores S_s, s < t, on the same sample. Any r gives a valid bound on the earlier
    event; r is searched on a grid over the means +- 4 standard deviations (plus every
    mean), then refined locally. Clipped to 1 (r = -inf).
    """
    Mf = np.asarray(Mf, dtype=np.float64).ravel()
    Vf = np.asarray(Vf, dtype=np.float64).ravel()
    if Mf.size == 0:
        return 0.0, float("-inf")  # no earlier task: the event is empty
    allm = np.concatenate([[M], Mf])
    sd = np.sqrt(max(V, float(Vf.max())))
    lo, hi = float(allm.min() - 4 * sd), float(allm.max() + 4 * sd)
    hi = hi if hi > lo else lo + 1.0
    cand = np.concatenate([np.linspace(lo, hi, n_grid), allm,
                           np.nextafter(allm, np.inf)])
    f = _objective(M, V, Mf, Vf, cand)
    k = int(np.argmin(f))
    best, r = float(f[k]), float(cand[k])
    width = (hi - lo) / (n_grid - 1)
    for _ in range(3):
        loc = r + width * np.linspace(-1.0, 1.0, 41)
        fl = _objective(M, V, Mf, Vf, loc)
        kl = int(np.argmin(fl))
        if fl[kl] < best:
            best, r = float(fl[kl]), float(loc[kl])
        width /= 20.0
    return (best, r) if best < 1.0 else (1.0, float("-inf"))


def train_score_moments(mats: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mean (t+1,) and (1/n) covariance (t+1, t+1) of each task's training-time scores."""
    means, covs = [], []
    for T in mats:
        mu = T.mean(axis=0)
        X = T - mu[None, :]
        means.append(mu)
        covs.append(X.T @ X / T.shape[0])
    return means, covs
