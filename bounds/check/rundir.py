"""Loading and validating a run directory (docs/run-dir.md, schema version 1).

Everything is read with ``allow_pickle=False``. Any problem with the input raises
:class:`RunDirError` with a one-line message ``"<relative path>: <what is wrong>"``; the CLI
turns it into exit code 2. Only what the checker reads is validated: ``run.json``, the
score matrices of one evaluation step, and (when present) the split cluster statistics,
the per-task training cluster statistics, the Gaussian mixtures and the held-out shared
representations used by the Assumption A.1 diagnostics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import ClusterStats
from .. import rundir_schema as L
from .._validate import fmt_list
from ..rundir_schema import KINDS, MODES, SCHEMA_VERSION, SPLITS
from .files import (
    Float64Arrays,
    RunDirError,
    _float_array,
    _int_field,
    _present,
    _read_json,
    _read_npy,
    _read_npz,
    _rel,
    _require,
    run_provenance,
)
from .readers import (
    RunData,
    ScoreFile,
    SplitData,
    _cap,
    _check_cluster_points,
    _read_mixtures,
    _read_scores,
    _schema_warnings,
    load_cluster_stats,
)

__all__ = [
    "RunDirError",
    "SCHEMA_VERSION",
    "MODES",
    "KINDS",
    "SPLITS",
    "ScoreFile",
    "SplitData",
    "RunData",
    "load_run",
    "read_meta",
    "load_cluster_stats",
]

# ------------------------------------------------------------------ run.json / steps
def read_meta(root: Path) -> dict[str, Any]:
    """Read and validate ``run.json`` (schema version, counts, status); ``RunDirError``
    with a one-line message otherwise."""
    meta = _read_json(root / L.RUN, L.RUN)
    if not isinstance(meta, dict):
        raise RunDirError("run.json: must hold a JSON object")
    if "schema_version" not in meta:
        raise RunDirError("run.json: lacks schema_version")
    if isinstance(meta["schema_version"], float):  # 1.0 is not the integer version 1
        raise RunDirError(f"run.json: schema_version: must be the integer {SCHEMA_VERSION}, "
                          f"got the number {meta['schema_version']!r}")
    if meta["schema_version"] != SCHEMA_VERSION or isinstance(meta["schema_version"], bool):
        raise RunDirError(
            f"run.json: schema_version {meta['schema_version']!r} is not supported "
            f"(this checker reads version {SCHEMA_VERSION})"
        )
    n_tasks = _int_field(meta, "n_tasks", "run.json", minimum=1)
    done = _int_field(meta, "tasks_complete", "run.json", minimum=0)
    if done > n_tasks:
        raise RunDirError(f"run.json: tasks_complete {done} exceeds n_tasks {n_tasks}")
    status = meta.get("status")
    if status is not None and status not in L.STATUSES:
        raise RunDirError(f"run.json: status must be 'running' or 'complete', got {status!r}")
    return meta


def _choose_step(root: Path, meta: dict[str, Any], step: int | None) -> tuple[int, list[str]]:
    n_tasks, done = meta["n_tasks"], meta["tasks_complete"]
    status = meta.get("status")
    warnings: list[str] = []
    if done == 0:
        raise RunDirError(f"run.json: 0 of {n_tasks} tasks complete; nothing to check yet")
    eval_dir = root / L.EVAL
    if not _present(eval_dir):
        raise RunDirError("eval: missing (no evaluation step recorded)")
    _require(eval_dir, "eval", directory=True)
    steps = sorted(
        int(mt.group(1)) for p in eval_dir.iterdir()
        if p.is_dir() and (mt := L.STEP_RE.match(p.name))
    )
    usable = [s for s in steps if s < done]
    if step is not None:
        if step not in steps:
            raise RunDirError(
                f"eval/step-{step:03d}: missing (recorded steps: {fmt_list(steps)})")
        if step >= done:
            raise RunDirError(
                f"eval/step-{step:03d}: task {step} is not complete "
                f"({done} of {n_tasks} tasks complete)"
            )
        chosen = step
    else:
        if not usable:
            raise RunDirError(
                f"eval: no evaluation step among tasks 0..{done - 1} (found steps "
                f"{fmt_list(steps)})"
            )
        chosen = usable[-1]
    if status == "running" or done < n_tasks:
        warnings.append(
            f"run unfinished (status {status or 'unset'}): {done} of {n_tasks} tasks "
            f"complete; checking step {chosen} (tasks 0..{chosen})"
        )
    elif step is None and chosen != n_tasks - 1:
        warnings.append(f"no evaluation after the last task; checking step {chosen}")
    return chosen, warnings


# ------------------------------------------------------------------ public entry point
def load_run(
    run_dir: str | Path, *, step: int | None = None, splits: tuple[str, ...] = SPLITS
) -> RunData:
    """Load and validate ``run_dir`` at ``step`` (default: latest completed step).

    Score matrices are read for both splits (the PAC bounds of the test split read the
    calibration scores); cluster statistics and representations only for ``splits``.
    """
    root = Path(run_dir)
    if not _present(root):
        raise RunDirError(f"{run_dir}: no such directory")
    _require(root, str(run_dir), directory=True)
    meta = read_meta(root)
    k, warnings = _choose_step(root, meta, step)
    m = k + 1
    step_dir = L.step_dir(root, k)
    data = RunData(root=root, meta=meta, step=k, splits={}, warnings=warnings)

    declared = _retrieval_block(step_dir)  # the step's metrics.json, read once
    learned = _learned_rules(declared)
    for split in SPLITS:
        sdir = step_dir / split
        if not sdir.is_dir():
            continue
        sd = SplitData(split)
        for p in sorted(sdir.iterdir()):
            mt = L.SCORE_RE.match(p.name)
            rule = (mt.group(1), mt.group(2)) if mt else learned.get(p.name)
            if rule is not None:
                mode, kind = rule
                sd.scores[(mode, kind)] = _read_scores(p, _rel(root, p), split, mode, kind, m)
        if split in splits:
            cpath = sdir / L.CLUSTERS
            if _present(cpath):
                sd.clusters_rel = _rel(root, cpath)
                sd.clusters = load_cluster_stats(cpath, sd.clusters_rel, notes=data.warnings,
                                                 schemas=data.schemas)
                if sd.clusters.n_tasks != m:
                    raise RunDirError(f"{sd.clusters_rel}: covers {sd.clusters.n_tasks} tasks, "
                                      f"expected {m}")
                _check_cluster_points(sd)
            sd.reps, sd.reps_note = _read_reps(root, split, m)
        data.splits[split] = sd

    chosen = [s for s in splits if s in data.splits and data.splits[s].scores]
    if not chosen:
        want = " or ".join(splits)
        valid = ", ".join(f"{md}-{k}.npz" for md in MODES for k in KINDS)
        other = sorted({p.name for s in splits if (step_dir / s).is_dir()
                        for p in (step_dir / s).glob("*.npz")})
        seen = f"; found {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}" if other \
            else ""
        raise RunDirError(
            f"{_rel(root, step_dir)}: no score matrix for split {want} (valid names: "
            f"{valid}){seen}"
        )
    data.rules_expected = _expected_rules(declared, data)
    _check_complete(root, meta, step_dir, data, splits)
    mpath = step_dir / L.MIXTURES
    if _present(mpath):
        data.mixtures_rel = _rel(root, mpath)
        data.mixtures = _read_mixtures(mpath, data.mixtures_rel, m)
    data.train_clusters, data.train_note = _read_train_clusters(root, m, data)
    data.train_scores, data.train_scores_note = _read_train_scores(root, m)
    _check_dims(data)
    data.warnings.extend(_schema_warnings(data.schemas))
    data.task_names = _task_names(root)
    data.provenance = run_provenance(root)
    data.summary_line = _summary_line(root)
    return data


def _task_names(root: Path) -> list[str]:
    """Per task its first two class names, as ``cft run`` prints them (``tasks.json``;
    optional: [] when absent or unreadable, never an error)."""
    try:
        meta = json.loads((root / L.TASKS_META).read_text(encoding="utf-8"))
        out = []
        for task in meta["tasks"]:
            names = [str(n) for n in task.get("names", [])]
            out.append(", ".join(names[:2]) + (", ..." if len(names) > 2 else ""))
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return []


def _summary_line(root: Path) -> str | None:
    """The run's results line (``results.jsonl``) as ``cft run`` summarises it: preset,
    method, dataset and the last-step accuracies in % (optional, never an error)."""
    try:
        line = json.loads((root / L.RESULTS).read_text(encoding="utf-8").splitlines()[0])
        parts = [f"{k} {line[k]}" for k in ("preset", "method", "dataset", "backbone")
                 if line.get(k) is not None]
        summ = line.get("summary") or {}
        for mode in [*(md for md in MODES if md in summ), *sorted(set(summ) - set(MODES))]:
            blk = summ.get(mode)
            if isinstance(blk, dict) and isinstance(blk.get("retrieval_last"), (int, float)):
                parts.append(f"{mode} retrieval accuracy {100 * blk['retrieval_last']:.1f}% "
                             f"(error {1 - blk['retrieval_last']:.3f})")
        return ", ".join(parts) or None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError):
        return None


def _retrieval_block(step_dir: Path) -> dict[str, Any]:
    """The ``retrieval`` block of the step's ``metrics.json`` (``{mode: {kind: ...}}``), or
    {} when the file or the block is missing or malformed."""
    try:
        met = json.loads((step_dir / L.METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    ret = met.get("retrieval") if isinstance(met, dict) else None
    return ret if isinstance(ret, dict) else {}


def _learned_rules(declared: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{file name: (mode, kind)}`` of the learned retrieval rules that the step's
    ``metrics.json`` declares (``declared``: its :func:`_retrieval_block`; ``eval.rule =
    R``: score files ``R-{kind}.npz``, smaller = closer like every score file,
    docs/run-dir.md). Only declared rules are read, so a
    misnamed parameter-free file is never taken for a learned rule."""
    out = {}
    for mode, kinds in declared.items():
        if mode in MODES or not isinstance(kinds, dict):
            continue
        for kind in kinds:
            if isinstance(kind, str) and "/" not in mode + kind:
                out[f"{mode}-{kind}.npz"] = (mode, kind)
    return out


