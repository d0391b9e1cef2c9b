"""Evaluation of one step (``eval/step-NNN``, docs/run-dir.md): every task seen so far, both
held-out splits, both retrieval modes and every score kind, through the one evaluation
path :func:`cft.evaluation.retrieval.evaluate`; methods without retrieval (merged modules) through
their continual head.

:class:`StepEvaluator` reads what the run has learned (:class:`cft.run.state.Learned`) and
the split representations (:class:`cft.run.representations.SplitRepresentations`, cached in
the bounded store) and writes the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bounds.rundir_schema import MODES, SPLITS
from cft.run import metrics as M
from cft.run.representations import SplitRepresentations
from cft.run.rundir import StepArtifacts
from cft.run.state import Hooks, Learned
from cft.run.step_metrics import build_metrics

__all__ = ["SHORTLIST_CHUNK", "StepEvaluator"]

#: samples of a task per cached block under a shortlist (cft.evaluation.store.SplitReps)
SHORTLIST_CHUNK = 8


class StepEvaluator:
    """``evaluate(k)``: write ``eval/step-k`` and return (test row, metrics)."""

    def __init__(self, cfg: Any, rundir: Any, stream: Any, reps: SplitRepresentations,
                 store: Any, learned: Learned, hooks: Hooks, tasks_meta: dict[str, Any]) -> None:
        self.cfg = cfg
        self.rundir = rundir
        self.stream = stream
        self.reps = reps
        self.store = store
        self.learned = learned
        self.hooks = hooks
        self.tasks_meta = tasks_meta

    def _metrics(self, sizes: list[int]) -> dict[str, Any]:
        """``metrics.json`` of the step just appended to ``learned.rows``."""
        return build_metrics(self.learned.rows, sizes, self.stream.n_tasks, self.hooks.kind,
                             self.hooks.kinds)

    def _mixtures(self, k: int) -> Any:
        """The shared signatures of tasks 0..k as one padded mixture (``None`` unless every
        signature is a mixture)."""
        import bounds

        sigs = self.learned.sig_shared[: k + 1]
        if not all(hasattr(s, "weights_") for s in sigs):
            return None
        return bounds.stack_mixtures([(s.weights_, s.means_, s.covariances_) for s in sigs])

    def evaluate(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``eval/step-k``; returns (row of accuracies on test, metrics).

        Scores, retrieval and predictions come from :func:`cft.evaluation.retrieval.evaluate`
        (the one evaluation path); ``reps_a[s]`` holds every sample under module ``s``. A
        learned rule with a weight chooses it on the calibration split (evaluated first)
        and the test split uses that choice."""
        import bounds
        from cft.evaluation.retrieval import add_rule, evaluate
        from cft.evaluation.store import SplitReps

        if self.hooks.merged:
            return self._merged(k)
        learned = self.learned
        tasks = range(k + 1)
        short = self.cfg.retrieval.shortlist
        scores: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
        extra: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        clusters: dict[str, Any] = {}
        rule = self.cfg.eval.rule if self.learned.rules else None  # a learned rule: its own mode
        modes = MODES + ((rule,) if rule else ())
        row: dict[str, Any] = {"retrieval": {m: {} for m in modes},
                               "class_incremental": {m: {} for m in modes}}
        cent = np.concatenate([s.centroids_ for s in self.learned.sig_shared[: k + 1]])
        cent_task = np.concatenate([np.full(len(s.centroids_), t, dtype=np.int64)
                                    for t, s in enumerate(self.learned.sig_shared[: k + 1])])
        sizes: list[int] = []
        weight: float | None = None  # a tuned rule's weight, chosen on the calibration split
        for split in SPLITS:
            per_task = [self.reps.labels(split, j) for j in tasks]
            labels = np.concatenate(per_task)
            task = np.concatenate([np.full(len(y), j, dtype=np.int64)
                                   for j, y in enumerate(per_task)])
            reps_a = SplitReps(self.store, split, [len(y) for y in per_task], k + 1,
                               lambda j, s, rows, sp=split: self.reps.adapted(sp, j, s, rows),
                               chunk=SHORTLIST_CHUNK if short else None)
            reps_s = np.concatenate([self.reps.shared(split, j) for j in tasks])
            ev = evaluate(reps_a, reps_s, learned.sig_adapted[: k + 1],
                          learned.sig_shared[: k + 1], learned.heads[: k + 1],
                          kinds=self.hooks.kinds, task=task, shortlist_k=short)
            if rule:
                weight = add_rule(ev, rule, learned.rules[: k + 1], reps_a, reps_s,
                                  learned.heads[: k + 1], weight=weight,
                                  task=task if split == "calibration" else None)
            for (mode, kind), S in ev.scores.items():
                got, pred = ev.retrieved[(mode, kind)], ev.pred[(mode, kind)]
                arrays = {"task": task, "scores": S, "label": labels, "pred": pred}
                if mode in MODES:
                    scores[(split, mode, kind)] = arrays
                else:  # a learned rule's scores: same keys, outside the checked schema
                    if weight is not None:
                        arrays["weight"] = np.asarray(weight)
                    extra[(split, f"{mode}-{kind}")] = arrays
                if split == "test":
                    row["retrieval"][mode][kind] = M.per_task_accuracy(got == task, task, k + 1)
                    row["class_incremental"][mode][kind] = M.per_task_accuracy(
                        pred == labels, task, k + 1)
            pred_ta = ev.pred_task_aware
            extra[(split, "task-aware")] = {"task": task, "label": labels, "pred": pred_ta}
            if split == "test":
                row["task_aware"] = M.per_task_accuracy(pred_ta == labels, task, k + 1)
                sizes = np.bincount(task, minlength=k + 1).tolist()
            clusters[split] = bounds.cluster_stats(reps_s, task, cent, cent_task,
                                                   sketch_rank=self.cfg.eval.sketch_rank)
        self.learned.rows.append(row)
        met = self._metrics(sizes)
        self.rundir.write_step(k, StepArtifacts(scores=scores, metrics=met, clusters=clusters,
                                                mixtures=self._mixtures(k), extra=extra))
        return row, met

    def _merged(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Step ``k`` of a method with no retrieval: every sample of tasks ``0..k`` through
        the latest (merged) module and the continual head ``k``: class-incremental = argmax
        over every class seen, task-aware = argmax over the true task's classes. Writes
        ``{split}/merged.npz`` and ``{split}/task-aware.npz``; no scores, no retrieval."""
        head = self.learned.heads[k]
        classes = [np.asarray(t["classes"]) for t in self.tasks_meta["tasks"][: k + 1]]
        own = np.stack([np.isin(head.classes_, c) for c in classes])  # (k+1, C)
        extra: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        row: dict[str, Any] = {"retrieval": {}, "class_incremental": {}}
        sizes: list[int] = []
        for split in SPLITS:
            per_task = [self.reps.labels(split, j) for j in range(k + 1)]
            labels = np.concatenate(per_task)
            task = np.concatenate([np.full(len(y), j, dtype=np.int64)
                                   for j, y in enumerate(per_task)])
            reps = np.concatenate([self.reps.adapted(split, j, k, None) for j in range(k + 1)])
            pred, pred_ta = head.predict_each(reps, [None, own[task]])
            extra[(split, "merged")] = {"task": task, "label": labels, "pred": pred}
            extra[(split, "task-aware")] = {"task": task, "label": labels, "pred": pred_ta}
            if split == "test":
                row["class_incremental"]["merged"] = M.per_task_accuracy(pred == labels, task,
                                                                         k + 1)
                row["task_aware"] = M.per_task_accuracy(pred_ta == labels, task, k + 1)
                sizes = np.bincount(task, minlength=k + 1).tolist()
        self.learned.rows.append(row)
        met = self._metrics(sizes)
        self.rundir.write_step(k, StepArtifacts(scores={}, metrics=met, extra=extra))
        return row, met
