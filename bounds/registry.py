"""The bound objects, their registry and :func:`evaluate` (docs/theory.md §2-§5).

Every bound returns per-task values eps_t clipped to [0, 1] and ``overall = sum_t pi_t
eps_t`` where pi_t is the empirical task frequency of the data the bound reads (cluster
counts for the centroid bounds, score rows for the score bounds, calibration rows for the
PAC bounds; uniform for the Gaussian bound when no scores are given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from ._validate import check_positive_int, check_probability, fmt_list
from .chernoff import pairwise_chernoff
from .empirical import check_scores, retrieval_errors, task_counts
from .stats import (
    _CHUNK_ELEMS,
    _DIRECT_LIMIT,
    ClusterStats,
    GaussianMixtures,
    ScoreStats,
    score_stats,
)
from .symbolic import FUNCS, GUARD, TAIL_GUARD

__all__ = ["BoundInputs", "BoundResult", "Bound", "REGISTRY", "evaluate"]


# ------------------------------------------------------------------ containers
@dataclass
class BoundInputs:
    """Everything a bound may read. Unused fields stay ``None``.

    ``scores``/``task``: evaluation score matrix (n, m) and true tasks; ``clusters``:
    :class:`ClusterStats` (shared space); ``mixtures``: :class:`GaussianMixtures`;
    ``cal_scores``/``cal_task``: held-out calibration sample for the PAC bounds;
    ``delta``: PAC confidence parameter.

    Scale: every bound is scale-invariant, so the geometry is stored normalised --
    ``clusters`` and ``mixtures`` hold the given statistics with every length divided by
    ``2**unit_exp[name]`` (exact in floating point), largest length in [0.5, 1) -- and
    :meth:`score_stats` holds the moments of ``scores / 2**unit_exp["scores"]``. Squares
    and fourth powers then stay in range for data at any representable scale
    (docs/theory.md §2.4, §3.5). Details that are lengths or thresholds are reported in
    the caller's units.
    """

    scores: Any = None
    task: Any = None
    clusters: ClusterStats | None = None
    mixtures: GaussianMixtures | None = None
    cal_scores: Any = None
    cal_task: Any = None
    delta: float = 0.05
    unit_exp: dict = field(default_factory=dict, init=False, compare=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.scores is None) != (self.task is None):
            raise ValueError("scores: scores and task must be given together")
        if (self.cal_scores is None) != (self.cal_task is None):
            raise ValueError("cal_scores: cal_scores and cal_task must be given together")
        ms: dict[str, int] = {}
        if self.scores is not None:
            self.scores, self.task = check_scores(self.scores, self.task, name="scores")
            ms["scores"] = self.scores.shape[1]
        if self.cal_scores is not None:
            self.cal_scores, self.cal_task = check_scores(
                self.cal_scores, self.cal_task, name="cal_scores", task_name="cal_task"
            )
            ms["cal_scores"] = self.cal_scores.shape[1]
        if self.clusters is not None:
            if not isinstance(self.clusters, ClusterStats):
                raise ValueError("clusters: must be a ClusterStats")
            self.clusters.validate("clusters")
            ms["clusters"] = self.clusters.n_tasks
            self.unit_exp["clusters"] = e = self.clusters.unit_exponent()
            self.clusters = self.clusters.scaled(e)
        if self.mixtures is not None:
            if not isinstance(self.mixtures, GaussianMixtures):
                raise ValueError("mixtures: must be a GaussianMixtures")
            ms["mixtures"] = self.mixtures.n_tasks
            self.mixtures, self.unit_exp["mixtures"] = self.mixtures.normalised()
        self.delta = check_probability(self.delta, "delta")
        if len(set(ms.values())) > 1:
            raise ValueError(f"clusters: inconsistent numbers of tasks across inputs {ms}")

    @property
    def n_tasks(self) -> int:
        for v in (self.scores, self.cal_scores):
            if v is not None:
                return int(v.shape[1])
        if self.clusters is not None:
            return self.clusters.n_tasks
        if self.mixtures is not None:
            return self.mixtures.n_tasks
        raise ValueError("inputs: no data given")

    # cached derived statistics -------------------------------------------------
    def score_stats(self) -> ScoreStats:
        """Moments of ``scores / 2**unit_exp["scores"]`` (see the class docstring)."""
        if "score_stats" not in self._cache:
            st = score_stats(self.scores, self.task, normalised=True)
            self._cache["score_stats"] = st
            self.unit_exp["scores"] = st.unit_exp
        return self._cache["score_stats"]

    def cluster_geometry(self) -> dict[str, np.ndarray]:
        if "geom" not in self._cache:
            self._cache["geom"] = _cluster_geometry(self.clusters)
        return self._cache["geom"]

    def cal_errors(self) -> np.ndarray:
        """Retrieval-error indicator of the calibration sample (shared by the PAC bounds)."""
        if "cal_errors" not in self._cache:
            self._cache["cal_errors"] = retrieval_errors(self.cal_scores, self.cal_task)
        return self._cache["cal_errors"]

    def directional(self) -> np.ndarray:
        if "dir" not in self._cache:
            self._cache["dir"] = _directional_tails(self.clusters, self.cluster_geometry())
        return self._cache["dir"]


@dataclass
class BoundResult:
    """Per-task bound values (m,), their prior-weighted mean and extra details."""

    name: str
    per_task: np.ndarray
    overall: float
    details: dict = field(default_factory=dict)


# ------------------------------------------------------------------ cluster geometry
def _cluster_geometry(cs: ClusterStats) -> dict[str, np.ndarray]:
    n_t = cs.task_sizes()
    empty = np.flatnonzero(n_t == 0)
    if empty.size:
        raise ValueError(f"clusters: task(s) {fmt_list(empty)} have no points")
    D2, foreign = cs.foreign_sqdist()
    Dc2 = cs.separation_sq(geometry=(D2, foreign))
    return {"n_t": n_t, "D2": D2, "foreign": foreign, "Dc2": Dc2}


def _directional_tails(cs: ClusterStats, geom: dict[str, np.ndarray]) -> np.ndarray:
    """p[c, nu]: directional Cantelli tail of cluster c towards foreign centroid nu (§3.4).

    v = u' Sigma_c u is replaced by its sketch upper bound u'ULU'u + resid ||(I-UU')u||^2
    (§3.5); p = 1 for coincident centroids; 0 for non-foreign nu.
    """
    D2, foreign = geom["D2"], geom["foreign"]
    C, d = cs.centroid.shape
    mu = cs.centroid
    mu0 = mu - mu.mean(axis=0)
    U, L, R, b = cs.eigvecs, cs.eigvals, cs.resid, cs.offset
    q = L.shape[1]
    p = np.zeros((C, C))
    direct = C * C * max(d, q) <= _DIRECT_LIMIT
    step = max(1, _CHUNK_ELEMS // max(1, C * max(q, 1)))
    for c0 in range(0, C, step):
        sl = slice(c0, min(C, c0 + step))
        if direct:
            diff = mu[None, :, :] - mu[sl, None, :]  # (b, C, d): nu - mu_c exactly
            proj = np.einsum("bdq,bnd->bqn", U[sl], diff)
            mproj = np.einsum("bd,bnd->bn", b[sl], diff)
        else:
            Ub = U[sl]
            nb = Ub.shape[0]
            proj_all = (np.transpose(Ub, (0, 2, 1)).reshape(nb * q, d) @ mu0.T).reshape(
                nb, q, C
            )
            proj = proj_all - np.einsum("bdq,bd->bq", Ub, mu0[sl])[:, :, None]
            mproj = b[sl] @ mu0.T - np.einsum("bd,bd->b", b[sl], mu0[sl])[:, None]
        d2 = D2[sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            D = np.sqrt(d2)
            cos = proj / D[:, None, :]  # U'u for the unit direction u: no 4th powers
            m_nu = mproj / D
        quad = np.einsum("bq,bqn->bn", L[sl], cos * cos)
        nrm = np.einsum("bqn,bqn->bn", cos, cos)
        v = quad + R[sl, None] * np.maximum(1.0 - nrm, 0.0)
        # rounding guard §3.5: the gap a = D/2 - m_nu is reduced by a slack covering its own
        # cancellation (D/2 + |m_nu|) and the rounding of the scores that decide a point's
        # retrieval: ||z-nu||^2 - ||z-mu||^2 = 2 D (D/2 - <z-mu, u>) is resolved only to
        # ~1e-10 of ||z-mu||^2 + ||z-nu||^2 <= r^2 + (r + D)^2 (r = max_radius), so points
        # within that of the bisector may be counted as errors; a <= slack gives tail 1
        rad = cs.max_radius[sl, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slack = TAIL_GUARD * (D / 2.0 + np.abs(m_nu)
                                  + (rad * rad + (rad + D) ** 2) / (2.0 * D))
            a = D / 2.0 - m_nu
            a = np.where(a <= slack, 0.0, a - slack)
        pc = FUNCS["cantelli"](np.where(d2 > 0, v, 1.0), np.where(d2 > 0, a, 0.0))
        pc = np.where(d2 > 0, pc, 1.0)
        p[sl] = np.where(foreign[sl], pc, 0.0)
    return p


def _per_task_from_clusters(cs: ClusterStats, eps_c: np.ndarray) -> np.ndarray:
    return np.bincount(cs.task, weights=cs.weight * eps_c, minlength=cs.n_tasks)


# ------------------------------------------------------------------ base class
class Bound:
    """A retrieval-error bound: metadata plus ``compute`` (see docs/architecture.md)."""

    name: str = ""
    title: str = ""
    assumptions: tuple[str, ...] = ()
    guaranteed: bool = True
    reads: tuple[str, ...] = ()
    section: str = ""

    def applicable(self, inputs: BoundInputs) -> bool:
        """True when every field in ``reads`` is present."""
        return all(getattr(inputs, r) is not None for r in self.reads)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def _priors(self, inputs: BoundInputs) -> np.ndarray:
        m_ = inputs.n_tasks
        if "clusters" in self.reads:
            n_t = inputs.cluster_geometry()["n_t"].astype(np.float64)
        elif "cal_scores" in self.reads:
            n_t = np.bincount(inputs.cal_task, minlength=m_).astype(np.float64)
        elif inputs.scores is not None:
            n_t = np.bincount(inputs.task, minlength=m_).astype(np.float64)
        else:
            n_t = np.ones(m_)
        return n_t / n_t.sum()

    def compute(self, inputs: BoundInputs) -> BoundResult:
        """Per-task bound (clipped to [0, 1]) and overall = sum_t pi_t eps_t."""
        if not self.applicable(inputs):
            missing = [r for r in self.reads if getattr(inputs, r) is None]
            raise ValueError(f"inputs: bound {self.name!r} needs {missing}")
        per, details = self._per_task(inputs)
        per = np.clip(np.asarray(per, dtype=np.float64), 0.0, 1.0)
        pi = self._priors(inputs)
        details = {"section": self.section, "pi": pi, **details}
        return BoundResult(self.name, per, float(np.clip(pi @ per, 0.0, 1.0)), details)

    def __repr__(self) -> str:
        return f"<Bound {self.name}: {self.title}>"


# ------------------------------------------------------------------ centroid bounds
_CENTROID_ASSUMPTIONS = (
    "shared representation space, nearest-centroid retrieval over all stored centroids",
    "P is the distribution of the points summarised in the ClusterStats",
)


class MarginBound(Bound):
    """Bound A: eps_t <= sum_c w_c P_c(||z - mu_c|| >= D_c / 2) (docs/theory.md §3.2)."""

    name, title, section = "A", "margin fraction", "docs/theory.md §3.2"
    assumptions = _CENTROID_ASSUMPTIONS + ("needs per-point radii",)
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        r2 = cs.point_radius**2
        ind = FUNCS["margin_indicator"](r2, g["Dc2"][cs.point_cluster], GUARD)
        per = np.bincount(cs.point_task, weights=ind, minlength=cs.n_tasks) / g["n_t"]
        zero = not np.any(FUNCS["margin_indicator"](cs.max_radius**2, g["Dc2"], GUARD))
        return per, {"all_radii_below_half_separation": bool(zero)}


class ClippedMarkovBound(Bound):
    """Bound B': eps_t <= sum_c w_c E_c min(1, 4||z-mu_c||^2 / D_c^2) (§3.3)."""

    name, title, section = "Bprime", "clipped Markov per point", "docs/theory.md §3.3"
    assumptions = _CENTROID_ASSUMPTIONS + ("needs per-point radii",)
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        term = FUNCS["markov"](cs.point_radius**2, g["Dc2"][cs.point_cluster], GUARD)
        per = np.bincount(cs.point_task, weights=term, minlength=cs.n_tasks) / g["n_t"]
        return per, {}