def _expected_rules(declared: dict[str, Any], data: RunData) -> list[str]:
    """The rules of the step: the score files of every split (learned rules included), and
    the parameter-free rules of the ``retrieval`` block of the step's ``metrics.json``
    (a declared learned rule is expected where its file is present: runs made before its
    score files were written stay checkable)."""
    rules = {f"{mode}-{kind}" for sd in data.splits.values() for mode, kind in sd.scores}
    rules |= {f"{mode}-{kind}" for mode, kinds in declared.items()
              if mode in MODES and isinstance(kinds, dict) for kind in kinds if kind in KINDS}
    return sorted(rules)


def _check_complete(root: Path, meta: dict[str, Any], step_dir: Path, data: RunData,
                    splits: tuple[str, ...]) -> None:
    """A run whose ``run.json`` says ``complete`` holds every expected rule file in every
    checked split: a missing one is bad input (exit 2), never a rule silently left out
    of the ladder (a hand-made run without ``status`` is checked as it is)."""
    if meta.get("status") != "complete":
        return
    for split in splits:
        sd = data.splits.get(split)
        if sd is None:  # no folder for the split at all: its rules are not compared
            continue
        have = {f"{mo}-{ki}" for mo, ki in sd.scores}
        miss = [r for r in data.rules_expected if r not in have]
        if miss:
            rel = _rel(root, step_dir / split / f"{miss[0]}.npz")
            more = f" (and {', '.join(miss[1:])})" if len(miss) > 1 else ""
            raise RunDirError(
                f"{rel}: missing{more}; run.json says the run is complete and the step's "
                f"rules are {', '.join(data.rules_expected)}")


