"""Rendering a :class:`~bounds.check.core.Report`: ``rich`` tables and JSON.

Per (split, mode, kind) score matrix the console shows

1. a table of the **guaranteed** bounds: one row per task plus ``overall``; columns n,
   empirical retrieval error, ``sep. delta_t`` (the separation factor of docs/theory.md
   §2.3, not the PAC confidence ``delta`` of §5, printed as ``PAC delta``) and per
   bound ``value tightness mark`` where tightness is the ratio bound/error (``x2.1``) or,
   when the error is 0, the gap bound - error (``+0.012``); the mark is a green check when
   the bound holds and a red cross when it is violated;
2. when present, a separate table of the **PAC** (probability >= 1 - PAC delta) and
   **assumption-dependent** bounds (Gaussian mixture under A.1, predictive bounds from the
   training-time statistics, prefixed ``train:``) with the Assumption A.1 diagnostics
   beside them (normality p-value, held-out log-likelihood gap per dimension, flag).

The JSON holds the same content; non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, TextIO

import numpy as np

from .core import TOL, Report, Table
from .export import to_jsonable, write_csv, write_json
from .screen import (
    _header_lines,
    _ladder_lines,
    soft_summary,
    vacuous_summary,
)
from .verdicts import (
    LADDER_WIDTH,
    VACUOUS,
    _fmt,
    ratio_and_gap,
    verdict,
)

__all__ = ["render", "to_jsonable", "write_json", "write_csv", "ratio_and_gap", "VACUOUS",
           "LADDER_WIDTH", "verdict"]


_OK_STYLE, _BAD_STYLE = "green", "bold red"


def _cell(bound: float, error: float, holds: bool, category: str = "guaranteed") -> Any:
    """``value tightness verdict`` as a styled rich Text (no markup parsing: fast); a
    vacuous value (>= ``VACUOUS``) is marked so."""
    from rich.text import Text

    ratio, gap = ratio_and_gap(bound, error)
    tight = f"x{ratio:.3g}" if ratio is not None else f"+{gap:.2g}"
    word = verdict(holds, category)
    style = _OK_STYLE if holds else _BAD_STYLE if category == "guaranteed" else "yellow"
    vac = (" vacuous", "dim") if bound >= VACUOUS else ""
    return Text.assemble(f"{bound:.4f} {tight} ", (word, style), vac)


def _table_rows(tab: Table) -> list[tuple[str, int, float, float, int | None]]:
    rows = [(str(t), int(tab.n_t[t]), float(tab.err_t[t]), float(tab.delta_t[t]), t)
            for t in range(tab.n_t.shape[0])]
    rows.append(("overall", tab.n, tab.err, float(np.min(tab.delta_t)), None))
    return rows


def _columns(default: int, stream: Any) -> int:
    """The terminal's width (``stream`` a TTY), else ``COLUMNS``, else ``default``."""
    if hasattr(stream, "isatty") and stream.isatty():
        return shutil.get_terminal_size((default, 40)).columns
    try:
        return int(os.environ.get("COLUMNS", default))
    except ValueError:
        return default


def _make_console(out: TextIO | None, *, wide: bool = False) -> Any:
    """The console of the report: at most ``LADDER_WIDTH`` columns (fewer on a narrower
    terminal or ``COLUMNS``; at least 60), or with ``wide`` the terminal's width (at least
    100, 200 through a pipe)."""
    from rich.console import Console

    stream = out if out is not None else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    if wide:
        width = max(_columns(200, stream), 100)
    else:
        width = max(min(_columns(LADDER_WIDTH, stream), LADDER_WIDTH), 60)
    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with code 1 here, the code of a violated bound: a closed stdout
            # (``| head -1``) is a normal end, the report is computed and still written
            # to --json / --csv / --plot and the exit code is the report's
            self.quiet = True
            if stream is sys.stdout:
                _stdout_closed()

    return _Console(file=stream, width=width, highlight=False, emoji=False,
                    force_terminal=None if tty else False, soft_wrap=False)


