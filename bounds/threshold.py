"""Score bounds from the threshold lemma: G-emp, G-cantelli, the corollary (docs/theory.md §2).

Any score (shared or per-task spaces), retrieval = argmin of the scores; each bound reads
only the evaluated score matrix and is exact on it.
"""

from __future__ import annotations

import numpy as np

from .base import Bound, BoundInputs
from .empirical import task_counts
from .forms import FUNCS
from .score_moments import ScoreStats

__all__ = ["ThresholdEmpiricalBound", "ThresholdCantelliBound", "CorollaryBound",
           "cantelli_tail"]

# ------------------------------------------------------------------ score bounds
_SCORE_ASSUMPTIONS = (
    "any score (shared or per-task spaces); retrieval = argmin of the scores",
    "P is the empirical distribution of the evaluation scores",
)


class ThresholdEmpiricalBound(Bound):
    """G-emp: inf_r P(S_t >= r) + sum_s P(S_s < r) on the empirical measure (§2.1)."""

    name, title, section = "G-emp", "threshold lemma, empirical", "docs/theory.md §2.1"
    at_most = ("G-cantelli",)
    assumptions = _SCORE_ASSUMPTIONS
    tier = "sample-exact"
    reads = ("scores", "task")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        S, task = inputs.scores, inputs.task
        n, m_ = S.shape
        n_t = task_counts(task, m_, name="task")
        # rows grouped by task, each task's rows in their original order
        if np.all(task[1:] >= task[:-1]):
            order, Sg = None, S
        else:
            order = np.argsort(task, kind="stable")
            Sg = S[order]
        tg = task if order is None else task[order]
        start = np.zeros(m_ + 1, dtype=np.int64)
        np.cumsum(n_t, out=start[1:])
        rows = np.arange(n)
        hi = np.maximum.reduceat(Sg[rows, tg], start[:-1])  # largest own score per task
        hi_row = hi[tg][:, None]
        # Only foreign scores <= hi can change the objective before r passes every own
        # score; above hi, f(r) = (#foreign < r) / n_t is non-decreasing, so of those
        # candidates only the least foreign score above hi (c1, or +inf) can be the
        # first minimiser (the same candidate order as the full sort, see below)
        low = Sg <= hi_row
        low[rows, tg] = False
        n_low = np.add.reduceat(low.sum(axis=1), start[:-1])
        low_off = np.zeros(m_ + 1, dtype=np.int64)
        np.cumsum(n_low, out=low_off[1:])
        vals = Sg[low]  # grouped by task (row-major order of Sg)
        c1 = np.minimum.reduceat(np.min(Sg, axis=1, where=Sg > hi_row, initial=np.inf),
                                 start[:-1])
        per = np.empty(m_)
        r_best = np.empty(m_)
        tail = np.empty(1)
        for t in range(m_):  # loop over tasks only; each step is sorted/vectorised
            own = np.sort(Sg[start[t] : start[t + 1], t])
            foreign = np.sort(vals[low_off[t] : low_off[t + 1]])
            tail[0] = c1[t]
            # candidates in the order of the full sort [own, all foreign, +inf]: every
            # dropped candidate (foreign > c1, +inf) comes after c1 with f >= f(c1)
            cand = np.concatenate([own, foreign, tail])
            f = (n_t[t] - np.searchsorted(own, cand, "left")
                 + np.searchsorted(foreign, cand, "left")) / n_t[t]
            k = int(np.argmin(f))
            if k >= own.size and cand[k] == 0.0:
                # a foreign zero: the full sort decides which of -0.0 / +0.0 comes first
                per[t], r_best[t] = _emp_full(S[task == t], t, n_t[t])
            else:
                per[t], r_best[t] = f[k], cand[k]
        return per, {"r": r_best}


def _emp_full(rows: np.ndarray, t: int, n: int) -> tuple[float, float]:
    """G-emp of task t from all candidates (own, all foreign scores, +inf), each sorted:
    inf_r (n - #{own < r} + #{foreign < r}) / n, the first minimiser in candidate order."""
    own = np.sort(rows[:, t])
    foreign = np.sort(np.delete(rows, t, axis=1).ravel())
    # r = +inf (above every observed value) gives m - 1; r = min of all values
    # gives 1, so both trivial caps are attained by candidates
    cand = np.concatenate([own, foreign, [np.inf]])
    f = (n - np.searchsorted(own, cand, "left") + np.searchsorted(foreign, cand, "left")) / n
    k = int(np.argmin(f))
    return f[k], cand[k]


