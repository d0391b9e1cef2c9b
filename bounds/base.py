"""The bound contract: :class:`BoundInputs`, :class:`BoundResult`, :class:`Bound`, tiers
(docs/theory.md §1, §11).

Every bound returns per-task values eps_t clipped to [0, 1] and ``overall = sum_t pi_t
eps_t`` where pi_t is the empirical task frequency of the data the bound reads (cluster
counts for the centroid bounds, score rows for the score bounds, calibration rows for the
PAC bounds; uniform for the Gaussian bound when no scores are given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import check_probability
from .clusters import ClusterStats
from .empirical import check_scores, retrieval_errors
from .geometry import _cluster_geometry, _directional_tails
from .mixture import GaussianMixtures
from .score_moments import ScoreStats, score_stats

__all__ = ["TIERS", "EXACT_TIERS", "INPUT_FIELDS", "Bound", "BoundInputs", "BoundResult"]


#: the start of the warning for a score matrix that looks like similarities
ORIENTATION_WARNING = "looks like similarities (higher = closer)"


def own_column_max_rate(S: np.ndarray, task: np.ndarray) -> float:
    """Fraction of the rows whose own task's column is the strict row maximum (0.0 for
    fewer than two columns): near 0 for distances, near 1 for similarities."""
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] == 0 or S.shape[1] < 2:
        return 0.0
    own = S[np.arange(S.shape[0]), task]
    top = S.max(axis=1)
    # own > every other column <=> own is the row maximum and no other column equals it
    # (NaN: neither); the rows where own is the maximum are few for distances
    cand = np.flatnonzero(own == top)
    alone = np.count_nonzero((S[cand] == top[cand, None]).sum(axis=1) == 1)
    return alone / S.shape[0]


def _warn_orientation(S: np.ndarray, task: np.ndarray, name: str) -> None:
    """Warn when the own task's column is the row maximum on most rows (docstring of
    :class:`BoundInputs`)."""
    rate = own_column_max_rate(S, task)
    if rate > 0.5:
        import warnings

        warnings.warn(f"{name}: {ORIENTATION_WARNING}: the own task's column is the row "
                      f"maximum on {rate:.0%} of the rows; scores are 'lower = closer' "
                      "(distances, negative log-likelihoods): pass -S for similarities",
                      UserWarning, stacklevel=3)


# ------------------------------------------------------------------ containers
@dataclass
class BoundInputs:
    """Everything a bound may read. Unused fields stay ``None``.

    ``scores``/``task``: evaluation score matrix (n, m) and true tasks. **Scores are
    "lower = closer"** (distances, negative log-likelihoods; retrieval is ``argmin``): negate
    a similarity matrix first. When the own task's column is the row *maximum* on most rows
    (more than half, m >= 2), the scores look like similarities and a ``UserWarning`` says
    so (:data:`ORIENTATION_WARNING`); the bounds are still computed as given. ``clusters``:
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
        for name, S, t in (("scores", self.scores, self.task),
                           ("cal_scores", self.cal_scores, self.cal_task)):
            if S is not None:
                _warn_orientation(S, t, name)
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


# ------------------------------------------------------------------ base class
#: The tiers a bound declares (docs/theory.md §11): what it needs and what it guarantees.
#:
#: * ``sample-exact``: reads the evaluated sample (scores, or its own cluster statistics);
#:   holds exactly on that sample;
#: * ``training-time``: reads only statistics that can be stored while a task's data is
#:   there (``clusters``); exact on the sample those statistics came from, so the checker
#:   uses it at tier 1 on a split's own statistics and at tier 3 on the training ones;
#: * ``pac``: reads a held-out calibration sample; bounds the population error with
#:   probability >= 1 - delta (the PAC confidence, not the separation factor delta_t),
#:   simultaneously over all tasks;
#: * ``assumption``: a population bound under a stated distributional assumption (the
#:   Gaussian bound under A.1, §4); reads the assumed model (``mixtures``);
#: * ``prediction``: an estimate under a stated modelling assumption (§9); never reported
#:   as a bound, scored against the realised error.
TIERS: tuple[str, ...] = ("sample-exact", "training-time", "pac", "assumption", "prediction")

#: Tiers whose bounds hold exactly on the sample they read (a violation is a bug).
EXACT_TIERS: tuple[str, ...] = ("sample-exact", "training-time")

#: The :class:`BoundInputs` fields a bound may list in ``reads``.
INPUT_FIELDS: tuple[str, ...] = ("scores", "task", "clusters", "mixtures", "cal_scores",
                                 "cal_task")


class Bound:
    """A retrieval-error bound: metadata plus ``compute`` (see docs/architecture.md).

    A subclass sets ``name`` (unique; letters, digits, ``-``, ``_``, ``.``), ``title``,
    ``section`` (where it is derived), ``tier`` (one of :data:`TIERS`), ``reads`` (the
    :data:`INPUT_FIELDS` it needs), ``assumptions`` (one line each), optionally
    ``at_most`` and ``continuous`` (see below), and implements
    ``_per_task(inputs) -> (per_task (m,), details)``; :func:`bounds.register` checks all
    of these. ``guaranteed`` follows from the tier (:data:`EXACT_TIERS`).
    """

    name: str = ""
    title: str = ""
    tier: str = ""
    assumptions: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    section: str = ""
    #: names of bounds this one never exceeds, per task, on inputs both read (§6.2;
    #: checked by the ``orderings`` property of :mod:`bounds.testing`)
    at_most: tuple[str, ...] = ()
    #: relative accuracy to which the value is a continuous function of the data (checked
    #: under rotations and decimal rescaling); None: it counts, assigns or takes a minimum
    #: over sets that change at ties
    continuous: float | None = None

    @property
    def guaranteed(self) -> bool:
        """True for the tiers that hold exactly on the sample they read."""
        return self.tier in EXACT_TIERS

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