def _rich_table(title: str, columns: list[str], rows: list[list[Any]], last_task: int) -> Any:
    """A rich table whose rows are pre-laid-out lines (fixed measured column widths).

    Rich's per-cell layout costs ~0.2 ms a cell (seconds for 100 tasks x 14 tables), so
    the columns are aligned here and rich draws the frame, header rule, overall-row rule
    and the styles.
    """
    from rich import box
    from rich.table import Table as RTable
    from rich.text import Text

    cells = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
    widths = [max([len(name)] + [row[j].cell_len for row in cells])
              for j, name in enumerate(columns)]
    sep = "  "
    header = Text(sep.join(name.rjust(w) for name, w in zip(columns, widths)), style="bold")
    total = header.cell_len
    rt = RTable(title=title, title_justify="left", box=box.HORIZONTALS, show_edge=False,
                pad_edge=False)
    rt.add_column(header, no_wrap=True, min_width=total, max_width=total)
    for i, row in enumerate(cells):
        line = Text()
        for j, (c, w) in enumerate(zip(row, widths)):
            if j:
                line.append(sep)
            line.append(" " * (w - c.cell_len))
            line.append_text(c)
        rt.add_row(line, end_section=i == last_task)
    return rt


def _prose(con: Any, text: str, style: str | None = None) -> None:
    """Print a sentence wrapped between words at the console's width, continuation
    lines indented (rich's own wrap would start them at column 0)."""
    import textwrap

    from rich.text import Text

    lead = len(text) - len(text.lstrip(" "))
    for line in textwrap.wrap(text, width=con.width, subsequent_indent=" " * (lead + 4),
                              break_long_words=False, break_on_hyphens=False) or [text]:
        con.print(Text(line, style=style or ""))


