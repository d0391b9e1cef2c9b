"""Hypothesis strategies for adversarial retrieval problems (docs/theory.md §6).

Every array is drawn with ``hypothesis.extra.numpy`` (never from a seeded generator,
except the large populations of the PAC tier), so a failing property shrinks to a minimal
example: few tasks, points and dimensions, and arrays whose entries are mostly one value
(hypothesis' default fill) -- exact ties and coincidences.

* :func:`retrieval_problems`: representations, stored centroids (*not* cluster means) and
  true tasks of the shared nearest-centroid rule; duplicated points, integer grids (exact
  distance ties, points on bisectors), zero-variance tasks, single-point tasks,
  coincident centroids of different tasks, uniform scales from 1e-150 to 1e150;
* :func:`score_matrices`: any score matrix (retrieval = argmin) with exact ties;
* :func:`gaussian_mixtures`: per-task Gaussian mixtures (Assumption A.1, §4);
* :func:`pac_populations`: a finite population of score vectors per task with its exact
  error rate, and a calibration design (n per task, delta, repetitions) for §5;
* :func:`earlier_claim_matrices`: training-time score matrices of one task t whose samples
  are claimed, each by at most one earlier task, in disjoint parts (§10);
* :func:`scales`: powers of ten and of two between 1e-150 and 1e150.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..base import BoundInputs
from ..cluster_fit import cluster_stats
from ..clusters import ClusterStats
from ..distances import nearest_centroid_scores
from ..empirical import empirical_error
from ..mixture import GaussianMixtures

__all__ = ["RetrievalProblem", "ScoreProblem", "PACPopulation", "ClaimProblem",
           "retrieval_problems", "score_matrices", "gaussian_mixtures", "pac_populations",
           "pac_population",
           "earlier_claim_matrices", "scales", "DEFAULT_SCALES"]

#: Uniform scales of :func:`retrieval_problems` (every bound is scale-invariant, §2.4);
#: 1 first, so that a failure shrinks to it.
DEFAULT_SCALES: tuple[float, ...] = (1.0, 1e-150, 1e-6, 1e-3, 1e3, 1e6, 1e150)


def _fmt(a: np.ndarray) -> str:
    """One line: the array with up to ~60 entries (a shrunk example has a handful)."""
    return " ".join(np.array2string(np.asarray(a), precision=6, separator=", ",
                                    threshold=60).split())


@dataclass
class RetrievalProblem:
    """A sample of the shared nearest-centroid rule: points ``Z`` (n, d) with true tasks
    ``task`` (n,), stored ``centroids`` (C, d) of tasks ``centroid_task`` (C,)."""

    Z: np.ndarray
    task: np.ndarray
    centroids: np.ndarray
    centroid_task: np.ndarray
    m: int
    grid: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def scores(self) -> np.ndarray:
        """``S[i, t] = min_{c of t} ||z_i - mu_c||^2`` (§1)."""
        if "S" not in self._cache:
            self._cache["S"] = nearest_centroid_scores(self.Z, self.centroids,
                                                       self.centroid_task, m=self.m)
        return self._cache["S"]

    def clusters(self, sketch_rank: int | None = None) -> ClusterStats:
        """The cluster statistics of this very sample (exact, or with a top-q sketch)."""
        key = ("cs", sketch_rank)
        if key not in self._cache:
            self._cache[key] = cluster_stats(self.Z, self.task, self.centroids,
                                             self.centroid_task, sketch_rank=sketch_rank)
        return self._cache[key]

    def errors(self) -> np.ndarray:
        """Per-task empirical retrieval error (ties count as errors, §1)."""
        return empirical_error(self.scores(), self.task)[0]

    def inputs(self, sketch_rank: int | None = None) -> BoundInputs:
        """Scores, tasks and cluster statistics of the sample, as a bound reads them."""
        return BoundInputs(scores=self.scores(), task=self.task,
                           clusters=self.clusters(sketch_rank))

    def describe(self) -> str:
        n_t = np.bincount(self.task, minlength=self.m)
        return (f"{self.m} tasks, {self.task.size} points (per task {n_t.tolist()}), "
                f"{self.centroids.shape[0]} centroids, dimension {self.Z.shape[1]}\n"
                f"  Z = {_fmt(self.Z)}\n  task = {_fmt(self.task)}\n"
                f"  centroids = {_fmt(self.centroids)}\n"
                f"  centroid_task = {_fmt(self.centroid_task)}")


@dataclass
class ScoreProblem:
    """Any score matrix ``S`` (n, m), retrieval = argmin, with true tasks ``task``."""

    S: np.ndarray
    task: np.ndarray

    @property
    def m(self) -> int:
        return int(self.S.shape[1])

    def errors(self) -> np.ndarray:
        return empirical_error(self.S, self.task)[0]

    def inputs(self) -> BoundInputs:
        return BoundInputs(scores=self.S, task=self.task)

    def describe(self) -> str:
        return (f"{self.m} tasks, {self.task.size} score rows\n  S = {_fmt(self.S)}\n"
                f"  task = {_fmt(self.task)}")


@dataclass
class PACPopulation:
    """A finite population of score vectors (``S`` (N, m), ``task``) whose per-task error
    rate ``error`` is exact, and the calibration design: ``n_cal`` i.i.d. draws per task,
    ``repeats`` independent calibration samples, confidence ``delta``, ``seed``."""

    S: np.ndarray
    task: np.ndarray
    error: np.ndarray
    n_cal: int
    repeats: int
    delta: float
    seed: int

    @property
    def m(self) -> int:
        return int(self.S.shape[1])

    def draws(self) -> list[BoundInputs]:
        """``repeats`` calibration samples, each ``n_cal`` points per task with replacement."""
        rng = np.random.default_rng(self.seed)
        rows = [np.flatnonzero(self.task == t) for t in range(self.m)]
        out = []
        for _ in range(self.repeats):
            idx = np.concatenate([r[rng.integers(0, r.size, self.n_cal)] for r in rows])
            out.append(BoundInputs(cal_scores=self.S[idx], cal_task=self.task[idx],
                                   delta=self.delta))
        return out

    def describe(self) -> str:
        return (f"{self.m} tasks, population error per task {_fmt(self.error)}, "
                f"{self.n_cal} calibration points per task, delta = {self.delta:g}, "
                f"{self.repeats} calibration draws (seed {self.seed})")


def scales(lo: float = 1e-150, hi: float = 1e150) -> st.SearchStrategy[float]:
    """Powers of ten and of two in [lo, hi] (1 first: it is what failures shrink to)."""
    tens = [10.0**k for k in range(-150, 151, 3) if lo <= 10.0**k <= hi]
    twos = [2.0**k for k in range(-498, 499, 17) if lo <= 2.0**k <= hi]
    return st.sampled_from([1.0] + tens + twos)


def _coords(lo: float, hi: float, tiny: float) -> st.SearchStrategy[float]:
    """0 or magnitudes in [tiny, |bound|]: squared lengths stay in the float64 range."""
    return st.one_of(st.just(0.0), st.floats(tiny, hi), st.floats(lo, -tiny))


def _generic(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(1e-2, hi), st.floats(lo, -1e-2))


@st.composite
def retrieval_problems(draw: st.DrawFn, *, max_tasks: int = 8, max_points: int = 12,
                       max_centroids: int = 5, max_dim: int = 64, grid_only: bool = False,
                       generic: bool = False,
                       scales: tuple[float, ...] = DEFAULT_SCALES, min_tasks: int = 2,
                       min_centroids: int = 1) -> RetrievalProblem:
    """An adversarial nearest-centroid configuration (see the module docstring).

    ``max_points``: per task; ``max_centroids``: per task. ``min_tasks`` /
    ``min_centroids`` (per task) raise the floor, e.g. to have every cluster face more
    foreign centroids than a bound's ``r_max``. ``grid_only``: integer grids
    (exact ties; exact under translations by integers and scaling by powers of two).
    ``generic=True`` (real-valued, every entry drawn on its own, magnitudes >= 1e-2, no
    zero spread) is for comparisons of rounded data with a tolerance: no exact ties.
    """
    d = draw(st.one_of(st.integers(1, min(4, max_dim)), st.integers(1, max_dim)))
    m = draw(st.integers(min_tasks, max_tasks))
    K = np.array(draw(st.lists(st.integers(min_centroids, max_centroids), min_size=m,
                               max_size=m)))
    n_t = np.array(draw(st.lists(st.one_of(st.just(1), st.integers(1, max_points)),
                                 min_size=m, max_size=m)))
    grid = True if grid_only else False if generic else draw(st.booleans())
    scale = draw(st.sampled_from(scales))
    # below 1e-100 relative, a squared length of data at 1e-150 leaves the float range
    tiny = 1e-100 if 1e-6 <= scale <= 1e6 else 1e-3
    C, n = int(K.sum()), int(n_t.sum())
    ctask = np.repeat(np.arange(m), K)
    y = np.repeat(np.arange(m), n_t)
    # each point's centroid among its task's own: local index modulo K_t
    local = draw(hnp.arrays(np.int64, n, elements=st.integers(0, max_centroids - 1))) % K[y]
    first = np.concatenate([[0], np.cumsum(K)[:-1]])
    comp = first[y] + local
    if grid:
        centre = draw(hnp.arrays(np.int64, (m, d), elements=st.integers(-3, 3)))
        cents = (centre[ctask] + draw(hnp.arrays(np.int64, (C, d),
                                                 elements=st.integers(-2, 2)))).astype(float)
        spread = draw(st.sampled_from([0, 1, 1, 3]))
        noise = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-3, 3)))
        Z = cents[comp] + np.clip(noise, -spread, spread)
    else:
        kw = {"fill": st.nothing()} if generic else {}
        el = (lambda lo, hi: _generic(lo, hi)) if generic else (
            lambda lo, hi: _coords(lo, hi, tiny))
        centre = draw(hnp.arrays(np.float64, (m, d), elements=el(-4.0, 4.0), **kw))
        cents = centre[ctask] + draw(hnp.arrays(np.float64, (C, d), elements=el(-2, 2),
                                                **kw))
        spread = draw(st.sampled_from([0.5, 1.0, 3.0] if generic else [0.0, 0.5, 1.0, 3.0]))
        noise = draw(hnp.arrays(np.float64, (n, d), elements=el(-3.0, 3.0), **kw))
        Z = cents[comp] + noise * spread
        # centroids are NOT cluster means: shift them
        cents = cents + draw(hnp.arrays(np.float64, (C, d), elements=el(-0.6, 0.6), **kw))
    zero_var_task = draw(st.integers(-1, m - 1))
    if zero_var_task >= 0:  # every point of that task coincides
        rows = np.flatnonzero(y == zero_var_task)
        Z[rows] = Z[rows[0]]
    if draw(st.booleans()):  # duplicated points
        for t in range(m):
            rows = np.flatnonzero(y == t)
            if rows.size > 1:
                Z[rows[-1]] = Z[rows[0]]
    for i, j in draw(st.lists(st.tuples(st.integers(0, C - 1), st.integers(0, C - 1)),
                              max_size=2)):
        if ctask[i] != ctask[j]:  # a centroid of one task coincides with another task's
            cents[i] = cents[j]
    return RetrievalProblem(Z * scale, y, cents * scale, ctask, m, grid)


@st.composite
def score_matrices(draw: st.DrawFn, *, max_tasks: int = 6, max_points: int = 10,
                   scales: tuple[float, ...] = DEFAULT_SCALES) -> ScoreProblem:
    """Any score matrix: small integers (exact ties within and across rows, own score
    tied with a foreign one), of either sign, times a uniform scale; single-point and
    zero-variance tasks arise from the default fill."""
    m = draw(st.integers(2, max_tasks))
    n_t = np.array(draw(st.lists(st.integers(1, max_points), min_size=m, max_size=m)))
    task = np.repeat(np.arange(m), n_t)
    S = draw(hnp.arrays(np.int64, (task.size, m), elements=st.integers(-4, 4)))
    scale = draw(st.sampled_from(scales))
    return ScoreProblem(S.astype(np.float64) * scale, task)


@st.composite
def gaussian_mixtures(draw: st.DrawFn, *, max_tasks: int = 4, max_components: int = 3,
                      max_dim: int = 3) -> GaussianMixtures:
    """Per-task Gaussian mixtures, diagonal or full, well or badly separated (§4)."""
    m = draw(st.integers(2, max_tasks))
    K = draw(st.integers(1, max_components))
    d = draw(st.integers(1, max_dim))
    full = draw(st.booleans())
    sep = draw(st.sampled_from([0.5, 1.5, 3.0]))
    unit = st.floats(-2.0, 2.0, allow_subnormal=False)
    w = draw(hnp.arrays(np.float64, (m, K), elements=st.floats(0.1, 1.0)))
    w = w / w.sum(axis=1, keepdims=True)
    means = draw(hnp.arrays(np.float64, (m, K, d), elements=unit)) * sep
    if full:
        A = draw(hnp.arrays(np.float64, (m, K, d, d), elements=unit)) * 0.5
        cov = A @ np.swapaxes(A, -1, -2) + 0.2 * np.eye(d)
    else:
        cov = draw(hnp.arrays(np.float64, (m, K, d), elements=st.floats(0.2, 1.5)))
    return GaussianMixtures(w, means, cov)


def pac_population(m: int, target: np.ndarray, *, n_cal: int, delta: float, seed: int,
                   size: int = 1000, repeats: int = 200) -> PACPopulation:
    """The population of :func:`pac_populations` for one design: ``size`` Gaussian score
    vectors per task (own and foreign scores N(0, 1), the own one shifted down so that
    task t's exact error rate is about ``target[t]``)."""
    target = np.asarray(target, dtype=np.float64)
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(m), size)
    S = rng.normal(size=(m * size, m))
    rows = np.arange(m * size)
    F = S.copy()
    F[rows, task] = np.inf
    gap = S[rows, task] - F.min(axis=1)  # an error iff gap - shift >= 0
    shift = np.array([np.quantile(gap[task == t], 1.0 - target[t]) for t in range(m)])
    S[rows, task] -= shift[task]
    err = empirical_error(S, task)[0]
    return PACPopulation(S, task, err, n_cal, repeats, delta, seed)


