"""Benchmark: the time ``import bounds`` takes in a fresh interpreter.

Every ``--help`` of ``python -m bounds.check`` / ``bounds.selftest`` pays it. The sympy
closed forms run from their generated numpy source (``bounds/forms_generated.py``) and
scipy / threadpoolctl are imported inside the functions that need them, so importing the
package loads numpy and
the package itself only. Each repetition runs ``python -X importtime -c "import bounds"``
in a new process and reads the cumulative time of the ``bounds`` import (numpy included)
and of ``numpy`` alone; the median over ``--repeat`` runs is printed, with the heavy
modules that were (not) imported. Target: < 0.3 s on an idle machine.

Run: ``.venv/bin/python bench/bench_import.py [--repeat 7]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sympy", "scipy.stats", "scipy.linalg", "threadpoolctl", "torch", "hypothesis")
PROBE = ("import sys, bounds; print(' '.join(m for m in {heavy!r} if m in sys.modules))")


def once() -> tuple[float, float, str]:
    """(seconds for ``import bounds``, seconds for numpy within it, heavy modules loaded)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-X", "importtime", "-c",
                        PROBE.format(heavy=HEAVY)], cwd=ROOT, env=env, capture_output=True,
                       text=True, check=True)
    cum = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if m:  # each module is listed once, at the depth where it was first imported
            cum[m.group(2)] = int(m.group(1)) * 1e-6
    return cum.get("bounds", float("nan")), cum.get("numpy", 0.0), p.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    runs = [once() for _ in range(max(1, args.repeat))]
    total = statistics.median(r[0] for r in runs)
    numpy = statistics.median(r[1] for r in runs)
    heavy = runs[-1][2] or "none"
    print(f"import bounds: {total:.3f} s median of {len(runs)} fresh interpreters "
          f"(numpy {numpy:.3f} s, the package itself {total - numpy:.3f} s); "
          f"heavy modules loaded: {heavy}; target < 0.3 s: "
          f"{'met' if total < 0.3 else 'NOT met on this machine'}")


if __name__ == "__main__":
    main()
