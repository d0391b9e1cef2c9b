"""Benchmark of the optimal two-moment bound ``moment-opt`` (docs/theory.md §3.7).

1. One cluster SDP against the number k of foreign centroids in it (r_max = k): time per
   certified solve (Clarabel, compact VBC primal with one LMI of size r + 1 + k, plus the
   certification), and the same against bound C's Cantelli union.
2. The whole ``moment-opt`` bound for a 20-task run (m = 20 tasks x K = 5 clusters, d = 384,
   exact covariances of synthetic clusters) on its three cluster sets (train, calibration,
   test) for several r_max: total time, time ratio to bound C, and tightness (mean
   per-task bound against C and against the empirical error).

Run: ``.venv/bin/python bench/bench_moment.py [--ks 5,10,20,40] [--r-max 2,4,6,8,10,12]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import bounds
from bounds.moment import DEFAULT_R_MAX, centroid_moment_bound


def cluster_problem(k: int, d: int, rank: int, rng: np.random.Generator) -> dict:
    """One cluster with k foreign centroids, a rank-``rank`` exact covariance."""
    own = rng.normal(size=d)
    foreign = own + rng.normal(size=(k, d)) * 0.35
    X = rng.normal(size=(d, rank)) * (0.6 / np.sqrt(rank))
    w, V = np.linalg.eigh(X @ X.T)
    return {"own": own, "foreign": foreign, "offset": rng.normal(size=d) * 0.02, "V": V,
            "L": np.clip(w, 0.0, None)}


def bench_sdp(ks: list[int], d: int, reps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    print(f"1. one cluster SDP (d={d}, rank-40 covariance, r_max = k): time per solve")
    print(f"   {'k':>3s} {'r':>3s} {'time [s]':>9s} {'ratio':>7s} {'SDP':>8s} {'Cantelli':>8s} "
          f"{'gap':>9s} {'iters':>5s}")
    prev = None
    for k in ks:
        n = reps if k <= 10 else 1
        times, vals = [], []
        for _ in range(n):
            cp = cluster_problem(k, d, 40, rng)
            t0 = time.perf_counter()
            res = centroid_moment_bound(cp["own"], cp["foreign"], cp["offset"], cp["V"],
                                        cp["L"], 0.0, r_max=k)
            times.append(time.perf_counter() - t0)
            vals.append(res)
        t = float(np.median(times))
        res = vals[-1]
        cert = res.certificate
        gap = cert.gap if cert is not None else float("nan")
        it = cert.iterations if cert is not None else 0
        ratio = f"{t / prev:7.1f}" if prev else f"{'':7s}"
        print(f"   {k:3d} {res.r:3d} {t:9.3f} {ratio} {res.sdp:8.4f} {res.cantelli:8.4f} "
              f"{gap:9.2e} {it:5d}")
        prev = t


def make_run(m: int, K: int, d: int, n_per_task: int, seed: int) -> dict:
    """Synthetic shared-space clusters with confusable task pairs.

    Tasks come in pairs with nearby centres; each task has K cluster offsets; within a
    cluster the spread is low rank (12 directions), the largest along the direction to
    the paired task (the confusable direction, as in real embeddings), plus isotropic
    noise. Centroids are perturbed component means (not the split means).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m // 2 + 1, 1, d)) * 0.2
    centre = np.repeat(base, 2, axis=0)[:m] + rng.normal(size=(m, 1, d)) * 0.05
    comp = centre + rng.normal(size=(m, K, d)) * 0.03
    partner = centre[np.minimum(np.arange(m) ^ 1, m - 1)] - centre
    partner /= np.maximum(np.linalg.norm(partner, axis=2, keepdims=True), 1e-12)
    basis = rng.normal(size=(m, K, d, 12)) * 0.02
    basis[:, :, :, 0] = np.broadcast_to(partner, (m, K, d)) * 0.55
    iso = 0.01

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.repeat(np.arange(m), n)
        j = rng.integers(0, K, size=t.size)
        z = rng.normal(size=(t.size, 12))
        Z = comp[t, j] + np.einsum("ndq,nq->nd", basis[t, j], z) \
            + rng.normal(size=(t.size, d)) * iso
        return Z, t

    centroids = comp.reshape(m * K, d) + rng.normal(size=(m * K, d)) * 0.005
    ctask = np.repeat(np.arange(m), K)
    return {"splits": {s: draw(n_per_task) for s in ("train", "calibration", "test")},
            "centroids": centroids, "ctask": ctask}


def bench_run(r_maxs: list[int], m: int, K: int, d: int, n: int, seed: int) -> None:
    run = make_run(m, K, d, n, seed)
    print(f"\n2. moment-opt on a {m}-task run: K={K} clusters per task, d={d}, {n} points per "
          "task and split, exact covariances")
    sets = {}
    t0 = time.perf_counter()
    for name, (Z, y) in run["splits"].items():
        cs = bounds.cluster_stats(Z, y, run["centroids"], run["ctask"],
                                  sketch_rank=int(np.bincount(y).max()))
        # n_c <= q: the sketch is exact (resid only covers rounding-level eigenvalues)
        assert float(cs.resid.max()) <= 1e-12 * float(cs.eigvals.max())
        S = bounds.nearest_centroid_scores(Z, run["centroids"], run["ctask"])
        sets[name] = (cs, bounds.empirical_error(S, y)[0])
    print(f"   statistics of the three cluster sets: {time.perf_counter() - t0:.2f} s")
    base = {}
    t_c = 0.0
    for name, (cs, emp) in sets.items():
        inp = bounds.BoundInputs(clusters=cs)
        t0 = time.perf_counter()
        base[name] = bounds.evaluate(inp, names=["C", "D"])
        t_c += time.perf_counter() - t0
        print(f"   {name:12s} empirical error mean {emp.mean():.4f}  "
              f"C {base[name]['C'].overall:.4f}  D {base[name]['D'].overall:.4f}")
    print(f"   C + D on the three sets: {t_c:.2f} s")
    print(f"   {'r_max':>5s} {'time [s]':>9s} {'/ C+D':>7s} {'solver':>7s} "
          + " ".join(f"{s[:5]:>7s}" for s in sets) + "   (overall bound)")
    for r_max in r_maxs:
        bd = bounds.MomentOptBound(r_max=r_max)
        t0 = time.perf_counter()
        vals, solver = [], 0.0
        for cs, _ in sets.values():
            res = bd.compute(bounds.BoundInputs(clusters=cs))
            vals.append(res.overall)
            solver += res.details["solver_time"]
        t = time.perf_counter() - t0
        print(f"   {r_max:5d} {t:9.2f} {t / t_c:7.1f} {solver:7.2f} "
              + " ".join(f"{v:7.4f}" for v in vals)
              + ("   <- default" if r_max == DEFAULT_R_MAX else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ks", default="5,10,20,40", help="SDP sizes k for part 1")
    ap.add_argument("--r-max", default="2,4,6,8,10,12", help="r_max values for part 2")
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--K", type=int, default=5)
    ap.add_argument("--n", type=int, default=150, help="points per task and split")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sdp", action="store_true")
    a = ap.parse_args()
    if not a.skip_sdp:
        bench_sdp([int(x) for x in a.ks.split(",")], a.d, a.reps, a.seed)
    bench_run([int(x) for x in a.r_max.split(",")], a.m, a.K, a.d, a.n, a.seed)


if __name__ == "__main__":
    main()
