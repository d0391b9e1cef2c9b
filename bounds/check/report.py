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

import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .core import TOL, Report, Table
from .ladder import TIER_NAMES, ladder, tier_of
from .mcnumbers import fmt_mc

__all__ = ["render", "to_jsonable", "write_json", "write_csv", "ratio_and_gap", "VACUOUS",
           "LADDER_WIDTH", "verdict"]

#: a bound at or above this value says (almost) nothing: marked ``vacuous``
VACUOUS = 0.95
#: the default ladder fits this many columns (``--wide``: the full one-line layout)
LADDER_WIDTH = 120


def verdict(holds: bool, category: str) -> str:
    """The one verdict vocabulary of the checker: ``holds``; ``VIOLATED`` (a guaranteed
    bound below the error: a bug or a misuse, exit 1); ``fails (PAC)`` / ``fails
    (assumption)`` (a PAC or assumption-dependent bound below the error: allowed, the exit
    code ignores it). A.1 diagnostics say ``flagged`` (and ``-`` otherwise)."""
    if holds:
        return "holds"
    return "VIOLATED" if category == "guaranteed" else \
        f"fails ({'PAC' if category == 'pac' else category})"



def ratio_and_gap(bound: float, error: float) -> tuple[float | None, float]:
    """(ratio bound/error or None when error == 0, gap bound - error) of one value.

    Not ``cft.experiments.analysis.tightness`` (an array ratio with a half-sample floor for a zero
    error): this one reports no ratio for a zero error, and the gap."""
    ratio = bound / error if error > 0 else None
    return ratio, bound - error


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.{digits}f}"


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


def _ratio(value: float, error: float) -> str:
    ratio, gap = ratio_and_gap(value, error)
    return f"x{ratio:.2f}" if ratio is not None else f"+{gap:.2g}"


_SHORT = {"pac-clopper-pearson:pooled": "CP-pooled", "pac-clopper-pearson": "CP",
          "pac-hoeffding": "Hoeffding"}


def _short(key: str) -> str:
    return _SHORT.get(key, key.removeprefix("pred:"))


def _a1(text: str) -> str:
    """The ladder's A.1 cell in the verdict vocabulary: ``holds``, ``flagged n/m``, ``-``."""
    if text.startswith("fails (") and text.endswith(" tasks)"):
        return "flagged " + text[len("fails ("):-len(" tasks)")]
    return text


def _rule_verdict(tab: Table, a1: str) -> str:
    """A rule's verdict: its guaranteed bounds (``holds`` / ``VIOLATED: keys``), then the
    A.1 diagnostics when they flag tasks."""
    bad = [row.key for row in tab.rows if row.category == "guaranteed" and not row.holds]
    out = f"VIOLATED: {', '.join(bad)}" if bad else "holds"
    a1 = _a1(a1)
    return f"{out}; A.1 {a1}" if a1.startswith("flagged") else out


def _compact_name(key: str) -> str:
    if key in _SHORT:
        return _SHORT[key]
    return key.removeprefix("pred:").removeprefix("train:").replace(" (earlier)", "(e)")


def _ratio_short(value: float, ref: float) -> str:
    ratio, gap = ratio_and_gap(value, ref)
    if ratio is None:
        return f"+{gap:.2g}"
    return f"x{ratio:.0f}" if ratio >= 10 else f"x{ratio:.2g}"


def _fold(rows: list[list[str]], width: int) -> list[tuple[list[str], bool]]:
    """Lay out ``rows`` (the first is the header) as aligned columns in at most ``width``
    characters: the columns that do not fit continue on the next line of the same row,
    under the second column (never cut). Returns (lines, is_continuation) per row."""
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[j]) for r in rows) for j in range(n)]
    indent = widths[0] + 2
    groups: list[list[int]] = [[0]]
    used = widths[0]
    for j in range(1, n):
        if used + 2 + widths[j] > width and len(groups[-1]) > (1 if len(groups) == 1 else 0):
            groups.append([])
            used = indent - 2
        groups[-1].append(j)
        used += 2 + widths[j]
    out: list[tuple[list[str], bool]] = []
    for r in rows:
        lines = []
        for g, cols in enumerate(groups):
            text = "  ".join(r[j].ljust(widths[j]) for j in cols).rstrip()
            lines.append(text if g == 0 else " " * indent + text)
        out.append((lines, False))
    return out


