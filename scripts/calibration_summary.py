"""Calibration-split summary of one or more run directories (for choosing settings).

Nothing is chosen on test data (README, "Choosing the demo's defaults"): this reads only
``eval/step-NNN/calibration/*.npz`` and ``tasks/NNN/done.json``.

    python scripts/calibration_summary.py RUN_DIR [RUN_DIR ...] [--kind nll|centroid]

Per run, for both retrieval modes: task-retrieval and class-incremental accuracy after the
last step (``last``) and averaged over steps (``AIA``; each step's accuracy is over all
calibration samples of the tasks seen, the sample-weighted step accuracy of
:func:`cft.run.metrics.step_accuracy`), task-aware accuracy, then per task the fraction of
exact-zero reuse coefficients and the largest normalised overlap ``||A_k A_j^T||``.
``(se ...)`` is the bootstrap standard error of the adapted class-incremental AIA
(``--bootstrap`` resamples, with replacement, each task's calibration samples; a sample
keeps its draw count at every step), the quantity of the one-standard-error rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cft.config import from_dict, primary_kind
from cft.run.rundir import load_npz


def _aia_se(files: list[dict[str, np.ndarray]], n_boot: int, seed: int = 0) -> float:
    """Bootstrap standard error of the class-incremental AIA over the step files."""
    if n_boot < 2:
        return float("nan")
    sizes = np.bincount(files[-1]["task"])
    ok = [z["pred"] == z["label"] for z in files]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        # draw counts per sample: the same draw for a sample at every step
        w = np.concatenate([np.bincount(rng.integers(0, n, n), minlength=n) for n in sizes])
        vals.append(np.mean([np.dot(o, w[: len(o)]) / w[: len(o)].sum() for o in ok]))
    return float(np.std(vals))


def summarise(run: Path, kind: str | None = None, n_boot: int = 0) -> dict[str, Any]:
    """Calibration accuracies (last, AIA) per mode, the bootstrap standard error of the
    adapted class-incremental AIA and the per-task reuse statistics."""
    cfg = from_dict(json.loads((run / "config.json").read_text()))
    kind = kind or primary_kind(cfg)
    steps = sorted(p for p in (run / "eval").iterdir() if p.name.startswith("step-"))
    if not steps:
        raise ValueError(f"{run}: no eval/step-NNN folders")
    out: dict[str, Any] = {"run": str(run), "kind": kind}
    for mode in ("adapted", "shared"):
        files = [load_npz(sd / "calibration" / f"{mode}-{kind}.npz") for sd in steps]
        ret = [float(np.mean(np.argmin(z["scores"], 1) == z["task"])) for z in files]
        ci = [float(np.mean(z["pred"] == z["label"])) for z in files]
        out[mode] = {"ret_last": ret[-1], "ret_aia": float(np.mean(ret)),
                     "ci_last": ci[-1], "ci_aia": float(np.mean(ci))}
        if mode == "adapted":
            out["ci_aia_se"] = _aia_se(files, n_boot)
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
    ap.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                    help="bootstrap resamples for the standard error (0: none)")
    args = ap.parse_args(argv)
    print("run | kind | adapted ret last/AIA | adapted CI last/AIA | shared ret last/AIA | "
          "shared CI last/AIA | task-aware | coef sparsity per task | max overlap per task")
    for run in args.runs:
        try:
            s = summarise(run, args.kind, args.bootstrap)
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {run}: {exc}", file=sys.stderr)
            return 2
        a, sh = s["adapted"], s["shared"]
        se = "" if np.isnan(s["ci_aia_se"]) else f" (se {100 * s['ci_aia_se']:.1f})"
        print(f"{run.name} | {s['kind']} | {100 * a['ret_last']:.1f}/{100 * a['ret_aia']:.1f} | "
              f"{100 * a['ci_last']:.1f}/{100 * a['ci_aia']:.1f}"
              f"{se} | "
              f"{100 * sh['ret_last']:.1f}/{100 * sh['ret_aia']:.1f} | "
              f"{100 * sh['ci_last']:.1f}/{100 * sh['ci_aia']:.1f} | "
              f"{100 * s['task_aware_last']:.1f} | "
              f"{' '.join(_fmt(v) for v in s['coef_sparsity'])} | "
              f"{' '.join(_fmt(v) for v in s['overlap_max'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
