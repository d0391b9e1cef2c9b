"""The typed readers of a run directory's files (docs/run-dir.md): score files, cluster
statistics (with the older layout without ``resid_diag`` and a rounding allowance for the
offsets of collapsed clusters), mixtures; and the containers the loader fills
(:class:`ScoreFile`, :class:`SplitData`, :class:`RunData`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import ClusterStats, GaussianMixtures
from .._validate import fmt_list
from ..empirical import check_scores, task_counts
from .files import (
    Float64Arrays,
    RunDirError,
    _index_array,
    _int64,
    _read_npz,
)

#: every ClusterStats field; a file must hold the required ones (no default in the
#: dataclass). ``resid_diag`` is optional: files written before it existed lack it.
_CS_FIELDS = tuple(f.name for f in dataclasses.fields(ClusterStats))
_CS_REQUIRED = tuple(f.name for f in dataclasses.fields(ClusterStats)
                     if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)

#: ``RunData.schemas`` values: which ClusterStats layout a file was read in
CS_SCHEMA_CURRENT = "ClusterStats with resid_diag"
CS_SCHEMA_NO_RESID_DIAG = ("ClusterStats without resid_diag (written before it existed): "
                           "read as the isotropic residual resid (I - V V')")

#: rounding allowance of the offset check, in units of eps * |centroid| (see
#: :func:`_offset_allowance`)
OFFSET_ROUNDING = 64.0


@dataclass
class ScoreFile:
    """One ``{split}/{mode}-{kind}.npz`` score matrix with its true tasks."""

    split: str
    mode: str
    kind: str
    rel: str
    scores: np.ndarray
    task: np.ndarray
    label: np.ndarray | None = None
    pred: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.scores.shape[0])

    @property
    def m(self) -> int:
        return int(self.scores.shape[1])


@dataclass
class SplitData:
    """Everything recorded for one split at the checked step."""

    name: str
    scores: dict[tuple[str, str], ScoreFile] = field(default_factory=dict)
    clusters: ClusterStats | None = None
    clusters_rel: str | None = None
    reps: Float64Arrays | None = None  # float64 when indexed
    reps_note: str | None = None


@dataclass
class RunData:
    """A validated run directory restricted to one evaluation step."""

    root: Path
    meta: dict[str, Any]
    step: int
    splits: dict[str, SplitData]
    train_clusters: ClusterStats | None = None
    train_note: str | None = None
    mixtures: GaussianMixtures | None = None
    mixtures_rel: str | None = None
    train_scores: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)
    train_scores_note: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: relative path of each ClusterStats file read -> its layout (``CS_SCHEMA_*``)
    schemas: dict[str, str] = field(default_factory=dict)
    #: the rules (``"{mode}-{kind}"``) the checked step should hold in every split: those
    #: of any split's score files and of the step's ``metrics.json`` (``retrieval``)
    rules_expected: list[str] = field(default_factory=list)
    #: per task, its first class names (``tasks.json``; empty when not recorded)
    task_names: list[str] = field(default_factory=list)
    #: what made the run (``env.json``'s ``cft_version`` / ``git``), None if not recorded
    provenance: str | None = None
    #: the run's results line, condensed (``results.jsonl``), None if there is none
    summary_line: str | None = None

    @property
    def m(self) -> int:
        """Number of tasks seen at the checked step (k + 1)."""
        return self.step + 1


# ------------------------------------------------------------------ typed readers
def _read_scores(path: Path, rel: str, split: str, mode: str, kind: str, m: int) -> ScoreFile:
    z = _read_npz(path, rel)
    for key in ("task", "scores"):
        if key not in z:
            raise RunDirError(f"{rel}: lacks the required key {key!r} (has {sorted(z)})")
    if z["scores"].dtype.kind not in "fiu":
        raise RunDirError(f"{rel}: scores must be numeric, got dtype {z['scores'].dtype}")
    if z["task"].dtype.kind not in "iu":  # the run-dir format stores integer task ids
        raise RunDirError(f"{rel}: task must hold integers, got dtype {z['task'].dtype}")
    try:
        S, task = check_scores(z["scores"], z["task"], name="scores")
    except ValueError as exc:
        raise RunDirError(f"{rel}: {' '.join(str(exc).split())}") from None
    if S.shape[1] != m:
        raise RunDirError(
            f"{rel}: scores has {S.shape[1]} task columns, expected {m} "
            f"(step {m - 1} covers tasks 0..{m - 1})"
        )
    try:
        task_counts(task, m)
    except ValueError as exc:
        raise RunDirError(f"{rel}: {' '.join(str(exc).split())}") from None
    n = S.shape[0]
    extra = {k: _index_array(z[k], rel, k, n) for k in ("label", "pred") if k in z}
    return ScoreFile(split, mode, kind, rel, S, task, extra.get("label"), extra.get("pred"))


def _offset_allowance(kw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(|offset|, the largest |offset| allowed) per cluster, with a rounding allowance.

    In exact arithmetic ``msr = |offset|^2 + tr Sigma`` (parallel axes), so ``|offset|^2 <=
    msr``. An offset computed honestly as ``mean(z) - mu`` carries the rounding of the mean,
    of order eps * |mu|: a collapsed cluster (every point on its centroid, msr = 0) far from
    the origin gets an offset of ~1e-13 at |mu| ~ 1e3. So the offset may exceed
    ``sqrt(msr)`` by ``OFFSET_ROUNDING * eps * (|mu| + sqrt(msr))``.
    """
    eps = float(np.finfo(np.float64).eps)
    off = np.asarray(kw["offset"], dtype=np.float64)
    msr = np.asarray(kw["msr"], dtype=np.float64)
    cen = np.asarray(kw["centroid"], dtype=np.float64)
    if off.ndim != 2 or cen.shape != off.shape or msr.shape != off.shape[:1] or not (
            np.all(np.isfinite(off)) and np.all(np.isfinite(msr)) and np.all(np.isfinite(cen))):
        return np.zeros(0), np.zeros(0)  # shapes / finiteness: ClusterStats.validate says so
    # lengths in units of a power of two (no overflow of the squares at any scale)
    big = max(float(np.abs(off).max(initial=0.0)), float(np.abs(cen).max(initial=0.0)),
              float(np.sqrt(np.maximum(msr, 0.0)).max(initial=0.0)))
    e = int(np.frexp(big)[1]) if big > 0 else 0
    o, c = np.ldexp(off, -e), np.ldexp(cen, -e)
    root = np.sqrt(np.maximum(np.ldexp(msr, -2 * e), 0.0))
    b = np.sqrt(np.einsum("cd,cd->c", o, o))
    slack = OFFSET_ROUNDING * eps * (np.sqrt(np.einsum("cd,cd->c", c, c)) + root)
    return np.ldexp(b, e), np.ldexp(root + slack, e)


