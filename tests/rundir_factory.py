"""Synthetic run directories in the documented format (docs/run-dir.md, schema 1).

Importable by any test (``from rundir_factory import write_run_dir``; pytest puts
``tests/`` on ``sys.path``). Nothing here runs a model: every task is a mixture of K
components in a d-dimensional "shared" space, either Gaussian (Assumption A.1 holds) or
heavy-tailed Student-t (``dist="student"``, where it does not). Centroids and Gaussian
mixtures are fitted on the train split of each task (component means / diagonal
variances), then every file the checker reads is written exactly as ``cft`` would:
score matrices for every mode / kind, split cluster statistics, training-time cluster
statistics per task, mixtures and held-out shared representations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import bounds
from bounds import rundir_schema as L
from bounds.npz import save_npz
from bounds.rundir_schema import KINDS, MODES, SCHEMA_VERSION, SPLITS

__all__ = ["write_run_dir", "write_minimal_run", "rewrite_npz", "SyntheticRun"]


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def rewrite_npz(path: str | Path, **updates: np.ndarray) -> None:
    """Rewrite an ``.npz`` archive with some keys replaced (``None`` deletes a key), with
    ``np.savez`` (the unaligned layout a hand-made run has: the checker reads it too)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        arrs = {k: np.array(z[k]) for k in z.files}
    for k, v in updates.items():
        if v is None:
            arrs.pop(k, None)
        else:
            arrs[k] = v
    np.savez(path, **arrs)


