"""A deliberately wrong plug-in: claims to be sample-exact but returns half the error.

It exists to show that ``python -m bounds.selftest`` catches an unsound bound with a
shrunk counterexample (a few tasks and points); never use it.
"""

from __future__ import annotations

import numpy as np

from bounds import Bound, BoundInputs, empirical_error

__all__ = ["HalfErrorBound"]


class HalfErrorBound(Bound):
    """WRONG: eps_t = error_t / 2 (below the error whenever there is one)."""

    name = "half-error"
    title = "half the empirical error (deliberately wrong)"
    section = "examples/half-error-bound"
    tier = "sample-exact"
    reads = ("scores", "task")
    assumptions = ("none: this bound is wrong on purpose",)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        return empirical_error(inputs.scores, inputs.task)[0] / 2.0, {}
