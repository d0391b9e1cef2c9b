"""The run view of the notebooks: :class:`Run` (one run directory, every evaluated step,
validated by the checker's loader) and :func:`bound_table` (every bound after every step).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import bounds
from bounds import rundir_schema as L
from bounds.check.rundir import RunData, RunDirError, ScoreFile, read_meta
from bounds.check.rundir import load_run as _check_load_run
from bounds.rundir_schema import KINDS, MODES, SPLITS

__all__ = ["Run", "bound_table", "class_accuracy", "open_run", "ratio_to_error"]

#: what to do about a missing run directory (the notebooks read ``$CFT_RUN_DIR``)
RUN_DIR_HINT = ("set CFT_RUN_DIR to a run directory, e.g. `python -m cft run --preset tiny "
                "--out runs/tiny` then CFT_RUN_DIR=$PWD/runs/tiny (`make lab RUN=runs/...` "
                "sets it)")


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def class_accuracy(sf: ScoreFile) -> float | None:
    """Fraction of correct global-class predictions of a score file (``None`` without
    ``label``/``pred``)."""
    if sf.label is None or sf.pred is None:
        return None
    return float(np.mean(np.asarray(sf.label) == np.asarray(sf.pred)))


class Run:
    """Read-only, multi-step view of a run directory (docs/run-dir.md, schema version 1).

    Each evaluation step is loaded and validated by the checker's loader
    (:func:`bounds.check.rundir.load_run`, cached per step); this class adds the step
    sequence, signatures, per-task representations and metrics the notebooks need.

    Parameters
    ----------
    path: the run directory; must contain ``run.json`` with ``schema_version == 1``.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_dir():
            raise ValueError(f"path: {str(p)!r} is not a directory; {RUN_DIR_HINT}")
        if not (p / L.RUN).is_file():
            raise ValueError(f"path: {str(p)!r} has no run.json (not a run directory); "
                             f"{RUN_DIR_HINT}")
        try:  # the checker's rules for run.json (schema version, n_tasks, ...)
            info = read_meta(p)
        except RunDirError as exc:
            raise ValueError(f"path: {exc} (docs/run-dir.md)") from None
        self.path = p
        self.info = info
        self.config = _read_json(p / L.CONFIG) if (p / L.CONFIG).is_file() else {}
        self.tasks_meta = _read_json(p / L.TASKS_META) if (p / L.TASKS_META).is_file() else {}
        self._steps: dict[int, RunData] = {}

    # ------------------------------------------------------------ layout
    @property
    def n_tasks(self) -> int:
        """Number of tasks of the sequence (``run.json`` ``n_tasks``)."""
        return int(self.info["n_tasks"])

    @functools.cached_property
    def steps(self) -> list[int]:
        """Evaluated steps of completed tasks (``eval/step-NNN``), ascending (read once)."""
        ev = self.path / L.EVAL
        if not ev.is_dir():
            return []
        done = int(self.info.get("tasks_complete", self.n_tasks))
        out = [int(m.group(1)) for d in ev.iterdir() if d.is_dir() and
               (m := L.STEP_RE.match(d.name))]
        return sorted(k for k in out if k < done)

    @property
    def tasks(self) -> list[int]:
        """Completed tasks (``tasks/NNN`` folders), ascending."""
        td = self.path / L.TASKS
        if not td.is_dir():
            return []
        return sorted(int(m.group(1)) for d in td.iterdir()
                      if d.is_dir() and (m := L.TASK_RE.match(d.name)))

    def task_names(self) -> list[str]:
        """A short label per task (its first class names from ``tasks.json``, else ``t``)."""
        out = []
        entries = {int(e["id"]): e for e in self.tasks_meta.get("tasks", [])}
        for t in range(self.n_tasks):
            names = entries.get(t, {}).get("names", [])
            label = f"{t}: " + ", ".join(str(x) for x in names[:2]) if names else str(t)
            if len(names) > 2:
                label += ", ..."
            out.append(label)
        return out

    def step_data(self, step: int) -> RunData:
        """The checker's validated view of one step (:func:`bounds.check.rundir.load_run`)."""
        if step not in self.steps:
            raise ValueError(f"step: {step!r} not evaluated (have {self.steps})")
        if step not in self._steps:
            self._steps[step] = _check_load_run(self.path, step=step)
        return self._steps[step]

    def _step_dir(self, step: int) -> Path:
        if step not in self.steps:
            raise ValueError(f"step: {step!r} not evaluated (have {self.steps})")
        return L.step_dir(self.path, step)

    def _task_dir(self, task: int) -> Path:
        if task not in self.tasks:
            raise ValueError(f"task: {task!r} not completed (have {self.tasks})")
        return L.task_dir(self.path, task)

    # ------------------------------------------------------------ scores
    def score_keys(self, step: int) -> list[tuple[str, str, str]]:
        """Every ``(split, mode, kind)`` with a score file at ``step``."""
        sd = self.step_data(step).splits
        return [(s, mo, k) for s in SPLITS for mo in MODES for k in KINDS
                if s in sd and (mo, k) in sd[s].scores]

    def has_scores(self, step: int, split: str = "test", mode: str = "shared",
                   kind: str = "centroid") -> bool:
        """True when ``eval/step-NNN/{split}/{mode}-{kind}.npz`` exists."""
        return (split, mode, kind) in self.score_keys(step)

    def scores(self, step: int, split: str = "test", mode: str = "shared",
               kind: str = "centroid") -> ScoreFile:
        """A score file (``.scores`` (n, k+1), ``.task``, ``.label``, ``.pred``)."""
        for arg, val, allowed in (("split", split, SPLITS), ("mode", mode, MODES),
                                  ("kind", kind, KINDS)):
            if val not in allowed:
                raise ValueError(f"{arg}: must be one of {allowed}, got {val!r}")
        if not self.has_scores(step, split, mode, kind):
            raise ValueError(f"step: no {split}/{mode}-{kind} scores at step {step}")
        return self.step_data(step).splits[split].scores[(mode, kind)]

    def empirical(self, step: int, split: str = "test", mode: str = "shared",
                  kind: str = "centroid") -> tuple[np.ndarray, float]:
        """Empirical retrieval error per task (k+1,) and overall (docs/theory.md §1)."""
        sf = self.scores(step, split, mode, kind)
        per, overall = bounds.empirical_error(sf.scores, sf.task, m=sf.m)
        return np.asarray(per, dtype=np.float64), float(overall)

    # ------------------------------------------------------------ geometry and mixtures
    def clusters(self, step: int, split: str = "test") -> bounds.ClusterStats | None:
        """``eval/step-NNN/{split}/clusters-shared.npz`` or ``None``."""
        sd = self.step_data(step).splits.get(split)
        return None if sd is None else sd.clusters

    def train_clusters(self, step: int) -> bounds.ClusterStats | None:
        """Training-time cluster stats of tasks 0..step (concatenated), or ``None``."""
        return self.step_data(step).train_clusters

    def mixtures(self, step: int) -> bounds.GaussianMixtures | None:
        """``eval/step-NNN/mixtures-shared.npz`` or ``None``."""
        return self.step_data(step).mixtures

    def signature(self, task: int, space: str = "shared") -> dict[str, np.ndarray]:
        """Arrays of ``tasks/NNN/signature-{space}.npz`` (``kind``, ``centroids``, ...)."""
        if space not in MODES:
            raise ValueError(f"space: must be one of {MODES}, got {space!r}")
        f = self._task_dir(task) / L.signature_file(space)
        with np.load(f, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}

    def centroids(self, step: int, space: str = "shared") -> tuple[np.ndarray, np.ndarray]:
        """Stacked signature centroids of tasks 0..step and their task ids."""
        mus, ts = [], []
        for t in range(step + 1):
            c = np.asarray(self.signature(t, space)["centroids"], dtype=np.float64)
            mus.append(c)
            ts.append(np.full(c.shape[0], t, dtype=np.int64))
        return np.concatenate(mus), np.concatenate(ts)

    def reps(self, task: int, split: str = "test") -> np.ndarray:
        """Shared-space representations ``tasks/NNN/reps-shared-{split}.npy`` (float64)."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        self._task_dir(task)  # raises unless the task is completed
        step = next((k for k in self.steps if k >= task), None)
        if step is None:
            raise ValueError(f"task: no evaluation step covers task {task}")
        return self._step_reps(step, split)[task]

    def _step_reps(self, step: int, split: str) -> Sequence[np.ndarray]:
        """The representations :func:`open_run`'s run read for ``step`` (one array per task,
        converted to float64 when indexed: :class:`bounds.check.mapped.Float64Arrays`)."""
        sd = self.step_data(step).splits.get(split)
        if sd is None or sd.reps is None:
            note = f" ({sd.reps_note})" if sd is not None and sd.reps_note else ""
            raise ValueError(f"task: no reps-shared-{split}.npy at step {step}{note}")
        return sd.reps

    def stacked_reps(self, step: int, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Representations of tasks 0..step stacked, with their task ids."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        Z = self._step_reps(step, split)
        y = [np.full(len(z), t, dtype=np.int64) for t, z in enumerate(Z)]
        return np.concatenate(Z), np.concatenate(y)

    # ------------------------------------------------------------ metrics
    def metrics(self, step: int | None = None) -> dict[str, Any]:
        """Final ``metrics.json`` (``step=None``) or the step's one; ``{}`` if absent."""
        f = (self.path / L.METRICS) if step is None else (self._step_dir(step) / L.METRICS)
        return _read_json(f) if f.is_file() else {}

    # ------------------------------------------------------------ bounds
    def inputs(self, step: int, mode: str = "shared", kind: str = "centroid",
               delta: float = 0.05) -> bounds.BoundInputs:
        """:class:`bounds.BoundInputs` for the retrieval rule ``(mode, kind)`` at ``step``."""
        test = self.scores(step, "test", mode, kind)
        cal = (self.scores(step, "calibration", mode, kind)
               if self.has_scores(step, "calibration", mode, kind) else None)
        clusters = self.clusters(step, "test") if (mode, kind) == ("shared", "centroid") \
            else None
        mixtures = self.mixtures(step) if (mode, kind) == ("shared", "nll") else None
        return bounds.BoundInputs(
            scores=test.scores, task=test.task, clusters=clusters, mixtures=mixtures,
            cal_scores=None if cal is None else cal.scores,
            cal_task=None if cal is None else cal.task, delta=delta,
        )

    def evaluate(self, step: int, mode: str = "shared", kind: str = "centroid",
                 delta: float = 0.05) -> dict[str, bounds.BoundResult]:
        """Every applicable bound at ``step`` (:func:`bounds.evaluate`)."""
        return bounds.evaluate(self.inputs(step, mode, kind, delta))

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, n_tasks={self.n_tasks}, steps={self.steps}, "
                f"status={self.info.get('status')!r})")


