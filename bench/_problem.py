"""The benchmark problem size shared by bench_bounds.py and bench_check.py (issue #2, #4):
m = 100 tasks x K = 10 clusters, d = 768, q = 16 sketch, 50,000 evaluation samples."""

from __future__ import annotations

import argparse


def problem_parser(description: str | None) -> argparse.ArgumentParser:
    """argparse with the problem-size options (defaults = the issues' benchmark)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--m", type=int, default=100, help="tasks")
    ap.add_argument("--K", type=int, default=10, help="clusters per task")
    ap.add_argument("--d", type=int, default=768, help="dimension")
    ap.add_argument("--q", type=int, default=16, help="covariance sketch rank")
    ap.add_argument("--n", type=int, default=50_000, help="evaluation samples")
    ap.add_argument("--n-cal", type=int, default=10_000, help="calibration samples")
    ap.add_argument("--seed", type=int, default=0)
    return ap
