"""Checker of recorded run directories (``python -m bounds.check RUN_DIR``).

:func:`load_run` validates a run directory (docs/run-dir.md), :func:`check_run` evaluates
every applicable bound of ``bounds.REGISTRY`` against the empirical retrieval errors,
:func:`render` / :func:`write_json` / :func:`write_plot` output the result and :func:`main`
is the command line (exit 0: guaranteed bounds hold, 1: one is violated, 2: bad input).
"""

from .cli import main
from .core import BoundRow, Report, Table, Violation, bound_groups, check_run
from .rundir import RunData, RunDirError, load_run


def render(report: Report, out: object = None, *, per_task: bool = False,
           worst: int = 3) -> None:
    """Print ``report``: the ladder, then per-task tables (see :mod:`bounds.check.report`)."""
    from .report import render as _render

    _render(report, out, per_task=per_task, worst=worst)  # type: ignore[arg-type]


def write_json(report: Report, path: str) -> None:
    """Write ``report`` as strict JSON (see :mod:`bounds.check.report`)."""
    from .report import write_json as _write

    _write(report, path)


def write_plot(report: Report, path: str) -> None:
    """Write the PNG summary of ``report`` (see :mod:`bounds.check.plot`)."""
    from .plot import write_plot as _write

    _write(report, path)


__all__ = [
    "BoundRow",
    "Report",
    "RunData",
    "RunDirError",
    "Table",
    "Violation",
    "bound_groups",
    "check_run",
    "load_run",
    "main",
    "render",
    "write_json",
    "write_plot",
]
