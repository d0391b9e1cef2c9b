"""Benchmark: peak memory (RSS) and wall time per step of a run on the 50-task stream.

Runs ``python -m cft run --preset wordnet-fine-50`` (real MiniLM, on the CPU) in-process
into ``--out`` (resumable: an interrupted benchmark continues; a complete run is only
re-read) and prints, after every step, the step's wall time, the process's resident set
size (RSS, now and peak) and the adapted-representation store's bytes in memory and
spilled to ``RUN_DIR/scratch/``. Target: peak RSS <= 4 GB.

Run: ``.venv/bin/python bench/bench_memory.py --out runs/bench-memory [key=value ...]``
(defaults ``train.epochs=1 retrieval.shortlist=3 output.cache_mb=64``: one epoch per task
and a shortlist keep the run to tens of minutes on 2 cores; pass ``retrieval.shortlist=none``
for every task's adapted pass, about m/3 times the evaluation work).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

DEFAULTS = ["train.epochs=1", "retrieval.shortlist=3", "output.cache_mb=64"]
TARGET_GB = 4.0


def rss_mb() -> float:
    """Current resident set size of this process (MiB), from /proc."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


class PeakSampler(threading.Thread):
    """Samples the RSS every ``every`` seconds; ``peak`` is the largest seen."""

    def __init__(self, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self._stop_flag = every, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.every)

    def stop(self) -> None:
        self._stop_flag.set()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="wordnet-fine-50")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help=f"key=value (after {' '.join(DEFAULTS)})")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from cft.run.resolve import resolve
    from cft.run.runner import Runner

    overrides = [*DEFAULTS, *args.overrides, "output.progress=false"]
    cfg = resolve(args.preset, overrides, seed=args.seed)
    sampler = PeakSampler()
    sampler.start()
    runner = Runner(cfg, args.out, echo=lambda s: None)
    last = [time.perf_counter()]
    print(f"{args.preset}, seed {args.seed}, overrides: {' '.join(overrides)}")
    print(f"{'step':>4} {'wall s':>7} {'RSS MB':>7} {'peak MB':>8} {'store mem MB':>12} "
          f"{'spilled MB':>10}  summary", flush=True)

    def echo(line: str) -> None:
        now = time.perf_counter()
        st = runner.store
        step = line.split()[1]
        print(f"{step:>4} {now - last[0]:7.1f} {rss_mb():7.0f} {sampler.peak:8.0f} "
              f"{st.memory_bytes / 2**20:12.1f} {st.disk_bytes / 2**20:10.1f}  "
              f"{line.split('|', 1)[1].strip()[:60]}", flush=True)
        last[0] = now

    runner.echo = echo
    runner.setup()  # data, backbone (not part of a step's time)
    t0 = last[0] = time.perf_counter()
    res = runner.run()
    wall = time.perf_counter() - t0
    sampler.stop()
    peak = max(sampler.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    m = res.metrics["n_tasks"]
    done = m - res.resumed_from
    s = res.metrics["summary"]
    print(f"wall {wall:.0f} s for {done} step(s) ({wall / max(done, 1):.1f} s/step; "
          f"run total {res.wall_seconds:.0f} s); peak RSS {peak:.0f} MiB "
          f"({peak / 1024:.2f} GiB, target <= {TARGET_GB:g} GB: "
          f"{'met' if peak / 1024 <= TARGET_GB else 'NOT met'})")
    print(f"final: retrieval adapted {s['adapted']['retrieval_last']:.3f} shared "
          f"{s['shared']['retrieval_last']:.3f} | CIL adapted {s['adapted']['ci_last']:.3f} "
          f"shared {s['shared']['ci_last']:.3f} task-aware {s['task_aware']['last']:.3f}")


if __name__ == "__main__":
    main()
