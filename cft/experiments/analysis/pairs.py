"""Where a retrieval rule breaks: its errors between each pair of tasks, against whether the
two tasks come from one source (genre) and against a distance between their shared-space
distributions (docs/theory.md §13).

For a rule's score file at one step, ``confusion[t, s]`` is the fraction of task ``t``'s
samples retrieved as task ``s``; the pair error ``pair_error[t, s] = confusion[t, s] +
confusion[s, t]`` (``t != s``) counts both directions. The distance is the Bhattacharyya
distance between diagonal Gaussians fitted to the two tasks' frozen representations
``f(x)`` of the *calibration* split (held out; never the test split the errors are read
from):

    D_B = 1/8 (mu_t - mu_s)' S^-1 (mu_t - mu_s) + 1/2 ln(det S / sqrt(det S_t det S_s)),
    S = (S_t + S_s) / 2,

a lower bound on the Bayes error of telling the two apart being ``exp(-D_B) / 2`` for
equal priors: a small distance predicts pair errors for any rule on ``f(x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .run import Run

__all__ = ["bhattacharyya_diag", "pair_table", "task_sources"]


def bhattacharyya_diag(Z1: np.ndarray, Z2: np.ndarray, floor: float = 1e-6) -> float:  # noqa: N803
    """Bhattacharyya distance between diagonal Gaussians fitted to ``Z1`` and ``Z2``
    (variances floored at ``floor`` times the mean variance)."""
    m1, m2 = Z1.mean(0), Z2.mean(0)
    v1, v2 = Z1.var(0), Z2.var(0)
    eps = floor * max(float(np.mean(np.concatenate([v1, v2]))), 1e-300)
    v1, v2 = v1 + eps, v2 + eps
    v = (v1 + v2) / 2
    return float(np.sum((m1 - m2) ** 2 / v) / 8
                 + 0.5 * np.sum(np.log(v) - 0.5 * (np.log(v1) + np.log(v2))))


def _score_files(run: Run, step: int, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every retrieval score file of a step's split: the schema's ``{mode}-{kind}.npz`` and
    a learned rule's (same keys, outside the checked schema), as (scores, task)."""
    from bounds import rundir_schema as L

    out = {}
    for f in sorted((L.step_dir(run.path, step) / split).glob("*-*.npz")):
        with np.load(f, allow_pickle=False) as z:
            if "scores" in z.files and "task" in z.files:
                out[f.stem] = (np.asarray(z["scores"]), np.asarray(z["task"]))
    return out


def task_sources(run: Run) -> list[str]:
    """The source (genre) of each task from ``tasks.json`` (``tasks[i].source``), else the
    stream's name for every task (one genre)."""
    entries = {int(e["id"]): e for e in run.tasks_meta.get("tasks", [])}
    default = str(run.config.get("data", {}).get("name", "?"))
    return [str(entries.get(t, {}).get("source", default)) for t in range(run.n_tasks)]


def pair_table(run: Run, step: int | None = None, split: str = "test",
               rules: tuple[tuple[str, str], ...] | None = None) -> dict[str, Any]:
    """Pair errors of every rule at ``step`` (default: the last), with the pairs' sources
    and shared-space distances.

    Returns ``tasks`` (m,), ``sources`` (m,), ``same_source`` (m, m) bool, ``distance``
    (m, m) (calibration split, diagonal Bhattacharyya), and per rule ``"mode-kind"``:
    ``confusion`` (m, m), ``pair_error`` (m, m, 0 on the diagonal), ``error`` (overall);
    ``pairs``: one row per unordered pair ``(t, s, same_source, distance, {rule: error})``.
    """
    step = run.steps[-1] if step is None else step
    m = step + 1
    files = _score_files(run, step, split)
    if rules is None:
        rules = tuple(tuple(name.split("-", 1)) for name in files)  # type: ignore[misc]
    sources = task_sources(run)[:m]
    same = np.array([[a == b for b in sources] for a in sources])
    Z = list(run._step_reps(step, "calibration"))  # converted once each, not per pair
    dist = np.zeros((m, m))
    for t in range(m):
        for s in range(t + 1, m):
            dist[t, s] = dist[s, t] = bhattacharyya_diag(Z[t], Z[s])
    out: dict[str, Any] = {"step": step, "tasks": list(range(m)), "sources": sources,
                           "same_source": same, "distance": dist, "rules": {}}
    for mode, kind in rules:
        if f"{mode}-{kind}" not in files:
            raise ValueError(f"rules: no {split}/{mode}-{kind}.npz at step {step} (have "
                             f"{', '.join(files)})")
        S, task = files[f"{mode}-{kind}"]
        got = np.argmin(S, axis=1)
        conf = np.zeros((m, m))
        for t in range(m):
            rows = task == t
            conf[t] = np.bincount(got[rows], minlength=m)[:m] / max(1, int(rows.sum()))
        pair = conf + conf.T
        np.fill_diagonal(pair, 0.0)
        out["rules"][f"{mode}-{kind}"] = {"confusion": conf, "pair_error": pair,
                                          "error": float(np.mean(got != task))}
    out["pairs"] = [(t, s, bool(same[t, s]), float(dist[t, s]),
                     {r: float(v["pair_error"][t, s]) for r, v in out["rules"].items()})
                    for t in range(m) for s in range(t + 1, m)]
    return out
