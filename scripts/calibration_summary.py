"""Calibration-split summary of one or more run directories (for choosing settings).

Nothing is chosen on test data (README, "Choosing the demo's defaults"): this reads only
``eval/step-NNN/calibration/*.npz`` and ``tasks/NNN/done.json``.

    python scripts/calibration_summary.py RUN_DIR [RUN_DIR ...] [--kind nll|centroid]

Per run, for both retrieval modes: task-retrieval and class-incremental accuracy after the
last step (``last``) and averaged over steps (``AIA``; each step's accuracy is over all
calibration samples of the tasks seen, the sample-weighted step accuracy of
:func:`cft.metrics.step_accuracy`), task-aware accuracy, then per task the fraction of
exact-zero reuse coefficients and the largest normalised overlap ``||A_k A_j^T||``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cft.config import from_dict, primary_kind
from cft.rundir import load_npz


def summarise(run: Path, kind: str | None = None) -> dict[str, Any]:
    """Calibration accuracies (last, AIA) per mode and the per-task reuse statistics."""
    cfg = from_dict(json.loads((run / "config.json").read_text()))
    kind = kind or primary_kind(cfg)
    steps = sorted(p for p in (run / "eval").iterdir() if p.name.startswith("step-"))
    if not steps:
        raise ValueError(f"{run}: no eval/step-NNN folders")
    out: dict[str, Any] = {"run": str(run), "kind": kind}
    for mode in ("adapted", "shared"):
        ret, ci = [], []
        for sd in steps:
            z = load_npz(sd / "calibration" / f"{mode}-{kind}.npz")
            ret.append(float(np.mean(np.argmin(z["scores"], 1) == z["task"])))
            ci.append(float(np.mean(z["pred"] == z["label"])))
        out[mode] = {"ret_last": ret[-1], "ret_aia": float(np.mean(ret)),
                     "ci_last": ci[-1], "ci_aia": float(np.mean(ci))}
    ta = [load_npz(sd / "calibration" / "task-aware.npz") for sd in steps]
    out["task_aware_last"] = float(np.mean(ta[-1]["pred"] == ta[-1]["label"]))
    sparsity, overlap = [], []
    for d in sorted((run / "tasks").iterdir()):
        done = json.loads((d / "done.json").read_text())
        sparsity.append(done.get("coef_sparsity"))
        ov = [v for vals in (done.get("overlap") or {}).values() for v in vals]
        overlap.append(max(ov) if ov else None)
    out["coef_sparsity"] = sparsity
    out["overlap_max"] = overlap
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--kind", choices=("centroid", "nll"), default=None,
                    help="score kind (default: the run's eval.kind)")
    args = ap.parse_args(argv)
    print("run | kind | adapted ret last/AIA | adapted CI last/AIA | shared ret last/AIA | "
          "shared CI last/AIA | task-aware | coef sparsity per task | max overlap per task")
    for run in args.runs:
        try:
            s = summarise(run, args.kind)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {run}: {exc}", file=sys.stderr)
            return 2
        a, sh = s["adapted"], s["shared"]
        print(f"{run.name} | {s['kind']} | {100 * a['ret_last']:.1f}/{100 * a['ret_aia']:.1f} | "
              f"{100 * a['ci_last']:.1f}/{100 * a['ci_aia']:.1f} | "
              f"{100 * sh['ret_last']:.1f}/{100 * sh['ret_aia']:.1f} | "
              f"{100 * sh['ci_last']:.1f}/{100 * sh['ci_aia']:.1f} | "
              f"{100 * s['task_aware_last']:.1f} | "
              f"{' '.join(_fmt(v) for v in s['coef_sparsity'])} | "
              f"{' '.join(_fmt(v) for v in s['overlap_max'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
