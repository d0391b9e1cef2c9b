"""The continual fine-tuning task loop (writes a run directory, docs/run-dir.md).

For each task ``t`` (RNG re-seeded with ``derive_seed(seed, "task", t)``, so that the state
is a function of ``(seed, t)`` and a resumed run equals an uninterrupted one):

1. build the task's PROTEUS module on top of the frozen modules ``0..t-1``
   (``ProteusAdapter``: composition weight ``module.alpha``, new orthogonal factors);
2. train it (``cft.train.train_task``) on the cached lower-layer states of the train split;
3. compute the task-adapted ``h_t(x)`` and frozen (shared) ``f(x)`` train representations;
   fit the adapted and the shared signatures and the LDA head (on ``h_t``);
   gather the train split's ``bounds.cluster_stats`` in the shared space;
4. write ``tasks/NNN/`` (atomically, as a whole);
5. evaluate tasks ``0..t`` on the calibration and test splits in both retrieval modes and
   every supported score kind, write ``eval/step-NNN/`` (scores, ClusterStats, mixtures,
   metrics).

Representations of a (split, task ``j``, module ``s``) never change once module ``s`` is
trained, so they are computed once and reused by later steps (lower layers are likewise
encoded once per split and task); they are kept in a bounded :class:`cft.store.RepStore`
(``output.cache_mb``, spilling to ``RUN_DIR/scratch/``). With ``retrieval.shortlist=k``
only the (sample, module) pairs the shortlists need are computed, in chunks of
:data:`SHORTLIST_CHUNK` samples of a task.

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
from cft import metrics as M
from cft.config import Config, primary_kind, to_dict, validate, validate_backbone
from cft.rundir import (
    RunDir,
    StepArtifacts,
    TaskArtifacts,
    atomic_file,
    dumps,
    env_info,
    now,
)
from cft.seed import derive_seed, seed_everything

__all__ = ["CRASH_ENV", "RESULTS_FILE", "RunResult", "Runner", "SimulatedCrash", "build_metrics"]

CRASH_ENV = "CFT_CRASH_AT_TASK"
#: the run's results line, inside the run directory
RESULTS_FILE = L.RESULTS
#: samples of a task per cached block under a shortlist (cft.store.SplitReps)
SHORTLIST_CHUNK = 8


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


# ----------------------------------------------------------------------------- metrics
def build_metrics(rows: list[dict[str, Any]], sizes: list[int], n_tasks: int, kind: str,
                  kinds: list[str]) -> dict[str, Any]:
    """Metrics after step ``len(rows) - 1`` from the per-step accuracy rows.

    ``rows[i]`` = ``{"retrieval": {mode: {kind: [a_ij for j<=i]}}, "class_incremental":
    {...}, "task_aware": [...]}``; ``sizes[j]`` = test samples of task ``j`` (weights of the
    step accuracy, :func:`cft.metrics.step_accuracy`).
    """
    k = len(rows) - 1

    def matrix(get: Callable[[dict[str, Any]], list[float]]) -> list[list[float | None]]:
        return [list(get(r)) + [None] * (n_tasks - i - 1) for i, r in enumerate(rows)]

    w = [float(s) for s in sizes] + [1.0] * (n_tasks - len(sizes))
    out: dict[str, Any] = {
        "schema_version": 1, "step": k, "n_tasks": n_tasks, "tasks_seen": k + 1,
        "split": "test", "kind": kind, "kinds": list(kinds), "test_sizes": list(sizes),
        "retrieval": {}, "class_incremental": {},
    }
    for what in ("retrieval", "class_incremental"):
        for mode in MODES:
            out[what][mode] = {
                kd: M.summarize(matrix(lambda r, w_=what, m_=mode, k_=kd: r[w_][m_][k_]), w)
                for kd in kinds
            }
    out["task_aware"] = M.summarize(matrix(lambda r: r["task_aware"]), w)
    summary: dict[str, Any] = {}
    for mode in MODES:
        ret = out["retrieval"][mode][kind]
        ci = out["class_incremental"][mode][kind]
        summary[mode] = {
            "retrieval_last": ret["last"], "retrieval_aia": ret["average_incremental"],
            "retrieval_forgetting": ret["forgetting"],
            "ci_last": ci["last"], "ci_aia": ci["average_incremental"],
            "ci_forgetting": ci["forgetting"], "ci_bwt": ci["bwt"],
        }
    ta = out["task_aware"]
    summary["task_aware"] = {"last": ta["last"], "aia": ta["average_incremental"],
                             "forgetting": ta["forgetting"], "bwt": ta["bwt"]}
    out["summary"] = summary
    return out


def _row_from_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """Row ``step`` of every matrix of a step's metrics (for resuming)."""
    k = int(m["step"])
    row: dict[str, Any] = {"retrieval": {}, "class_incremental": {}}
    for what in ("retrieval", "class_incremental"):
        for mode in MODES:
            row[what][mode] = {kd: m[what][mode][kd]["matrix"][k][: k + 1] for kd in m["kinds"]}
    row["task_aware"] = m["task_aware"]["matrix"][k][: k + 1]
    return row


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

        import cft.backbones  # noqa: F401
        import cft.data  # noqa: F401
        from cft.registry import BACKBONES, DATASETS, SIGNATURES

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
        from cft.device import amp_dtype, configure, resolve_device

        self.device = resolve_device(cfg.device)
        amp = amp_dtype(self.device, cfg.precision)
        configure(self.device)
        self.backbone.place(self.device, amp)
        if self.backbone.modality != self.stream.modality:
            raise ValueError(f"backbone.name: backbone {cfg.backbone.name!r} takes "
                             f"{self.backbone.modality!r} inputs but dataset {cfg.data.name!r} "
                             f"yields {self.stream.modality!r}")
        self.sig_cls = SIGNATURES.get(cfg.signature.kind)
        self.kind = primary_kind(cfg)
        self.kinds = [k for k in ("centroid", "nll") if k in self.sig_cls.kinds]
        self._ready = True
        return self

    # ---- helpers ------------------------------------------------------------------------
    @property
    def progress(self) -> bool:
        return bool(self.cfg.output.progress)

    def _signature(self, tag: str, t: int) -> Any:
        params = inspect.signature(self.sig_cls.__init__).parameters
        opts = {k: v for k, v in asdict(self.cfg.signature).items()
                if k != "kind" and k in params}
        opts["random_state"] = derive_seed(self.cfg.seed, f"signature-{tag}", t)
        return self.sig_cls(**opts)

    def _lower(self, split: str, j: int) -> Any:
        """Frozen lower-layer cache of task ``j``'s split; also keeps its labels, so a
        stream that holds one task in memory (images) is decoded once per (split, task)."""
        key = (split, j)
        if key not in self._lower_cache:
            data = self.stream.task(j).split(split)
            self._labels[key] = data.labels
            self._lower_cache[key] = self.backbone.encode(
                data.inputs, batch_size=self.cfg.backbone.batch_size, progress=False)
        return self._lower_cache[key]

    def _split_labels(self, split: str, j: int) -> np.ndarray:
        self._lower(split, j)
        return self._labels[(split, j)]

    def _upper(self, cache: Any, adapter: Any) -> np.ndarray:
        from cft.retrieval import representations

        return representations(self.backbone, cache, adapter, self.cfg.backbone.batch_size)

    def _shared(self, split: str, j: int) -> np.ndarray:
        key = (split, j)
        if key not in self._shared_cache:
            self._shared_cache[key] = self._upper(self._lower(split, j), None)
        return self._shared_cache[key]

    def _adapted(self, split: str, j: int, s: int, rows: np.ndarray | None) -> np.ndarray:
        """``h_s`` of task ``j``'s split samples ``rows`` (``None`` = all); cached by the
        caller (:class:`cft.store.SplitReps`)."""
        cache = self._lower(split, j)
        return self._upper(cache if rows is None else cache.subset(rows), self.modules[s])

    # ---- one task ---------------------------------------------------------------------------
    def _train_task(self, t: int) -> dict[str, Any]:
        import bounds
        from cft.composition import ProteusAdapter
        from cft.heads import LDAHead
        from cft.train import TrainConfig, train_task

        cfg = self.cfg
        t0 = time.perf_counter()
        seed_everything(derive_seed(cfg.seed, "task", t))
        data = self.stream.task(t)
        train_cache = self.backbone.encode(data.train.inputs,
                                           batch_size=cfg.backbone.batch_size,
                                           progress=self.progress)
        module = ProteusAdapter.for_backbone(
            self.backbone, rank=cfg.module.rank, lora_alpha=cfg.module.lora_alpha,
            alpha=cfg.module.alpha, previous=list(self.modules), coef_init=cfg.module.coef_init,
            seed=derive_seed(cfg.seed, "module", t), orth=cfg.module.orth).to(self.device)
        tcfg = TrainConfig(**asdict(cfg.train), seed=derive_seed(cfg.seed, "train", t),
                           progress=self.progress)
        result = train_task(self.backbone, module, train_cache, data.train.labels, tcfg)
        crash = os.environ.get(CRASH_ENV)
        if crash is not None and crash.strip() == str(t):
            raise SimulatedCrash(f"{CRASH_ENV}={crash}: simulated crash during task {t}")
        module.eval()
        z_adapted = self._upper(train_cache, module)
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
            **module.reuse_stats(),
        }
        self.rundir.write_task(t, TaskArtifacts(
            module=module.to_state_dict(),
            signature_adapted=sig_a.to_arrays(),
            signature_shared=sig_s.to_arrays(),
            head=head.to_arrays(),
            reps_calibration=reps["calibration"],
            reps_test=reps["test"],
            done=done,
            train_clusters=train_cs,
            train_scores=train_scores,
        ))
        return done

    def _train_scores(self, cache: Any, z_adapted: np.ndarray,
                      z_shared: np.ndarray) -> dict[str, np.ndarray]:
        """Task t's train split scored against modules / signatures 0..t, at training time
        (the statistics of the adapted rule's earlier-claimed errors, docs/theory.md §10).

        ``h_s(x)`` for the earlier modules s < t costs t passes of the adapted layers over
        the train split; the new module's and the shared representations are reused."""
        from cft.retrieval import LazyReps, score_matrices

        t = len(self.modules) - 1

        def get(s: int, rows: np.ndarray | None) -> np.ndarray:
            if s == t:
                return z_adapted if rows is None else z_adapted[rows]
            return self._upper(cache if rows is None else cache.subset(rows), self.modules[s])

        S = score_matrices(LazyReps(len(z_shared), t + 1, get), z_shared, self.sig_adapted,
                           self.sig_shared, self.kinds, self.cfg.retrieval.shortlist)
        return {f"{mode}-{kind}": S[(mode, kind)] for kind in self.kinds for mode in MODES}

    def _load_task(self, t: int) -> dict[str, Any]:
        from cft.composition import ProteusAdapter
        from cft.heads import LDAHead
        from cft.signatures import Signature

        art = self.rundir.read_task(t)
        module = ProteusAdapter.from_state_dict(art.module, previous=list(self.modules))
        module.to(self.device).eval()
        self.modules.append(module)
        self.sig_adapted.append(Signature.from_arrays(art.signature_adapted))
        self.sig_shared.append(Signature.from_arrays(art.signature_shared))
        self.heads.append(LDAHead.from_arrays(art.head))
        self._shared_cache[("calibration", t)] = art.reps_calibration.astype(np.float32)
        self._shared_cache[("test", t)] = art.reps_test.astype(np.float32)
        return art.done

    # ---- evaluation -------------------------------------------------------------------------
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

        Scores, retrieval and predictions come from :func:`cft.retrieval.evaluate` (the one
        evaluation path); ``reps_a[s]`` holds every sample under module ``s``."""
        import bounds
        from cft.retrieval import evaluate
        from cft.store import SplitReps

        tasks = range(k + 1)
        short = self.cfg.retrieval.shortlist
        scores: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
        extra: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        clusters: dict[str, Any] = {}
        row: dict[str, Any] = {"retrieval": {m: {} for m in MODES},
                               "class_incremental": {m: {} for m in MODES}}
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
            for (mode, kind), S in ev.scores.items():
                got, pred = ev.retrieved[(mode, kind)], ev.pred[(mode, kind)]
                scores[(split, mode, kind)] = {"task": task, "scores": S,
                                               "label": labels, "pred": pred}
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
        self._lower_cache: dict[tuple[str, int], Any] = {}
        self._labels: dict[tuple[str, int], np.ndarray] = {}
        self._shared_cache: dict[tuple[str, int], np.ndarray] = {}
        from cft.store import SCRATCH, RepStore

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
                self.echo(self._summary_line(t, m, done, met, time.perf_counter() - t0))
        self._store.close()
        rd.write_metrics(met)
        wall = prior_wall + time.perf_counter() - t_start
        self._append_results(met, wall)  # before "complete": a crash in between redoes it
        rd.update_run(status="complete", tasks_complete=m, wall_seconds=wall)
        return RunResult(rd.path, met, wall, time.perf_counter() - t_start, k0, False)

    def _summary_line(self, t: int, m: int, done: dict[str, Any], met: dict[str, Any],
                      seconds: float) -> str:
        s = met["summary"]
        names = self.stream.task(t).class_names
        label = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")
        loss = done.get("train_loss") or []
        loss_s = f"loss {loss[-1]:.3f}" if loss else "no training"
        return (f"task {t + 1}/{m} [{label}] {loss_s} | {self.kind} retrieval "
                f"adapted {s['adapted']['retrieval_last']:.3f} shared "
                f"{s['shared']['retrieval_last']:.3f} | class-inc adapted "
                f"{s['adapted']['ci_last']:.3f} shared {s['shared']['ci_last']:.3f} | "
                f"task-aware {s['task_aware']['last']:.3f} | {seconds:.1f}s")

    def _append_results(self, met: dict[str, Any], wall: float) -> None:
        """The run's results line: ``RUN_DIR/results.jsonl`` (written whole, atomically, so
        a repeated completion leaves one line) and, if ``output.results`` is set, appended
        to that file too."""
        cfg = self.cfg
        line = {
            "run_dir": str(self.rundir.path.resolve()),
            "completed": now(),
            "preset": cfg.preset, "method": cfg.method, "seed": cfg.seed,
            "dataset": cfg.data.name, "backbone": cfg.backbone.name,
            "signature": cfg.signature.kind, "n_tasks": met["n_tasks"], "kind": met["kind"],
            "wall_seconds": wall,
            "summary": met["summary"],
            "config": self.config_dict,
        }
        text = json.dumps(line, allow_nan=False) + "\n"
        with atomic_file(self.rundir.path / RESULTS_FILE) as fh:
            fh.write(text.encode())
        if not cfg.output.results:
            return
        path = Path(cfg.output.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
