"""Empirical retrieval error and margins from a score matrix (docs/theory.md §1).

``S[i, k]`` is how foreign sample ``i`` looks to task ``k`` (**smaller = closer**: a distance
or a negative log-likelihood; negate a similarity before passing it); sample ``i``
belongs to task ``task[i]``. Retrieval picks ``argmin_k S[i, k]``; a sample is misretrieved
when some foreign task scores it *at most* as low as its own task (ties count as errors).
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, as_index_array, fmt_list

__all__ = [
    "check_scores",
    "retrieval_errors",
    "retrieval_margin",
    "empirical_error",
    "task_counts",
]


def check_scores(S: object, task: object, *, name: str = "S",
                 task_name: str = "task") -> tuple[np.ndarray, np.ndarray]:
    """Validate a score matrix (n, m) and its task labels (n,) with ids in [0, m)."""
    S = as_float_array(S, name, ndim=2)
    task = as_index_array(task, task_name, length=S.shape[0], upper=S.shape[1])
    return S, task


def task_counts(task: np.ndarray, m: int, *, name: str = "task") -> np.ndarray:
    """Per-task sample counts; raises if a task has no sample (eps_t would be undefined)."""
    counts = np.bincount(task, minlength=m)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{name}: task(s) {fmt_list(empty)} have no samples; the per-task error "
            "is undefined for an empty task"
        )
    return counts


#: score entries per row block of :func:`_own_and_foreign_min` (512 KiB: cache-resident)
_BLOCK_ELEMS = 1 << 16


def _own_and_foreign_min(S: np.ndarray, task: np.ndarray, *, winner: bool = False
                         ) -> tuple[np.ndarray, ...]:
    """(own score S[i, task[i]], min over foreign tasks of S[i, s]) per sample; m >= 2;
    with ``winner``, also the foreign task of that minimum (``argmin``: ties to the lowest
    index), and the minimum is the score of that task.

    In blocks of rows copied into one reused buffer, the own entry set to +inf: no copy of
    the whole matrix (fresh memory costs more than the minimum, docs/theory.md §14.7); a
    minimum is exact, so the blocks do not change it."""
    n, m = S.shape
    own = S[np.arange(n), task]
    fmin = np.empty(n, dtype=S.dtype)
    win = np.empty(n, dtype=np.intp) if winner else None
    step = max(1, _BLOCK_ELEMS // m)
    buf = np.empty((min(step, n), m), dtype=S.dtype)
    for i0 in range(0, n, step):
        b = buf[: min(step, n - i0)]
        np.copyto(b, S[i0 : i0 + step])
        rows = np.arange(b.shape[0])
        b[rows, task[i0 : i0 + step]] = np.inf
        if win is None:
            b.min(axis=1, out=fmin[i0 : i0 + step])
        else:
            win[i0 : i0 + step] = np.argmin(b, axis=1)
            fmin[i0 : i0 + step] = b[rows, win[i0 : i0 + step]]
    return (own, fmin) if win is None else (own, fmin, win)


def retrieval_margin(S: object, task: object) -> np.ndarray:
    """Per-sample margin ``min_{s != t} S_s - S_t`` (docs/theory.md §1).

    The sample is misretrieved iff the margin is ``<= 0``. With a single task the margin
    is ``+inf`` (nothing to confuse it with).
    """
    S, task = check_scores(S, task)
    if S.shape[1] == 1:
        return np.full(S.shape[0], np.inf)
    own, fmin = _own_and_foreign_min(S, task)
    return fmin - own


def retrieval_errors(S: object, task: object) -> np.ndarray:
    """Boolean error indicator E_t(x) = 1[exists s != t: S_s(x) <= S_t(x)] (§1)."""
    S, task = check_scores(S, task)
    if S.shape[1] == 1:
        return np.zeros(S.shape[0], dtype=bool)
    own, fmin = _own_and_foreign_min(S, task)
    # compare scores directly (not the margin) so the decision is exact in floating point
    return fmin <= own


def empirical_error(
    S: object, task: object, m: int | None = None
) -> tuple[np.ndarray, float]:
    """Per-task empirical error eps_t and overall ``sum_t pi_t eps_t`` with pi_t = n_t / n.

    Orientation: ``S`` holds **distances / costs, lower = closer** (squared centroid
    distance, negative log-likelihood, ``1 - cosine``): retrieval is ``argmin``. A
    similarity matrix (higher = closer: cosine, log-likelihood, logits) must be negated
    first; passed as it is, a good rule reads as a bad one (``empirical_error(-S, task)``
    of a perfect similarity ``S`` is 1.0). ``bounds.BoundInputs`` warns when the own
    task's column is the row *maximum* on most rows.

    ``m`` (optional) must equal the number of score columns; it is a consistency check.
    """
    S, task = check_scores(S, task)
    if m is not None and int(m) != S.shape[1]:
        raise ValueError(f"m: got {m} but the score matrix has {S.shape[1]} task columns")
    m_ = S.shape[1]
    counts = task_counts(task, m_)
    err = retrieval_errors(S, task)
    per_task = np.bincount(task, weights=err.astype(np.float64), minlength=m_) / counts
    overall = float(err.mean())
    return per_task, overall
