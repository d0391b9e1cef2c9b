"""Command line: ``python -m cft run``, ``presets``, ``sweep`` and ``report``.

::

    python -m cft run --preset NAME --out RUN_DIR [--seed N] [--results FILE] [--quiet]
                      [key=value ...]
    python -m cft presets [--show NAME]
    python -m cft sweep SPEC --out DIR [--executor local|ray] [--workers N]
                        [--address ADDR] [--retries N] [--no-report]
    python -m cft report DIR [--metrics M,...] [--plot M,...] [--bounds]
    python -m cft --version

``run`` resolves the configuration (preset -> method bundle -> overrides, see
:mod:`cft.config`), runs or resumes the task loop into ``RUN_DIR`` (:mod:`cft.run.runner`) and
prints a table of retrieval and class-incremental accuracy (``adapted`` and ``shared``
retrieval), task-aware accuracy and the wall time.  Bad input (unknown preset, bad override,
missing data, a ``RUN_DIR`` holding a different run) prints one line on stderr and exits
with status 2.  Tasks are numbered from 0 everywhere (task ``t`` is ``step-00t`` in the run
dir and task ``t`` in ``python -m bounds.check``).  Ctrl-C prints ``interrupted with K of M
tasks complete (tasks 0-K-1); rerun the same command to resume`` and exits with status 130
(every write is atomic, so the rerun continues from the last completed task).  Progress bars
are drawn only when stderr is a terminal; a log file gets the per-task lines alone.

``sweep`` runs every cell of a TOML SPEC (presets x methods x grid x seeds, see
:mod:`cft.experiments.sweep`) as a resumable run directory under DIR, then writes the report;
it exits
1 when a cell failed (rerun to resume), 2 on a bad SPEC.  ``report`` aggregates DIR
(:mod:`cft.experiments.report`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main", "render_table"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"cft: error: {message}", file=sys.stderr)
        raise SystemExit(2)


class _Version(argparse.Action):
    """``--version``: the package version and the source's ``git describe`` (computed only
    when asked: it runs git)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_line())
        parser.exit(0)


def version_line() -> str:
    """``cft-bounds 0.2.0 (git 387285b-dirty)``: what ``--version`` prints and ``env.json``
    records (:func:`cft.run.rundir.provenance`)."""
    from cft.run.rundir import provenance

    p = provenance()
    return f"cft-bounds {p['version']} (git {p['git']})"


def _methods_epilog() -> str:
    """The registered methods, one line each (from ``METHODS``: nothing hard-coded)."""
    import cft.methods  # noqa: F401  (registers the methods)
    from cft.config.registry import METHODS

    lines = ["methods (method=NAME; a method is a configuration bundle, and an override",
             "that contradicts it is refused):"]
    width = max(len(n) for n in METHODS.names())
    for name in METHODS.names():
        lines.append(f"  {name:<{width}}  {METHODS.build(name).description}")
    lines.append("every key of a preset with its value: python -m cft presets --show PRESET")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cft", description="Continual fine-tuning with PROTEUS "
                "modules and parameter-free task retrieval.")
    p.add_argument("--version", action=_Version,
                   help="print the version and the source's git describe, then exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run (or resume) a preset into a run directory",
                       epilog=_methods_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--preset", required=True, help="preset name (see `presets`)")
    r.add_argument("--out", required=True, help="run directory (created or resumed)")
    r.add_argument("--seed", type=int, default=None, help="seed (default: the preset's, 0)")
    r.add_argument("--results", default=None,
                   help="also append the results line to this JSONL file (it is always "
                   "written to RUN_DIR/results.jsonl)")
    r.add_argument("--quiet", action="store_true",
                   help="no progress bars (they are drawn only when stderr is a terminal)")
    r.add_argument("overrides", nargs="*", metavar="key=value",
                   help="configuration overrides, e.g. train.epochs=2 signature.family=kmeans; "
                   "method=NAME selects a method (below); `python -m cft presets --show "
                   "PRESET` prints every key with its value")
    pr = sub.add_parser("presets", help="list the presets and the methods")
    pr.add_argument("--show", default=None, metavar="NAME",
                    help="print the resolved configuration of a preset as JSON")
    sw = sub.add_parser("sweep", help="run (or resume) every cell of a sweep SPEC (TOML)")
    sw.add_argument("spec", metavar="SPEC", help="TOML file: presets, methods, seeds, "
                    "overrides, [grid], [resources]")
    sw.add_argument("--out", required=True, help="sweep directory (created or resumed)")
    sw.add_argument("--executor", choices=("local", "ray"), default="local")
    sw.add_argument("--workers", type=int, default=1,
                    help="cells at a time (local); CPUs of a local Ray runtime (ray)")
    sw.add_argument("--address", default=None,
                    help="Ray cluster address (ray; default: start a local runtime)")
    sw.add_argument("--retries", type=int, default=None,
                    help="extra attempts of a cell whose process died (default 0 local, 3 ray)")
    sw.add_argument("--no-report", action="store_true", help="do not write the report")
    rp = sub.add_parser("report", help="aggregate a sweep directory (Markdown, CSV, PNG)")
    rp.add_argument("dir", metavar="DIR")
    rp.add_argument("--metrics", default=None,
                    help="comma-separated table metrics (default: the main six)")
    rp.add_argument("--plot", default=None, help="comma-separated metrics to plot")
    rp.add_argument("--bounds", action="store_true",
                    help="run python -m bounds.check on every complete cell without a current "
                         "check.json, and add the bound tightness over seeds (value / error "
                         "per tier, prediction |error|): report-bounds.csv")
    return p


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}"


