"""Benchmark: wall time of a run per device and precision (``tiny`` and ``wordnet-minilm``).

Each configuration runs in a fresh temporary run directory; prints the total wall time,
the time per task and the summary accuracies, so CPU and CUDA (fp32 / bf16) runs of the
same preset and seed can be compared.  Not measured here: no GPU was available where this
was written; run it on a CUDA machine and keep the output with the results.

Run: ``.venv/bin/python bench/bench_device.py [--presets tiny,wordnet-minilm]
     [--devices cpu,cuda] [--precisions fp32,bf16] [key=value ...]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from cft.run.resolve import resolve
from cft.run.runner import Runner


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,wordnet-minilm")
    p.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, "
          f"gpu {torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'}")
    for preset in args.presets.split(","):
        for device in args.devices.split(","):
            for precision in args.precisions.split(","):
                if precision == "bf16" and not device.startswith("cuda"):
                    continue
                cfg = resolve(preset, [*args.overrides, f"device={device}",
                                       f"precision={precision}", "output.progress=false"])
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    res = Runner(cfg, Path(tmp) / "run", echo=lambda s: None).run()
                    wall = time.perf_counter() - t0
                s = res.metrics["summary"]
                m = res.metrics["n_tasks"]
                print(f"{preset:<16} {device:<7} {precision:<5} wall {wall:7.1f} s "
                      f"({wall / m:6.2f} s/task) | CIL last adapted "
                      f"{s['adapted']['ci_last']:.3f} shared {s['shared']['ci_last']:.3f} "
                      f"task-aware {s['task_aware']['last']:.3f}", flush=True)


if __name__ == "__main__":
    main()
