"""One sweep cell: ``python -m cft.experiments.sweep cell DIR CELL`` runs (or resumes) it as
an ordinary ``cft run`` directory (:func:`run_cell`), in the process an executor started.

Test hook: ``CFT_SWEEP_KILL=CELL_ID@T`` makes the first attempt of that cell kill its own
process (SIGKILL) right after task ``T``'s training, like a lost node.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.experiments.sweep_spec import (
    LOGS,
    Cell,
    manifest_cells,
)
from cft.run.atomic import now, read_json
from cft.run.rundir import RunDir

__all__ = ["KILL_ENV", "run_cell"]

KILL_ENV = "CFT_SWEEP_KILL"

def _kill_task(cell_id: str) -> int | None:
    spec = os.environ.get(KILL_ENV, "")
    if "@" not in spec:
        return None
    cid, _, t = spec.rpartition("@")
    return int(t) if cid == cell_id and t.strip().isdigit() else None


def run_cell(out: str | os.PathLike[str], cell_id: str) -> dict[str, Any]:
    """Run or resume one cell in this process; returns ``{"id", "status", ...}``.

    Bad input (the configuration, missing data, a folder holding another run) raises a
    one-line ``ValueError``.
    """
    from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash

    out = Path(out)
    cells = {c.id: c for c in manifest_cells(out)}
    if cell_id not in cells:
        raise ValueError(f"CELL: {cell_id!r} is not a cell of {str(out)!r}")
    cell = cells[cell_id]
    path = out / cell.dir
    kill_at = _kill_task(cell.id) if not RunDir(path).exists() else None
    if kill_at is not None:
        os.environ[CRASH_ENV] = str(kill_at)
    elif _kill_task(cell.id) is not None:
        os.environ.pop(CRASH_ENV, None)  # a later attempt of a killed cell runs through
    cfg = cell.resolve()
    runner = Runner(cfg, path).setup()
    try:
        res = runner.run()
    except SimulatedCrash:
        if kill_at is not None:
            print(f"{KILL_ENV}: killing the process of cell {cell.id} after task {kill_at}",
                  flush=True)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        raise
    return {"id": cell.id, "status": "complete", "wall_seconds": res.wall_seconds,
            "session_seconds": res.session_seconds, "resumed_from": res.resumed_from,
            "already_complete": res.already_complete, "summary": res.metrics["summary"]}


def _run_cell_logged(out: str, cell_id: str) -> dict[str, Any]:
    """:func:`run_cell` with its output appended to the cell's log (a Ray task body)."""
    cell = Cell(cell_id, "", "", "", 0, ())
    log = Path(out) / LOGS / cell.log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", buffering=1) as fh:
        fh.write(f"--- attempt at {now()} (pid {os.getpid()})\n")
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            try:
                return run_cell(out, cell_id)
            except ValueError as e:
                print(f"cft: error: {e}")
                return {"id": cell_id, "status": "failed", "rc": 2, "message": str(e)}
            except Exception as e:  # noqa: BLE001 - reported as a failed cell
                traceback.print_exc()
                return {"id": cell_id, "status": "failed", "rc": 1,
                        "message": f"{type(e).__name__}: {e}".splitlines()[0]}


# ----------------------------------------------------------------------------- executors


def _cell_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m cft.experiments.sweep cell")
    p.add_argument("out")
    p.add_argument("cell")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        res = run_cell(args.out, args.cell)
    except ValueError as e:
        print(f"cft: error: {e}", file=sys.stderr)
        return 2
    print(f"cell {res['id']}: complete ({res['wall_seconds']:.1f}s in all)")
    return 0


def _cell_summary(out: Path, cell: Cell) -> dict[str, Any] | None:
    try:
        return read_json(out / cell.dir / L.METRICS)["summary"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None
