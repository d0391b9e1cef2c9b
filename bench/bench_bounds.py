"""Benchmark: statistics + the whole bound set at m=100 tasks x K=10 clusters, d=768.

Prints the wall time of (a) the nearest-centroid score matrices the score bounds read
(the retrieval itself, reported separately), (b) statistics (score_stats + cluster_stats
with a q=16 sketch) and (c) every bound in ``bounds.REGISTRY``; then the time of one dense
matmul with the same nominal FLOP count as (b)+(c), measured in the same run, and the ratio.
Diagonal covariances are used for the Gaussian-mixture bound (full covariances would cost
O(R d^3) per lambda evaluation for the R refined component pairs; docs/theory.md §4.4).

Run: ``.venv/bin/python bench/bench_bounds.py [--n 50000] [--seed 0]``
"""

from __future__ import annotations

import time

import numpy as np
from _problem import problem_parser

import bounds
from bounds._blas import blas_width


def make_problem(m: int, K: int, d: int, n: int, n_cal: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    # moderately separated tasks: some retrieval errors, and a share of the Gaussian
    # component pairs is close enough to need the exact Chernoff exponent
    task_centre = rng.normal(size=(m, d)) * 0.12
    centroids = (task_centre[:, None, :] + rng.normal(size=(m, K, d)) * 0.06).reshape(m * K, d)
    ctask = np.repeat(np.arange(m), K)
    scales = rng.uniform(0.05, 0.15, size=(m * K, d))  # per-cluster diagonal spread

    def draw(N: int) -> tuple[np.ndarray, np.ndarray]:
        comp = rng.integers(0, m * K, size=N)
        Z = centroids[comp] + rng.normal(size=(N, d)) * scales[comp]
        return Z, ctask[comp]

    Z, y = draw(n)
    Zc, yc = draw(n_cal)
    mix = bounds.GaussianMixtures(
        np.full((m, K), 1.0 / K), centroids.reshape(m, K, d), (scales**2).reshape(m, K, d)
    )
    return {"Z": Z, "y": y, "Zc": Zc, "yc": yc, "centroids": centroids, "ctask": ctask,
            "mix": mix}


def nominal_flops(m: int, K: int, d: int, n: int, q: int, n_refined: int, n_lam: int) -> float:
    """Dominant floating-point operations of statistics + bounds (multiply-add = 2)."""
    C = m * K
    n_c = n / C
    assign = 2.0 * n * K * d  # nearest own centroid
    sketch = C * (2.0 * n_c * n_c * d + 2.0 * n_c * n_c * d)  # Gram + eigenvectors
    directional = 2.0 * C * q * d * C + 2.0 * C * d * C * 2  # projections, offsets, D^2
    chernoff = 2.0 * C * C * d + n_refined * d * 6.0 * n_lam
    return assign + sketch + directional + chernoff


def main() -> None:
    ap = problem_parser(__doc__)
    a = ap.parse_args()
    prob = make_problem(a.m, a.K, a.d, a.n, a.n_cal, a.seed)

    t0 = time.perf_counter()
    S = bounds.nearest_centroid_scores(prob["Z"], prob["centroids"], prob["ctask"])
    Sc = bounds.nearest_centroid_scores(prob["Zc"], prob["centroids"], prob["ctask"])
    t_scores = time.perf_counter() - t0

    t0 = time.perf_counter()
    inputs = bounds.BoundInputs(
        scores=S, task=prob["y"], cal_scores=Sc, cal_task=prob["yc"], mixtures=prob["mix"],
        clusters=bounds.cluster_stats(prob["Z"], prob["y"], prob["centroids"], prob["ctask"],
                                      sketch_rank=a.q),
    )
    inputs.score_stats()
    t_stats = time.perf_counter() - t0

    per_bound: dict[str, float] = {}
    results = {}
    t0 = time.perf_counter()
    for name, b in bounds.REGISTRY.items():
        tb = time.perf_counter()
        results[name] = b.compute(inputs)
        per_bound[name] = time.perf_counter() - tb
    t_bounds = time.perf_counter() - t0

    ch = results["gaussian-chernoff"].details
    flops = nominal_flops(a.m, a.K, a.d, a.n, a.q, ch["n_refined"], 13)
    N = int(round((flops / 2.0) ** (1.0 / 3.0)))
    A = np.random.default_rng(1).normal(size=(N, N))
    A @ A  # warm-up
    t_mm = np.inf
    for _ in range(3):  # the machine's speed: the fastest of three (one varies by 1.4x)
        t0 = time.perf_counter()
        A @ A
        t_mm = min(t_mm, time.perf_counter() - t0)

    emp, emp_all = bounds.empirical_error(S, prob["y"])
    print(f"problem: m={a.m} tasks x K={a.K} clusters, d={a.d}, q={a.q}, n={a.n} eval, "
          f"{a.n_cal} calibration samples; threads (the BLAS's, for the library's blocks "
          f"and for the matmul): {blas_width()}")
    print(f"empirical retrieval error (overall): {emp_all:.4f}")
    print(f"{'bound':22s} {'overall':>9s} {'max_t':>9s} {'time [s]':>9s}")
    for name, r in results.items():
        print(f"{name:22s} {r.overall:9.4f} {r.per_task.max():9.4f} {per_bound[name]:9.3f}")
    print(f"chernoff component pairs: {ch['n_pairs']}, refined exactly: {ch['n_refined']}")
    mo = results["moment-opt"].details
    print(f"moment-opt: SDPs solved for {mo['n_sdp']} cluster(s), skipped "
          f"{mo['skipped']} (docs/theory.md §13.1)")
    print(f"time: score matrices (retrieval input) {t_scores:.2f} s")
    print(f"time: statistics {t_stats:.2f} s + bound set {t_bounds:.2f} s "
          f"= {t_stats + t_bounds:.2f} s")
    print(f"nominal FLOPs of statistics + bounds: {flops:.3e}; dense {N}x{N} matmul with the "
          f"same FLOPs: {t_mm:.3f} s; ratio {(t_stats + t_bounds) / t_mm:.1f}x (goal <= 5x); "
          f"statistics alone {t_stats / t_mm:.1f}x, bound set alone {t_bounds / t_mm:.1f}x")


if __name__ == "__main__":
    main()
