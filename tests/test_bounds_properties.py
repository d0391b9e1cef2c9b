"""The tier properties of ``bounds.testing`` on *every registered bound* (docs/theory.md §6,
§11; issue 13).

The cases are read from ``bounds.REGISTRY`` and each bound's declared tier, so a newly
registered bound is checked without anyone writing a test; no bound name appears here.
The mutation tests show that each runner can fail: a bound changed in one constant (half
the error, a Markov factor 4 -> 1, a PAC bound without the union over tasks, a Gaussian
bound without the union over foreign tasks) is caught with a shrunk counterexample.

Examples per property: the hypothesis profile's ``max_examples`` (tests/conftest.py:
``ci`` 200, ``dev`` 400) times the property's cost factor.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import bounds
from bounds.testing import PROPERTIES, properties_for, retrieval_problems, run_property

CASES = [(name, prop.name) for name, b in bounds.REGISTRY.items()
         for prop in properties_for(b)]
BY_NAME = {p.name: p for p in PROPERTIES}


def _examples() -> int:
    return int(settings.default.max_examples)


@pytest.mark.parametrize(("name", "prop"), CASES)
def test_registered_bound_satisfies_its_tier(name: str, prop: str) -> None:
    b = bounds.REGISTRY[name]
    cex = run_property(BY_NAME[prop], b, examples=_examples(), seed_=0)
    assert cex is None, cex.render()


@pytest.mark.parametrize("name", list(bounds.REGISTRY))
def test_every_registered_bound_is_covered(name: str) -> None:
    """Each bound gets the exactness (or coverage) property of its tier, plus orderings
    for each bound it declares to be at most."""
    b = bounds.REGISTRY[name]
    got = {p.name for p in properties_for(b)}
    main = {"sample-exact": "exact-on-sample", "training-time": "exact-on-train-sample",
            "pac": "joint-coverage", "assumption": "population-under-assumption",
            "prediction": "never-a-bound"}[b.tier]
    assert main in got
    assert ("orderings" in got) == bool(b.at_most)
    for other in b.at_most:
        assert other in bounds.REGISTRY, (name, other)


# ------------------------------------------------------------------ mutations are caught
class _HalfError(bounds.Bound):
    name, title, section = "mut-half-error", "half the error (wrong)", "tests"
    tier, reads, assumptions = "sample-exact", ("scores", "task"), ("wrong on purpose",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        return bounds.empirical_error(inputs.scores, inputs.task)[0] / 2.0, {}


class _MarkovFactorOne(bounds.Bound):
    """Bound B with min(1, s^2 / D^2) instead of min(1, 4 s^2 / D^2) (§3.3)."""

    name, title, section = "mut-markov-1", "Markov with factor 1 (wrong)", "tests"
    tier, reads, assumptions = "training-time", ("clusters",), ("wrong on purpose",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        cs = inputs.clusters
        Dc2 = inputs.cluster_geometry()["Dc2"]
        with np.errstate(divide="ignore", invalid="ignore"):
            eps = np.where(Dc2 > 0, np.minimum(1.0, cs.msr / Dc2), 1.0)
        return np.bincount(cs.task, weights=cs.weight * eps, minlength=cs.n_tasks), {}


class _HoeffdingNoUnion(bounds.Bound):
    """Hoeffding at level delta per task instead of delta / m (§5.1)."""

    name, title, section = "mut-hoeffding-no-union", "Hoeffding, no union (wrong)", "tests"
    tier, reads, assumptions = "pac", ("cal_scores", "cal_task"), ("wrong on purpose",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        err = inputs.cal_errors().astype(np.float64)
        m_ = inputs.n_tasks
        n_t = np.bincount(inputs.cal_task, minlength=m_)
        k_t = np.bincount(inputs.cal_task, weights=err, minlength=m_)
        return k_t / n_t + np.sqrt(np.log(1.0 / inputs.delta) / (2 * n_t)), {}


class _ChernoffTenth(bounds.Bound):
    """A tenth of the Gaussian Chernoff bound (§4): below the error of overlapping tasks."""

    name, title, section = "mut-chernoff-tenth", "Chernoff / 10 (wrong)", "tests"
    tier, reads, assumptions = "assumption", ("mixtures",), ("wrong on purpose",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        pw = bounds.pairwise_chernoff(inputs.mixtures)["pairwise"]
        return np.minimum(1.0, pw.sum(axis=1)) / 10.0, {}


class _NoisyPrediction(bounds.Bound):
    """A prediction that draws a fresh random number each call (not reproducible)."""

    name, title, section = "mut-noisy-prediction", "random guess (wrong)", "tests"
    tier, reads, assumptions = "prediction", ("mixtures",), ("wrong on purpose",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        return np.random.default_rng().uniform(size=inputs.n_tasks), {}


class _ChernoffAsPrediction(bounds.Bound):
    """The Chernoff value offered as a prediction: deterministic, never a bound."""

    name, title, section = "test-chernoff-prediction", "Chernoff as a prediction", "tests"
    tier, reads, assumptions = "prediction", ("mixtures",), ("Assumption A.1",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        return np.minimum(1.0, bounds.pairwise_chernoff(inputs.mixtures)["pairwise"].sum(1)), {}


def test_prediction_tier_property_passes_and_fails() -> None:
    prop = BY_NAME["never-a-bound"]
    assert run_property(prop, _ChernoffAsPrediction(), examples=20) is None
    cex = run_property(prop, _NoisyPrediction(), examples=20)
    assert cex is not None
    assert cex.message == "not deterministic: two computations on the same inputs differ"
    assert cex.example.startswith("Gaussian mixtures: 2 tasks, 1 components, dimension 1")


#: small problems for the training-time mutation: shrinking cluster statistics of up to
#: 8 tasks in 64 dimensions takes a minute, and the point here is the detection
_SMALL = st.tuples(retrieval_problems(max_tasks=3, max_points=4, max_dim=4), st.none())


@pytest.mark.parametrize(("bound", "prop", "max_tasks", "max_points", "strategy"), [
    (_HalfError(), "exact-on-sample", 2, 2, None),
    (_HalfError(), "exact-on-any-score", 2, 2, None),
    (_MarkovFactorOne(), "exact-on-train-sample", 2, 3, _SMALL),
    (_HoeffdingNoUnion(), "joint-coverage", 20, None, None),
    (_ChernoffTenth(), "population-under-assumption", 4, None, None),
])
def test_wrong_bounds_are_caught_with_a_shrunk_counterexample(
        bound: bounds.Bound, prop: str, max_tasks: int, max_points: int | None,
        strategy: st.SearchStrategy | None) -> None:
    bounds.validate_bound(bound)  # well formed: only its values are wrong
    # One seed, no retry: the search is seeded and its constants are fixed
    # (bounds.testing.determinism), so it finds the same counterexample alone and inside
    # the suite; tests/test_bounds_properties.py::test_search_ignores_imports checks that.
    cex = run_property(BY_NAME[prop], bound, examples=60, seed_=0, strategy=strategy)
    assert cex is not None, (bound.name, prop)
    assert cex.bound == bound.name and cex.prop == prop
    first = cex.example.splitlines()[0]
    m_ = int(first.split(" tasks")[0].split()[-1])
    assert 2 <= m_ <= max_tasks, cex.render()
    if max_points is not None:
        n = int(first.split(" tasks, ")[1].split()[0])
        assert n <= max_points, cex.render()
    assert "\n" not in cex.message


@pytest.mark.exact_output
def test_half_error_counterexample_is_the_minimal_tie() -> None:
    """The shrunk counterexample is pinned: two tasks, one point each, every score equal
    (a tie is an error, §1): error 1 on task 0, the wrong bound 0.5."""
    cex = run_property(BY_NAME["exact-on-any-score"], _HalfError(), examples=50, seed_=3)
    assert cex is not None
    assert cex.message == "task 0: bound 0.5 < empirical error 1 (tolerance 1e-09)"
    assert cex.example == ("2 tasks, 2 score rows\n  S = [[0., 0.], [0., 0.]]\n"
                           "  task = [0, 1]")


def test_search_ignores_imports() -> None:
    """The seeded search for the Markov mutant finds the same shrunk counterexample in a
    fresh process that imports nothing else and here, after the suite's imports (cft,
    torch, ...): what hypothesis generates no longer depends on the process."""
    import subprocess
    import sys
    from pathlib import Path

    import cft.run.runner  # noqa: F401  (many more local modules loaded in this process)

    here = run_property(BY_NAME["exact-on-train-sample"], _MarkovFactorOne(), examples=60,
                        seed_=0, strategy=_SMALL)
    code = ("import sys; sys.path.insert(0, 'tests'); import test_bounds_properties as T; "
            "c = T.run_property(T.BY_NAME['exact-on-train-sample'], T._MarkovFactorOne(), "
            "examples=60, seed_=0, strategy=T._SMALL); print(repr(None if c is None else "
            "(c.message, c.example)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert here is not None
    assert out.strip() == repr((here.message, here.example))