@st.composite
def pac_populations(draw: st.DrawFn, *, size: int = 1000,
                    repeats: int = 200) -> PACPopulation:
    """A Gaussian score population (own and foreign scores N(0, 1), the own one shifted
    down) with exact per-task error rates drawn in [0.3, 0.7], and a calibration design.

    20, 10, 5 or 2 tasks with errors near 1/2: a PAC bound without the union over tasks
    (level delta per task instead of delta / m) fails jointly far more often than delta
    (§5.1), so coverage catches it (tests/test_bounds_properties.py)."""
    m = draw(st.sampled_from([20, 2, 10, 5]))
    target = draw(hnp.arrays(np.float64, m, elements=st.floats(0.3, 0.7)))
    seed = draw(st.integers(0, 2**32 - 1))
    n_cal = draw(st.sampled_from([60, 10, 30, 120]))
    delta = draw(st.sampled_from([0.2, 0.05]))
    return pac_population(m, target, n_cal=n_cal, delta=delta, seed=seed, size=size,
                          repeats=repeats)


@dataclass
class ClaimProblem:
    """Training-time scores ``X`` (n, t + 1) of task t's samples against tasks 0..t (the own
    score is the last column, §10), where sample i is claimed by the earlier task
    ``owner[i]`` (``S_s <= S_t`` there, a tie included) or by none (-1); no other earlier
    task claims it. The earlier-event rate is the fraction of claimed samples."""

    X: np.ndarray
    owner: np.ndarray

    @property
    def t(self) -> int:
        return int(self.X.shape[1]) - 1

    def rate(self) -> float:
        return float(np.mean(self.owner >= 0))

    def describe(self) -> str:
        return (f"task {self.t}, {self.X.shape[0]} samples, claimed by earlier tasks "
                f"{_fmt(self.owner)} (-1: none)\n  X = {_fmt(self.X)}")


