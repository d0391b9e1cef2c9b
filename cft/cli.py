"""Command line: ``python -m cft run`` and ``python -m cft presets``.

::

    python -m cft run --preset NAME --out RUN_DIR [--seed N] [--results FILE] [--quiet]
                      [key=value ...]
    python -m cft presets [--show NAME]

``run`` resolves the configuration (preset -> method bundle -> overrides, see
:mod:`cft.config`), runs or resumes the task loop into ``RUN_DIR`` (:mod:`cft.runner`) and
prints a table of retrieval and class-incremental accuracy (``adapted`` and ``shared``
retrieval), task-aware accuracy and the wall time.  Bad input (unknown preset, bad override,
missing data, a ``RUN_DIR`` holding a different run) prints one line on stderr and exits
with status 2.
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cft", description="Continual fine-tuning with PROTEUS "
                "modules and parameter-free task retrieval.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run (or resume) a preset into a run directory")
    r.add_argument("--preset", required=True, help="preset name (see `presets`)")
    r.add_argument("--out", required=True, help="run directory (created or resumed)")
    r.add_argument("--seed", type=int, default=None, help="seed (default: the preset's, 0)")
    r.add_argument("--results", default=None,
                   help="also append the results line to this JSONL file (it is always "
                   "written to RUN_DIR/results.jsonl)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("overrides", nargs="*", metavar="key=value",
                   help="configuration overrides, e.g. train.epochs=2 signature.kind=kmeans")
    pr = sub.add_parser("presets", help="list the presets")
    pr.add_argument("--show", default=None, metavar="NAME",
                    help="print the resolved configuration of a preset as JSON")
    return p


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}"


def render_table(metrics: dict[str, Any], wall_seconds: float, title: str = "") -> Any:
    """A ``rich`` table of the summary metrics (percentages)."""
    from rich.table import Table

    s = metrics["summary"]
    tab = Table(title=title or None, caption=f"wall time {wall_seconds:.1f} s; "
                f"score kind {metrics['kind']}; {metrics['tasks_seen']}/{metrics['n_tasks']} "
                f"tasks; test split, %. task = task-retrieval accuracy, CIL = class-incremental "
                f"accuracy; task-aware = true task given")
    tab.add_column("retrieval", justify="left", no_wrap=True)
    for col in ("task last", "task AIA", "CIL last", "CIL AIA", "CIL forget", "CIL BWT"):
        tab.add_column(col, justify="right")
    for mode in ("adapted", "shared"):
        r = s[mode]
        tab.add_row(mode, _fmt(r["retrieval_last"]), _fmt(r["retrieval_aia"]),
                    _fmt(r["ci_last"]), _fmt(r["ci_aia"]), _fmt(r["ci_forgetting"]),
                    _fmt(r["ci_bwt"]))
    ta = s["task_aware"]
    tab.add_row("task-aware", "-", "-", _fmt(ta["last"]), _fmt(ta["aia"]),
                _fmt(ta["forgetting"]), _fmt(ta["bwt"]))
    return tab


def _presets(show: str | None) -> int:
    from cft.config import PRESETS, describe, resolve

    if show is not None:
        print(describe(resolve(show)))
        return 0
    width = max(len(n) for n in PRESETS)
    for name, (desc, _) in PRESETS.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def _error(message: object) -> int:
    print(f"cft: error: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from cft.config import resolve
    from cft.runner import Runner

    overrides = list(args.overrides)
    if args.results is not None:
        overrides.append(f"output.results={args.results}")
    if args.quiet:
        overrides.append("output.progress=false")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bar too
    try:  # everything that depends on user input: one line, exit 2
        cfg = resolve(args.preset, overrides, seed=args.seed)
        runner = Runner(cfg, args.out).setup()
    except ValueError as e:
        return _error(e)
    result = runner.run()
    from rich.console import Console

    title = f"{cfg.preset} / {cfg.method} / seed {cfg.seed}: {result.run_dir}"
    if result.already_complete:
        title += " (already complete)"
    Console().print(render_table(result.metrics, result.wall_seconds, title))
    return 0


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
    return _run(args)
