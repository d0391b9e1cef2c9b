"""The run-directory schema (docs/run-dir.md): every name, path, mode, kind and split.

One place for the layout that ``cft`` writes (:mod:`cft.run.rundir`) and that every reader
uses (:mod:`bounds.check.rundir`, :mod:`cft.experiments.analysis`, the tests' factory, the benches).
It lives in ``bounds`` (no torch, no cft) because the checker must read a run directory
without ``cft`` installed.

Layout (schema version :data:`SCHEMA_VERSION`)::

    RUN/run.json config.json env.json tasks.json metrics.json results.jsonl
    RUN/tasks/NNN/          module.safetensors, signature-{space}.npz, head.npz,
                            train-clusters-shared.npz, train-scores.npz,
                            reps-shared-{split}.npy, done.json (written last)
    RUN/eval/step-NNN/      metrics.json, mixtures-shared.npz,
                            {split}/{mode}-{kind}.npz, {split}/clusters-shared.npz,
                            {split}/{name}.npz (e.g. task-aware.npz)
    RUN/scratch/            working space while running (not part of the results)

``NNN`` is the 0-based task / step index, zero-padded to at least three digits.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "CLUSTERS", "CONFIG", "DONE", "ENV", "EVAL", "HEAD", "KINDS", "METRICS", "MIXTURES",
    "MODES", "MODULE", "NOT_APPLICABLE", "RESULTS", "RUN", "SCHEMA_VERSION", "SCORE_RE",
    "SPACES", "SPLITS",
    "SCRATCH", "STATUSES", "STEP_RE", "TASKS", "TASKS_META", "TASK_RE", "TMP_PREFIX",
    "TRAIN_CLUSTERS", "TRAIN_SCORES", "reps_file", "score_key", "scores_file", "signature_file",
    "step_dir",
    "task_dir",
]

#: version written to ``run.json`` and the only one the checker reads
SCHEMA_VERSION = 1
#: held-out splits evaluated at every step (train is only fitted on)
SPLITS = ("calibration", "test")
#: retrieval modes: adapted (h_s(x) under module s) and shared (frozen f(x))
MODES = ("adapted", "shared")
#: score kinds: nearest centroid (squared distance) and mixture negative log-likelihood
KINDS = ("centroid", "nll")
#: representation spaces a signature is fitted in (same names as the modes)
SPACES = MODES
#: ``run.json`` status values
STATUSES = ("running", "complete")
#: prefix of the temporary files / folders of atomic writes
TMP_PREFIX = ".tmp-"

# ---- top-level files
RUN = "run.json"
CONFIG = "config.json"
ENV = "env.json"
TASKS_META = "tasks.json"
METRICS = "metrics.json"
#: the value of ``metrics.json``'s ``retrieval`` for a method with no task retrieval
NOT_APPLICABLE = "n/a"
#: the run's results line (one JSON line, inside the run directory)
RESULTS = "results.jsonl"
TASKS = "tasks"
EVAL = "eval"
#: working space of a running run (spilled representations, cft.evaluation.store); emptied when a
#: run starts or resumes, removed when it completes; never read, no part of the results
SCRATCH = "scratch"

# ---- tasks/NNN/
MODULE = "module.safetensors"
HEAD = "head.npz"
DONE = "done.json"
TRAIN_CLUSTERS = "train-clusters-shared.npz"
TRAIN_SCORES = "train-scores.npz"

# ---- eval/step-NNN/
MIXTURES = "mixtures-shared.npz"
CLUSTERS = "clusters-shared.npz"

TASK_RE = re.compile(r"^(\d{3,})$")
STEP_RE = re.compile(r"^step-(\d{3,})$")
#: ``{mode}-{kind}.npz`` (a score file) or, without ``.npz``, a key of train-scores.npz
SCORE_RE = re.compile(rf"^({'|'.join(MODES)})-({'|'.join(KINDS)})(?:\.npz)?$")


def task_dir(root: str | Path, t: int) -> Path:
    """``root/tasks/NNN``."""
    return Path(root) / TASKS / f"{int(t):03d}"


def step_dir(root: str | Path, k: int) -> Path:
    """``root/eval/step-NNN``."""
    return Path(root) / EVAL / f"step-{int(k):03d}"


def score_key(mode: str, kind: str) -> str:
    """``{mode}-{kind}``: the stem of a score file and a key of ``train-scores.npz``."""
    if mode not in MODES or kind not in KINDS:
        raise ValueError(f"score: bad (mode, kind) {(mode, kind)!r}; modes {MODES}, "
                         f"kinds {KINDS}")
    return f"{mode}-{kind}"


def scores_file(split: str, mode: str, kind: str) -> str:
    """``{split}/{mode}-{kind}.npz``, relative to a step folder."""
    if split not in SPLITS:
        raise ValueError(f"score: bad split {split!r}; splits {SPLITS}")
    return f"{split}/{score_key(mode, kind)}.npz"


def signature_file(space: str) -> str:
    """``signature-{space}.npz`` in a task folder."""
    if space not in SPACES:
        raise ValueError(f"signature: bad space {space!r}; spaces {SPACES}")
    return f"signature-{space}.npz"


def reps_file(split: str) -> str:
    """``reps-shared-{split}.npy`` in a task folder: the frozen held-out representations."""
    if split not in SPLITS:
        raise ValueError(f"reps: bad split {split!r}; splits {SPLITS}")
    return f"reps-shared-{split}.npy"
