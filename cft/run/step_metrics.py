"""Metrics of an evaluation step from the per-step accuracy rows (``metrics.json``), and the
summary line; shared by every method (docs/run-dir.md).

A row (one per step ``i``) holds the per-task accuracies ``[a_ij for j <= i]``:

* ``"retrieval"``: ``{mode: {kind: [...]}}`` for every retrieval mode the method has
  (``adapted``, ``shared``, and the learned rule ``eval.rule``, e.g. ``keys``); empty when
  the method has no task retrieval;
* ``"class_incremental"``: the same modes, or ``{"merged": [...]}`` (no kind) for a method
  whose one merged module and continual head classify every class;
* ``"task_aware"``: ``[...]``.

A method with no retrieval gets ``"retrieval": "n/a"`` in ``metrics.json`` and in its
``summary`` (never a number), and ``summary["merged"]`` with its class-incremental metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bounds.rundir_schema import NOT_APPLICABLE  # the marker of "no task retrieval"
from cft.run import metrics as M

__all__ = ["NOT_APPLICABLE", "build_metrics", "row_from_metrics", "summary_text"]



def build_metrics(rows: list[dict[str, Any]], sizes: list[int], n_tasks: int,
                  kind: str | None, kinds: list[str]) -> dict[str, Any]:
    """Metrics after step ``len(rows) - 1``; ``sizes[j]`` = test samples of task ``j``
    (weights of the step accuracy, :func:`cft.run.metrics.step_accuracy`); ``kind`` = the
    summary score kind of the parameter-free modes (None without retrieval)."""
    k = len(rows) - 1
    last = rows[-1]

    def matrix(get: Callable[[dict[str, Any]], list[float]]) -> list[list[float | None]]:
        return [list(get(r)) + [None] * (n_tasks - i - 1) for i, r in enumerate(rows)]

    w = [float(s) for s in sizes] + [1.0] * (n_tasks - len(sizes))

    def block(path: tuple[str, ...]) -> dict[str, Any]:
        def get(r: dict[str, Any]) -> Any:
            for p in path:
                r = r[p]
            return r

        return M.summarize(matrix(get), w)

    out: dict[str, Any] = {
        "schema_version": 1, "step": k, "n_tasks": n_tasks, "tasks_seen": k + 1,
        "split": "test", "kind": kind, "kinds": list(kinds), "test_sizes": list(sizes),
    }
    modes = list(last["retrieval"])
    out["retrieval"] = {mode: {kd: block(("retrieval", mode, kd)) for kd in last["retrieval"][mode]}
                        for mode in modes} if modes else NOT_APPLICABLE
    out["class_incremental"] = {
        mode: ({kd: block(("class_incremental", mode, kd)) for kd in v} if isinstance(v, dict)
               else block(("class_incremental", mode)))
        for mode, v in last["class_incremental"].items()}
    out["task_aware"] = block(("task_aware",))
    summary: dict[str, Any] = {}
    for mode in modes:
        kd = kind if kind in last["retrieval"][mode] else next(iter(last["retrieval"][mode]))
        ret = out["retrieval"][mode][kd]
        ci = out["class_incremental"][mode][kd]
        summary[mode] = {
            "retrieval_last": ret["last"], "retrieval_aia": ret["average_incremental"],
            "retrieval_forgetting": ret["forgetting"],
            "ci_last": ci["last"], "ci_aia": ci["average_incremental"],
            "ci_forgetting": ci["forgetting"], "ci_bwt": ci["bwt"],
        }
    if not modes:
        summary["retrieval"] = NOT_APPLICABLE
        for mode, ci in out["class_incremental"].items():
            summary[mode] = {"ci_last": ci["last"], "ci_aia": ci["average_incremental"],
                             "ci_forgetting": ci["forgetting"], "ci_bwt": ci["bwt"]}
    ta = out["task_aware"]
    summary["task_aware"] = {"last": ta["last"], "aia": ta["average_incremental"],
                             "forgetting": ta["forgetting"], "bwt": ta["bwt"]}
    out["summary"] = summary
    return out


def row_from_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """Row ``step`` of every matrix of a step's metrics (for resuming)."""
    k = int(m["step"])

    def cut(b: dict[str, Any]) -> list[float]:
        return b["matrix"][k][: k + 1]

    ret = m["retrieval"] if isinstance(m["retrieval"], dict) else {}
    return {
        "retrieval": {mode: {kd: cut(b) for kd, b in v.items()} for mode, v in ret.items()},
        "class_incremental": {
            mode: ({kd: cut(b) for kd, b in v.items()} if "matrix" not in v else cut(v))
            for mode, v in m["class_incremental"].items()},
        "task_aware": cut(m["task_aware"]),
    }


def summary_text(met: dict[str, Any]) -> str:
    """``retrieval adapted 0.712 shared 0.801 | class-inc adapted ... | task-aware ...``."""
    s = met["summary"]
    modes = [m for m in s if m not in ("task_aware", "retrieval")]
    if s.get("retrieval") == NOT_APPLICABLE:
        ret = f"retrieval {NOT_APPLICABLE}"
    else:
        ret = f"{met['kind']} retrieval " + " ".join(
            f"{m} {s[m]['retrieval_last']:.3f}" for m in modes)
    ci = "class-inc " + " ".join(f"{m} {s[m]['ci_last']:.3f}" for m in modes)
    return f"{ret} | {ci} | task-aware {s['task_aware']['last']:.3f}"
