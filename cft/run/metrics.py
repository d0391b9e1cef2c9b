"""Continual-learning metrics from accuracy matrices (pure numpy, JSON-ready).

Notation: after training step ``i`` (tasks ``0..i`` seen), ``a[i][j]`` is an accuracy on
task ``j``'s test samples, defined for ``j <= i`` only; entries with ``j > i`` are ``None``
(JSON ``null``), never NaN.  ``T`` is the number of steps evaluated so far (rows) and
``n_j`` the number of test samples of task ``j``.

Accuracy matrices (filled per step by the runner):

* retrieval accuracy ``R[i][j]``: fraction of task ``j``'s samples whose retrieved task
  ``argmin_s S[x, s]`` (over tasks ``0..i``) is ``j``;
* class-incremental accuracy ``C[i][j]``: fraction of task ``j``'s samples whose predicted
  global class (LDA head of the *retrieved* task) is the true class;
* task-aware accuracy ``TA[i][j]``: the same with the *true* task's module and head.

Summaries of a matrix ``a`` (``A_i`` is the step accuracy):

* step accuracy ``A_i = sum_{j<=i} n_j a[i][j] / sum_{j<=i} n_j`` -- the accuracy over all
  test samples seen at step ``i`` (equal weights ``n_j = 1`` when no sizes are given);
* average incremental accuracy ``AIA = (1/T) sum_{i<T} A_i`` (Rebuffi et al., 2017);
* last accuracy ``A_{T-1}``;
* forgetting ``F = 1/(T-1) sum_{j<T-1} max_{j<=l<T-1} a[l][j] - a[T-1][j]``
  (Chaudhry et al., 2018), ``None`` when ``T = 1``;
* backward transfer ``BWT = 1/(T-1) sum_{j<T-1} a[T-1][j] - a[j][j]``
  (Lopez-Paz & Ranzato, 2017), ``None`` when ``T = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "average_incremental",
    "backward_transfer",
    "check_matrix",
    "forgetting",
    "last_accuracy",
    "per_task_accuracy",
    "step_accuracy",
    "summarize",
]

Matrix = Sequence[Sequence[float | None]]


def check_matrix(matrix: Matrix, name: str = "matrix") -> np.ndarray:
    """Validate a lower-triangular accuracy matrix; returns ``(T, m)`` float with NaN above.

    Row ``i`` must have a finite value in [0, 1] for every ``j <= i`` and ``None`` (or be
    shorter) for ``j > i``; all rows must have the same length ``m >= T``.
    """
    rows = [list(r) for r in matrix]
    if not rows:
        raise ValueError(f"{name}: empty")
    m = max(len(r) for r in rows)
    t_steps = len(rows)
    if m < t_steps:
        raise ValueError(f"{name}: {t_steps} rows but only {m} columns")
    out = np.full((t_steps, m), np.nan)
    for i, r in enumerate(rows):
        for j in range(m):
            v = r[j] if j < len(r) else None
            if j <= i:
                if v is None or isinstance(v, bool):
                    raise ValueError(f"{name}: entry [{i}][{j}] is missing (j <= i)")
                fv = float(v)
                if not np.isfinite(fv) or fv < 0.0 or fv > 1.0:
                    raise ValueError(f"{name}: entry [{i}][{j}] = {v!r} is not in [0, 1]")
                out[i, j] = fv
            elif v is not None:
                raise ValueError(f"{name}: entry [{i}][{j}] must be None (task {j} not seen "
                                 f"at step {i})")
    return out


def _sizes(sizes: Sequence[float] | None, m: int) -> np.ndarray:
    if sizes is None:
        return np.ones(m)
    s = np.asarray(sizes, dtype=np.float64)
    if s.shape != (m,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sizes: expected {m} positive task sizes, got {sizes!r}")
    return s


def step_accuracy(matrix: Matrix, sizes: Sequence[float] | None = None) -> list[float]:
    """``A_i`` for every step: size-weighted mean of row ``i`` over ``j <= i``."""
    a = check_matrix(matrix)
    w = _sizes(sizes, a.shape[1])
    return [float(np.dot(a[i, : i + 1], w[: i + 1]) / w[: i + 1].sum())
            for i in range(a.shape[0])]


def average_incremental(matrix: Matrix, sizes: Sequence[float] | None = None) -> float:
    """``AIA = mean_i A_i``."""
    return float(np.mean(step_accuracy(matrix, sizes)))


def last_accuracy(matrix: Matrix, sizes: Sequence[float] | None = None) -> float:
    """``A_{T-1}``: accuracy over all tasks seen at the last evaluated step."""
    return step_accuracy(matrix, sizes)[-1]


def forgetting(matrix: Matrix) -> float | None:
    """Average over ``j < T-1`` of ``max_{j<=l<T-1} a[l][j] - a[T-1][j]``; None if T = 1."""
    a = check_matrix(matrix)
    t_steps = a.shape[0]
    if t_steps < 2:
        return None
    drops = [float(np.max(a[j : t_steps - 1, j]) - a[t_steps - 1, j])
             for j in range(t_steps - 1)]
    return float(np.mean(drops))


def backward_transfer(matrix: Matrix) -> float | None:
    """Average over ``j < T-1`` of ``a[T-1][j] - a[j][j]``; None if T = 1."""
    a = check_matrix(matrix)
    t_steps = a.shape[0]
    if t_steps < 2:
        return None
    return float(np.mean([a[t_steps - 1, j] - a[j, j] for j in range(t_steps - 1)]))


def per_task_accuracy(correct: Any, task: Any, n_tasks: int) -> list[float]:
    """Mean of boolean ``correct`` per task ``0..n_tasks-1`` (every task needs samples)."""
    c = np.asarray(correct)
    t = np.asarray(task)
    if c.ndim != 1 or t.shape != c.shape:
        raise ValueError(f"correct: expected a 1-d array matching task {t.shape}, got {c.shape}")
    if not np.issubdtype(t.dtype, np.integer) or (t.size and (t.min() < 0 or t.max() >= n_tasks)):
        raise ValueError(f"task: expected integer task ids in [0, {n_tasks})")
    counts = np.bincount(t, minlength=n_tasks)
    if np.any(counts == 0):
        raise ValueError(f"task: task(s) {np.flatnonzero(counts == 0).tolist()} have no samples")
    hits = np.bincount(t, weights=c.astype(np.float64), minlength=n_tasks)
    return [float(h / n) for h, n in zip(hits, counts)]


def summarize(matrix: Matrix, sizes: Sequence[float] | None = None) -> dict[str, Any]:
    """JSON-ready block: the matrix (``None`` above the diagonal), ``step`` (``A_i``),
    ``average_incremental``, ``last``, ``forgetting``, ``bwt``."""
    a = check_matrix(matrix)
    steps = step_accuracy(matrix, sizes)
    return {
        "matrix": [[None if j > i else float(a[i, j]) for j in range(a.shape[1])]
                   for i in range(a.shape[0])],
        "step": steps,
        "average_incremental": float(np.mean(steps)),
        "last": steps[-1],
        "forgetting": forgetting(matrix),
        "bwt": backward_transfer(matrix),
    }
