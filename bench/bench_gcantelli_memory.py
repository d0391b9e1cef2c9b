"""Benchmark: peak memory and time of the G-cantelli bound at m = 1000 tasks (issue #11).

The threshold search evaluates, for every task t, the Cantelli objective at G ~ m + 133
candidate thresholds, each a sum over the m - 1 foreign tasks: O(m^2 G) = O(m^3) time.
Memory must stay O(m^2) (chunks of tasks), not O(m^2 G) (one (m, G, m) array).

For each ``--per-task`` value the script draws ``per_task`` samples of each of the m tasks
(scores ~ N(0, 1) plus a negative shift on the own column, so some samples are
misretrieved), then times ``REGISTRY["G-cantelli"].compute`` and records its peak traced
memory (``tracemalloc``; numpy reports its buffers to it). The score matrix itself
(n x m float64) is allocated before tracing starts and listed separately.

Run: ``.venv/bin/python bench/bench_gcantelli_memory.py [--m 1000] [--per-task 1 4]``
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import bounds


def measure(m: int, per_task: int, seed: int) -> tuple[float, float, float, float]:
    """(seconds, peak MiB traced during compute, score matrix MiB, overall bound value)."""
    rng = np.random.default_rng(seed)
    n = m * per_task
    task = np.repeat(np.arange(m), per_task)
    S = rng.normal(size=(n, m))
    S[np.arange(n), task] -= 2.0
    inputs = bounds.BoundInputs(scores=S, task=task)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = bounds.REGISTRY["G-cantelli"].compute(inputs)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, S.nbytes / 2**20, res.overall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, nargs="+", default=[1000], help="numbers of tasks")
    ap.add_argument("--per-task", type=int, nargs="+", default=[1, 4],
                    help="samples per task")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(f"{'m':>6s} {'per task':>8s} {'n':>8s} {'time [s]':>9s} {'peak [MiB]':>11s} "
          f"{'scores [MiB]':>12s} {'(m, m) f64 [MiB]':>17s} {'overall':>8s}")
    for m in a.m:
        for k in a.per_task:
            sec, peak, smb, overall = measure(m, k, a.seed)
            print(f"{m:6d} {k:8d} {m * k:8d} {sec:9.2f} {peak:11.1f} {smb:12.1f} "
                  f"{m * m * 8 / 2**20:17.1f} {overall:8.4f}")


if __name__ == "__main__":
    main()