def open_run(path: str | Path) -> Run:
    """Open a run directory (docs/run-dir.md); raises ``ValueError`` if it is not one."""
    return Run(path)


def bound_table(run: Run, mode: str = "shared", kind: str = "centroid",
                steps: list[int] | None = None, delta: float = 0.05) -> dict[str, Any]:
    """Every applicable bound and the empirical test error after every step.

    Returns ``{"steps": [k...], "names": [bound names, registry order], "n_tasks": m,
    "empirical": (S, m), "empirical_overall": (S,), "per_task": {name: (S, m)},
    "overall": {name: (S,)}, "guaranteed": {name: bool}}``; per-task arrays are NaN for
    tasks not yet seen at a step, and for a bound not applicable at that step.
    """
    chosen = [k for k in (run.steps if steps is None else steps)
              if run.has_scores(k, "test", mode, kind)]
    if not chosen:
        raise ValueError(f"mode: no test {mode}-{kind} scores in {str(run.path)!r}")
    m = max(run.n_tasks, max(chosen) + 1)
    S = len(chosen)
    emp = np.full((S, m), np.nan)
    emp_all = np.full(S, np.nan)
    results = []
    for i, k in enumerate(chosen):
        per, overall = run.empirical(k, "test", mode, kind)
        emp[i, : per.size] = per
        emp_all[i] = overall
        results.append(run.evaluate(k, mode, kind, delta))
    names = [nm for nm in bounds.REGISTRY if any(nm in r for r in results)]
    per_task = {nm: np.full((S, m), np.nan) for nm in names}
    overall = {nm: np.full(S, np.nan) for nm in names}
    for i, r in enumerate(results):
        for nm, res in r.items():
            per_task[nm][i, : res.per_task.size] = res.per_task
            overall[nm][i] = res.overall
    return {
        "steps": chosen, "names": names, "n_tasks": m, "mode": mode, "kind": kind,
        "empirical": emp, "empirical_overall": emp_all, "per_task": per_task,
        "overall": overall,
        "guaranteed": {nm: bounds.REGISTRY[nm].guaranteed for nm in names},
    }


def ratio_to_error(bound: np.ndarray, error: np.ndarray, n: np.ndarray | int | None = None
              ) -> np.ndarray:
    """Ratio bound / empirical error; a zero error is replaced by ``1 / (2 n)`` if ``n``
    is given (half a sample), else the ratio is ``inf`` (``nan`` when both are zero)."""
    b = np.asarray(bound, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    if n is not None:
        e = np.where(e > 0, e, 0.5 / np.asarray(n, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return b / e
