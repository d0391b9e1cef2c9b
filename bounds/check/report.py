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

__all__ = ["render", "to_jsonable", "write_json", "ratio_and_gap"]


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


def _cell(bound: float, error: float, holds: bool) -> Any:
    """``value tightness mark`` as a styled rich Text (no markup parsing: fast)."""
    from rich.text import Text

    ratio, gap = ratio_and_gap(bound, error)
    tight = f"x{ratio:.3g}" if ratio is not None else f"+{gap:.2g}"
    return Text.assemble(f"{bound:.4f} {tight} ", ("ok", _OK_STYLE) if holds else
                         ("VIOLATED", _BAD_STYLE))


def _table_rows(tab: Table) -> list[tuple[str, int, float, float, int | None]]:
    rows = [(str(t), int(tab.n_t[t]), float(tab.err_t[t]), float(tab.delta_t[t]), t)
            for t in range(tab.n_t.shape[0])]
    rows.append(("overall", tab.n, tab.err, float(np.min(tab.delta_t)), None))
    return rows


def _make_console(out: TextIO | None) -> Any:
    from rich.console import Console

    stream = out if out is not None else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = shutil.get_terminal_size((200, 40)).columns if tty else int(
        os.environ.get("COLUMNS", "200"))
    return Console(file=stream, width=max(width, 100), highlight=False, emoji=False,
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


def _ladder_lines(report: Report, worst: int) -> list[tuple[str, str | None]]:
    """The one-screen summary as (text, style) lines (docs/theory.md §11): per split, one
    line per rule, then the ``worst`` tasks of each rule on one line."""
    rungs = ladder(report)
    lines: list[tuple[str, str | None]] = []
    for split in dict.fromkeys(r.split for r in rungs):
        rs = [r for r in rungs if r.split == split]
        lines.append((f"{split} split: retrieval error, the tightest bound of each tier "
                      "(xN = bound / error) and the training-time prediction", "bold"))
        head = ["rule", "error", "earlier/later"] + [
            f"{k} {v}" for k, v in TIER_NAMES.items()] + ["prediction ± MC se, |err|, rho",
                                                          "A.1"]
        body = []
        for r in rs:
            cl = r.claims
            pi = None if cl is None else cl["n_t"] / cl["n_t"].sum()
            cells = [r.rule, f"{r.error:.3f}",
                     "-" if cl is None else f"{pi @ cl['earlier']:.3f}/{pi @ cl['later']:.3f}"]
            for k in TIER_NAMES:
                b = r.best.get(k)
                if b is None:
                    cells.append("-")
                elif b[0].endswith("(earlier)") and cl is not None:
                    ref = float(pi @ cl["earlier_event"])
                    cells.append(f"{b[0]} {b[1]:.3f} {_ratio(b[1], ref)} of {ref:.3f}")
                else:
                    cells.append(f"{_short(b[0])} {b[1]:.3f} {_ratio(b[1], r.error)}")
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
            cells.append(r.a1)
            tab = next(t for t in report.tables
                       if t.split == split and f"{t.mode}-{t.kind}" == r.rule)
            bad = [row.key for row in tab.rows if row.category == "guaranteed" and not row.holds]
            if bad:
                cells.append(f"VIOLATED: {', '.join(bad)}")
            body.append(cells)
        widths = [max(len(c[j]) for c in [head] + body if j < len(c))
                  for j in range(len(head) + 1) if any(j < len(c) for c in body)]
        lines += [("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip(),
                   "dim" if i == 0 else "bold red" if len(cells) > len(head) else None)
                  for i, cells in enumerate([head] + body)]
        for tab in [t for t in report.tables if t.split == split and t.diagnostics]:
            diag = tab.diagnostics
            if diag["n_flagged"]:
                why = [f"task {t}: {diag['reason'][t]}" for t in range(len(diag["flag"]))
                       if diag["flag"][t]]
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
                items = []
                for t in order:
                    vals = [f"{tab.err_t[t]:.3f}"]
                    for k in TIER_NAMES:
                        rows = [row for row in tab.rows if tier_of(row) == k]
                        vals.append(f"{min(row.per_task[t] for row in rows):.2f}" if rows
                                    else "-")
                    preds = [p for p in tab.predictions if p.target == "error"]
                    vals.append(fmt_mc(preds[0].per_task[t], preds[0].se_task[t], pm=False,
                                       at_most=2) if preds else "-")
                    items.append(f"{t}: " + " ".join(vals))
                lines.append((f"  worst {tab.mode}-{tab.kind} (task: error tier1 tier2 tier3 "
                              "pred): " + " | ".join(items), "dim"))
    return lines


def render(report: Report, out: TextIO | None = None, *, per_task: bool = False,
           worst: int = 3) -> None:
    """Print the ladder (always first), then with ``per_task`` every table (``rich``)."""
    from rich.markup import escape
    from rich.text import Text

    con = _make_console(out)
    d = report.data
    meta = d.meta
    status = escape(str(meta.get("status", "unset")))
    con.print(f"[bold]run[/] {escape(str(d.root))}  status={status}"
              f" tasks_complete={meta['tasks_complete']}/{meta['n_tasks']}  step={d.step} "
              f"(tasks 0..{d.step})  PAC delta={report.delta:g}")
    for w in report.warnings[:5]:
        con.print(f"[yellow]warning:[/] {escape(w)}")
    if len(report.warnings) > 5:
        con.print(f"[yellow]... {len(report.warnings) - 5} more warning(s) in the JSON[/]")
    for text, style in _ladder_lines(report, worst):
        con.print(Text(text, style=style or ""))
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
                        cells.append(_cell(r.overall, err, r.holds_overall))
                    else:
                        cells.append(_cell(float(r.per_task[t]), err, bool(r.holds_task[t])))
                if diag is not None:
                    if t is None:
                        cells += ["", "", f"{diag['n_flagged']} flagged"]
                    else:
                        p = diag["normality_p"][t]
                        cells += [
                            "-" if p is None else f"{p:.2g}",
                            f"{diag['loglik_gap_per_dim'][t]:+.3f}",
                            Text("FAILS", _BAD_STYLE) if diag["flag"][t] else Text("ok",
                                                                                 _OK_STYLE),
                        ]
                body.append(cells)
            con.print(_rich_table(f"{tab.title} ({tab.rel}): {title}", columns, body,
                                  tab.n_t.shape[0] - 1))
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
                       "--json FILE", style="dim"))
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
    if report.soft_violations:
        con.print(f"[yellow]{len(report.soft_violations)} PAC/assumption-dependent bound "
                  "failure(s)[/] (do not change the exit code; --per-task shows why)")


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
    viol = [{"bound": v.key, "category": v.category, "split": v.split, "mode": v.mode,
             "kind": v.kind, "task": v.task, "bound_value": v.bound, "error": v.error,
             "message": v.message()} for v in report.violations + report.soft_violations]
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
        "tables": tables, "violations": viol,
        "guaranteed_violations": len(report.violations), "exit_code": report.exit_code,
    })


def write_json(report: Report, path: str | Path) -> None:
    """Write :func:`to_jsonable` to ``path`` (strict JSON: ``allow_nan=False``)."""
    text = json.dumps(to_jsonable(report), indent=1, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")
