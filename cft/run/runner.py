"""The continual fine-tuning task loop (writes a run directory, docs/run-dir.md).

:meth:`Runner.run` reads top to bottom: for each task ``t`` of the stream, the
:class:`~cft.run.task.TaskTrainer` trains it (or, on resume, loads it) into what the run has
learned (:class:`~cft.run.state.Learned`), then the :class:`~cft.run.step.StepEvaluator`
evaluates tasks ``0..t`` on the calibration and test splits in both retrieval modes and
every supported score kind and writes ``eval/step-NNN/`` (scores, ClusterStats, mixtures,
metrics); the run's record (``run.json``) is updated after each step, and the results line
(:func:`cft.run.ledger.write_results_line`) is written at the end.

Representations of a (split, task ``j``, module ``s``) never change once module ``s`` is
trained, so they are computed once (:class:`~cft.run.representations.SplitRepresentations`)
and kept in a bounded :class:`cft.evaluation.store.RepStore` (``output.cache_mb``,
spilling to ``RUN_DIR/scratch/``). With ``retrieval.shortlist=k`` only the (sample,
module) pairs the shortlists need are computed, in chunks of
:data:`cft.run.step.SHORTLIST_CHUNK` samples of a task.

A method is only a configuration bundle (:mod:`cft.methods`) plus the hooks it declares
(:class:`~cft.run.state.Hooks`); nothing here depends on its name.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.config import Config, primary_kind, to_dict
from cft.config.seed import seed_everything
from cft.run.atomic import dumps
from cft.run.ledger import RESULTS_FILE, task_line, write_results_line
from cft.run.representations import SplitRepresentations
from cft.run.resolve import validate, validate_backbone
from cft.run.rundir import RunDir, env_info
from cft.run.state import Hooks, Learned
from cft.run.step import StepEvaluator
from cft.run.step_metrics import build_metrics
from cft.run.step_metrics import row_from_metrics as _row_from_metrics
from cft.run.task import CRASH_ENV, SimulatedCrash, TaskTrainer

__all__ = ["CRASH_ENV", "RESULTS_FILE", "RunResult", "Runner", "SimulatedCrash", "build_metrics"]

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
class Runner:
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

        # the method's hooks; the loop branches on their declared capabilities only
        family = MODULE_FAMILIES.build(cfg.module.family, **cfg.module.options)
        merged = family.inference == "merged"
        sig_cls = SIGNATURES.get(cfg.signature.family)
        self.hooks = Hooks(
            family=family, sig_cls=sig_cls,
            head_cls=HEADS.get(cfg.head.kind) if merged else None,
            rule_cls=RULES.get(cfg.eval.rule) if cfg.eval.rule else None,
            kinds=[] if merged else [k for k in ("centroid", "nll") if k in sig_cls.kinds],
            kind=None if merged else primary_kind(cfg))
        if self.hooks.rule_cls is not None and self.hooks.rule_cls.space == "adapted":
            self.stream.background(1)  # a one-line error now, not after the first task
        self._ready = True
        return self

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
        from cft.evaluation.store import SCRATCH, RepStore

        shutil.rmtree(rd.path / SCRATCH, ignore_errors=True)  # a crashed run's leftovers
        mb = cfg.output.cache_mb
        self.store = RepStore(rd.path / SCRATCH, None if mb is None else int(mb * 2**20))
        learned = self.learned = Learned()
        reps = SplitRepresentations(self.stream, self.backbone, cfg.backbone.batch_size,
                                    learned.modules)
        trainer = TaskTrainer(cfg, rd, self.stream, self.backbone, self.device, reps, learned,
                              self.hooks)
        evaluator = StepEvaluator(cfg, rd, self.stream, reps, self.store, learned, self.hooks,
                                  self.tasks_meta)
        met: dict[str, Any] = {}
        for t in range(m):
            t0 = time.perf_counter()
            trained = t >= k0
            done = trainer.train(t) if trained else trainer.load(t)
            if t in evaluated and not trained:  # evaluated before the interruption
                met = rd.read_step_metrics(t)
                learned.rows.append(_row_from_metrics(met))
            else:
                _, met = evaluator.evaluate(t)
            rd.update_run(tasks_complete=t + 1,
                          wall_seconds=prior_wall + time.perf_counter() - t_start)
            if trained or t not in evaluated:
                self.echo(task_line(self.stream.task(t).class_names, t, m, done, met,
                                    time.perf_counter() - t0))
        self.store.close()
        rd.write_metrics(met)
        wall = prior_wall + time.perf_counter() - t_start
        write_results_line(self.rundir, self.cfg, self.config_dict, met, wall)  # before
        # "complete": a crash in between redoes it
        rd.update_run(status="complete", tasks_complete=m, wall_seconds=wall)
        return RunResult(rd.path, met, wall, time.perf_counter() - t_start, k0, False)