def cantelli_tail(V: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Cantelli's upper tail ``P(X - EX >= a) <= V / (V + a^2)`` for a > 0, else 1
    (docs/theory.md §2.2, EXPR['cantelli']), with its V = 0 < a value 0 kept when a**2
    underflows (0/0). Shared by G-cantelli and the earlier-claimed bound (§10)."""
    with np.errstate(invalid="ignore"):
        c = FUNCS["cantelli"](V, a)
    return np.where((V == 0) & (a > 0), 0.0, c)


#: elements of one (tasks, thresholds, foreign tasks) block of the G-cantelli objective
_OBJ_CHUNK = 1 << 20


def _cantelli_objective(st: ScoreStats, r: np.ndarray) -> np.ndarray:
    """f_t(r) = C+(M_t, V_t, r) + sum_{s != t} C-(M_ts, V_ts, r); r (m, G) -> (m, G).

    Evaluated in blocks of tasks so that memory is O(m G + _OBJ_CHUNK), never O(m^2 G)
    (docs/theory.md §7); the sum over foreign tasks is exact (no candidate is skipped).
    """
    m_, G = r.shape
    out = cantelli_tail(st.V[:, None], r - st.M[:, None])
    step = max(1, _OBJ_CHUNK // max(1, G * m_))
    buf = np.empty((min(step, m_), G, m_))
    mask = np.empty(buf.shape, dtype=bool)
    for t0 in range(0, m_, step):  # loop over blocks of tasks
        sl = slice(t0, min(m_, t0 + step))
        nb = sl.stop - t0
        a = buf[:nb]
        np.subtract(st.Mf[sl, None, :], r[sl, :, None], out=a)
        fo = _cantelli_inplace(st.Vf[sl, None, :], a, mask[:nb])
        rows = np.arange(nb)
        fo[rows, :, rows + t0] = 0.0  # s = t is the own term, not a foreign one
        out[sl] += fo.sum(axis=2)
    return out


def _cantelli_inplace(V: np.ndarray, a: np.ndarray, trivial: np.ndarray | None = None
                      ) -> np.ndarray:
    """:func:`cantelli_tail` (EXPR['cantelli'] = V / (V + a^2) if a > 0 else 1, and 0 for
    V = 0 < a) computed in place in ``a`` with the same floating-point operations, for
    the O(m^2 G) hot loop (equality with the sympy form: tests/test_bounds_api.py).
    ``trivial``: an optional boolean buffer shaped like ``a``."""
    trivial = np.less_equal(a, 0.0, out=trivial)
    with np.errstate(over="ignore"):  # a^2 = inf gives the right limit V / inf = 0
        np.square(a, out=a)
    a += V
    np.maximum(a, np.finfo(np.float64).smallest_subnormal, out=a)  # V = 0, a^2 underflow
    np.divide(V, a, out=a)
    np.copyto(a, 1.0, where=trivial)
    return a


def _corollary(st: ScoreStats) -> np.ndarray:
    return FUNCS["corollary"](float(st.m), st.delta_t)


class ThresholdCantelliBound(Bound):
    """G-cantelli: inf_r of the Cantelli version of the threshold lemma (§2.2)."""

    name, title, section = "G-cantelli", "threshold lemma + Cantelli", "docs/theory.md §2.2"
    at_most = ("corollary",)
    continuous = 1e-4  # a grid search with local refinement: minima located to ~1e-6
    assumptions = _SCORE_ASSUMPTIONS + ("reads only own/foreign score means and variances",)
    tier = "sample-exact"
    reads = ("scores", "task")
    n_grid = 129
    n_refine = 3

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        st = inputs.score_stats()
        m_ = st.m
        lo = st.Mf.min(axis=1) - np.sqrt(st.Vf.max(axis=1))  # Mf[t, t] = M[t]
        hi = st.Mf.max(axis=1) + np.sqrt(st.Vf.max(axis=1))
        hi = np.where(hi > lo, hi, lo + 1.0)
        u = np.linspace(0.0, 1.0, self.n_grid)
        grid = lo[:, None] + (hi - lo)[:, None] * u[None, :]
        with np.errstate(invalid="ignore"):
            rstar = FUNCS["corollary_r"](st.M, st.V, st.delta_t)
        if m_ > 1:
            mf_min = np.where(np.eye(m_, dtype=bool), np.inf, st.Mf).min(axis=1)
        else:
            mf_min = st.M + 2.0
        fallback = (st.M + mf_min) / 2.0
        rstar = np.where(np.isfinite(rstar), rstar, fallback)
        # r* itself; just above r* where V_t = 0 (the corollary is the limit r -> r*+);
        # r = -inf, where the objective is exactly 1 (the corollary's cap)
        rplus = np.where(st.V == 0, np.nextafter(rstar, np.inf), rstar)
        cands = np.concatenate(
            [grid, st.M[:, None], st.Mf, rstar[:, None], rplus[:, None],
             np.full((m_, 1), -np.inf)], axis=1)
        f = _cantelli_objective(st, cands)
        k = np.argmin(f, axis=1)
        best_r = cands[np.arange(m_), k]
        best = f[np.arange(m_), k]
        width = (hi - lo) / (self.n_grid - 1)
        for _ in range(self.n_refine):  # local refinement; every r is a valid bound
            # (r = -inf stays -inf: loc = -inf, never strictly better)
            loc = best_r[:, None] + width[:, None] * np.linspace(-1.0, 1.0, 41)[None, :]
            fl = _cantelli_objective(st, loc)
            kl = np.argmin(fl, axis=1)
            better = fl[np.arange(m_), kl] < best
            best = np.where(better, fl[np.arange(m_), kl], best)
            best_r = np.where(better, loc[np.arange(m_), kl], best_r)
            width = width / 20.0
        best_r = np.ldexp(best_r, st.unit_exp)  # in the units of the scores
        cor = _corollary(st)
        # the corollary value is the objective at r* (r*+ when V_t = 0), a candidate above,
        # so best <= cor up to rounding; the min only removes that rounding
        per = np.minimum(best, cor)
        return per, {"r": best_r, "corollary": cor, "search": best}


class CorollaryBound(Bound):
    """Separation-factor corollary eps_t <= m / (1 + delta_t^2) (§2.3)."""

    name, title, section = "corollary", "separation factor m/(1+delta^2)", "docs/theory.md §2.3"
    continuous = 1e-6
    assumptions = _SCORE_ASSUMPTIONS + (
        "m = number of tasks (one own + m-1 foreign Cantelli terms); 1 if delta_t <= 0",
    )
    tier = "sample-exact"
    reads = ("scores", "task")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        st = inputs.score_stats()
        return _corollary(st), {"delta_t": st.delta_t, "delta": st.delta}


