"""The pair table of docs/results.md: per pair of tasks of a run, the retrieval errors
between the two (both directions) of each rule, against whether they share a source and
against the Bhattacharyya distance of their shared-space distributions (calibration split).

    python scripts/pairs_table.py RUN_DIR [--rules adapted-nll,shared-nll] > results/pairs-X.txt

Pairs are sorted by distance; the last lines give, per rule, the mean pair error of the
pairs that share a source and of those that do not, and the Spearman correlation of pair
error with distance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cft.experiments.analysis import Run, pair_table  # noqa: E402


def render(tab: dict, rules: list[str]) -> str:
    from bounds.rank_correlation import spearman

    src = tab["sources"]
    head = f"{'pair':<7} {'sources':<22} {'same':<5} {'distance':>8}  " + "  ".join(
        f"{r:>16}" for r in rules)
    lines = [head]
    pairs = sorted(tab["pairs"], key=lambda p: p[3])
    for t, s, same, dist, errs in pairs:
        lines.append(f"{t}-{s:<5} {src[t] + '/' + src[s]:<22} {'yes' if same else 'no':<5} "
                     f"{dist:>8.2f}  " + "  ".join(f"{errs[r]:>16.3f}" for r in rules))
    for r in rules:
        e = np.array([p[4][r] for p in pairs])
        same = np.array([p[2] for p in pairs])
        d = np.array([p[3] for p in pairs])
        parts = [f"{r}: mean pair error"]
        if same.any():
            parts.append(f"same source {e[same].mean():.3f} ({int(same.sum())} pairs)")
        if (~same).any():
            parts.append(f"different sources {e[~same].mean():.3f} ({int((~same).sum())} "
                         f"pairs)")
        rho = spearman(d, e)
        parts.append(f"Spearman rho with distance {'nan' if rho is None else f'{rho:.2f}'}")
        lines.append("; ".join(parts))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--rules", default=None, help="comma-separated mode-kind names")
    args = p.parse_args(argv)
    try:
        run = Run(args.run)
        tab = pair_table(run)
    except ValueError as e:
        print(f"pairs_table: error: {e}", file=sys.stderr)
        return 2
    rules = args.rules.split(",") if args.rules else list(tab["rules"])
    print(render(tab, rules), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
