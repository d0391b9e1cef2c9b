"""Benchmark: ``python -m bounds.check`` on a run of m=100 tasks x K=10 clusters, d=768,
and its cost as m grows (issue #21; docs/theory.md §13.5).

Writes a complete run directory (docs/run-dir.md) in a temporary directory: 50,000 test
and 10,000 calibration evaluation samples, every mode/kind score matrix, split cluster
statistics (q=16 covariance sketch), per-task training cluster statistics, diagonal
Gaussian mixtures and held-out shared representations; then times the checker CLI end to
end (default output, predictions included; target: 3 s) and prints the time, its ratio to
the target and to a BLAS matmul (2048^3) timed in the same run (machine speed).

Scaling (``--ms 10,25,50,100,200``; ``--ms ''`` skips it): the same run with the samples
per task of the headline run, for each m: the end-to-end time, the sequential time of each
tier (load; 1 sample-exact: score bounds and the split's cluster bounds; 2 PAC;
3 training-time cluster bounds; 4 predictions; A.1: Gaussian bound and diagnostics), the
exponent b of a least-squares fit t = a m^b (all m, and m >= 50), and the peak RSS of the
checker at the largest m. The mixtures are isotropic per component so the likelihood
scores are computed exactly from squared centroid distances (fast to write).

Run: ``.venv/bin/python bench/bench_check.py [--n 50000] [--ms 10,25,50,100,200]
[--jobs N] [--plot] [--keep DIR]``
"""

from __future__ import annotations

import json
import os
import shutil
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
from bounds.npz import save_npz

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
            save_npz(sdir / L.scores_file(split, "shared", kind), {"task": y, "scores": S})
            save_npz(sdir / L.scores_file(split, "adapted", kind),
                     {"task": y, "scores": S * scale})
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


# the checker's peak RSS: VmHWM of its own address space (ru_maxrss of a process would
# include the bench's own memory at the fork before exec) and ru_maxrss of its workers
_WRAP = ("import re, resource, runpy, sys; sys.argv = ['bounds.check'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('bounds.check', run_name='__main__')\n"
         "finally:\n    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
         "    print('RSS', hwm.group(1) if hwm else 0, "
         "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n")