class SyntheticRun:
    """The generated data (kept for assertions): per task train / calibration / test."""

    def __init__(self, m: int, K: int, d: int, *, sep: float, spread: float, dist: str,
                 dof: float, n_train: int, n_cal: int, n_test: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.m, self.K, self.d = m, K, d
        centre = rng.normal(size=(m, 1, d)) * sep
        self.true_means = centre + rng.normal(size=(m, K, d)) * spread * 1.5
        self.scales = rng.uniform(0.7, 1.3, size=(m, K, d)) * spread
        self.dist, self.dof = dist, dof
        self.data: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for split, n in (("train", n_train), ("calibration", n_cal), ("test", n_test)):
            self.data[split] = [self._draw(rng, t, n) for t in range(m)]
        # fit on train: component means (= centroids) and diagonal variances
        w = np.zeros((m, K))
        mu = np.zeros((m, K, d))
        var = np.zeros((m, K, d))
        for t, (Z, comp) in enumerate(self.data["train"]):
            for k in range(K):
                pts = Z[comp == k]
                if pts.shape[0] < 2:
                    pts = np.vstack([pts, self.true_means[t, k][None, :]] * 2)
                w[t, k] = (comp == k).sum()
                mu[t, k] = pts.mean(axis=0)
                var[t, k] = pts.var(axis=0) + 1e-3
        w = np.maximum(w, 1.0)
        self.weights = w / w.sum(axis=1, keepdims=True)
        self.centroids = mu
        self.variances = var

    def _draw(self, rng: np.random.Generator, t: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        comp = rng.integers(0, self.K, size=n)
        if self.dist == "gauss":
            noise = rng.standard_normal((n, self.d))
        elif self.dist == "student":
            noise = rng.standard_t(self.dof, size=(n, self.d))
        else:
            raise ValueError(f"dist: unknown distribution {self.dist!r}")
        Z = self.true_means[t, comp] + noise * self.scales[t, comp]
        return Z.astype(np.float32).astype(np.float64), comp  # as stored (float32)

    def mixtures(self, k: int) -> bounds.GaussianMixtures:
        """Fitted mixtures of tasks 0..k."""
        return bounds.GaussianMixtures(self.weights[: k + 1], self.centroids[: k + 1],
                                       self.variances[: k + 1])

    def split(self, split: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Z, task, component) of tasks 0..k of ``split``."""
        parts = self.data[split][: k + 1]
        Z = np.concatenate([p[0] for p in parts])
        task = np.concatenate([np.full(p[0].shape[0], t) for t, p in enumerate(parts)])
        comp = np.concatenate([p[1] for p in parts])
        return Z, task.astype(np.int64), comp


def write_run_dir(
    root: str | Path,
    *,
    m: int = 3,
    K: int = 2,
    d: int = 6,
    n_train: int = 120,
    n_cal: int = 80,
    n_test: int = 100,
    sep: float = 6.0,
    spread: float = 1.0,
    dist: str = "gauss",
    dof: float = 1.5,
    seed: int = 0,
    sketch_rank: int | None = None,
    status: str = "complete",
    tasks_complete: int | None = None,
    steps: str = "last",
    modes: tuple[str, ...] = MODES,
    kinds: tuple[str, ...] = KINDS,
    splits: tuple[str, ...] = SPLITS,
    clusters: bool = True,
    train_clusters: bool = True,
    mixtures: bool = True,
    reps: bool = True,
    train_scores: bool = True,
) -> Path:
    """Write a synthetic run directory under ``root`` and return its path.

    ``tasks_complete`` (default m) < m writes an unfinished run: only tasks and evaluation
    steps below it exist. ``steps`` is ``"last"`` (one evaluation after the last completed
    task) or ``"all"`` (after every completed task).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    done = m if tasks_complete is None else int(tasks_complete)
    syn = SyntheticRun(m, K, d, sep=sep, spread=spread, dist=dist, dof=dof, n_train=n_train,
                       n_cal=n_cal, n_test=n_test, seed=seed)
    rng = np.random.default_rng(seed + 1)
    _dump(root / L.RUN, {
        "schema_version": SCHEMA_VERSION, "status": status, "n_tasks": m, "tasks_complete": done,
        "seed": seed, "preset": f"synthetic-{dist}", "created": "2024-01-01T00:00:00Z",
        "updated": "2024-01-01T00:00:00Z"})
    _dump(root / L.CONFIG, {"m": m, "K": K, "d": d, "dist": dist, "seed": seed})
    _dump(root / L.ENV, {"python": "3.11", "numpy": np.__version__})
    _dump(root / L.TASKS_META, {
        "class_names": [f"c{i}" for i in range(m * K)], "class_order": list(range(m * K)),
        "tasks": [{"id": t, "classes": list(range(t * K, (t + 1) * K)),
                   "names": [f"c{i}" for i in range(t * K, (t + 1) * K)]} for t in range(m)]})
    for t in range(done):
        tdir = L.task_dir(root, t)
        tdir.mkdir(parents=True, exist_ok=True)
        Ztr, _ = syn.data["train"][t]
        if train_clusters:
            cs = bounds.cluster_stats(Ztr, np.full(Ztr.shape[0], t), syn.centroids[t],
                                      np.full(K, t), sketch_rank=sketch_rank)
            cs.save(tdir / L.TRAIN_CLUSTERS)
        if reps:
            for split in SPLITS:
                np.save(tdir / L.reps_file(split),
                        syn.data[split][t][0].astype(np.float32))
        save_npz(tdir / L.signature_file("shared"), {"kind": np.array("kmeans"),
                                                     "centroids": syn.centroids[t]})
        if train_scores:  # task t's train split against tasks 0..t, at training time
            base = {"centroid": bounds.nearest_centroid_scores(
                        Ztr, syn.centroids[: t + 1].reshape(-1, d), np.repeat(np.arange(t + 1),
                                                                              K), m=t + 1),
                    "nll": syn.mixtures(t).nll(Ztr)}
            save_npz(tdir / L.TRAIN_SCORES,
                     {L.score_key(mode, kind): base[kind] for mode in modes for kind in kinds})
        _dump(tdir / L.DONE, {"task": t, "seconds": 0.0, "train_loss": [0.0]})
    step_list = [done - 1] if steps == "last" else list(range(done))
    for k in step_list:
        if k < 0:
            continue
        sdir = L.step_dir(root, k)
        C = syn.centroids[: k + 1].reshape(-1, d)
        ctask = np.repeat(np.arange(k + 1), K)
        mix = syn.mixtures(k)
        col_scale = np.exp(0.05 * rng.normal(size=(1, k + 1)))
        for split in splits:
            Z, task, comp = syn.split(split, k)
            label = task * K + comp
            base = {
                "centroid": bounds.nearest_centroid_scores(Z, C, ctask, m=k + 1),
                "nll": mix.nll(Z),
            }
            (sdir / split).mkdir(parents=True, exist_ok=True)
            for mode in modes:
                for kind in kinds:
                    S = base[kind]
                    if mode == "adapted":  # any other score: perturbed per-task scales
                        S = S * col_scale + 0.01 * np.abs(rng.normal(size=S.shape))
                    pred = np.argmin(S, axis=1) * K
                    save_npz(sdir / L.scores_file(split, mode, kind),
                             {"task": task, "scores": S, "label": label, "pred": pred})
            if clusters:
                bounds.cluster_stats(Z, task, C, ctask, sketch_rank=sketch_rank).save(
                    sdir / split / L.CLUSTERS)
        if mixtures:
            mix.save(sdir / L.MIXTURES)
        _dump(sdir / L.METRICS, {"step": k})
    if done == m and status == "complete":
        _dump(root / L.METRICS, {"tasks": m})
    return root


def write_minimal_run(root: str | Path, S: np.ndarray, task: np.ndarray, *,
                      name: str = "shared-centroid", split: str = "test",
                      schema_version: int = 1) -> Path:
    """The hand-made minimum of docs/run-dir.md: run.json and one score matrix (written
    with ``np.savez``, as a user would)."""
    root = Path(root)
    m = int(np.asarray(S).shape[1])
    _dump(root / L.RUN, {"schema_version": schema_version, "n_tasks": m,
                              "tasks_complete": m})
    sdir = L.step_dir(root, m - 1) / split
    sdir.mkdir(parents=True, exist_ok=True)
    np.savez(sdir / f"{name}.npz", task=np.asarray(task, dtype=np.int64),
             scores=np.asarray(S, dtype=np.float64))
    return root
