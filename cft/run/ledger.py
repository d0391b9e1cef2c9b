"""The run's results line (``RUN_DIR/results.jsonl``, docs/run-dir.md): one JSON line per
completed run with its configuration and summary metrics, gathered by ``cft report``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.config import Config
from cft.run.atomic import atomic_file, now
from cft.run.rundir import RunDir

__all__ = ["RESULTS_FILE", "task_line", "write_results_line"]

#: the run's results line, inside the run directory
RESULTS_FILE = L.RESULTS


def write_results_line(rundir: RunDir, cfg: Config, config_dict: dict[str, Any],
                       met: dict[str, Any], wall: float) -> None:
    """The run's results line: ``RUN_DIR/results.jsonl`` (written whole, atomically, so
    a repeated completion leaves one line) and, if ``output.results`` is set, appended
    to that file too."""
    line = {
        "run_dir": str(rundir.path.resolve()),
        "completed": now(),
        "preset": cfg.preset, "method": cfg.method, "seed": cfg.seed,
        "dataset": cfg.data.name, "backbone": cfg.backbone.name,
        "signature": cfg.signature.family, "n_tasks": met["n_tasks"], "kind": met["kind"],
        "wall_seconds": wall,
        "summary": met["summary"],
        "config": config_dict,
    }
    text = json.dumps(line, allow_nan=False) + "\n"
    with atomic_file(rundir.path / RESULTS_FILE) as fh:
        fh.write(text.encode())
    if not cfg.output.results:
        return
    path = Path(cfg.output.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def task_line(class_names: list[str], t: int, m: int, done: dict[str, Any],
              met: dict[str, Any], seconds: float) -> str:
    """The console line after task ``t`` of ``m``: its id (0-based, as ``step-NNN`` in the
    run dir and as the checker prints it), its first classes, how many of the ``m`` tasks are
    done, the last training loss, :func:`cft.run.step_metrics.summary_text` of the step's
    metrics and the wall seconds."""
    from cft.run.step_metrics import summary_text

    label = ", ".join(class_names[:2]) + (", ..." if len(class_names) > 2 else "")
    loss = done.get("train_loss") or []
    loss_s = f"loss {loss[-1]:.3f}" if loss else "no training"
    return (f"task {t} [{label}] ({t + 1} of {m} done) {loss_s} | {summary_text(met)} | "
            f"{seconds:.1f}s")
