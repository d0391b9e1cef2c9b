"""One task of the loop: :meth:`TaskTrainer.train` builds, trains and writes task ``t``
(``tasks/NNN/``, atomically); :meth:`TaskTrainer.load` reads a completed task back on resume.

Training task ``t`` (RNG re-seeded with ``derive_seed(seed, "task", t)``, so that the state
is a function of ``(seed, t)`` and a resumed run equals an uninterrupted one):

1. build the task's module with the method's family on top of the frozen modules
   ``0..t-1`` (PROTEUS: composition weight ``module.reuse_weight``, new orthogonal
   factors) and train it (:func:`cft.model.train.train_task`) on the cached lower-layer
   states of the train split;
2. compute the task-adapted ``h_t(x)`` and frozen (shared) ``f(x)`` train representations;
   fit the adapted and the shared signatures and the LDA head (on ``h_t``); gather the
   train split's ``bounds.cluster_stats`` in the shared space and the training-time score
   matrices (docs/theory.md §10);
3. write ``tasks/NNN/``.

For tests, ``CFT_CRASH_AT_TASK=t`` raises :class:`SimulatedCrash` right after task ``t``'s
training (before anything of the task is saved), which simulates an interruption.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from bounds.rundir_schema import MODES, SPLITS
from cft.config import Config
from cft.config.seed import derive_seed, seed_everything
from cft.run.representations import SplitRepresentations
from cft.run.rundir import RunDir, TaskArtifacts
from cft.run.state import Hooks, Learned
from cft.run.step_metrics import NOT_APPLICABLE

__all__ = ["CRASH_ENV", "SimulatedCrash", "TaskTrainer"]

CRASH_ENV = "CFT_CRASH_AT_TASK"


def peak_rss_mib() -> float | None:
    """The process's peak resident memory so far, MiB (``getrusage``; None where the
    platform has no ``resource`` module)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def _cost(t0: float, result: Any) -> dict[str, Any]:
    """The cost fields of ``done.json``: the task step's wall seconds (training, fits and
    evaluation), the training's, and the process's peak RSS so far."""
    return {"seconds": time.perf_counter() - t0, "train_seconds": result.seconds,
            "peak_rss_mib": peak_rss_mib()}


class SimulatedCrash(RuntimeError):
    """Raised by the ``CFT_CRASH_AT_TASK`` test hook."""