def _wrap_items(prefix: str, items: list[str], width: int, indent: int = 4) -> list[str]:
    """``prefix`` and ``items`` joined by `` | ``, wrapped between items at ``width``."""
    lines, cur = [], prefix
    for i, item in enumerate(items):
        piece = ("" if i == 0 else " | ") + item
        if i and len(cur) + len(piece) + 2 > width:
            lines.append(cur + " |")
            cur = " " * indent + item
        else:
            cur += piece
    lines.append(cur)
    return lines


def _task_label(report: Report, t: int) -> str:
    names = getattr(report.data, "task_names", None) or []
    return f"{t} [{names[t]}]" if t < len(names) and names[t] else str(t)


def _ladder_lines(report: Report, worst: int, width: int = LADDER_WIDTH,
                  wide: bool = False) -> list[tuple[str, str | None]]:
    """The one-screen summary as (text, style) lines (docs/theory.md §11): per split, one
    row per rule, then the ``worst`` tasks of each rule. At most ``width`` columns (rows
    fold, never cut a verdict); ``wide``: one line per rule with the earlier/later split
    and the full names (the layout before issue 25)."""
    if wide:
        return _wide_ladder_lines(report, worst)
    rungs = ladder(report)
    lines: list[tuple[str, str | None]] = []
    any_e = False
    for split in dict.fromkeys(r.split for r in rungs):
        rs = [r for r in rungs if r.split == split]
        lines.append((f"{split} split: retrieval error, the tightest bound of each tier "
                      "(xN = bound / error) and the training-time prediction", "bold"))
        head = ["rule", "error"] + [f"{k} {v}" for k, v in TIER_NAMES.items()] + [
            "prediction ± se, |err|", "verdict"]
        body, bad_rows = [], []
        for r in rs:
            cells = [r.rule, f"{r.error:.3f}"]
            for k in TIER_NAMES:
                b = r.best.get(k)
                if b is None:
                    cells.append("-")
                    continue
                vac = " vacuous" if b[1] >= VACUOUS else ""
                if b[0].endswith("(earlier)"):  # not a bound on the error: no ratio to it
                    any_e = True
                    cells.append(f"{_compact_name(b[0])} {b[1]:.3f}{vac}")
                else:
                    cells.append(f"{_compact_name(b[0])} {b[1]:.3f} "
                                 f"{_ratio_short(b[1], r.error)}{vac}")
            p = r.pred
            if p is None:
                cells.append("-")
            else:
                any_e = any_e or p.target != "error"
                cells.append(f"{fmt_mc(p.overall, p.se_overall)}, "
                             f"{fmt_mc(p.abs_err, p.se_overall, pm=False)}"
                             f"{'' if p.target == 'error' else ' (e)'}")
            tab = next(t for t in report.tables
                       if t.split == split and f"{t.mode}-{t.kind}" == r.rule)
            cells.append(_rule_verdict(tab, r.a1))
            bad_rows.append(cells[-1].startswith("VIOLATED"))
            body.append(cells)
        for i, (text, _) in enumerate(_fold([head] + body, width)):
            style = "dim" if i == 0 else "bold red" if bad_rows[i - 1] else None
            lines += [(t, style) for t in text]
        for tab in [t for t in report.tables if t.split == split and t.diagnostics]:
            diag = tab.diagnostics
            if diag["n_flagged"]:
                why = [f"task {_task_label(report, t)}: {diag['reason'][t]}"
                       for t in range(len(diag["flag"])) if diag["flag"][t]]
                more = f" (+{len(why) - 2} more)" if len(why) > 2 else ""
                lines.append((f"  {tab.mode}-{tab.kind}: A.1 diagnostics flag {len(why)} "
                              f"task(s): {'; '.join(why[:2])}{more}", "yellow"))
        if worst > 0:
            for tab in [t for t in report.tables if t.split == split]:
                order = np.argsort(-tab.err_t, kind="stable")[:worst]
                items = [_worst_item(report, tab, int(t)) for t in order]
                for text in _wrap_items(f"  worst {tab.mode}-{tab.kind} (task: error tier1 "
                                        "tier2 tier3 pred): ", items, width):
                    lines.append((text, "dim"))
    if any_e:
        lines.append(("  (e): about the earlier-claimed part of the error, the event 'an "
                      "earlier task scores at least as close' (its rate and the ratio: --wide); "
                      "later modules' claims have no training-time bound (docs/theory.md §10)",
                      "dim"))
    return lines