def render_table(metrics: dict[str, Any], wall_seconds: float, title: str = "") -> Any:
    """A ``rich`` table of the summary metrics (percentages)."""
    from rich.table import Table

    from cft.run.step_metrics import NOT_APPLICABLE as NA

    s = metrics["summary"]
    kind = (f"score kind {metrics['kind']}" if s.get("retrieval") != NA
            else "no task retrieval (n/a)")
    tab = Table(title=title or None, caption=f"wall time {wall_seconds:.1f} s; "
                f"{kind}; {metrics['tasks_seen']}/{metrics['n_tasks']} "
                f"tasks; test split, %. task = task-retrieval accuracy, CIL = class-incremental "
                f"accuracy; task-aware = true task given")
    tab.add_column("retrieval", justify="left", no_wrap=True)
    for col in ("task last", "task AIA", "CIL last", "CIL AIA", "CIL forget", "CIL BWT"):
        tab.add_column(col, justify="right")
    for mode, r in s.items():
        if mode == "task_aware" or not isinstance(r, dict):
            continue
        na = NA if "retrieval_last" not in r else None
        tab.add_row(mode, na or _fmt(r["retrieval_last"]), na or _fmt(r["retrieval_aia"]),
                    _fmt(r["ci_last"]), _fmt(r["ci_aia"]), _fmt(r["ci_forgetting"]),
                    _fmt(r["ci_bwt"]))
    ta = s["task_aware"]
    tab.add_row("task-aware", "-", "-", _fmt(ta["last"]), _fmt(ta["aia"]),
                _fmt(ta["forgetting"]), _fmt(ta["bwt"]))
    return tab


def _presets(show: str | None) -> int:
    from cft.config import PRESETS, describe
    from cft.run.resolve import resolve

    if show is not None:
        print(describe(resolve(show)))
        return 0
    import cft.methods  # noqa: F401  (registers the methods)
    from cft.config.registry import METHODS

    methods = {n: METHODS.build(n).description for n in METHODS.names()}
    width = max(len(n) for n in [*PRESETS, *methods])
    for name, (desc, _) in PRESETS.items():
        print(f"{name:<{width}}  {desc}")
    print("\nmethods (method=NAME):")
    for name, desc in methods.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def _error(message: object) -> int:
    print(f"cft: error: {message}", file=sys.stderr)
    return 2


#: exit status after Ctrl-C (128 + SIGINT, what a shell reports)
INTERRUPTED = 130


def _interrupted(run_dir: str | os.PathLike[str] | None = None) -> int:
    """One line on stderr after Ctrl-C (how far the run got), exit status 130."""
    where = ""
    if run_dir is not None:
        from cft.run.rundir import RunDir

        try:
            info = RunDir(run_dir).info()
            k, m = int(info["tasks_complete"]), int(info["n_tasks"])
            done = {0: "", 1: " (task 0)"}.get(k, f" (tasks 0-{k - 1})")
            where = f" with {k} of {m} tasks complete{done}"
        except (OSError, ValueError, KeyError, TypeError):
            where = " before the first task started"
    print(f"\ncft: interrupted{where}; rerun the same command to resume", file=sys.stderr,
          flush=True)
    return INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from cft.run.resolve import resolve
    from cft.run.runner import Runner

    overrides = list(args.overrides)
    if args.results is not None:
        overrides.append(f"output.results={args.results}")
    if args.quiet:
        overrides.append("output.progress=false")
    if args.quiet or not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bar too
    try:
        try:  # everything that depends on user input: one line, exit 2
            cfg = resolve(args.preset, overrides, seed=args.seed)
            runner = Runner(cfg, args.out).setup()
        except ValueError as e:
            return _error(e)
        result = runner.run()
    except KeyboardInterrupt:
        return _interrupted(args.out)
    from rich.console import Console

    title = f"{cfg.preset} / {cfg.method} / seed {cfg.seed}: {result.run_dir}"
    if result.already_complete:
        title += " (already complete)"
    Console().print(render_table(result.metrics, result.wall_seconds, title))
    return 0


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _report(args: argparse.Namespace) -> int:
    from cft.experiments.report import DEFAULT_PLOT, DEFAULT_TABLE, report

    try:
        res = report(args.dir, metrics=_split(args.metrics) or DEFAULT_TABLE,
                     plot_metrics=_split(args.plot) or DEFAULT_PLOT, bounds=args.bounds)
    except ValueError as e:
        return _error(e)
    print(res.markdown)
    print("wrote " + ", ".join(str(p) for p in res.paths.values()))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from cft.experiments.sweep import load_spec, run_sweep

    try:
        spec = load_spec(args.spec)
        res = run_sweep(spec, args.out, executor=args.executor, workers=args.workers,
                        retries=args.retries, address=args.address)
    except ValueError as e:
        return _error(e)
    if not args.no_report and any(o.status != "failed" for o in res.outcomes):
        from cft.experiments.report import report

        rep = report(args.out)
        print(rep.markdown)
        print("wrote " + ", ".join(str(p) for p in rep.paths.values()))
    return 1 if res.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 2
    if args.command == "presets":
        try:
            return _presets(args.show)
        except ValueError as e:
            return _error(e)
    try:
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "report":
            return _report(args)
    except KeyboardInterrupt:
        return _interrupted()
    return _run(args)
