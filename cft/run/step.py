"""Evaluation of one step (``eval/step-NNN``, docs/run-dir.md): every task seen so far, both
held-out splits, both retrieval modes and every score kind, through the one evaluation
path :func:`cft.evaluation.retrieval.evaluate`; methods without retrieval (merged modules) through
their continual head.

:class:`StepEvaluator` is a mixin of :class:`cft.run.runner.Runner`: it reads the runner's
state (modules, signatures, heads, the representation store) and writes the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bounds.rundir_schema import MODES, SPLITS
from cft.run import metrics as M
from cft.run.rundir import StepArtifacts
from cft.run.step_metrics import build_metrics

__all__ = ["SHORTLIST_CHUNK", "StepEvaluator"]

#: samples of a task per cached block under a shortlist (cft.evaluation.store.SplitReps)
SHORTLIST_CHUNK = 8


class StepEvaluator:
    """``_evaluate(k)``: write ``eval/step-k`` and return (test row, metrics)."""

    # set by cft.run.runner.Runner
    cfg: Any
    rundir: Any
    stream: Any
    rows: list[dict[str, Any]]

    def _mixtures(self, k: int) -> Any:
        """The shared signatures of tasks 0..k as one padded mixture (``None`` unless every
        signature is a mixture)."""
        import bounds

        sigs = self.sig_shared[: k + 1]
        if not all(hasattr(s, "weights_") for s in sigs):
            return None
        return bounds.stack_mixtures([(s.weights_, s.means_, s.covariances_) for s in sigs])

    def _evaluate(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``eval/step-k``; returns (row of accuracies on test, metrics).

        Scores, retrieval and predictions come from :func:`cft.evaluation.retrieval.evaluate`
        (the one
        evaluation path); ``reps_a[s]`` holds every sample under module ``s``."""
        import bounds
        from cft.evaluation.retrieval import add_rule, evaluate
        from cft.evaluation.store import SplitReps

        if self.merged:
            return self._evaluate_merged(k)
        tasks = range(k + 1)
        short = self.cfg.retrieval.shortlist
        scores: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
        extra: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        clusters: dict[str, Any] = {}
        rule = self.cfg.eval.rule if self.rules else None  # a learned rule: its own mode
        modes = MODES + ((rule,) if rule else ())
        row: dict[str, Any] = {"retrieval": {m: {} for m in modes},
                               "class_incremental": {m: {} for m in modes}}
        cent = np.concatenate([s.centroids_ for s in self.sig_shared[: k + 1]])
        cent_task = np.concatenate([np.full(len(s.centroids_), t, dtype=np.int64)
                                    for t, s in enumerate(self.sig_shared[: k + 1])])
        sizes: list[int] = []
        for split in SPLITS:
            per_task = [self._split_labels(split, j) for j in tasks]
            labels = np.concatenate(per_task)
            task = np.concatenate([np.full(len(y), j, dtype=np.int64)
                                   for j, y in enumerate(per_task)])
            reps_a = SplitReps(self._store, split, [len(y) for y in per_task], k + 1,
                               lambda j, s, rows, sp=split: self._adapted(sp, j, s, rows),
                               chunk=SHORTLIST_CHUNK if short else None)
            reps_s = np.concatenate([self._shared(split, j) for j in tasks])
            ev = evaluate(reps_a, reps_s, self.sig_adapted[: k + 1], self.sig_shared[: k + 1],
                          self.heads[: k + 1], kinds=self.kinds, task=task, shortlist_k=short)
            if rule:
                add_rule(ev, rule, self.rules[: k + 1], reps_a, reps_s, self.heads[: k + 1])
            for (mode, kind), S in ev.scores.items():
                got, pred = ev.retrieved[(mode, kind)], ev.pred[(mode, kind)]
                arrays = {"task": task, "scores": S, "label": labels, "pred": pred}
                if mode in MODES:
                    scores[(split, mode, kind)] = arrays
                else:  # a learned rule's scores: same keys, outside the checked schema
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
        self.rows.append(row)
        met = build_metrics(self.rows, sizes, self.stream.n_tasks, self.kind, self.kinds)
        self.rundir.write_step(k, StepArtifacts(scores=scores, metrics=met, clusters=clusters,
                                                mixtures=self._mixtures(k), extra=extra))
        return row, met

    def _evaluate_merged(self, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Step ``k`` of a method with no retrieval: every sample of tasks ``0..k`` through
        the latest (merged) module and the continual head ``k``: class-incremental = argmax
        over every class seen, task-aware = argmax over the true task's classes. Writes
        ``{split}/merged.npz`` and ``{split}/task-aware.npz``; no scores, no retrieval."""
        head = self.heads[k]
        classes = [np.asarray(t["classes"]) for t in self.tasks_meta["tasks"][: k + 1]]
        own = np.stack([np.isin(head.classes_, c) for c in classes])  # (k+1, C)
        extra: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        row: dict[str, Any] = {"retrieval": {}, "class_incremental": {}}
        sizes: list[int] = []
        for split in SPLITS:
            per_task = [self._split_labels(split, j) for j in range(k + 1)]
            labels = np.concatenate(per_task)
            task = np.concatenate([np.full(len(y), j, dtype=np.int64)
                                   for j, y in enumerate(per_task)])
            reps = np.concatenate([self._adapted(split, j, k, None) for j in range(k + 1)])
            pred, pred_ta = head.predict_each(reps, [None, own[task]])
            extra[(split, "merged")] = {"task": task, "label": labels, "pred": pred}
            extra[(split, "task-aware")] = {"task": task, "label": labels, "pred": pred_ta}
            if split == "test":
                row["class_incremental"]["merged"] = M.per_task_accuracy(pred == labels, task,
                                                                         k + 1)
                row["task_aware"] = M.per_task_accuracy(pred_ta == labels, task, k + 1)
                sizes = np.bincount(task, minlength=k + 1).tolist()
        self.rows.append(row)
        met = build_metrics(self.rows, sizes, self.stream.n_tasks, self.kind, self.kinds)
        self.rundir.write_step(k, StepArtifacts(scores={}, metrics=met, extra=extra))
        return row, met