def _read_train_scores(root: Path, m: int) -> tuple[dict[tuple[str, str], list[np.ndarray]],
                                                     str | None]:
    """``tasks/NNN/train-scores.npz``: per (mode, kind) the list over tasks t of the
    (n_train_t, t + 1) training-time score matrices (docs/run-dir.md)."""
    paths = [L.task_dir(root, t) / L.TRAIN_SCORES for t in range(m)]
    present = [p.is_file() for p in paths]
    if not all(present):
        miss = [t for t, ok in enumerate(present) if not ok]
        return {}, ("no tasks/NNN/train-scores.npz" if len(miss) == m else
                    f"train-scores.npz missing for task(s) {_cap(miss)}")
    out: dict[tuple[str, str], list[np.ndarray]] = {}
    for t, p in enumerate(paths):
        rel = _rel(root, p)
        z = _read_npz(p, rel)
        for key, arr in z.items():
            mt = L.SCORE_RE.match(key)
            if not mt:
                continue
            S = _float_array(arr, rel, key, 2)
            if S.shape[1] != t + 1 or S.shape[0] == 0:
                raise RunDirError(f"{rel}: {key} has shape {S.shape}, expected (n_train, {t + 1})")
            out.setdefault((mt.group(1), mt.group(2)), []).append(S)
    incomplete = [k for k, v in out.items() if len(v) != m]
    for k in incomplete:
        del out[k]
    return out, None if out else "tasks/NNN/train-scores.npz hold no score matrix"



