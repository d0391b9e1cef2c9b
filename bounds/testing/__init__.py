"""Public test kit for bounds: hypothesis strategies and per-tier property runners
(docs/theory.md §6, §11; README "Adding a bound").

Needs ``hypothesis`` (``pip install cft-bounds[testing]``). Typical use in a plug-in's
own tests::

    from bounds.testing import check_bound
    for prop, cex in check_bound(MyBound(), examples=100):
        assert cex is None, cex.render()

or from the command line: ``python -m bounds.selftest --bound my-bound``.
"""

from .runners import (
    PROPERTIES,
    TOL,
    Counterexample,
    Property,
    PropertyFailure,
    check_bound,
    properties_for,
    run_property,
)
from .strategies import (
    DEFAULT_SCALES,
    PACPopulation,
    RetrievalProblem,
    ScoreProblem,
    gaussian_mixtures,
    pac_populations,
    retrieval_problems,
    scales,
    score_matrices,
)

__all__ = [
    "DEFAULT_SCALES",
    "PROPERTIES",
    "TOL",
    "Counterexample",
    "PACPopulation",
    "Property",
    "PropertyFailure",
    "RetrievalProblem",
    "ScoreProblem",
    "check_bound",
    "gaussian_mixtures",
    "pac_populations",
    "properties_for",
    "retrieval_problems",
    "run_property",
    "scales",
    "score_matrices",
]
