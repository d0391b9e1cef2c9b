"""Command line: ``python -m bounds.check RUN_DIR [options]``.

Exit codes: 0 when every guaranteed bound holds (tolerance ``core.TOL``; an unfinished run is
checked up to its last completed step and only warned about), 1 when a guaranteed bound
is violated (a bug in the bound code or a misuse), 2 on bad input (one line on stderr,
never a traceback). PAC and assumption-dependent bounds never change the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .._validate import check_probability
from .rundir import SPLITS, RunDirError, load_run

__all__ = ["main", "build_parser"]

PROG = "python -m bounds.check"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (no usage block)
        sys.stderr.write(f"{PROG}: error: {' '.join(message.split())} (see --help)\n")
        raise SystemExit(2)


def _names(text: str) -> list[str]:
    from .. import REGISTRY

    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown bound name(s) {unknown or [text]}; known: {','.join(REGISTRY)}")
    return names


def _checked(convert: Callable[[str], Any], check: Callable[[Any], Any]
             ) -> Callable[[str], Any]:
    """An argparse ``type``: ``check(convert(text))``, a ValueError becoming a usage error."""

    def parse(text: str) -> Any:
        try:
            val = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not {'an integer' if convert is int else 'a number'}: {text!r}") from None
        try:
            return check(val)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    return parse


def _non_negative(val: int) -> int:
    if val < 0:
        raise ValueError(f"must be >= 0, got {val}")
    return val


def _positive(val: int) -> int:
    if val < 1:
        raise ValueError(f"must be >= 1, got {val}")
    return val


_delta = _checked(float, lambda v: check_probability(v, "delta"))
_step = _checked(int, _non_negative)
_jobs = _checked(int, _positive)


def _nothing_selected(names: list[str]) -> str:
    """The one-line refusal when ``--bounds`` selects only bounds this run cannot feed."""
    from .. import REGISTRY

    need = {"clusters": "{split}/clusters-shared.npz with shared-centroid scores",
            "mixtures": "mixtures-shared.npz with shared-nll scores",
            "cal_scores": "calibration scores, compared on the test split"}
    what = sorted({need.get(r, r) for n in names for r in REGISTRY[n].reads if r in need})
    return (f"--bounds: nothing applicable was selected: {','.join(names)} need "
            f"{' or '.join(what) or 'inputs this run lacks'}; nothing was checked")


def _no_retrieval(run_dir: str, step: int | None) -> str | None:
    """The line to print when the checked step's ``metrics.json`` records that the method
    has no task retrieval (``"retrieval": "n/a"``; docs/run-dir.md): ``run.json`` and the
    step are validated as usual, and there is no retrieval error to bound. None otherwise."""
    import json
    from pathlib import Path

    from .. import rundir_schema as L
    from .rundir import _choose_step, _present, read_meta

    root = Path(run_dir)
    if not _present(root / L.RUN):
        return None  # load_run reports it
    k, _ = _choose_step(root, read_meta(root), step)
    path = L.step_dir(root, k) / L.METRICS
    try:
        met = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(met, dict) or met.get("retrieval") != L.NOT_APPLICABLE:
        return None
    return (f"{run_dir}: step {k}: retrieval bounds not applicable: the method has no task "
            f"retrieval (eval/step-{k:03d}/metrics.json: \"retrieval\": \"n/a\"); "
            f"run.json checked, nothing to bound")


class _Version(argparse.Action):
    """``--version``: the checker's version and ``git describe`` (run only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from .files import checker_code, checker_version

        print(f"{PROG}: {checker_version()}; bounds code {checker_code()}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the checker."""
    from ..vocabulary import help_lines

    names = "\n".join(help_lines())
    p = _Parser(prog=PROG, description="Check the task-retrieval error bounds recorded in a "
                "cft run directory (docs/run-dir.md) against the empirical errors.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="exit codes: 0 every guaranteed bound holds, 1 a guaranteed bound is "
                "violated, 2 bad input\n\nthe ladder's words (plug-ins of the cft_bounds.bounds "
                f"entry point included; docs/theory.md §11):\n{names}")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (docs/run-dir.md)")
    p.add_argument("--split", choices=("test", "calibration", "both"), default="both",
                   help="which evaluation split(s) to check (default: both)")
    p.add_argument("--step", type=_step, default=None, metavar="N",
                   help="evaluation step (default: the latest completed one)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the report as JSON (docs/check-json.md)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="write one CSV row per split, rule, task and bound: split, rule, "
                        "task, bound, tier, value, error, holds (docs/check-json.md)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="write a figure (format from the extension: .png, .pdf, .svg): the "
                        "tightest bound of each tier against the error per rule, and the "
                        "predicted against the realised error over the steps")
    p.add_argument("--wide", action="store_true",
                   help="the ladder in one line per rule at any width (default: at most "
                        "120 columns, rows fold, never cut)")
    p.add_argument("--version", action=_Version,
                   help="print the checker's version and git describe, then exit")
    p.add_argument("--bounds", type=_names, default=None, metavar="NAME,...",
                   help="only these bounds (names of bounds.REGISTRY)")
    p.add_argument("--delta", type=_delta, default=0.05,
                   help="PAC delta: the PAC bounds hold with probability >= 1 - delta "
                        "(default 0.05); not the separation factor delta_t")
    p.add_argument("--per-task", action="store_true",
                   help="after the ladder, print every per-task table with the bound notes")
    p.add_argument("--worst", type=_step, default=3, metavar="N",
                   help="tasks listed per rule in the summary, largest error first (default 3)")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="processes for the independent parts (splits, tiers, SDP chunks, "
                        "predictions, plot steps); the output does not depend on it "
                        "(default: the CPU cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the checker; returns the exit code (0 ok, 1 guaranteed bound violated, 2 bad input)."""
    from .. import registry

    for msg in registry.load_plugins():
        sys.stderr.write(f"{PROG}: warning: {msg}\n")
    args = build_parser().parse_args(argv)
    splits = SPLITS if args.split == "both" else (args.split,)
    try:
        from .core import check_run
        from .files import check_output_path
        from .report import render, write_json

        for opt in ("json", "csv", "plot"):  # before anything is computed
            if getattr(args, opt):
                check_output_path(getattr(args, opt), f"--{opt}")
        na = _no_retrieval(args.run_dir, args.step)
        if na is not None:
            try:
                print(na, flush=True)
            except BrokenPipeError:  # ``| head -0``: a normal end, as for the report
                from .report import _stdout_closed

                _stdout_closed()
            return 0
        data = load_run(args.run_dir, step=args.step, splits=splits)
        for w in data.warnings:
            sys.stderr.write(f"{PROG}: warning: {w}\n")
        from .jobs import cores, set_default_jobs

        jobs = cores() if args.jobs is None else args.jobs
        set_default_jobs(jobs)  # also for the steps of --plot
        report = check_run(data, splits=splits, names=args.bounds, delta=args.delta,
                           jobs=jobs)
        if args.bounds is not None and not any(t.rows for t in report.tables):
            raise RunDirError(_nothing_selected(args.bounds))
        from .files import checker_code, checker_version

        checker = checker_version()
        render(report, per_task=args.per_task, worst=args.worst, wide=args.wide,
               checker=checker, selected=args.bounds)
        if args.json:
            write_json(report, args.json, checker, checker_code())
        if args.csv:
            from .report import write_csv

            write_csv(report, args.csv)
        if args.plot:
            from .plot import write_plot

            write_plot(report, args.plot)
    except RunDirError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    except OSError as exc:  # unwritable --json / --plot target, unreadable directory ...
        sys.stderr.write(f"{PROG}: error: {' '.join(str(exc).split())}\n")
        return 2
    except Exception as exc:  # never a traceback; BOUNDS_CHECK_DEBUG=1 re-raises
        if os.environ.get("BOUNDS_CHECK_DEBUG"):
            raise
        sys.stderr.write(f"{PROG}: error: unexpected {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())} (set BOUNDS_CHECK_DEBUG=1 for details)\n")
        return 2
    if report.violations:
        v = report.violations
        more = f" (+{len(v) - 1} more, see the report)" if len(v) > 1 else ""
        sys.stderr.write(f"{PROG}: {v[0].message()}{more}; this is a bug in the bound code or "
                         "a misuse (statistics not computed from the evaluated data)\n")
    return report.exit_code
