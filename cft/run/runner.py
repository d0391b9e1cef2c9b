"""The continual fine-tuning task loop (writes a run directory, docs/run-dir.md).

For each task ``t`` (RNG re-seeded with ``derive_seed(seed, "task", t)``, so that the state
is a function of ``(seed, t)`` and a resumed run equals an uninterrupted one):

1. build the task's PROTEUS module on top of the frozen modules ``0..t-1``
   (``ProteusAdapter``: composition weight ``module.reuse_weight``, new orthogonal factors);
2. train it (``cft.model.train.train_task``) on the cached lower-layer states of the train split;
3. compute the task-adapted ``h_t(x)`` and frozen (shared) ``f(x)`` train representations;
   fit the adapted and the shared signatures and the LDA head (on ``h_t``);
   gather the train split's ``bounds.cluster_stats`` in the shared space;
4. write ``tasks/NNN/`` (atomically, as a whole);
5. evaluate tasks ``0..t`` on the calibration and test splits in both retrieval modes and
   every supported score kind, write ``eval/step-NNN/`` (scores, ClusterStats, mixtures,
   metrics).

Representations of a (split, task ``j``, module ``s``) never change once module ``s`` is
trained, so they are computed once and reused by later steps (lower layers are likewise
encoded once per split and task; :class:`cft.run.representations.SplitRepresentations`); they are
kept in a bounded :class:`cft.evaluation.store.RepStore`
(``output.cache_mb``, spilling to ``RUN_DIR/scratch/``). With ``retrieval.shortlist=k``
only the (sample, module) pairs the shortlists need are computed, in chunks of
:data:`cft.run.step.SHORTLIST_CHUNK` samples of a task. The evaluation of a step is
:class:`cft.run.step.StepEvaluator`; the results line :func:`cft.run.ledger.write_results_line`.

A method is only a configuration bundle (:mod:`cft.methods`); nothing here depends on its
name.  For tests, setting the environment variable ``CFT_CRASH_AT_TASK=t`` raises
:class:`SimulatedCrash` right after task ``t``'s training (before anything of the task is
saved), which simulates an interruption.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bounds import rundir_schema as L
from bounds.rundir_schema import MODES, SPLITS
from cft.config import Config, primary_kind, to_dict
from cft.config.seed import derive_seed, seed_everything
from cft.run.ledger import RESULTS_FILE, task_line, write_results_line
from cft.run.representations import SplitRepresentations
from cft.run.resolve import validate, validate_backbone
from cft.run.rundir import (
    RunDir,
    TaskArtifacts,
    dumps,
    env_info,
)
from cft.run.step import StepEvaluator
from cft.run.step_metrics import NOT_APPLICABLE, build_metrics
from cft.run.step_metrics import row_from_metrics as _row_from_metrics

__all__ = ["CRASH_ENV", "RESULTS_FILE", "RunResult", "Runner", "SimulatedCrash", "build_metrics"]

CRASH_ENV = "CFT_CRASH_AT_TASK"


class SimulatedCrash(RuntimeError):
    """Raised by the ``CFT_CRASH_AT_TASK`` test hook."""


@dataclass
class RunResult:
    """What :meth:`Runner.run` returns."""

    run_dir: Path
    metrics: dict[str, Any]
    wall_seconds: float  # total over every invocation (run.json)
    session_seconds: float  # this invocation
    resumed_from: int  # tasks already complete when this invocation started
    already_complete: bool


# ----------------------------------------------------------------------------- runner
class Runner(StepEvaluator, SplitRepresentations):
    """Runs (or resumes) one configuration into one run directory.

    ``setup()`` does every check that depends on user input (configuration, data, backbone,
    existing run directory) and raises one-line ``ValueError``s; ``run()`` does the work.
    """

    def __init__(self, cfg: Config, out: str | os.PathLike[str],
                 echo: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.rundir = RunDir(out)
        self.echo = echo or (lambda s: print(s, flush=True))
        self._ready = False

    # ---- setup ------------------------------------------------------------------------
    def setup(self) -> Runner:
        cfg = self.cfg
        validate(cfg)
        self.config_dict = to_dict(cfg)
        rd = self.rundir
        self.already_complete = False
        self.resuming = False
        if rd.exists():
            info = rd.info()
            rd.check_config(self.config_dict)
            self.resuming = True
            if info.get("status") == "complete" and (rd.path / L.METRICS).is_file():
                self.already_complete = True
                self._ready = True
                return self
        elif not rd.is_empty_or_missing():
            raise ValueError(f"--out: {str(rd.path)!r} exists and is not a run directory "
                             f"(no run.json); choose an empty or new folder")
        validate_backbone(cfg)

        import cft.data  # noqa: F401
        import cft.model.backbones  # noqa: F401
        from cft.config.registry import BACKBONES, DATASETS, SIGNATURES

        if cfg.threads is not None:
            import torch

            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.stream = DATASETS.build(cfg.data.name, seed=cfg.seed, **cfg.data.options)
        self.tasks_meta = json.loads(dumps(self.stream.describe()))
        if self.resuming:
            stored = rd.tasks_meta()
            if stored.get("class_order") != self.tasks_meta["class_order"] or [
                t["classes"] for t in stored.get("tasks", [])
            ] != [t["classes"] for t in self.tasks_meta["tasks"]]:
                raise ValueError(f"--out: the task stream differs from the one stored in "
                                 f"{str(rd.path)!r} (data files changed?); use another --out")
        self.backbone = BACKBONES.build(cfg.backbone.name, **cfg.backbone.options)
        from cft.model.device import amp_dtype, configure, resolve_device

        self.device = resolve_device(cfg.device)
        amp = amp_dtype(self.device, cfg.precision)
        configure(self.device)
        self.backbone.place(self.device, amp)
        if self.backbone.modality != self.stream.modality:
            raise ValueError(f"backbone.name: backbone {cfg.backbone.name!r} takes "
                             f"{self.backbone.modality!r} inputs but dataset {cfg.data.name!r} "
                             f"yields {self.stream.modality!r}")
        import cft.evaluation  # noqa: F401  (registers heads and retrieval rules)
        import cft.model.modules  # noqa: F401  (registers the module families)
        from cft.config.registry import HEADS, MODULE_FAMILIES, RULES

        # the method's hooks; the runner branches on their declared capabilities only
        self.family = MODULE_FAMILIES.build(cfg.module.family, **cfg.module.options)
        self.merged = self.family.inference == "merged"
        self.head_cls = HEADS.get(cfg.head.kind) if self.merged else None
        self.rule_cls = RULES.get(cfg.eval.rule) if cfg.eval.rule else None
        self.sig_cls = SIGNATURES.get(cfg.signature.family)
        self.kind = None if self.merged else primary_kind(cfg)
        self.kinds = [] if self.merged else [
            k for k in ("centroid", "nll") if k in self.sig_cls.kinds]
        self._ready = True
        return self

    # ---- helpers ------------------------------------------------------------------------
    @property
    def progress(self) -> bool:
        return bool(self.cfg.output.progress)

    def _signature(self, tag: str, t: int) -> Any:
        params = inspect.signature(self.sig_cls.__init__).parameters
        opts = {k: v for k, v in asdict(self.cfg.signature).items()
                if k != "family" and k in params}
        opts["random_state"] = derive_seed(self.cfg.seed, f"signature-{tag}", t)
        return self.sig_cls(**opts)

    # ---- one task ---------------------------------------------------------------------------
    def _train_task(self, t: int) -> dict[str, Any]:
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
                                           progress=self.progress)
        labels = data.train.labels
        if self.family.cumulative and t:  # joint: the training data of tasks 0..t
            from cft.model.backbones import HiddenCache

            caches = [self.backbone.encode(self.stream.task(j).train.inputs,
                                           batch_size=cfg.backbone.batch_size)
                      for j in range(t)] + [train_cache]
            train_cache = HiddenCache.concat(caches)
            labels = np.concatenate([self.stream.task(j).train.labels for j in range(t + 1)])
        ctx = BuildContext(self.backbone, cfg.module, list(self.modules), t,
                           self.stream.n_tasks, derive_seed(cfg.seed, "module", t),
                           train_cache, cfg.backbone.batch_size)
        module = self.family.build(ctx)
        result = TrainResult()
        if module is not None:
            module.to(self.device)
            result = train_task(self.backbone, module, train_cache, labels, cfg.train,
                                seed=derive_seed(cfg.seed, "train", t), progress=self.progress)
        crash = os.environ.get(CRASH_ENV)
        if crash is not None and crash.strip() == str(t):
            raise SimulatedCrash(f"{CRASH_ENV}={crash}: simulated crash during task {t}")
        if module is not None:
            self.family.after_train(module, ctx)
            module.eval()
        z_adapted = self._upper(train_cache, module)
        if self.merged:
            return self._finish_merged(t, t0, data, module, z_adapted, labels, result)
        z_shared = self._upper(train_cache, None)
        sig_a = self._signature("adapted", t).fit(z_adapted)
        sig_s = self._signature("shared", t).fit(z_shared)
        head = LDAHead(shrinkage=cfg.head.shrinkage).fit(z_adapted, data.train.labels)
        cent = sig_s.centroids_
        train_cs = bounds.cluster_stats(
            z_shared, np.full(len(z_shared), t, dtype=np.int64), cent,
            np.full(len(cent), t, dtype=np.int64), sketch_rank=cfg.eval.train_sketch_rank)
        self.modules.append(module)
        self.sig_adapted.append(sig_a)
        self.sig_shared.append(sig_s)
        self.heads.append(head)
        extra = {}
        if self.rule_cls is not None:  # a learned retrieval rule, trained on f(x)
            rule = self.rule_cls(**self._rule_kwargs(t)).fit(z_shared)
            self.rules.append(rule)
            extra[f"rule-{cfg.eval.rule}"] = rule.to_arrays()
        train_scores = self._train_scores(train_cache, z_adapted, z_shared)
        del train_cache
        reps = {s: self._shared(s, t) for s in SPLITS}
        done = {
            "task": t,
            "seconds": time.perf_counter() - t0,
            "train_seconds": result.seconds,
            "train_loss": [float(x) for x in result.losses],
            "train_ce": [float(x) for x in result.ce_losses],
            "n_train": len(data.train),
            "n_calibration": len(data.calibration),
            "n_test": len(data.test),
            "signature_components": {"adapted": int(len(sig_a.centroids_)),
                                     "shared": int(len(sig_s.centroids_))},
            **self.family.stats(module),
        }
        self.rundir.write_task(t, TaskArtifacts(
            module=self.family.state(module),
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

        self.modules.append(module)
        prev = self.heads[-1] if self.heads and not self.family.cumulative else None
        head = copy.deepcopy(prev) if prev is not None else self.head_cls(**self._head_kwargs())
        head.partial_fit(z, labels, self._adapted("calibration", t, t, None),
                         self._split_labels("calibration", t))
        self.heads.append(head)
        reps = {s: self._shared(s, t) for s in SPLITS}
        done = {
            "task": t, "seconds": time.perf_counter() - t0,
            "train_seconds": result.seconds,
            "train_loss": [float(x) for x in result.losses],
            "train_ce": [float(x) for x in result.ce_losses],
            "n_train": len(data.train), "n_calibration": len(data.calibration),
            "n_test": len(data.test), "n_fit": len(labels), "inference": "merged",
            "retrieval": NOT_APPLICABLE,
            **(self.family.stats(module) if module is not None else {}),
        }
        self.rundir.write_task(t, TaskArtifacts(
            module=self.family.state(module), signature_adapted=None, signature_shared=None,
            head=head.to_arrays(), reps_calibration=reps["calibration"],
            reps_test=reps["test"], done=done))
        return done

    def _head_kwargs(self) -> dict[str, Any]:
        """Arguments of the continual head: ``head.options``, ``head.shrinkage`` where the
        head takes it, and a seed derived from the run seed (the same for every task)."""
        kw = dict(self.cfg.head.options)
        if "shrinkage" in inspect.signature(self.head_cls.__init__).parameters:
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

        t = len(self.modules) - 1

        def get(s: int, rows: np.ndarray | None) -> np.ndarray:
            if s == t:
                return z_adapted if rows is None else z_adapted[rows]
            return self._module_reps(cache, s, rows)

        S = score_matrices(LazyReps(len(z_shared), t + 1, get), z_shared, self.sig_adapted,
                           self.sig_shared, self.kinds, self.cfg.retrieval.shortlist)
        return {f"{mode}-{kind}": S[(mode, kind)] for kind in self.kinds for mode in MODES}

    def _load_task(self, t: int) -> dict[str, Any]:
        from cft.evaluation.heads.lda import LDAHead
        from cft.evaluation.signatures import Signature

        art = self.rundir.read_task(t)
        module = self.family.load(art.module, previous=list(self.modules))
        if module is not None:
            module.to(self.device).eval()
        self.modules.append(module)
        self._set_shared("calibration", t, art.reps_calibration)
        self._set_shared("test", t, art.reps_test)
        if self.merged:
            self.heads.append(self.head_cls.from_arrays(art.head, **self._head_kwargs()))
            return art.done
        if self.rule_cls is not None:
            self.rules.append(self.rule_cls.from_arrays(
                art.extra[f"rule-{self.cfg.eval.rule}"], **self._rule_kwargs(t)))
        self.sig_adapted.append(Signature.from_arrays(art.signature_adapted))
        self.sig_shared.append(Signature.from_arrays(art.signature_shared))
        self.heads.append(LDAHead.from_arrays(art.head))
        return art.done

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        if not self._ready:
            self.setup()
        rd = self.rundir
        t_start = time.perf_counter()
        if self.already_complete:
            info = rd.info()
            return RunResult(rd.path, rd.read_metrics(), float(info.get("wall_seconds", 0.0)),
                             0.0, int(info.get("tasks_complete", 0)), True)
        cfg = self.cfg
        m = self.stream.n_tasks
        if self.resuming:
            rd.clean_temp()
            k0 = rd.completed_tasks()
            for k in rd.evaluated_steps():  # cannot happen unless edited by hand
                if k >= k0:
                    shutil.rmtree(rd.step_dir(k))
            info = rd.update_run(resumed=int(rd.info().get("resumed", 0)) + 1)
            prior_wall = float(info.get("wall_seconds", 0.0))
            self.echo(f"resuming {rd.path}: {k0}/{m} tasks complete")
            if info.get("device", "cpu") != str(self.device):
                self.echo(f"warning: the run started on {info.get('device', 'cpu')} and "
                          f"resumes on {self.device}; results are not bitwise those of one "
                          f"device")
        else:
            rd.create(self.config_dict, preset=cfg.preset, seed=cfg.seed, n_tasks=m,
                      tasks_meta=self.tasks_meta, env=env_info())
            extra: dict[str, Any] = {"device": str(self.device), "precision": cfg.precision}
            if self.device.type == "cuda":
                import torch

                extra["device_name"] = torch.cuda.get_device_name(self.device)
                extra["cuda"] = torch.version.cuda
            rd.update_run(**extra)
            k0 = 0
            prior_wall = 0.0
        evaluated = set(rd.evaluated_steps())
        self.modules: list[Any] = []
        self.sig_adapted: list[Any] = []
        self.sig_shared: list[Any] = []
        self.heads: list[Any] = []
        self.rules: list[Any] = []
        self._reset_reps()
        from cft.evaluation.store import SCRATCH, RepStore

        shutil.rmtree(rd.path / SCRATCH, ignore_errors=True)  # a crashed run's leftovers
        mb = cfg.output.cache_mb
        self._store = RepStore(rd.path / SCRATCH, None if mb is None else int(mb * 2**20))
        self.rows: list[dict[str, Any]] = []
        met: dict[str, Any] = {}
        for t in range(m):
            t0 = time.perf_counter()
            if t < k0:
                done = self._load_task(t)
                trained = False
            else:
                done = self._train_task(t)
                trained = True
            if t in evaluated and t < k0:
                met = rd.read_step_metrics(t)
                self.rows.append(_row_from_metrics(met))
            else:
                _, met = self._evaluate(t)
            rd.update_run(tasks_complete=t + 1,
                          wall_seconds=prior_wall + time.perf_counter() - t_start)
            if trained or t not in evaluated:
                self.echo(task_line(self.stream.task(t).class_names, t, m, done, met,
                                    time.perf_counter() - t0))
        self._store.close()
        rd.write_metrics(met)
        wall = prior_wall + time.perf_counter() - t_start
        write_results_line(self.rundir, self.cfg, self.config_dict, met, wall)  # before
        # "complete": a crash in between redoes it
        rd.update_run(status="complete", tasks_complete=m, wall_seconds=wall)
        return RunResult(rd.path, met, wall, time.perf_counter() - t_start, k0, False)