def _worst_item(report: Report, tab: Table, t: int) -> str:
    vals = [f"{tab.err_t[t]:.3f}"]
    for k in TIER_NAMES:
        rows = [row for row in tab.rows if tier_of(row) == k]
        vals.append(f"{min(row.per_task[t] for row in rows):.2f}" if rows else "-")
    preds = [p for p in tab.predictions if p.target == "error"]
    vals.append(fmt_mc(preds[0].per_task[t], preds[0].se_task[t], pm=False, at_most=2)
                if preds else "-")
    return f"{_task_label(report, t)}: " + " ".join(vals)


def _wide_ladder_lines(report: Report, worst: int) -> list[tuple[str, str | None]]:
    """The ladder in one line per rule (``--wide``): the earlier/later split of the
    errors, full bound names, rho and A.1 in their own columns."""
    rungs = ladder(report)
    lines: list[tuple[str, str | None]] = []
    for split in dict.fromkeys(r.split for r in rungs):
        rs = [r for r in rungs if r.split == split]
        lines.append((f"{split} split: retrieval error, the tightest bound of each tier "
                      "(xN = bound / error) and the training-time prediction", "bold"))
        head = ["rule", "error", "earlier/later"] + [
            f"{k} {v}" for k, v in TIER_NAMES.items()] + ["prediction ± MC se, |err|, rho",
                                                          "A.1", "verdict"]
        body = []
        for r in rs:
            cl = r.claims
            pi = None if cl is None else cl["n_t"] / cl["n_t"].sum()
            cells = [r.rule, f"{r.error:.3f}",
                     "-" if cl is None else f"{pi @ cl['earlier']:.3f}/{pi @ cl['later']:.3f}"]
            for k in TIER_NAMES:
                b = r.best.get(k)
                vac = "" if b is None or b[1] < VACUOUS else " vacuous"
                if b is None:
                    cells.append("-")
                elif b[0].endswith("(earlier)") and cl is not None:
                    ref = float(pi @ cl["earlier_event"])
                    cells.append(f"{b[0]} {b[1]:.3f} {_ratio(b[1], ref)} of {ref:.3f}{vac}")
                else:
                    cells.append(f"{_short(b[0])} {b[1]:.3f} {_ratio(b[1], r.error)}{vac}")
            p = r.pred
            if p is None:
                cells.append("-")
            else:
                rho = p.spearman
                what = "" if p.target == "error" else " (earlier)"
                # Monte-Carlo numbers at the digits their standard error justifies
                cells.append(f"{_short(p.key)}{what} {fmt_mc(p.overall, p.se_overall)}, "
                             f"{fmt_mc(p.abs_err, p.se_overall, pm=False)}, "
                             f"{'-' if rho is None else f'{rho:.2f}'}")
            cells.append(_a1(r.a1))
            tab = next(t for t in report.tables
                       if t.split == split and f"{t.mode}-{t.kind}" == r.rule)
            cells.append(_rule_verdict(tab, "-"))
            body.append(cells)
        widths = [max(len(c[j]) for c in [head] + body) for j in range(len(head))]
        lines += [("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip(),
                   "dim" if i == 0 else "bold red" if cells[-1].startswith("VIOLATED")
                   else None)
                  for i, cells in enumerate([head] + body)]
        for tab in [t for t in report.tables if t.split == split and t.diagnostics]:
            diag = tab.diagnostics
            if diag["n_flagged"]:
                why = [f"task {_task_label(report, t)}: {diag['reason'][t]}"
                       for t in range(len(diag["flag"])) if diag["flag"][t]]
                more = f" (+{len(why) - 2} more)" if len(why) > 2 else ""
                lines.append((f"  {tab.mode}-{tab.kind}: A.1 diagnostics flag {len(why)} "
                              f"task(s): {'; '.join(why[:2])}{more}", "yellow"))
        if any(r.best.get(3) and r.best[3][0].endswith("(earlier)") for r in rs):
            lines.append(("  (earlier): bounds the event 'an earlier task scores at least as "
                          "close' on the train sample; errors claimed by later modules have no "
                          "training-time bound (docs/theory.md §10)", "dim"))
        if worst > 0:
            for tab in [t for t in report.tables if t.split == split]:
                order = np.argsort(-tab.err_t, kind="stable")[:worst]
                items = [_worst_item(report, tab, int(t)) for t in order]
                lines.append((f"  worst {tab.mode}-{tab.kind} (task: error tier1 tier2 tier3 "
                              "pred): " + " | ".join(items), "dim"))
    return lines


