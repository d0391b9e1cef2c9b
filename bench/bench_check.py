"""Benchmark: ``python -m bounds.check`` on a run of m=100 tasks x K=10 clusters, d=768.

Writes a complete run directory (docs/run-dir.md) in a temporary directory: 50,000 test
and 10,000 calibration evaluation samples, every mode/kind score matrix, split cluster
statistics (q=16 covariance sketch), per-task training cluster statistics, diagonal
Gaussian mixtures and held-out shared representations; then times the checker CLI
(target: under 15 s) and prints the time. The mixtures are isotropic per component so the
likelihood scores are computed exactly from squared centroid distances (fast to write).

Run: ``.venv/bin/python bench/bench_check.py [--n 50000] [--plot] [--keep DIR]``
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _problem import problem_parser
from scipy.special import logsumexp

import bounds
from bounds import rundir_schema as L

ROOT = Path(__file__).resolve().parents[1]


def _nll(Z: np.ndarray, mu: np.ndarray, var: np.ndarray, m: int, K: int) -> np.ndarray:
    """-log p_k(z) of isotropic mixtures (uniform weights), exactly, from sqdist (n, m)."""
    d = Z.shape[1]
    out = np.empty((Z.shape[0], m))
    for i0 in range(0, Z.shape[0], 5000):
        D2 = bounds.sqdist(Z[i0 : i0 + 5000], mu)
        lp = -0.5 * (D2 / var[None, :] + d * np.log(2 * np.pi * var)[None, :]) - np.log(K)
        out[i0 : i0 + 5000] = -logsumexp(lp.reshape(-1, m, K), axis=2)
    return out


def write_bench_run(root: Path, m: int, K: int, d: int, n: int, n_cal: int, n_train: int,
                    q: int, seed: int) -> None:
    """Write the benchmark run directory under ``root``."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(m, 1, d)) * 2.0
    mu = (centre + rng.normal(size=(m, K, d)) * 0.6).reshape(m * K, d)
    ctask = np.repeat(np.arange(m), K)
    sd = rng.uniform(0.05, 0.15, size=m * K)
    var = sd**2

    def draw(N: int) -> tuple[np.ndarray, np.ndarray]:
        comp = rng.integers(0, m * K, size=N)
        order = np.argsort(ctask[comp], kind="stable")
        comp = comp[order]
        Z = (mu[comp] + rng.normal(size=(N, d)) * sd[comp, None]).astype(np.float32)
        return Z.astype(np.float64), ctask[comp]

    L.step_dir(root, m - 1).mkdir(parents=True)
    json.dump({"schema_version": L.SCHEMA_VERSION, "status": "complete", "n_tasks": m,
               "tasks_complete": m, "seed": seed, "preset": "bench", "created": "", "updated": ""},
              open(root / L.RUN, "w"))
    sdir = L.step_dir(root, m - 1)
    mix = bounds.GaussianMixtures(np.full((m, K), 1.0 / K), mu.reshape(m, K, d),
                                  np.repeat(var, d).reshape(m, K, d))
    mix.save(sdir / L.MIXTURES)
    for split, N in (("calibration", n_cal), ("test", n)):
        Z, y = draw(N)
        (sdir / split).mkdir()
        base = {"centroid": bounds.nearest_centroid_scores(Z, mu, ctask, m=m),
                "nll": _nll(Z, mu, var, m, K)}
        scale = np.exp(0.05 * rng.normal(size=(1, m)))
        for kind, S in base.items():
            np.savez(sdir / L.scores_file(split, "shared", kind), task=y, scores=S)
            np.savez(sdir / L.scores_file(split, "adapted", kind), task=y, scores=S * scale)
        bounds.cluster_stats(Z, y, mu, ctask, sketch_rank=q).save(
            sdir / split / L.CLUSTERS)
        for t in range(m):
            tdir = L.task_dir(root, t)
            tdir.mkdir(parents=True, exist_ok=True)
            np.save(tdir / L.reps_file(split), Z[y == t].astype(np.float32))
    Ztr, ytr = draw(n_train)
    for t in range(m):
        sel = ytr == t
        own = slice(t * K, (t + 1) * K)
        bounds.cluster_stats(Ztr[sel], ytr[sel], mu[own], ctask[own], sketch_rank=q).save(
            L.task_dir(root, t) / L.TRAIN_CLUSTERS)


def main() -> None:
    ap = problem_parser(__doc__)
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--plot", action="store_true", help="also time --plot")
    ap.add_argument("--keep", default=None, help="write the run here instead of a temp dir")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep) if a.keep else Path(tmp) / "run"
        t0 = time.perf_counter()
        write_bench_run(root, a.m, a.K, a.d, a.n, a.n_cal, a.n_train, a.q, a.seed)
        t_write = time.perf_counter() - t0
        cmd = [sys.executable, "-m", "bounds.check", str(root), "--json",
               str(Path(tmp) / "check.json")]
        if a.plot:
            cmd += ["--plot", str(Path(tmp) / "check.png")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        t_check = time.perf_counter() - t0
        print(f"run: m={a.m} tasks x K={a.K} clusters, d={a.d}, q={a.q}, n={a.n} test, "
              f"{a.n_cal} calibration, {a.n_train} train samples (written in {t_write:.1f} s)")
        if proc.returncode != 0:
            sys.exit(f"bench_check: python -m bounds.check failed with exit code "
                     f"{proc.returncode}; no timing reported. stderr: "
                     f"{proc.stderr.strip()[-2000:] or '-'}")
        print(f"bounds.check exit code 0, {len(proc.stdout.splitlines())} output lines; "
              f"stderr: {proc.stderr.strip()[:300] or '-'}")
        print(f"time: python -m bounds.check {t_check:.2f} s (target < 15 s)")


if __name__ == "__main__":
    main()
