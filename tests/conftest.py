"""Shared pytest configuration: hypothesis profiles, and the ``bb`` fixture (the tiny
random BERT backbone with one adapted layer, built once per test module).

``ci`` (default): no deadline (timings on a shared 2-core machine are noisy), a moderate
number of examples, derandomised so a run is reproducible, and no example database (a
``.hypothesis/`` directory left by an earlier run would change what the next run tries).
``dev``: more examples. Hypothesis's local constants are frozen to the ``bounds``
package's (``bounds.testing.determinism``): otherwise the examples depend on which modules
the process imported before a test, i.e. on which tests ran first.
The bounds property tests set no ``max_examples`` of their own: the profile decides.
Select with ``HYPOTHESIS_PROFILE=dev``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from bounds.testing.determinism import freeze_constants

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=200,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
freeze_constants()


@pytest.fixture(scope="module")
def bb():
    """``tiny-bert`` (seed 0, one adapted layer); a module may override it."""
    import cft.model.backbones  # noqa: F401  (registers the backbones)
    from cft.config.registry import BACKBONES

    return BACKBONES.build("tiny-bert", seed=0, adapt_layers=1)
