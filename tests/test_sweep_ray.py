"""``cft sweep --executor ray`` against a real local Ray runtime (2 CPUs).

A cell's worker process is SIGKILLed mid-run (``CFT_SWEEP_KILL``: after task 1's training,
task 0 saved), as when a node is lost.  With retries Ray reschedules the cell, which
resumes from its run directory inside the same sweep; without retries the cell fails and a
rerun of the sweep resumes it.  Either way the metrics equal an uninterrupted run.

Runs wherever ``ray`` is installed (``pip install 'cft-bounds[ray]'``) and is skipped
otherwise. CI (``.ci/run``) installs the extra and sets ``CFT_REQUIRE_RAY=1``: then a
missing ``ray`` or a local runtime that will not start in 6 attempts FAILS the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

REQUIRE_ENV = "CFT_REQUIRE_RAY"
REQUIRED = os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")
# A local Ray start can fail on a loaded machine: the raylet exits when the dashboard
# agent has not written its port file within a hard-coded 15 s (ray-project/ray#65983;
# seen here at a load average of ~10 on 2 cores, never at ~2). A waiting time cannot help,
# so each attempt is kept short and the start is retried.
START_ATTEMPTS = 6

try:
    import ray  # noqa: F401
except ImportError:
    if REQUIRED:
        pytest.fail(f"{REQUIRE_ENV} is set but ray is not installed "
                    f"(pip install 'cft-bounds[ray]')", pytrace=False)
    pytest.skip("ray is not installed (pip install 'cft-bounds[ray]'); CI installs it and "
                f"sets {REQUIRE_ENV}=1", allow_module_level=True)

from cft.experiments.sweep import KILL_ENV, SweepResult, cell_state, parse_spec, run_sweep  # noqa: E402
from cft.run.rundir import RunDir  # noqa: E402
from cft.run.runner import Runner  # noqa: E402

pytestmark = pytest.mark.slow
CELL = "tiny/proteus/base/seed-1"
BASE = {"presets": ["tiny"], "methods": ["proteus"],
        "overrides": ["data.n_tasks=2", "train.epochs=1"], "resources": {"cpus": 1}}


def _end_leftover_ray_children() -> None:
    """A failed local start leaves its GCS, dashboard and monitor processes running (children
    of this process); end them, by pid, before the next attempt (they only add load)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    me = os.getpid()
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"ray" in cmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(d.name), signal.SIGKILL)


def _sweep(spec, out: Path, lines: list[str], **kw) -> SweepResult:
    """run_sweep on a local Ray runtime. Ray's own start-up can fail on an overloaded
    machine (see START_ATTEMPTS): retried, then a failure when Ray is required (CI), else
    a skip."""
    err = ""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    for _ in range(START_ATTEMPTS):
        # Ray's daemons inherit this process's priority: a raised one lets the dashboard
        # agent start within the raylet's 15 s on a loaded machine (root only; restored)
        with contextlib.suppress(PermissionError, OSError):
            os.setpriority(os.PRIO_PROCESS, 0, -10)
        try:
            return run_sweep(spec, out, executor="ray", workers=2, echo=lines.append, **kw)
        except ValueError as e:
            if "cannot start a local Ray runtime" not in str(e):
                raise
            err = str(e)
            _end_leftover_ray_children()
        finally:
            with contextlib.suppress(PermissionError, OSError):
                os.setpriority(os.PRIO_PROCESS, 0, nice)
    msg = f"Ray could not start on this machine in {START_ATTEMPTS} attempts: {err}"
    if REQUIRED:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _reference(tmp_path: Path, spec) -> dict[str, bytes]:
    out = {}
    for c in spec.cells():
        ref = tmp_path / "ref" / c.id
        Runner(c.resolve(), ref, echo=lambda s: None).run()
        out[c.id] = (ref / "metrics.json").read_bytes()
    return out


def test_ray_worker_killed_then_rerun(tmp_path, monkeypatch) -> None:
    spec = parse_spec(BASE | {"seeds": [0, 1]})
    out = tmp_path / "sweep"
    lines: list[str] = []
    monkeypatch.setenv(KILL_ENV, f"{CELL}@1")
    res = _sweep(spec, out, lines, retries=0)
    assert [o.status for o in res.outcomes] == ["complete", "failed"], lines
    failed = res.outcomes[1]
    assert "WorkerCrashedError" in failed.message or "died" in failed.message, failed.message
    cell = {c.id: c for c in spec.cells()}[CELL]
    assert cell_state(out, cell) == ("partial", 1, 2)
    res = _sweep(spec, out, lines)  # rerun: one cell skipped, the killed one resumed
    assert [o.status for o in res.outcomes] == ["skipped", "complete"], lines
    assert RunDir(out / cell.dir).info()["resumed"] == 1
    monkeypatch.delenv(KILL_ENV)
    ref = _reference(tmp_path, spec)
    for c in spec.cells():
        assert (out / c.dir / "metrics.json").read_bytes() == ref[c.id], c.id


def test_ray_retry_resumes_within_the_sweep(tmp_path, monkeypatch) -> None:
    spec = parse_spec(BASE | {"seeds": [1]})
    out = tmp_path / "sweep"
    lines: list[str] = []
    monkeypatch.setenv(KILL_ENV, f"{CELL}@1")
    res = _sweep(spec, out, lines, retries=1)
    assert [o.status for o in res.outcomes] == ["complete"], lines
    cell = spec.cells()[0]
    assert RunDir(out / cell.dir).info()["resumed"] == 1  # the retry resumed the run dir
    log = (out / "logs" / cell.log_name).read_text()
    assert log.count("--- attempt") == 2 and "killing the process" in log
    monkeypatch.delenv(KILL_ENV)
    assert (out / cell.dir / "metrics.json").read_bytes() == _reference(tmp_path, spec)[CELL]
