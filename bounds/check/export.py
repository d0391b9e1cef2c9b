"""The report as data: strict JSON (docs/check-json.md) and a flat CSV (split, rule, task,
bound, tier, value, error, holds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .core import TOL, Report
from .ladder import ladder, tier_of
from .screen import soft_summary
from .verdicts import (
    VACUOUS,
    ratio_and_gap,
    verdict,
)


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


def to_jsonable(report: Report, checker: str | None = None,
                code: str | None = None) -> dict[str, Any]:
    """The report as plain JSON-compatible data (same content as the tables); ``checker``
    / ``code``: what checked it (``files.checker_version()`` / ``files.checker_code()``),
    recorded as ``"checker"`` / ``"checker_code"``."""
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

    def tier(r: Any, k: int, v: tuple[str, float] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        ref, target = r.reference(k)  # an (earlier) row: against the earlier-claimed rate
        return {"key": v[0], "overall": v[1], "target": target, "reference": ref,
                "ratio": None if ref is None else ratio_and_gap(v[1], ref)[0]}

    rungs = [{"split": r.split, "rule": r.rule, "error": r.error,
              "tiers": {str(k): tier(r, k, v) for k, v in r.best.items()},
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
        "checker": checker, "checker_code": code,
        "vacuous_threshold": VACUOUS,
    })


def write_json(report: Report, path: str | Path, checker: str | None = None,
               code: str | None = None) -> None:
    """Write :func:`to_jsonable` to ``path`` (strict JSON: ``allow_nan=False``)."""
    text = json.dumps(to_jsonable(report, checker, code), indent=1, allow_nan=False)
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