@st.composite
def earlier_claim_matrices(draw: st.DrawFn, *, max_earlier: int = 6, max_points: int = 24,
                           scales: tuple[float, ...] = (1.0, 1e-6, 1e6),
                           min_earlier: int = 1) -> ClaimProblem:
    """Several earlier tasks, each claiming its own disjoint part of task t's samples (the
    case where the union over earlier tasks in ``claims.earlier_cantelli`` matters: k
    tasks each claiming 1/k of the samples give the event rate 1). Integer scores (exact
    ties: a tie is a claim) times a uniform scale. ``min_earlier = max_earlier = t`` fixes
    the task index t (the number of earlier tasks)."""
    k = draw(st.integers(min_earlier, max_earlier))
    n = draw(st.integers(1, max_points))
    owner = draw(st.one_of(
        st.just(np.arange(n) % k),  # every earlier task claims about 1/k of the samples
        hnp.arrays(np.int64, n, elements=st.integers(-1, k - 1))))
    own = draw(hnp.arrays(np.int64, n, elements=st.integers(-4, 4))).astype(np.float64)
    gap_in = draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, 3)))
    gap_out = draw(hnp.arrays(np.int64, (n, k), elements=st.integers(1, 6)))
    X = np.empty((n, k + 1))
    claim = owner[:, None] == np.arange(k)[None, :]
    X[:, :k] = np.where(claim, own[:, None] - gap_in, own[:, None] + gap_out)
    X[:, k] = own
    return ClaimProblem(X * draw(st.sampled_from(scales)), np.asarray(owner, dtype=np.int64))