class TaskTrainer:
    """Trains (or reloads) one task at a time into ``learned`` and the run directory."""

    def __init__(self, cfg: Config, rundir: RunDir, stream: Any, backbone: Any, device: Any,
                 reps: SplitRepresentations, learned: Learned, hooks: Hooks) -> None:
        self.cfg = cfg
        self.rundir = rundir
        self.stream = stream
        self.backbone = backbone
        self.device = device
        self.reps = reps
        self.learned = learned
        self.hooks = hooks

    def _signature(self, tag: str, t: int) -> Any:
        params = inspect.signature(self.hooks.sig_cls.__init__).parameters
        opts = {k: v for k, v in asdict(self.cfg.signature).items()
                if k != "family" and k in params}
        opts["random_state"] = derive_seed(self.cfg.seed, f"signature-{tag}", t)
        return self.hooks.sig_cls(**opts)

    def train(self, t: int) -> dict[str, Any]:
        import bounds
        from cft.evaluation.heads.lda import LDAHead
        from cft.model.modules import BuildContext
        from cft.model.train import TrainResult, train_task

        cfg = self.cfg
        t0 = time.perf_counter()
        seed_everything(derive_seed(cfg.seed, "task", t))
        data = self.stream.task(t)
        train_cache = self.backbone.encode(data.train.inputs,
                                           batch_size=cfg.backbone.batch_size,
                                           progress=self.cfg.output.progress)
        labels = data.train.labels
        if self.hooks.family.cumulative and t:  # joint: the training data of tasks 0..t
            from cft.model.backbones import HiddenCache

            caches = [self.backbone.encode(self.stream.task(j).train.inputs,
                                           batch_size=cfg.backbone.batch_size)
                      for j in range(t)] + [train_cache]
            train_cache = HiddenCache.concat(caches)
            labels = np.concatenate([self.stream.task(j).train.labels for j in range(t + 1)])
        ctx = BuildContext(self.backbone, cfg.module, list(self.learned.modules), t,
                           self.stream.n_tasks, derive_seed(cfg.seed, "module", t),
                           train_cache, cfg.backbone.batch_size)
        module = self.hooks.family.build(ctx)
        result = TrainResult()
        if module is not None:
            module.to(self.device)
            result = train_task(self.backbone, module, train_cache, labels, cfg.train,
                                seed=derive_seed(cfg.seed, "train", t),
                                progress=cfg.output.progress)
        crash = os.environ.get(CRASH_ENV)
        if crash is not None and crash.strip() == str(t):
            raise SimulatedCrash(f"{CRASH_ENV}={crash}: simulated crash during task {t}")
        if module is not None:
            self.hooks.family.after_train(module, ctx)
            module.eval()
        z_adapted = self.reps.upper(train_cache, module)
        if self.hooks.merged:
            return self._finish_merged(t, t0, data, module, z_adapted, labels, result)
        z_shared = self.reps.upper(train_cache, None)
        sig_a = self._signature("adapted", t).fit(z_adapted)
        sig_s = self._signature("shared", t).fit(z_shared)
        head = LDAHead(shrinkage=cfg.head.shrinkage).fit(z_adapted, data.train.labels)
        cent = sig_s.centroids_
        train_cs = bounds.cluster_stats(
            z_shared, np.full(len(z_shared), t, dtype=np.int64), cent,
            np.full(len(cent), t, dtype=np.int64), sketch_rank=cfg.eval.train_sketch_rank)
        self.learned.modules.append(module)
        self.learned.sig_adapted.append(sig_a)
        self.learned.sig_shared.append(sig_s)
        self.learned.heads.append(head)
        extra = {}
        if self.hooks.rule_cls is not None:  # a learned retrieval rule
            rule = self.hooks.rule_cls(**self._rule_kwargs(t))
            if rule.space == "adapted":  # on h_t, against h_t of text that is in no task
                z_bg = self.reps.upper(self.reps.background(rule.n_background), module)
                rule.fit(z_adapted, background=z_bg)
            else:  # on the frozen f(x)
                rule.fit(z_shared)
            self.learned.rules.append(rule)
            extra[f"rule-{cfg.eval.rule}"] = rule.to_arrays()
        train_scores = self._train_scores(train_cache, z_adapted, z_shared)
        del train_cache
        reps = {s: self.reps.shared(s, t) for s in SPLITS}
        done = {
            "task": t,
            **_cost(t0, result),
            "train_loss": [float(x) for x in result.losses],
            "train_ce": [float(x) for x in result.ce_losses],
            "n_train": len(data.train),
            "n_calibration": len(data.calibration),
            "n_test": len(data.test),
            "signature_components": {"adapted": int(len(sig_a.centroids_)),
                                     "shared": int(len(sig_s.centroids_))},
            **self.hooks.family.stats(module),
        }
        self.rundir.write_task(t, TaskArtifacts(
            module=self.hooks.family.state(module),
            signature_adapted=sig_a.to_arrays(),
            signature_shared=sig_s.to_arrays(),
            head=head.to_arrays(),
            reps_calibration=reps["calibration"],
            reps_test=reps["test"],
            done=done,
            train_clusters=train_cs,
            train_scores=train_scores,
            extra=extra,
        ))
        return done

    def _finish_merged(self, t: int, t0: float, data: Any, module: Any, z: np.ndarray,
                       labels: np.ndarray, result: Any) -> dict[str, Any]:
        """Task ``t`` of a method with no retrieval: update the continual head (a fresh one
        for a cumulative family) on ``z`` (train representations under the merged module;
        the head may choose on task t's calibration split) and write ``tasks/NNN``."""
        import copy

        self.learned.modules.append(module)
        heads = self.learned.heads
        prev = heads[-1] if heads and not self.hooks.family.cumulative else None
        head = copy.deepcopy(prev) if prev is not None else self.hooks.head_cls(
            **self._head_kwargs())
        head.partial_fit(z, labels, self.reps.adapted("calibration", t, t, None),
                         self.reps.labels("calibration", t))
        self.learned.heads.append(head)
        reps = {s: self.reps.shared(s, t) for s in SPLITS}
        done = {
            "task": t, **_cost(t0, result),
            "train_loss": [float(x) for x in result.losses],
            "train_ce": [float(x) for x in result.ce_losses],
            "n_train": len(data.train), "n_calibration": len(data.calibration),
            "n_test": len(data.test), "n_fit": len(labels), "inference": "merged",
            "retrieval": NOT_APPLICABLE,
            **(self.hooks.family.stats(module) if module is not None else {}),
        }
        self.rundir.write_task(t, TaskArtifacts(
            module=self.hooks.family.state(module), signature_adapted=None, signature_shared=None,
            head=head.to_arrays(), reps_calibration=reps["calibration"],
            reps_test=reps["test"], done=done))
        return done

    def _head_kwargs(self) -> dict[str, Any]:
        """Arguments of the continual head: ``head.options``, ``head.shrinkage`` where the
        head takes it, and a seed derived from the run seed (the same for every task)."""
        kw = dict(self.cfg.head.options)
        if "shrinkage" in inspect.signature(self.hooks.head_cls.__init__).parameters:
            kw["shrinkage"] = self.cfg.head.shrinkage
        kw["random_state"] = derive_seed(self.cfg.seed, "head")
        return kw

    def _rule_kwargs(self, t: int) -> dict[str, Any]:
        """Arguments of task ``t``'s learned rule: ``eval.options`` and a derived seed."""
        return {**self.cfg.eval.options, "random_state": derive_seed(self.cfg.seed, "rule", t)}

    def _train_scores(self, cache: Any, z_adapted: np.ndarray,
                      z_shared: np.ndarray) -> dict[str, np.ndarray]:
        """Task t's train split scored against modules / signatures 0..t, at training time
        (the statistics of the adapted rule's earlier-claimed errors, docs/theory.md §10).

        ``h_s(x)`` for the earlier modules s < t costs t passes of the adapted layers over
        the train split; the new module's and the shared representations are reused."""
        from cft.evaluation.retrieval import LazyReps, score_matrices

        t = len(self.learned.modules) - 1

        def get(s: int, rows: np.ndarray | None) -> np.ndarray:
            if s == t:
                return z_adapted if rows is None else z_adapted[rows]
            return self.reps.module_reps(cache, s, rows)

        S = score_matrices(LazyReps(len(z_shared), t + 1, get), z_shared, self.learned.sig_adapted,
                           self.learned.sig_shared, self.hooks.kinds, self.cfg.retrieval.shortlist)
        return {f"{mode}-{kind}": S[(mode, kind)] for kind in self.hooks.kinds for mode in MODES}

    def load(self, t: int) -> dict[str, Any]:
        from cft.evaluation.heads.lda import LDAHead
        from cft.evaluation.signatures import Signature

        art = self.rundir.read_task(t)
        module = self.hooks.family.load(art.module, previous=list(self.learned.modules))
        if module is not None:
            module.to(self.device).eval()
        self.learned.modules.append(module)
        self.reps.set_shared("calibration", t, art.reps_calibration)
        self.reps.set_shared("test", t, art.reps_test)
        if self.hooks.merged:
            self.learned.heads.append(self.hooks.head_cls.from_arrays(art.head,
                                                                      **self._head_kwargs()))
            return art.done
        if self.hooks.rule_cls is not None:
            self.learned.rules.append(self.hooks.rule_cls.from_arrays(
                art.extra[f"rule-{self.cfg.eval.rule}"], **self._rule_kwargs(t)))
        self.learned.sig_adapted.append(Signature.from_arrays(art.signature_adapted))
        self.learned.sig_shared.append(Signature.from_arrays(art.signature_shared))
        self.learned.heads.append(LDAHead.from_arrays(art.head))
        return art.done