def _round_offsets(kw: dict[str, np.ndarray], rel: str, notes: list[str] | None) -> None:
    """Offsets longer than sqrt(msr) by no more than the rounding allowance are put on the
    sphere |offset| = sqrt(msr) (0 for a collapsed cluster): the exact offset is in that
    ball, and it moves by at most the allowance. Longer ones are left for validation to
    refuse."""
    b, allowed = _offset_allowance(kw)
    if b.size == 0:
        return
    msr = np.asarray(kw["msr"], dtype=np.float64)
    root = np.sqrt(np.maximum(msr, 0.0))
    # within validation's own relative tolerance (1e-9 on the squares): nothing to do
    over = np.flatnonzero((b > root * (1.0 + 4e-10)) & (b <= allowed))
    if over.size == 0:
        return
    off = np.array(kw["offset"], dtype=np.float64)
    for c in over:
        off[c] = off[c] * (root[c] / b[c]) if root[c] > 0 else 0.0
        for _ in range(8):  # the rescaled square may exceed msr by an ulp: shrink it
            if float(off[c] @ off[c]) <= float(msr[c]):
                break
            off[c] = off[c] * (1.0 - 4 * np.finfo(np.float64).eps)
    kw["offset"] = off
    if notes is not None:
        notes.append(
            f"{rel}: offset of cluster(s) {fmt_list(over)} longer than sqrt(msr) by rounding "
            f"only (at most {OFFSET_ROUNDING:g} eps |centroid|, e.g. a collapsed cluster with "
            "msr = 0): read as |offset| = sqrt(msr)")


