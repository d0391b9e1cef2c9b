"""Sweep executors: ``local`` (``--workers N`` cell processes at a time) and ``ray`` (one Ray
task per cell, retried when its worker or node is lost); each runs
``python -m cft.experiments.sweep cell DIR CELL`` or :func:`cft.experiments.cell.run_cell`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cft.experiments.cell import _cell_summary, _run_cell_logged
from cft.experiments.sweep_spec import (
    LOGS,
    Cell,
    Resources,
)
from cft.run.atomic import now

__all__ = ["EXECUTORS", "CellOutcome", "run_local", "run_ray"]

EXECUTORS = ("local", "ray")
#: defaults for a local Ray runtime on a slow or busy machine (the user's values win)
RAY_LOCAL_ENV = {"RAY_raylet_start_wait_time_s": "60", "RAY_agent_register_timeout_ms": "60000"}

Echo = Callable[[str], None]


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


def run_local(out: Path, cells: list[Cell], workers: int, retries: int,
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


def run_ray(out: Path, cells: list[Cell], workers: int, retries: int, address: str | None,
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