def _header_lines(report: Report, checker: str | None = None) -> list[str]:
    """The run, the step, the rules checked and expected, and what made run and checker."""
    d = report.data
    meta = d.meta
    out = [f"run {d.root}",
           f"  status={meta.get('status', 'unset')} "
           f"tasks_complete={meta['tasks_complete']}/{meta['n_tasks']}  step={d.step} "
           f"(tasks 0..{d.step}, numbered from 0)  PAC delta={report.delta:g}"]
    checked = sorted({f"{t.mode}-{t.kind}" for t in report.tables})
    expected = list(getattr(d, "rules_expected", None) or checked)
    if expected == checked:
        out.append(f"  rules checked: {', '.join(checked)} (expected: the same {len(checked)})")
    else:
        out.append(f"  rules checked: {', '.join(checked)}; expected: {', '.join(expected)}")
    summary = getattr(d, "summary_line", None)
    if summary:
        out.append(f"  run summary: {summary}")
    prov = getattr(d, "provenance", None)
    out.append(f"  made by {prov or 'unknown (no cft_version/git in env.json)'}"
               + (f"; checked by {checker}" if checker else ""))
    return out


def soft_summary(report: Report) -> list[str]:
    """What the soft failures are, one line per bound: where it fails (split/rule, tasks)
    and the likely reason, e.g. ``gaussian-chernoff: fails (assumption) on
    test/shared-nll 5/5 tasks (A.1 flagged 5/5); Assumption A.1 is the likely reason``."""
    groups: dict[str, dict[tuple[str, str], list[Any]]] = {}
    cats: dict[str, str] = {}
    for v in report.soft_violations:
        groups.setdefault(v.key, {}).setdefault((v.split, f"{v.mode}-{v.kind}"), []).append(v)
        cats[v.key] = v.category
    lines = []
    for key, by_tab in groups.items():
        cat = cats[key]
        parts = []
        for (split, rule), vs in by_tab.items():
            tab = next(t for t in report.tables
                       if t.split == split and f"{t.mode}-{t.kind}" == rule)
            m = int(tab.n_t.shape[0])
            tasks = [v.task for v in vs if v.task is not None]
            where = (f"{len(tasks)}/{m} tasks" + (" + overall" if len(tasks) < len(vs)
                                                  else "")) if tasks else "overall"
            if cat == "assumption" and not key.startswith("train:") and tab.diagnostics:
                where += f" (A.1 flagged {int(tab.diagnostics['n_flagged'])}/{m})"
            parts.append(f"{split}/{rule} {where}")
        why = ("possible with probability <= PAC delta" if cat == "pac" else
               "the split is not distributed like the train split" if key.startswith("train:")
               else "Assumption A.1 is the likely reason")
        lines.append(f"{key}: {verdict(False, cat)} on {', '.join(parts)}; {why}")
    return lines


def vacuous_summary(report: Report) -> list[str]:
    """The bounds that are vacuous (>= ``VACUOUS``) overall: per bound, where (its one
    split/rule table, or how many of the tables that have it)."""
    where: dict[str, list[str]] = {}
    has: dict[str, int] = {}
    for tab in report.tables:
        for r in tab.rows:
            has[r.key] = has.get(r.key, 0) + 1
            if r.overall >= VACUOUS:
                where.setdefault(r.key, []).append(f"{tab.split}/{tab.mode}-{tab.kind}")
    return [f"{key} ({w[0] if len(w) == 1 else f'{len(w)} of {has[key]} tables'})"
            for key, w in where.items()]


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