def run_check(root: Path, out: Path, jobs: int | None, plot: bool) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB of the checker and its workers, stdout) of the CLI."""
    cmd = [sys.executable, "-c", _WRAP, str(root), "--json", str(out / "check.json")]
    cmd += [] if jobs is None else ["--jobs", str(jobs)]
    cmd += ["--plot", str(out / "check.png")] if plot else []
    os.sync()  # the run just written reaches the disk now, not while the check is timed
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    rss = [ln.split() for ln in proc.stderr.splitlines() if ln.startswith("RSS ")]
    if proc.returncode != 0 or not rss:
        sys.exit(f"bench_check: python -m bounds.check failed with exit code "
                 f"{proc.returncode}; no timing reported. stderr: "
                 f"{proc.stderr.strip()[-2000:] or '-'}")
    return dt, max(int(rss[-1][1]), int(rss[-1][2])) / 1024.0, proc.stdout


def tier_times(root: Path) -> dict[str, float]:
    """Sequential seconds of each tier of the checker on ``root`` (jobs = 1), in this
    process with the memory settings ``python -m bounds.check`` gives its own (freed memory
    kept, no huge-page advice; docs/theory.md §14.7), which stay for the rest of the
    bench."""
    import clarabel  # noqa: F401  (imports are not a tier's cost)
    import scipy.special  # noqa: F401
    import scipy.stats  # noqa: F401
    import threadpoolctl  # noqa: F401

    from bounds.check import load_run
    from bounds.check.core import bound_groups
    from bounds.check.diagnostics import A1Expectation, a1_diagnostics
    from bounds.check.jobs import memory_settings
    from bounds.predict import gauss_full, gauss_proj

    memory_settings()
    g = bound_groups()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_run(root)
    t["load"] = time.perf_counter() - t0

    def timed(key: str, fn) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        fn()
        t[key] = t.get(key, 0.0) + time.perf_counter() - t0

    for split, sd in data.splits.items():
        for sf in sd.scores.values():
            timed("1 sample-exact", lambda sf=sf: bounds.evaluate(bounds.BoundInputs(
                scores=sf.scores, task=sf.task), names=g["scores"]))
            if split == "calibration":
                timed("2 PAC", lambda sf=sf: bounds.evaluate(bounds.BoundInputs(
                    cal_scores=sf.scores, cal_task=sf.task), names=g["pac"]))
        timed("1 sample-exact", lambda sd=sd: bounds.evaluate(bounds.BoundInputs(
            clusters=sd.clusters), names=g["clusters"]))
    timed("3 training-time", lambda: bounds.evaluate(bounds.BoundInputs(
        clusters=data.train_clusters), names=g["clusters"]))
    timed("4 prediction", lambda: gauss_proj(data.train_clusters))
    timed("4 prediction", lambda: gauss_full(data.train_clusters, data.mixtures))
    exp = A1Expectation(data.mixtures)
    timed("A.1", lambda: bounds.evaluate(bounds.BoundInputs(mixtures=data.mixtures),
                                         names=g["mixtures"]))
    for sd in data.splits.values():
        timed("A.1", lambda sd=sd: a1_diagnostics(data.mixtures, sd.reps, expectation=exp))
    return t


def exponent(ms: list[int], ts: list[float], lo: int = 0) -> float | None:
    """b of the least-squares fit log t = log a + b log m over the m >= lo."""
    pts = [(m, t) for m, t in zip(ms, ts) if m >= lo and t > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def blas_seconds(n: int = 2048) -> float:
    A = np.random.default_rng(1).normal(size=(n, n))
    A @ A  # warm-up
    best = np.inf
    for _ in range(3):  # the machine's speed: the fastest of three
        t0 = time.perf_counter()
        A @ A
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = problem_parser(__doc__)
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--plot", action="store_true", help="also time --plot")
    ap.add_argument("--keep", default=None, help="write the run here instead of a temp dir")
    ap.add_argument("--jobs", type=int, default=None, help="--jobs of the checker "
                    "(default: its own default, the cores)")
    ap.add_argument("--ms", default="10,25,50,100,200",
                    help="task counts of the scaling curve ('' skips it)")
    a = ap.parse_args()
    target = 3.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep) if a.keep else Path(tmp) / "run"
        t0 = time.perf_counter()
        if not (a.keep and (root / L.RUN).is_file()):
            write_bench_run(root, a.m, a.K, a.d, a.n, a.n_cal, a.n_train, a.q, a.seed)
        t_write = time.perf_counter() - t0
        t_check, rss, out = run_check(root, Path(tmp), a.jobs, a.plot)
        t_mm = blas_seconds()
        print(f"run: m={a.m} tasks x K={a.K} clusters, d={a.d}, q={a.q}, n={a.n} test, "
              f"{a.n_cal} calibration, {a.n_train} train samples (written in {t_write:.1f} s)")
        print(f"bounds.check exit code 0, {len(out.splitlines())} output lines; "
              f"jobs={a.jobs or 'default (cores)'}; peak RSS {rss:.0f} MiB")
        print(f"time: python -m bounds.check {t_check:.2f} s; target {target:g} s: ratio "
              f"{t_check / target:.2f}; BLAS 2048^3 matmul in this run {t_mm:.3f} s: "
              f"check = {t_check / t_mm:.0f} matmuls")
        ms = [int(x) for x in a.ms.split(",") if x.strip()]
        if not ms:
            return
        per = {"n": a.n / a.m, "n_cal": a.n_cal / a.m, "n_train": a.n_train / a.m}
        rows: list[tuple[int, float, float, dict[str, float]]] = []
        for m in ms:
            rm = Path(tmp) / f"run-{m}"
            write_bench_run(rm, m, a.K, a.d, int(per["n"] * m), int(per["n_cal"] * m),
                            int(per["n_train"] * m), a.q, a.seed)
            t_m, rss_m, _ = run_check(rm, Path(tmp), a.jobs, False)
            rows.append((m, t_m, rss_m, tier_times(rm)))
            shutil.rmtree(rm)
            print(f"  m={m:4d}: check {t_m:7.2f} s, peak RSS {rss_m:6.0f} MiB; sequential "
                  "tiers: " + ", ".join(f"{k} {v:.2f} s" for k, v in rows[-1][3].items()),
                  flush=True)
        ms_ = [r[0] for r in rows]
        fits = {"check (end to end)": [r[1] for r in rows]}
        for k in rows[0][3]:
            fits[k] = [r[3].get(k, 0.0) for r in rows]
        print(f"scaling exponent b (t ~ m^b, goal <= 2), all m / m >= 50, samples per task "
              f"fixed ({per['n']:.0f} test):")
        for k, ts in fits.items():
            b_all, b_hi = exponent(ms_, ts), exponent(ms_, ts, 50)
            print(f"  {k:20s} {'-' if b_all is None else f'{b_all:.2f}':>6s} / "
                  f"{'-' if b_hi is None else f'{b_hi:.2f}'}")
        print(f"peak RSS at m={rows[-1][0]}: {rows[-1][2]:.0f} MiB")


if __name__ == "__main__":
    main()