class SecondMomentBound(Bound):
    """Bound B: eps_t <= sum_c w_c min(1, 4 s_c^2 / D_c^2) (§3.3)."""

    name, title, section = "B", "second moment (Markov)", "docs/theory.md §3.3"
    assumptions = _CENTROID_ASSUMPTIONS
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        eps_c = FUNCS["markov"](cs.msr, g["Dc2"], GUARD)
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c}


class DirectionalBound(Bound):
    """Bound C: eps_c <= min(1, sum_nu v_nu / (v_nu + a_nu^2)) (§3.4)."""

    name, title, section = "C", "directional Cantelli + union", "docs/theory.md §3.4"
    assumptions = _CENTROID_ASSUMPTIONS + (
        "covariance sketch: top-q eigenpairs + residual upper bound (exact if q = d)",
    )
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        eps_c = np.minimum(1.0, inputs.directional().sum(axis=1))
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c}


class TruncatedUnionBound(Bound):
    """Bound D: min over r in {D_(k)/2} U {inf} of Markov(r) + truncated union (§3.6)."""

    name, title, section = "D", "truncated union", "docs/theory.md §3.6"
    assumptions = DirectionalBound.assumptions
    reads = ("clusters",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        g = inputs.cluster_geometry()
        p = inputs.directional()
        C = cs.n_clusters
        Df = np.where(g["foreign"], g["D2"], np.inf)
        order = np.argsort(Df, axis=1, kind="stable")
        Ds = np.take_along_axis(Df, order, axis=1)
        ps = np.take_along_axis(p, order, axis=1)
        cum = np.concatenate([np.zeros((C, 1)), np.cumsum(ps, axis=1)], axis=1)
        # first index of each run of equal sorted distances: strict "D_nu < 2r"
        new = np.ones_like(Ds, dtype=bool)
        new[:, 1:] = Ds[:, 1:] != Ds[:, :-1]
        first = np.maximum.accumulate(np.where(new, np.arange(C)[None, :], 0), axis=1)
        markov = FUNCS["markov"](cs.msr[:, None], Ds, GUARD)
        vals = markov + np.take_along_axis(cum, first, axis=1)
        k = np.argmin(vals, axis=1)
        eps_c = np.minimum(1.0, vals[np.arange(C), k])
        r_best = np.ldexp(np.sqrt(Ds[np.arange(C), k]) / 2.0, inputs.unit_exp["clusters"])
        return _per_task_from_clusters(cs, eps_c), {"per_cluster": eps_c, "r": r_best}


# ------------------------------------------------------------------ score bounds
_SCORE_ASSUMPTIONS = (
    "any score (shared or per-task spaces); retrieval = argmin of the scores",
    "P is the empirical distribution of the evaluation scores",
)


class ThresholdEmpiricalBound(Bound):
    """G-emp: inf_r P(S_t >= r) + sum_s P(S_s < r) on the empirical measure (§2.1)."""

    name, title, section = "G-emp", "threshold lemma, empirical", "docs/theory.md §2.1"
    assumptions = _SCORE_ASSUMPTIONS
    reads = ("scores", "task")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        S, task = inputs.scores, inputs.task
        m_ = S.shape[1]
        n_t = task_counts(task, m_, name="task")
        per = np.empty(m_)
        r_best = np.empty(m_)
        for t in range(m_):  # loop over tasks only; each step is sorted/vectorised
            rows = S[task == t]
            own = np.sort(rows[:, t])
            foreign = np.sort(np.delete(rows, t, axis=1).ravel())
            # r = +inf (above every observed value) gives m - 1; r = min of all values
            # gives 1, so both trivial caps are attained by candidates
            cand = np.concatenate([own, foreign, [np.inf]])
            f = (n_t[t] - np.searchsorted(own, cand, "left")
                 + np.searchsorted(foreign, cand, "left")) / n_t[t]
            k = int(np.argmin(f))
            per[t], r_best[t] = f[k], cand[k]
        return per, {"r": r_best}


def _cantelli(V: np.ndarray, a: np.ndarray) -> np.ndarray:
    """EXPR['cantelli'] with its V = 0, a > 0 value 0 kept when a**2 underflows (0/0)."""
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
    out = _cantelli(st.V[:, None], r - st.M[:, None])
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
    """:func:`_cantelli` (EXPR['cantelli'] = V / (V + a^2) if a > 0 else 1, and 0 for
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
    assumptions = _SCORE_ASSUMPTIONS + ("reads only own/foreign score means and variances",)
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
    assumptions = _SCORE_ASSUMPTIONS + (
        "m = number of tasks (one own + m-1 foreign Cantelli terms); 1 if delta_t <= 0",
    )
    reads = ("scores", "task")

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        st = inputs.score_stats()
        return _corollary(st), {"delta_t": st.delta_t, "delta": st.delta}


# ------------------------------------------------------------------ Gaussian bound
class GaussianChernoffBound(Bound):
    """Chernoff / Bhattacharyya bound under Assumption A.1 (§4)."""

    name, title, section = "gaussian-chernoff", "Gaussian mixtures, Chernoff", "docs/theory.md §4"
    assumptions = (
        "Assumption A.1: each task's representations follow its Gaussian mixture exactly",
        "likelihood retrieval argmax_k p_k(h(x)) in one shared space, equal task priors",
        "a population bound: holds for P = the mixture law, not for an empirical sample",
    )
    guaranteed = False
    reads = ("mixtures",)

    def __init__(self, n_iter: int = 10, prune_tol: float = 1e-12) -> None:
        self.n_iter = check_positive_int(n_iter, "n_iter")
        self.prune_tol = float(prune_tol)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        res = pairwise_chernoff(inputs.mixtures, n_iter=self.n_iter, prune_tol=self.prune_tol)
        per = np.minimum(1.0, res["pairwise"].sum(axis=1))
        return per, dict(res)


# ------------------------------------------------------------------ PAC bounds
class _PACBound(Bound):
    guaranteed = False
    reads = ("cal_scores", "cal_task")
    assumptions = (
        "signatures fixed before the calibration sample was drawn (independent of it)",
        "calibration points i.i.d. from each task's population",
        "holds with probability >= 1 - delta simultaneously for all m tasks",
        "surrogate g = E_t (the retrieval-error indicator) on the calibration sample",
    )

    def _counts(self, inputs: BoundInputs) -> tuple[np.ndarray, np.ndarray, int]:
        S, task = inputs.cal_scores, inputs.cal_task
        m_ = S.shape[1]
        n_t = task_counts(task, m_, name="cal_task")
        err = inputs.cal_errors()
        k_t = np.bincount(task, weights=err.astype(np.float64), minlength=m_)
        return k_t, n_t, m_


class HoeffdingBound(_PACBound):
    """mean_cal(g) + sqrt(ln(m/delta) / (2 n_t)) (§5.1)."""

    name, title, section = "pac-hoeffding", "PAC, Hoeffding", "docs/theory.md §5.1"

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        k_t, n_t, m_ = self._counts(inputs)
        slack = FUNCS["hoeffding"](float(m_), inputs.delta, n_t.astype(np.float64))
        return k_t / n_t + slack, {"empirical": k_t / n_t, "slack": slack, "n_t": n_t}


def _clopper_pearson(k: float, n: float, alpha: float) -> float:
    """One-sided Clopper-Pearson upper limit of a binomial proportion at level alpha."""
    if k >= n:
        return 1.0
    return float(sps.beta.ppf(1.0 - alpha, k + 1, n - k))


class ClopperPearsonBound(_PACBound):
    """One-sided Clopper-Pearson upper limit at level delta/m per task (§5.2)."""

    name, title, section = "pac-clopper-pearson", "PAC, Clopper-Pearson", "docs/theory.md §5.2"

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        k_t, n_t, m_ = self._counts(inputs)
        alpha = inputs.delta / m_
        with np.errstate(all="ignore"):
            up = sps.beta.ppf(1.0 - alpha, k_t + 1, np.maximum(n_t - k_t, 1e-300))
        up = np.where(k_t >= n_t, 1.0, up)
        return up, {"empirical": k_t / n_t, "n_t": n_t,
                    "pooled": _clopper_pearson(k_t.sum(), n_t.sum(), inputs.delta)}


# ------------------------------------------------------------------ registry
from .moment import MomentOptBound  # noqa: E402  (moment.py subclasses Bound)

REGISTRY: dict[str, Bound] = {
    b.name: b
    for b in (
        MarginBound(),
        ClippedMarkovBound(),
        SecondMomentBound(),
        DirectionalBound(),
        TruncatedUnionBound(),
        MomentOptBound(),
        ThresholdEmpiricalBound(),
        ThresholdCantelliBound(),
        CorollaryBound(),
        GaussianChernoffBound(),
        HoeffdingBound(),
        ClopperPearsonBound(),
    )
}


def evaluate(inputs: BoundInputs, names: list[str] | tuple[str, ...] | None = None
             ) -> dict[str, BoundResult]:
    """Compute every applicable bound (or exactly ``names``) in registry order."""
    if not isinstance(inputs, BoundInputs):
        raise ValueError("inputs: must be a BoundInputs")
    if names is None:
        chosen = [b for b in REGISTRY.values() if b.applicable(inputs)]
    else:
        if isinstance(names, str):
            names = [names]
        unknown = [nm for nm in names if nm not in REGISTRY]
        if unknown:
            raise ValueError(f"names: unknown bound(s) {unknown}; known: {list(REGISTRY)}")
        chosen = [REGISTRY[nm] for nm in names]
    return {b.name: b.compute(inputs) for b in chosen}