# ------------------------------------------------------------------ JSON
def _clean(x: Any) -> Any:
    """Recursively convert numpy values to JSON types; NaN / inf -> None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def to_jsonable(report: Report) -> dict[str, Any]:
    """The report as plain JSON-compatible data (same content as the tables)."""
    d = report.data
    tables = []
    for tab in report.tables:
        rows = []
        for r in tab.rows:
            ratio = [ratio_and_gap(float(b), float(e))[0]
                     for b, e in zip(r.per_task, tab.err_t)]
            rows.append({
                "key": r.key, "name": r.name, "title": r.title, "category": r.category,
                "source": r.source, "per_task": r.per_task, "overall": r.overall,
                "overall_native": r.overall_native, "holds_per_task": r.holds_task,
                "holds_overall": r.holds_overall, "holds": r.holds,
                "tightness_ratio_per_task": ratio,
                "gap_per_task": r.per_task - tab.err_t,
                "tightness_ratio_overall": ratio_and_gap(r.overall, tab.err)[0],
                "gap_overall": r.overall - tab.err,
                "assumptions": list(r.assumptions), "note": r.note,
                "tier": tier_of(r),
                "verdict_per_task": [verdict(bool(h), r.category) for h in r.holds_task],
                "verdict_overall": verdict(r.holds_overall, r.category),
                "vacuous_overall": r.overall >= VACUOUS,
            })
        tables.append({
            "split": tab.split, "mode": tab.mode, "kind": tab.kind, "file": tab.rel,
            "n": tab.n, "n_per_task": tab.n_t,
            "empirical_error": {"per_task": tab.err_t, "overall": tab.err},
            "delta_t": tab.delta_t, "bounds": rows, "a1_diagnostics": tab.diagnostics,
            "notes": tab.notes,
            "predictions": [{
                "key": p.key, "target": p.target, "assumption": p.assumption,
                "per_task": p.per_task, "overall": p.overall, "se_per_task": p.se_task,
                "se_overall": p.se_overall, "monte_carlo": p.draws,
                "realised_per_task": p.realised_task,
                "realised": p.realised, "abs_error_per_task": p.abs_err_task,
                "abs_error_overall": p.abs_err, "mae_over_tasks": p.mae,
                "spearman_rho": p.spearman} for p in tab.predictions],
            "claims": tab.claims,
        })
    def viol(vs: list[Any]) -> list[dict[str, Any]]:
        return [{"bound": v.key, "category": v.category, "split": v.split, "mode": v.mode,
                 "kind": v.kind, "task": v.task, "bound_value": v.bound, "error": v.error,
                 "message": v.message()} for v in vs]

    meta = {k: d.meta.get(k) for k in ("schema_version", "status", "n_tasks", "tasks_complete",
                                       "seed", "preset")}

    rungs = [{"split": r.split, "rule": r.rule, "error": r.error,
              "tiers": {str(k): None if v is None else {"key": v[0], "overall": v[1],
                                                        "ratio": ratio_and_gap(v[1], r.error)[0]}
                        for k, v in r.best.items()},
              "prediction": None if r.pred is None else {
                  "key": r.pred.key, "target": r.pred.target, "overall": r.pred.overall,
                  "se": r.pred.se_overall, "monte_carlo": r.pred.draws,
                  "abs_error": r.pred.abs_err, "spearman_rho": r.pred.spearman},
              "a1": r.a1} for r in ladder(report)]
    return _clean({
        "run_dir": str(d.root), "run": meta, "step": d.step, "n_tasks_at_step": d.m,
        "ladder": rungs,
        "delta": report.delta, "tolerance": TOL, "warnings": report.warnings,
        "tables": tables,
        # the Python API's names: guaranteed violations only (exit code 1), and the
        # PAC / assumption-dependent failures that never change the exit code
        "violations": viol(report.violations),
        "soft_violations": viol(report.soft_violations),
        "soft_summary": soft_summary(report),
        "guaranteed_violations": len(report.violations), "exit_code": report.exit_code,
        "rules_checked": sorted({f"{t.mode}-{t.kind}" for t in report.tables}),
        "rules_expected": list(getattr(d, "rules_expected", None) or []),
        "run_provenance": getattr(d, "provenance", None),
        "vacuous_threshold": VACUOUS,
    })


def write_json(report: Report, path: str | Path) -> None:
    """Write :func:`to_jsonable` to ``path`` (strict JSON: ``allow_nan=False``)."""
    text = json.dumps(to_jsonable(report), indent=1, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


#: the columns of ``--csv`` (docs/check-json.md)
CSV_COLUMNS = ("split", "rule", "task", "bound", "tier", "value", "error", "holds")


def csv_rows(report: Report) -> list[tuple[Any, ...]]:
    """One row per (split, rule, task or ``overall``, bound): ``tier`` is 1, 2, 3 or
    ``assumption`` (docs/theory.md §11), ``holds`` is ``true`` / ``false``."""
    rows = []
    for tab in report.tables:
        rule = f"{tab.mode}-{tab.kind}"
        for r in tab.rows:
            tier = tier_of(r) or "assumption"
            for t in range(tab.n_t.shape[0]):
                rows.append((tab.split, rule, t, r.key, tier, float(r.per_task[t]),
                             float(tab.err_t[t]), bool(r.holds_task[t])))
            rows.append((tab.split, rule, "overall", r.key, tier, r.overall, tab.err,
                         bool(r.holds_overall)))
    return rows


def write_csv(report: Report, path: str | Path) -> None:
    """Write :func:`csv_rows` with a header line (``CSV_COLUMNS``) to ``path``."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in csv_rows(report):
        w.writerow([repr(v) if isinstance(v, float) else str(v).lower() if isinstance(v, bool)
                    else v for v in row])
    Path(path).write_text(buf.getvalue(), encoding="utf-8")