def _stdout_closed() -> None:
    """The reader of stdout went away (``| head``): a normal end. Later writes go to
    /dev/null, so neither this report nor Python's exit flush raises again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def render(report: Report, out: TextIO | None = None, *, per_task: bool = False,
           worst: int = 3, wide: bool = False, checker: str | None = None,
           selected: list[str] | None = None) -> None:
    """Print the ladder (always first), then with ``per_task`` every table (``rich``).
    ``checker``: the checker's version line for the header (the CLI passes
    ``files.checker_version()``). ``selected``: the ``--bounds`` names, to say which
    sections that option does not filter.

    The ladder fits ``LADDER_WIDTH`` columns (or the terminal, if narrower); ``wide``: one
    line per rule at any width. A closed stdout (``| head -1``) ends the output quietly."""
    try:
        _render(report, out, per_task=per_task, worst=worst, wide=wide, checker=checker,
                selected=selected)
    except BrokenPipeError:
        if out is not None and out is not sys.stdout:
            raise
        _stdout_closed()


def _render(report: Report, out: TextIO | None, *, per_task: bool, worst: int,
            wide: bool, checker: str | None, selected: list[str] | None = None) -> None:
    from rich.markup import escape
    from rich.text import Text

    con = _make_console(out, wide=wide)
    for i, line in enumerate(_header_lines(report, checker)):
        if i == 0 or len(line) <= con.width:  # the run's path: never broken
            con.print(Text(line, style="bold" if i == 0 else ""), overflow="ignore",
                       crop=False)
        else:
            _prose(con, line)
    for w in report.warnings[:5]:
        con.print(f"[yellow]warning:[/] {escape(w)}")
    if len(report.warnings) > 5:
        con.print(f"[yellow]... {len(report.warnings) - 5} more warning(s) in the JSON[/]")
    for text, style in _ladder_lines(report, worst, con.width, wide):
        if wide or len(text) <= con.width:
            con.print(Text(text, style=style or ""))
        else:  # a sentence: wrapped between words, indented
            _prose(con, text, style)
    for tab in report.tables if per_task else []:
        for group, title in (
            (("guaranteed",), "guaranteed bounds (exact on the empirical measure)"),
            (("pac", "assumption"),
             "PAC (prob. >= 1 - PAC delta) and assumption-dependent bounds (not guaranteed)"),
        ):
            rows = [r for r in tab.rows if r.category in group]
            diag = tab.diagnostics if "assumption" in group else None
            if not rows and group != ("guaranteed",):
                continue
            columns = ["task", "n", "error", "sep. delta_t"] + [r.key for r in rows]
            if diag is not None:
                columns += ["A.1 normality p", "loglik gap/dim", "A.1"]
            body = []
            for label, n, err, dt, t in _table_rows(tab):
                cells: list[Any] = [label, str(n), _fmt(err), _fmt(dt, 3)]
                for r in rows:
                    if t is None:
                        cells.append(_cell(r.overall, err, r.holds_overall, r.category))
                    else:
                        cells.append(_cell(float(r.per_task[t]), err, bool(r.holds_task[t]),
                                           r.category))
                if diag is not None:
                    if t is None:
                        cells += ["", "", f"{diag['n_flagged']} flagged"]
                    else:
                        p = diag["normality_p"][t]
                        cells += [
                            "-" if p is None else f"{p:.2g}",
                            f"{diag['loglik_gap_per_dim'][t]:+.3f}",
                            Text("flagged", "yellow") if diag["flag"][t] else Text("-"),
                        ]
                body.append(cells)
            rt = _rich_table(f"{tab.title} ({tab.rel}): {title}", columns, body,
                             tab.n_t.shape[0] - 1)
            # a per-task table is as wide as it needs: never truncated to the console
            full = rt.columns[0].min_width or con.width
            old = con.width
            con.width = max(old, full + 2)
            try:
                con.print(rt)
            finally:
                con.width = old
            notes: dict[str, list[str]] = {}
            for r in rows:
                if r.note and r.category != "guaranteed":
                    notes.setdefault(r.note, []).append(r.key)
            for note, keys in notes.items():
                con.print(f"  [dim]{escape(', '.join(keys))}:[/] {escape(note)}")
            if diag is not None and diag["n_flagged"]:
                reasons = [f"task {t}: {diag['reason'][t]}" for t in range(len(diag["flag"]))
                           if diag["flag"][t]]
                more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
                con.print(f"  [yellow]A.1 diagnostics flag {len(reasons)} task(s):[/] "
                          f"{escape('; '.join(reasons[:5]))}{more}")
        for note in tab.notes:
            con.print(f"  [dim]note:[/] {escape(note)}")
    if not per_task:
        n_notes = sum(len(t.notes) for t in report.tables)
        extra = f" and {n_notes} note(s)" if n_notes else ""
        con.print(Text(f"per-task tables, bound notes{extra}: --per-task; everything: "
                       "--json FILE" + ("" if wide else "; one line per rule: --wide"),
                       style="dim"))
    if selected is not None:
        _prose(con, f"--bounds {','.join(selected)}: filters the bound rows of every table, "
               "the ladder's tiers and the worst-task lines; not filtered: the predictions, "
               "the earlier-claimed training-time bound G-cantelli(e) and the A.1 diagnostics",
               "dim")
    vac = vacuous_summary(report)
    if vac:
        _prose(con, f"vacuous (>= {VACUOUS:g} overall, says nothing): " + "; ".join(vac),
               "dim")
    if report.violations:
        con.print(f"[bold red]{len(report.violations)} guaranteed-bound violation(s)[/]: "
                  "this is a bug in the bound code or a misuse (statistics not computed from "
                  "the evaluated data)")
        for v in report.violations[:20]:
            con.print(f"  [red]{escape(v.message())}[/]")
        if len(report.violations) > 20:
            con.print(f"  ... and {len(report.violations) - 20} more")
    else:
        con.print(f"[bold green]every guaranteed bound holds[/] (tolerance {TOL:g})")
    soft = soft_summary(report)
    if soft:
        con.print(f"[yellow]{len(report.soft_violations)} soft failure(s)[/] of PAC / "
                  "assumption-dependent bounds (allowed; the exit code ignores them):")
        for line in soft[:4]:
            _prose(con, f"  {line}", "yellow")
        if len(soft) > 4:
            con.print(f"  ... {len(soft) - 4} more bound(s): --per-task, --json FILE")


