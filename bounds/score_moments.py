"""Own / foreign score moments and separation factors (docs/theory.md §2.2-§2.4).

:func:`score_stats` -> :class:`ScoreStats`: per task the own score mean and 1/n (biased)
variance, the foreign means and variances, and the separation factors delta_ts and
delta_t = min_s delta_ts (§2.3; *not* the PAC confidence ``delta`` of §5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distances import _AT0, _group_starts, unit_exponent
from .empirical import check_scores, task_counts
from .forms import FUNCS

__all__ = ["ScoreStats", "score_stats", "separation_factors"]


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
    mean is clamped into the group's [min, max] (docs/theory.md §2.4). Every group is
    non-empty (:func:`bounds.empirical.task_counts`). One group at a time (its rows are
    cache-resident, no (n, m) temporaries; X is not copied when the keys are sorted), each
    sum a ``np.add.reduceat`` of the group's rows: the same summation as one reduceat over
    all groups, so the same bits (tests/test_score_stats_exact.py; issue #21).
    """
    if keys.size > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
        order = np.argsort(keys, kind="stable")
        X, keys = X[order], keys[order]
    starts, counts = _group_starts(keys, n_groups)
    mean = np.empty((n_groups,) + X.shape[1:])
    var = np.empty_like(mean)
    for g, (s, c) in enumerate(zip(starts.tolist(), counts.tolist())):
        seg = X[s : s + c]
        n = float(c)
        m0 = np.add.reduceat(seg, _AT0, axis=0)[0] / n
        dev = seg - m0
        mu = m0 + np.add.reduceat(dev, _AT0, axis=0)[0] / n
        lo = np.minimum.reduce(seg, axis=0)
        hi = np.maximum.reduce(seg, axis=0)
        const = lo == hi
        mu = np.where(const, lo, np.clip(mu, lo, hi))
        np.subtract(seg, mu, out=dev)
        np.square(dev, out=dev)
        mean[g] = mu
        var[g] = np.where(const, 0.0, np.add.reduceat(dev, _AT0, axis=0)[0] / n)
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


