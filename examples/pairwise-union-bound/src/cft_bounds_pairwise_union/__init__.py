"""Example plug-in: the pairwise union bound (a correct sample-exact bound).

A point x of task t is misretrieved when some foreign score is at most its own one, the
event ``U_{s != t} {S_s(x) <= S_t(x)}``; the union bound over foreign tasks gives, on the
empirical measure of the evaluated scores,

    eps_t <= min(1, sum_{s != t} P_t(S_s <= S_t))

(cft-bounds docs/theory.md §1 for the error event; the threshold lemma of §2.1 is a
sharper relative). Installed with ``pip install -e examples/pairwise-union-bound``, it
appears in ``python -m bounds.check`` and ``python -m bounds.selftest``.
"""

from __future__ import annotations

import numpy as np

from bounds import Bound, BoundInputs

__all__ = ["PairwiseUnionBound"]


class PairwiseUnionBound(Bound):
    """eps_t <= min(1, sum_{s != t} P_t(S_s <= S_t)) on the evaluated scores."""

    name = "pairwise-union"
    title = "union of pairwise errors"
    section = "examples/pairwise-union-bound (union bound over foreign tasks)"
    tier = "sample-exact"
    reads = ("scores", "task")
    assumptions = (
        "any score; retrieval = argmin of the scores, ties count as errors",
        "P is the empirical distribution of the evaluation scores",
    )

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        S, task = inputs.scores, inputs.task
        n, m = S.shape
        rows = np.arange(n)
        beaten = S <= S[rows, task][:, None]  # S_s(x) <= S_t(x), tie = error
        beaten[rows, task] = False  # the own score is no competitor
        n_t = np.bincount(task, minlength=m).astype(np.float64)
        pair = np.zeros((m, m))
        np.add.at(pair, task, beaten.astype(np.float64))  # pair[t, s]: count in task t
        per = np.minimum(1.0, pair.sum(axis=1) / np.maximum(n_t, 1.0))
        return per, {"pairwise": pair / np.maximum(n_t, 1.0)[:, None]}
