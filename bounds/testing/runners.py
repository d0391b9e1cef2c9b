"""Property runners: what each tier promises, checked on generated problems (docs/theory.md
§6, §11).

:func:`properties_for` lists the properties a bound must satisfy given its declared tier
and inputs; :func:`run_property` runs one with hypothesis and returns ``None`` or a
:class:`Counterexample` -- the *shrunk*, minimal failing problem and a one-line reason.

* **sample-exact** (``exact-on-sample``, ``exact-on-any-score``): bound >= the empirical
  error of the very sample it reads, per task and overall, within :data:`TOL`;
* **training-time** (``exact-on-train-sample``, ``sketch-never-lowers``): the same on the
  sample the cluster statistics came from, exact or with a top-q covariance sketch, and a
  sketch never lowers the value;
* **pac** (``joint-coverage``): over repeated calibration draws from a finite population
  with exact error rates, the population errors of *all* tasks are covered jointly in at
  least 1 - delta of the draws, up to a binomial margin at level 1e-6; (``pooled-coverage``)
  a bound that reports an overall bound on the pooled calibration sample
  (``details["pooled"]``, docs/theory.md §5.3) covers the pooled population error
  ``sum_t pi_t eps_t`` (pi = the calibration task proportions) in the same sense;
* **assumption** (``population-under-assumption``): on samples of the assumed Gaussian
  mixtures, empirical error <= bound + a Hoeffding slack at delta = 1e-6 (union over
  tasks);
* **prediction** (``never-a-bound``): not guaranteed, never computed by
  ``bounds.evaluate`` unless named, deterministic, and scored against the realised error;
* every tier: values finite and in [0, 1]; declared orderings (``Bound.at_most``) hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Verbosity, given, seed, settings
from hypothesis import strategies as st

from ..base import Bound, BoundInputs, BoundResult
from ..cluster_fit import cluster_stats
from . import strategies as S
from .determinism import fixed_constants

__all__ = ["TOL", "Property", "Counterexample", "PropertyFailure", "properties_for",
           "run_property", "check_bound"]

#: Absolute tolerance of the exactness properties (values are probabilities in [0, 1]).
TOL = 1e-9

#: delta of the Hoeffding slack in the assumption-tier property (union over tasks).
ASSUMPTION_DELTA = 1e-6


class PropertyFailure(AssertionError):
    """A property does not hold on one example; the message is one line."""


@dataclass(frozen=True)
class Property:
    """One property: applies to ``tiers``, draws examples from ``strategy`` and raises
    :class:`PropertyFailure` in ``check(bound, example)``. ``cost``: the fraction of the
    requested number of examples it runs (an example of ``joint-coverage`` is 200
    calibration draws)."""

    name: str
    tiers: tuple[str, ...]
    strategy: Callable[[], st.SearchStrategy[Any]]
    check: Callable[[Bound, Any], None]
    applies: Callable[[Bound], bool] = lambda b: True
    cost: float = 1.0
    doc: str = ""

    def examples(self, n: int) -> int:
        return max(1, math.ceil(n * self.cost)) if n > 0 else 0


@dataclass
class Counterexample:
    """The minimal failing example of one property for one bound."""

    bound: str
    tier: str
    prop: str
    message: str
    example: str

    def render(self) -> str:
        ex = "\n".join("    " + line for line in self.example.splitlines())
        return (f"FAIL {self.bound} [{self.tier}] {self.prop}: {self.message}\n"
                f"  minimal counterexample:\n{ex}")


# ------------------------------------------------------------------ helpers
def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _describe(x: Any) -> str:
    if hasattr(x, "describe"):
        return str(x.describe())
    if hasattr(x, "weights") and hasattr(x, "covariances"):  # GaussianMixtures
        f = S._fmt
        return (f"Gaussian mixtures: {x.n_tasks} tasks, {x.n_components} components, "
                f"dimension {x.dim}\n  weights = {f(x.weights)}\n  means = {f(x.means)}\n"
                f"  covariances = {f(x.covariances)}")
    return repr(x)


def _compute(bound: Bound, inputs: BoundInputs) -> BoundResult:
    """``bound.compute``; any exception on a valid problem is a failure of the bound."""
    try:
        res = bound.compute(inputs)
    except Exception as exc:
        raise PropertyFailure(f"compute raised {type(exc).__name__}: {_one_line(exc)}"
                              ) from None
    m_ = inputs.n_tasks
    per = np.asarray(res.per_task, dtype=np.float64)
    if per.shape != (m_,):
        raise PropertyFailure(f"per_task has shape {per.shape}, expected ({m_},)")
    if not (np.all(np.isfinite(per)) and np.all((per >= 0) & (per <= 1))):
        raise PropertyFailure(f"per_task {per.tolist()} is not finite in [0, 1]")
    if not (math.isfinite(res.overall) and 0.0 <= res.overall <= 1.0):
        raise PropertyFailure(f"overall {res.overall!r} is not finite in [0, 1]")
    return res


def _dominates(res: BoundResult, err: np.ndarray, n_t: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(res.per_task < err - TOL)
    if bad.size:
        t = int(bad[0])
        raise PropertyFailure(f"task {t}: bound {res.per_task[t]:.17g} < {what} "
                              f"{err[t]:.17g} (tolerance {TOL:g})")
    overall = float(n_t @ err) / float(n_t.sum())
    if res.overall < overall - TOL:
        raise PropertyFailure(f"overall: bound {res.overall:.17g} < {what} {overall:.17g} "
                              f"(tolerance {TOL:g})")


def _sample_inputs(bound: Bound, p: S.RetrievalProblem) -> BoundInputs:
    kw: dict[str, Any] = {"scores": p.scores(), "task": p.task}
    if "clusters" in bound.reads:
        kw["clusters"] = p.clusters()
    return BoundInputs(**kw)


# ------------------------------------------------------------------ checks
def _exact_on_sample(bound: Bound, p: S.RetrievalProblem) -> None:
    res = _compute(bound, _sample_inputs(bound, p))
    _dominates(res, p.errors(), np.bincount(p.task, minlength=p.m), "empirical error")


def _exact_on_any_score(bound: Bound, p: S.ScoreProblem) -> None:
    res = _compute(bound, p.inputs())
    _dominates(res, p.errors(), np.bincount(p.task, minlength=p.m), "empirical error")


def _exact_on_train(bound: Bound, ex: tuple[S.RetrievalProblem, int | None]) -> None:
    p, q = ex
    res = _compute(bound, BoundInputs(clusters=p.clusters(q)))
    _dominates(res, p.errors(), np.bincount(p.task, minlength=p.m),
               "error on the train sample" + ("" if q is None else f" (sketch rank {q})"))


def _sketch_never_lowers(bound: Bound, ex: tuple[S.RetrievalProblem, int]) -> None:
    p, q = ex
    exact = _compute(bound, BoundInputs(clusters=p.clusters())).per_task
    sk = _compute(bound, BoundInputs(clusters=p.clusters(q))).per_task
    bad = np.flatnonzero(sk < exact - 1e-7)
    if bad.size:
        t = int(bad[0])
        raise PropertyFailure(f"task {t}: sketch rank {q} gives {sk[t]:.17g} < the exact "
                              f"statistics' {exact[t]:.17g}")


def _orderings(bound: Bound, p: S.RetrievalProblem) -> None:
    from ..registry import REGISTRY

    inp = BoundInputs(scores=p.scores(), task=p.task, clusters=p.clusters())
    mine = _compute(bound, inp).per_task
    for other in bound.at_most:
        if other not in REGISTRY:
            raise PropertyFailure(f"declares at_most {other!r}, which is not registered")
        theirs = _compute(REGISTRY[other], inp).per_task
        bad = np.flatnonzero(mine > theirs + TOL)
        if bad.size:
            t = int(bad[0])
            raise PropertyFailure(f"task {t}: {mine[t]:.17g} > {other} {theirs[t]:.17g}, "
                                  f"but {bound.name} declares at_most {other!r}")


def _joint_coverage(bound: Bound, pop: S.PACPopulation) -> None:
    from scipy import stats as sps

    exceed = 0
    for inp in pop.draws():
        res = _compute(bound, inp)
        exceed += bool(np.any(pop.error > res.per_task + TOL))  # jointly over the tasks
    limit = int(sps.binom.ppf(1 - 1e-6, pop.repeats, pop.delta))
    if exceed > limit:
        raise PropertyFailure(f"population error above the bound (some task) in {exceed} of "
                              f"{pop.repeats} calibration draws; at delta = {pop.delta:g} at "
                              f"most {limit} are allowed (binomial margin at level 1e-6)")


def _pooled_coverage(bound: Bound, pop: S.PACPopulation) -> None:
    from scipy import stats as sps

    exceed = 0
    for i, inp in enumerate(pop.draws()):
        res = _compute(bound, inp)
        if "pooled" not in res.details:
            if i == 0:
                return  # no pooled overall bound: nothing to cover
            raise PropertyFailure("details['pooled'] is reported for some draws only")
        pooled = float(res.details["pooled"])
        if not (math.isfinite(pooled) and 0.0 <= pooled <= 1.0):
            raise PropertyFailure(f"details['pooled'] {pooled!r} is not finite in [0, 1]")
        n_t = np.bincount(inp.cal_task, minlength=pop.m).astype(np.float64)
        exceed += bool(float(n_t @ pop.error) / float(n_t.sum()) > pooled + TOL)
    limit = int(sps.binom.ppf(1 - 1e-6, pop.repeats, pop.delta))
    if exceed > limit:
        raise PropertyFailure(f"pooled population error above the pooled bound in {exceed} of "
                              f"{pop.repeats} calibration draws; at delta = {pop.delta:g} at "
                              f"most {limit} are allowed (binomial margin at level 1e-6)")


def _mixture_inputs(bound: Bound, mix: Any, Z: np.ndarray, y: np.ndarray) -> BoundInputs:
    """Every input a bound may read, from a sample (Z, y) of the mixtures ``mix``."""
    kw: dict[str, Any] = {"mixtures": mix}
    scores = mix.nll(Z)
    if {"scores", "task"} & set(bound.reads):
        kw.update(scores=scores, task=y)
    if {"cal_scores", "cal_task"} & set(bound.reads):
        kw.update(cal_scores=scores, cal_task=y)
    if "clusters" in bound.reads:
        cents = mix.means.reshape(-1, mix.dim)
        kw["clusters"] = cluster_stats(Z, y, cents, np.repeat(np.arange(mix.n_tasks),
                                                               mix.n_components))
    return BoundInputs(**kw)


def _under_assumption(bound: Bound, ex: tuple[Any, int]) -> None:
    from ..empirical import empirical_error

    mix, sd = ex
    n = 400
    Z, y = mix.sample(n, np.random.default_rng(sd))
    res = _compute(bound, _mixture_inputs(bound, mix, Z, y))
    emp = empirical_error(mix.nll(Z), y)[0]
    slack = math.sqrt(math.log(mix.n_tasks / ASSUMPTION_DELTA) / (2 * n))
    bad = np.flatnonzero(emp > res.per_task + slack)
    if bad.size:
        t = int(bad[0])
        raise PropertyFailure(f"task {t}: error {emp[t]:.6g} of {n} draws from the assumed "
                              f"law > bound {res.per_task[t]:.6g} + Hoeffding slack "
                              f"{slack:.4g} (delta {ASSUMPTION_DELTA:g}, union over tasks)")


def _never_a_bound(bound: Bound, ex: tuple[Any, int]) -> None:
    from ..empirical import empirical_error
    from ..registry import evaluate

    mix, sd = ex
    Z, y = mix.sample(200, np.random.default_rng(sd))
    inp = _mixture_inputs(bound, mix, Z, y)
    if bound.guaranteed:
        raise PropertyFailure("a prediction is reported as guaranteed")
    if bound.name in evaluate(inp):
        raise PropertyFailure("bounds.evaluate reports the prediction among the bounds")
    one = _compute(bound, inp)
    two = _compute(bound, _mixture_inputs(bound, mix, Z, y))
    if not np.array_equal(one.per_task, two.per_task):
        raise PropertyFailure("not deterministic: two computations on the same inputs differ")
    realised = empirical_error(mix.nll(Z), y)[0]
    if not np.all(np.isfinite(np.abs(one.per_task - realised))):  # the score it is given
        raise PropertyFailure("absolute error against the realised error is not finite")


# ------------------------------------------------------------------ the properties
def _reads_only(*names: str) -> Callable[[Bound], bool]:
    return lambda b: set(b.reads) <= set(names)


PROPERTIES: tuple[Property, ...] = (
    Property("exact-on-sample", ("sample-exact",), lambda: S.retrieval_problems(),
             _exact_on_sample, doc="bound >= empirical error of the nearest-centroid sample"),
    Property("exact-on-any-score", ("sample-exact",), lambda: S.score_matrices(),
             _exact_on_any_score, _reads_only("scores", "task"),
             doc="bound >= empirical error of any score matrix (ties count as errors)"),
    Property("exact-on-train-sample", ("training-time",),
             lambda: st.tuples(S.retrieval_problems(),
                               st.one_of(st.none(), st.integers(1, 3))),
             _exact_on_train, doc="bound >= error on the sample the statistics came from"),
    Property("sketch-never-lowers", ("training-time",),
             lambda: st.tuples(S.retrieval_problems(max_tasks=4, max_dim=8),
                               st.integers(1, 3)),
             _sketch_never_lowers, cost=0.5,
             doc="a top-q covariance sketch never lowers the bound (1e-7)"),
    Property("orderings", ("sample-exact", "training-time"), lambda: S.retrieval_problems(),
             _orderings, lambda b: bool(b.at_most), cost=0.5,
             doc="bound <= every bound it declares in at_most"),
    Property("joint-coverage", ("pac",), lambda: S.pac_populations(), _joint_coverage,
             cost=0.05, doc="population errors covered jointly in >= 1 - delta of draws"),
    Property("pooled-coverage", ("pac",), lambda: S.pac_populations(), _pooled_coverage,
             cost=0.05, doc="a pooled overall bound covers the pooled population error in "
                            ">= 1 - delta of draws"),
    Property("population-under-assumption", ("assumption",),
             lambda: st.tuples(S.gaussian_mixtures(), st.integers(0, 2**32 - 1)),
             _under_assumption, lambda b: "mixtures" in b.reads, cost=0.15,
             doc="error of samples of the assumed law <= bound + Hoeffding slack"),
    Property("never-a-bound", ("prediction",),
             lambda: st.tuples(S.gaussian_mixtures(), st.integers(0, 2**32 - 1)),
             _never_a_bound, cost=0.25,
             doc="not guaranteed, not evaluated as a bound, deterministic, scored"),
)


def as_bound(bound: Any) -> Bound:
    """``bound`` as an instance: a :class:`Bound` instance as it is, a subclass
    instantiated without arguments (as ``bounds.register`` accepts both). Anything else, a
    class that cannot be instantiated or a malformed declaration: a one-line
    ``ValueError`` (a usage error is never reported as a counterexample)."""
    if isinstance(bound, type) and issubclass(bound, Bound):
        try:
            return bound()
        except Exception as exc:  # the user's constructor: one line, never a counterexample
            msg = " ".join(str(exc).split())
            raise ValueError(f"check_bound: {bound.__name__} cannot be instantiated without "
                             f"arguments ({type(exc).__name__}: {msg}); pass an instance"
                             ) from None
    if not isinstance(bound, Bound):
        raise ValueError(f"check_bound: {type(bound).__name__} {bound!r:.60} is not a "
                         "bounds.Bound instance or subclass")
    return bound


def properties_for(bound: Bound | type[Bound]) -> list[Property]:
    """The properties ``bound`` (an instance or a subclass) must satisfy, from its
    declared tier and inputs."""
    bound = as_bound(bound)
    return [p for p in PROPERTIES if bound.tier in p.tiers and p.applies(bound)]


def run_property(prop: Property, bound: Bound, *, examples: int = 50, seed_: int = 0,
                 strategy: st.SearchStrategy[Any] | None = None) -> Counterexample | None:
    """Run ``prop`` on ``prop.examples(examples)`` generated examples (hypothesis, random
    seed ``seed_``, no example database); the shrunk counterexample or None.
    ``strategy`` replaces the property's own (e.g. smaller problems, for a fast test).
    ``bound``: an instance or a subclass (:func:`as_bound`)."""
    bound = as_bound(bound)
    last: dict[str, Any] = {}

    @settings(max_examples=prop.examples(examples), deadline=None, database=None,
              derandomize=False, verbosity=Verbosity.quiet, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @seed(seed_)
    @given(prop.strategy() if strategy is None else strategy)
    def run(example: Any) -> None:
        import re
        import warnings

        from ..base import ORIENTATION_WARNING

        try:
            with warnings.catch_warnings():  # generated scores are any matrix: no advice
                warnings.filterwarnings("ignore", message=f".*{re.escape(ORIENTATION_WARNING)}")
                prop.check(bound, example)
        except PropertyFailure as exc:
            last["message"], last["example"] = str(exc), example
            raise

    try:
        with fixed_constants():  # the same examples whatever the process imported before
            run()
    except PropertyFailure:
        ex = last["example"]
        parts = ex if isinstance(ex, tuple) else (ex,)
        desc = _describe(parts[0]) + "".join(f"\n  with {x!r}" for x in parts[1:])
        return Counterexample(bound.name, bound.tier, prop.name, last["message"], desc)
    return None


def check_bound(bound: Bound | type[Bound], *, examples: int = 50, seed_: int = 0
                ) -> list[tuple[Property, Counterexample | None]]:
    """Every property of :func:`properties_for` on ``bound``: a :class:`Bound` instance
    or subclass (as ``bounds.register`` accepts); anything else is refused with a one-line
    ``ValueError`` before any property runs (:func:`as_bound`)."""
    bound = as_bound(bound)
    return [(p, run_property(p, bound, examples=examples, seed_=seed_))
            for p in properties_for(bound)]
