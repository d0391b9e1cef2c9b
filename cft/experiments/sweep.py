"""Sweeps: presets x methods x override grid x seeds, every cell a resumable run directory.

``python -m cft sweep SPEC --out DIR [--executor local|ray] [--workers N] [--address ADDR]``

SPEC is a small TOML file::

    presets = ["wordnet-fine-5", "wordnet-fine-10"]   # required
    methods = ["proteus", "lora"]                      # default ["proteus"]
    seeds = [0, 1, 2]                                  # or a count: seeds = 3 (0, 1, 2)
    overrides = ["train.epochs=2"]                     # applied to every cell
    [grid]                                             # optional: every combination
    "signature.family" = ["dpgmm", "kmeans"]
    [resources]                                        # per cell (ray executor)
    cpus = 1
    gpus = 0

A cell is ``preset x method x grid point x seed``; its configuration is resolved exactly as
``python -m cft run --preset P --seed S method=M <overrides> <grid point>`` would, and its
run directory is ``DIR/cells/<preset>/<method>/<variant>/seed-<S>`` (``variant`` is
``base`` without a grid, else ``key=value,...``).  DIR also holds:

* ``sweep.json``: the manifest (the latest spec and every cell ever declared in DIR);
* ``logs/<cell id with / as __>.log``: the output of every attempt of a cell;
* ``results.jsonl``, ``report.md``, ``report.csv``, ``report.png``: :mod:`cft.experiments.report`.

Rerunning the same command skips complete cells and resumes unfinished ones (each cell is
an ordinary ``cft run`` directory).  Executors:

* ``local`` (default): ``--workers N`` cells at a time, each in its own process
  (``python -m cft.experiments.sweep cell DIR CELL``); a crashed or killed cell does not stop
  the others.
* ``ray``: each cell is one Ray task (``num_cpus`` / ``num_gpus`` from ``[resources]``,
  a fresh worker process per cell).  A task whose worker or node is lost is retried
  (``--retries``) and resumes from its run directory, so DIR must be on a filesystem every
  node sees.  Without ``--address`` a local Ray runtime with ``--workers`` CPUs is started.

Test hook: ``CFT_SWEEP_KILL=CELL_ID@T`` makes the first attempt of that cell kill its own
process (SIGKILL) right after task ``T``'s training, like a lost node.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.config.validation import check_int
from cft.experiments.sweep_spec import (
    LOGS,
    Cell,
    Resources,
    SweepSpec,
    cell_state,
    load_manifest,
    load_spec,
    manifest_cells,
    parse_spec,
    write_manifest,
)
from cft.run.rundir import RunDir, now, read_json

__all__ = [
    "KILL_ENV",
    "Cell",
    "CellOutcome",
    "Resources",
    "SweepSpec",
    "cell_state",
    "load_manifest",
    "load_spec",
    "manifest_cells",
    "parse_spec",
    "run_cell",
    "run_sweep",
    "write_manifest",
]

KILL_ENV = "CFT_SWEEP_KILL"
EXECUTORS = ("local", "ray")
#: defaults for a local Ray runtime on a slow or busy machine (the user's values win)
RAY_LOCAL_ENV = {"RAY_raylet_start_wait_time_s": "60", "RAY_agent_register_timeout_ms": "60000"}

Echo = Callable[[str], None]


# ----------------------------------------------------------------------------- one cell
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
@dataclass
class CellOutcome:
    id: str
    status: str  # complete | failed | skipped
    seconds: float = 0.0
    message: str = ""
    attempts: int = 0
    summary: dict[str, Any] | None = None


def _last_line(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1].strip() if lines else ""


def _rc_text(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def _child_env(workers: int) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])  # this checkout, first on the path
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    return env


def _run_local(out: Path, cells: list[Cell], workers: int, retries: int,
               report: Callable[[Cell, CellOutcome], None], start: Callable[[Cell], None]
               ) -> list[CellOutcome]:
    env = _child_env(workers)
    (out / LOGS).mkdir(parents=True, exist_ok=True)

    def one(cell: Cell) -> CellOutcome:
        start(cell)
        t0 = time.perf_counter()
        log = out / LOGS / cell.log_name
        rc = 0
        for attempt in range(1, retries + 2):
            with open(log, "ab") as fh:
                fh.write(f"--- attempt {attempt} at {now()}\n".encode())
                fh.flush()
                rc = subprocess.call([sys.executable, "-m", "cft.experiments.sweep", "cell",
                                      str(out), cell.id], stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
            if rc in (0, 2):  # done, or bad input (a retry would not help)
                break
        seconds = time.perf_counter() - t0
        if rc == 0:
            summary = _cell_summary(out, cell)
            return CellOutcome(cell.id, "complete", seconds, attempts=attempt, summary=summary)
        msg = _last_line(log)
        return CellOutcome(cell.id, "failed", seconds, f"{_rc_text(rc)}: {msg}", attempt)

    outcomes: list[CellOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(one, c): c for c in cells}
        for fut in as_completed(futures):
            oc = fut.result()
            report(futures[fut], oc)
            outcomes.append(oc)
    return outcomes


def _ray_body(out: str, cell_id: str) -> dict[str, Any]:
    return _run_cell_logged(out, cell_id)


def _run_ray(out: Path, cells: list[Cell], workers: int, retries: int, address: str | None,
             resources: Resources, report: Callable[[Cell, CellOutcome], None],
             start: Callable[[Cell], None]) -> list[CellOutcome]:
    try:
        import ray
    except ImportError:
        raise ValueError("--executor: ray is not installed (pip install "
                         "'cft-bounds[ray]')") from None
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "TOKENIZERS_PARALLELISM",
                                            *RAY_LOCAL_ENV)}
    if address is None:  # local runtime: workers inherit this checkout on their path
        os.environ.update({k: v for k, v in _child_env(workers).items() if k in saved})
        for k, v in RAY_LOCAL_ENV.items():
            os.environ.setdefault(k, v)
    try:
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                "ignore_reinit_error": True}
        if address is None:
            init.update(num_cpus=max(1, workers), object_store_memory=100 * 1024 ** 2)
        else:
            init["address"] = address
        try:
            ray.init(**init)
        except Exception as e:  # noqa: BLE001 - Ray raises bare Exceptions here
            what = (f"--address: cannot reach Ray at {address!r}" if address is not None
                    else "--executor: cannot start a local Ray runtime")
            raise ValueError(f"{what} ({' '.join(str(e).split())[:200]})") from None
        remote = ray.remote(max_calls=1)(_ray_body)
        refs: dict[Any, tuple[Cell, float]] = {}
        for c in cells:
            start(c)
            ref = remote.options(num_cpus=resources.cpus, num_gpus=resources.gpus,
                                 max_retries=retries, retry_exceptions=False,
                                 name=c.id).remote(str(out), c.id)
            refs[ref] = (c, time.perf_counter())
        outcomes: list[CellOutcome] = []
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ref = ready[0]
            cell, t0 = refs[ref]
            try:
                res = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - lost worker / node, retries exhausted
                msg = " ".join(str(e).split())[:300]
                oc = CellOutcome(cell.id, "failed", time.perf_counter() - t0,
                                 f"{type(e).__name__}: {msg}", retries + 1)
            else:
                if res.get("status") == "complete":
                    oc = CellOutcome(cell.id, "complete", time.perf_counter() - t0,
                                     summary=res.get("summary"), attempts=1)
                else:
                    oc = CellOutcome(cell.id, "failed", time.perf_counter() - t0,
                                     f"exit status {res.get('rc')}: {res.get('message')}", 1)
            report(cell, oc)
            outcomes.append(oc)
        return outcomes
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cell_summary(out: Path, cell: Cell) -> dict[str, Any] | None:
    try:
        return read_json(out / cell.dir / L.METRICS)["summary"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out: Path
    cells: list[Cell]
    outcomes: list[CellOutcome]

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def run_sweep(spec: SweepSpec, out: str | os.PathLike[str], *, executor: str = "local",
              workers: int = 1, retries: int | None = None, address: str | None = None,
              echo: Echo | None = None) -> SweepResult:
    """Run (or resume) every cell of ``spec`` under ``out``; see the module docstring.

    ``retries``: extra attempts of a cell whose process died (default 0 local, 3 ray).
    """
    echo = echo or (lambda s: print(s, flush=True))
    if executor not in EXECUTORS:
        raise ValueError(f"--executor: must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_int("--workers", workers, minimum=1)
    if retries is None:
        retries = 3 if executor == "ray" else 0
    if retries < 0:
        raise ValueError(f"--retries: must be >= 0, got {retries}")
    if address is not None and executor != "ray":
        raise ValueError("--address: only with --executor ray")
    outp = Path(out)
    cells = write_manifest(outp, spec)
    states = {c.id: cell_state(outp, c) for c in cells}
    todo = [c for c in cells if states[c.id][0] != "complete"]
    n_resume = sum(states[c.id][0] == "partial" for c in todo)
    echo(f"sweep {outp}: {len(cells)} cells, {len(cells) - len(todo)} already complete, "
         f"{len(todo)} to run ({n_resume} resuming); executor {executor}, "
         f"{workers} worker{'s' if workers != 1 else ''}")
    outcomes = [CellOutcome(c.id, "skipped") for c in cells if states[c.id][0] == "complete"]
    lock = threading.Lock()
    counter = {"started": 0, "finished": 0}
    total = len(todo)

    def start(cell: Cell) -> None:
        state, done, m = states[cell.id]
        with lock:
            counter["started"] += 1
            how = "new" if state == "new" else f"resuming at task {done + 1}/{m}"
            echo(f"[{counter['started']}/{total}] start {cell.id} ({how})")

    def report(cell: Cell, oc: CellOutcome) -> None:
        with lock:
            counter["finished"] += 1
            head = f"[{counter['finished']}/{total}] {cell.id}:"
            if oc.status == "complete":
                s = oc.summary or {}
                extra = ""
                modes = [m for m, v in s.items()
                         if m != "task_aware" and isinstance(v, dict) and "ci_last" in v]
                if modes:  # adapted / shared (/ a learned rule), or merged (no retrieval)
                    extra = " | CIL last " + " ".join(f"{m} {s[m]['ci_last']:.3f}"
                                                      for m in modes)
                echo(f"{head} complete in {oc.seconds:.1f}s{extra}")
            else:
                echo(f"{head} FAILED after {oc.attempts} attempt(s): {oc.message}")

    if todo:
        if executor == "local":
            outcomes += _run_local(outp, todo, workers, retries, report, start)
        else:
            outcomes += _run_ray(outp, todo, workers, retries, address, spec.resources,
                                 report, start)
    order = {c.id: i for i, c in enumerate(cells)}
    outcomes.sort(key=lambda o: order[o.id])
    res = SweepResult(outp, cells, outcomes)
    n_ok = sum(o.status != "failed" for o in outcomes)
    echo(f"sweep {outp}: {n_ok}/{len(cells)} cells complete"
         + (f", {len(res.failed)} failed (rerun the same command to resume them; logs in "
            f"{outp / LOGS})" if res.failed else ""))
    return res


# ----------------------------------------------------------------------------- cell entry
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


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "cell":
        raise SystemExit(_cell_main(sys.argv[2:]))
    print("usage: python -m cft.experiments.sweep cell DIR CELL_ID (use `python -m cft sweep`)",
          file=sys.stderr)
    raise SystemExit(2)
