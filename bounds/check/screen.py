"""The one-screen ladder as text lines (docs/theory.md §11): the header, one row per
(split, rule) folded to the width, the worst tasks, and the summaries of soft failures and
vacuous bounds."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Report, Table
from .ladder import TIER_NAMES, ladder, tier_of
from .mcnumbers import fmt_mc
from .verdicts import (
    LADDER_WIDTH,
    VACUOUS,
    _a1,
    _compact_name,
    _ratio,
    _ratio_short,
    _rule_verdict,
    _short,
    verdict,
)


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


def _a1_lines(report: Report, split: str) -> list[tuple[str, str | None]]:
    """One line per table of ``split`` whose A.1 diagnostics flag tasks (the first two named)."""
    out: list[tuple[str, str | None]] = []
    for tab in [t for t in report.tables if t.split == split and t.diagnostics]:
        diag = tab.diagnostics
        if diag["n_flagged"]:
            why = [f"task {_task_label(report, t)}: {diag['reason'][t]}"
                   for t in range(len(diag["flag"])) if diag["flag"][t]]
            more = f" (+{len(why) - 2} more)" if len(why) > 2 else ""
            out.append((f"  {tab.mode}-{tab.kind}: A.1 diagnostics flag {len(why)} "
                        f"task(s): {'; '.join(why[:2])}{more}", "yellow"))
    return out


def _task_label(report: Report, t: int) -> str:
    names = getattr(report.data, "task_names", None) or []
    return f"{t} [{names[t]}]" if t < len(names) and names[t] else str(t)


def _ladder_lines(report: Report, worst: int, width: int = LADDER_WIDTH,
                  wide: bool = False) -> list[tuple[str, str | None]]:
    """The one-screen summary as (text, style) lines (docs/theory.md §11): per split, one
    row per rule, then the ``worst`` tasks of each rule. At most ``width`` columns (rows
    fold, never cut a verdict); ``wide``: one line per rule with the earlier/later split
    and the full names."""
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
                if r.is_earlier(k):  # not a bound on the error: no ratio to it
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
        lines += _a1_lines(report, split)
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
                elif r.is_earlier(k) and cl is not None:
                    ref = r.reference(k)[0]
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
        lines += _a1_lines(report, split)
        if any(r.is_earlier(3) for r in rs):
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