def load_cluster_stats(path: Path, rel: str, *, task_id: int | None = None,
                       notes: list[str] | None = None,
                       schemas: dict[str, str] | None = None) -> ClusterStats:
    """Read a ``ClusterStats`` archive without pickle.

    ``task_id`` is for ``tasks/NNN/train-clusters-shared.npz`` (one task's statistics):
    its cluster task ids must all equal ``task_id`` (global id) or 0 (local id), and are
    set to ``task_id``; such a file is validated as a part (``complete=False``) and again
    after concatenation.

    Older files: ``resid_diag`` (added for the predictions, docs/theory.md §9.3) may be
    missing; the statistics then carry ``resid_diag=None``, which every consumer reads as
    the isotropic residual ``resid (I - V V')`` it stood for before. ``schemas`` (if given)
    receives ``rel -> CS_SCHEMA_*``, the layout read. Offsets that exceed ``sqrt(msr)``
    only by rounding are accepted (:func:`_offset_allowance`); ``notes`` (if given)
    receives a line saying so.
    """
    z = _read_npz(path, rel)
    missing = [f for f in _CS_REQUIRED if f not in z]
    if missing:
        raise RunDirError(f"{rel}: lacks ClusterStats field(s) {missing}")
    for f in _CS_REQUIRED:  # finiteness and shapes: ClusterStats.validate below
        if z[f].dtype.kind not in "fiub":
            raise RunDirError(f"{rel}: field {f} must be numeric, got dtype {z[f].dtype}")
    kw = {f: z[f] for f in _CS_REQUIRED}  # read-only (mapped or read), not copied here
    if "resid_diag" in z:  # optional (predictions, docs/theory.md §9.3)
        if z["resid_diag"].dtype.kind not in "fiu":
            raise RunDirError(f"{rel}: field resid_diag must be numeric, got dtype "
                              f"{z['resid_diag'].dtype}")
        kw["resid_diag"] = np.array(z["resid_diag"], dtype=np.float64)
    if schemas is not None:
        schemas[rel] = CS_SCHEMA_CURRENT if "resid_diag" in kw else CS_SCHEMA_NO_RESID_DIAG
    for f in ("task", "count", "point_cluster"):
        if kw[f].dtype.kind not in "iu":
            raise RunDirError(f"{rel}: field {f} must hold integers, got dtype {kw[f].dtype}")
        kw[f] = _int64(kw[f], rel, f)
    if kw["task"].ndim != 1 or kw["task"].size == 0:
        raise RunDirError(f"{rel}: field task must be a non-empty 1-D array")
    if task_id is not None:
        ids = np.unique(kw["task"])
        if ids.size != 1 or int(ids[0]) not in (0, task_id):
            raise RunDirError(
                f"{rel}: expected the clusters of task {task_id} only, found task ids "
                f"{fmt_list(ids)}"
            )
        kw["task"] = np.full_like(kw["task"], task_id)
    _round_offsets(kw, rel, notes)
    try:
        cs = ClusterStats(**kw).validate(rel, complete=task_id is None)
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        raise RunDirError(msg if msg.startswith(rel) else f"{rel}: {msg}") from None
    return cs


def _schema_warnings(schemas: dict[str, str]) -> list[str]:
    """One warning per group of ClusterStats files read in the older layout."""
    old = [rel for rel, s in schemas.items() if s == CS_SCHEMA_NO_RESID_DIAG]
    if not old:
        return []
    return [f"{_cap(old, 3)}: {CS_SCHEMA_NO_RESID_DIAG}; the predictions then over-state "
            "the spread outside the sketch"]


def _check_cluster_points(sd: SplitData) -> None:
    """Points of ``{split}/clusters-shared.npz`` are the samples of the split's
    ``shared-centroid.npz``, in the same order (docs/run-dir.md): each must sit in a
    cluster of its own task. (Different per-task counts are reported by the checker.)"""
    cs, sf = sd.clusters, sd.scores.get(("shared", "centroid"))
    if cs is None or sf is None or cs.point_cluster.shape[0] != sf.n:
        return
    if not np.array_equal(np.bincount(cs.point_task, minlength=sf.m),
                          np.bincount(sf.task, minlength=sf.m)):
        return
    wrong = np.flatnonzero(cs.point_task != sf.task)
    if wrong.size:
        i = int(wrong[0])
        raise RunDirError(
            f"{sd.clusters_rel}: point_cluster: {wrong.size} point(s) {fmt_list(wrong)} are "
            f"assigned to a centroid of another task than theirs in {sf.rel} (point {i} of "
            f"task {int(sf.task[i])} -> cluster {int(cs.point_cluster[i])} of task "
            f"{int(cs.point_task[i])})")


def _read_mixtures(path: Path, rel: str, m: int) -> GaussianMixtures:
    z = _read_npz(path, rel)
    missing = [k for k in ("weights", "means", "covariances") if k not in z]
    if missing:
        raise RunDirError(f"{rel}: lacks field(s) {missing}")
    try:  # GaussianMixtures checks dtypes, shapes, finiteness, weights and covariances
        mix = GaussianMixtures(z["weights"], z["means"], z["covariances"])
    except ValueError as exc:
        raise RunDirError(f"{rel}: {' '.join(str(exc).split())}") from None
    if mix.n_tasks != m:
        raise RunDirError(f"{rel}: holds {mix.n_tasks} task mixtures, expected {m}")
    return mix

def _cap(items: list[Any], n: int = 8) -> str:
    """At most ``n`` items of a list for a one-line message."""
    head = ", ".join(map(str, items[:n]))
    return f"[{head}, ... ({len(items)} in all)]" if len(items) > n else f"[{head}]"