def _read_reps(root: Path, split: str, m: int) -> tuple[Float64Arrays | None, str | None]:
    paths = [L.task_dir(root, t) / L.reps_file(split) for t in range(m)]
    present = [_present(p) for p in paths]
    if not any(present):
        return None, f"no tasks/NNN/reps-shared-{split}.npy"
    if not all(present):
        miss = [t for t, ok in enumerate(present) if not ok]
        return None, f"reps-shared-{split}.npy missing for task(s) {fmt_list(miss)}"
    reps = []
    for p in paths:
        rel = _rel(root, p)
        arr = _float_array(_read_npy(p, rel), rel, "representations", 2, convert=False)
        if arr.shape[0] == 0:
            raise RunDirError(f"{rel}: has no rows")
        reps.append(arr)
    dims = {r.shape[1] for r in reps}
    if len(dims) != 1:
        raise RunDirError(f"tasks/*/reps-shared-{split}.npy: dimensions differ {sorted(dims)}")
    return Float64Arrays(reps), None


def _read_train_clusters(root: Path, m: int, data: RunData | None = None
                         ) -> tuple[ClusterStats | None, str | None]:
    paths = [L.task_dir(root, t) / L.TRAIN_CLUSTERS for t in range(m)]
    present = [_present(p) for p in paths]
    if not any(present):
        return None, "no tasks/NNN/train-clusters-shared.npz"
    if not all(present):
        miss = [t for t, ok in enumerate(present) if not ok]
        return None, f"train-clusters-shared.npz missing for task(s) {fmt_list(miss)}"
    notes = None if data is None else data.warnings
    schemas = None if data is None else data.schemas
    parts = [load_cluster_stats(p, _rel(root, p), task_id=t, notes=notes, schemas=schemas)
             for t, p in enumerate(paths)]
    try:
        cs = ClusterStats.concat(parts)
        cs.validate("tasks/*/train-clusters-shared.npz")
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        raise RunDirError(f"tasks/*/train-clusters-shared.npz: {msg}") from None
    return cs, None


def _check_dims(data: RunData) -> None:
    """Cross-file consistency of the shared-space dimension."""
    dims: dict[str, int] = {}
    for sd in data.splits.values():
        if sd.clusters is not None:
            dims[sd.clusters_rel or sd.name] = sd.clusters.dim
        if sd.reps is not None:
            dims[f"tasks/*/reps-shared-{sd.name}.npy"] = sd.reps.shapes()[0][1]
    if data.train_clusters is not None:
        dims["tasks/*/train-clusters-shared.npz"] = data.train_clusters.dim
    if data.mixtures is not None:
        dims[data.mixtures_rel or "mixtures"] = data.mixtures.dim
    if len(set(dims.values())) > 1:
        first = next(iter(dims))
        other = next(k for k, v in dims.items() if v != dims[first])
        raise RunDirError(
            f"{other}: shared-space dimension {dims[other]} differs from {first} "
            f"({dims[first]})"
        )
