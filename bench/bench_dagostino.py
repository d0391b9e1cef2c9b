"""D'Agostino-Pearson K^2 for many groups: the checker's vectorised
``bounds.check.diagnostics.dagostino_pearson`` against ``scipy.stats.normaltest`` (one call
per group, and one call on a NaN-padded matrix with ``nan_policy="omit"``).

Why the checker keeps its own: the A.1 diagnostics test every mixture component of every
task (hundreds of groups of different sizes); tests/test_check_inputs.py pins its p-values
to scipy's to 1e-8 relative. Usage: ``python bench/bench_dagostino.py [--groups 500]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats as sps

from bounds.check.diagnostics import dagostino_pearson


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--groups", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    G = a.groups
    sizes = rng.integers(20, 200, size=G)
    g = np.repeat(np.arange(G), sizes)
    x = rng.normal(size=g.size)
    t0 = time.perf_counter()
    pv, _, _ = dagostino_pearson(x, g, G)
    t1 = time.perf_counter()
    loop = np.array([sps.normaltest(x[g == i]).pvalue for i in range(G)])
    t2 = time.perf_counter()
    pad = np.full((G, sizes.max()), np.nan)
    for i in range(G):
        pad[i, : sizes[i]] = x[g == i]
    t3 = time.perf_counter()
    padded = sps.normaltest(pad, axis=1, nan_policy="omit").pvalue
    t4 = time.perf_counter()
    vec = t1 - t0
    print(f"{G} groups of 20-199 points: vectorised {vec:.4f} s | scipy per group "
          f"{t2 - t1:.3f} s ({(t2 - t1) / vec:.0f}x slower) | scipy padded, nan_policy=omit "
          f"{t4 - t3:.3f} s ({(t4 - t3) / vec:.0f}x slower)")
    print(f"max |p - p_scipy| = {np.nanmax(np.abs(pv - loop)):.1e} (per group), "
          f"{np.nanmax(np.abs(pv - padded)):.1e} (padded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
