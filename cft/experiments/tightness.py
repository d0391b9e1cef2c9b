"""Bound tightness over seeds: the checker's ladder of every complete cell, aggregated.

``python -m cft report DIR --bounds`` runs ``python -m bounds.check RUN --json
RUN/check.json --split test`` on every complete cell whose ``check.json`` is missing, older
than its ``run.json``, written by other checker code (its ``checker_code`` against the
digest ``python -m bounds.check --version`` reports) or not that default report (in a
subprocess: the checker is the stage after the run dir, so ``cft`` reads its documented
output, docs/check-json.md, and imports none of it), then
aggregates, per (preset, method, variant) and rule of the test split, over the seeds:

* the empirical retrieval error;
* per ladder tier (1 sample-exact, 2 PAC, 3 training-time, bounds/vocabulary.py) the
  tightest bound's ratio ``bound / error`` (docs/theory.md §11), and how many seeds have one;
* the prediction's absolute error ``|prediction - error|`` (never a bound).

Mean and sample standard deviation over seeds, as the accuracy tables
(:func:`cft.experiments.stats.mean_std`).  Without ``--bounds`` the cells' existing
``check.json`` files are used (none: no tightness table).  Writes ``DIR/report-bounds.csv``
and a section of ``DIR/report.md``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.experiments.stats import csv_number, mean_std

__all__ = ["CHECK_FILE", "NOT_APPLICABLE", "TIERS", "TightRow", "checker_identity",
           "ensure_check", "gather", "render_csv", "render_markdown"]

#: the checker's JSON report, inside the run directory
CHECK_FILE = "check.json"
#: the ladder's numbered tiers, as check.json's ``ladder[].tiers`` keys them
TIERS = ("1", "2", "3")
CSV_FIELDS = ("preset", "dataset", "method", "variant", "rule", "n", "error_mean",
              "error_std", "tier1_ratio_mean", "tier1_ratio_std", "tier1_n",
              "tier2_ratio_mean", "tier2_ratio_std", "tier2_n", "tier3_ratio_mean",
              "tier3_ratio_std", "tier3_n", "prediction_abs_error_mean",
              "prediction_abs_error_std", "prediction_n", "seeds")


#: :func:`ensure_check`'s answer for a method with no task retrieval (nothing to bound)
NOT_APPLICABLE = "not applicable"


def _no_retrieval(rd: Path) -> bool:
    """The run's summary records no task retrieval (``"retrieval": "n/a"``)."""
    try:
        met = json.loads((rd / L.METRICS).read_text(encoding="utf-8"))
        return met["summary"].get("retrieval") == L.NOT_APPLICABLE
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def checker_identity() -> str | None:
    """The digest of the checker's code that ``python -m bounds.check --version`` reports
    (``...; bounds code D``): the ``checker_code`` a current ``check.json`` records; None
    when it cannot be asked (then files are judged by date and content only)."""
    p = subprocess.run([sys.executable, "-m", "bounds.check", "--version"],
                       capture_output=True, text=True, check=False)
    m = re.search(r"bounds code ([0-9a-f]+)", p.stdout) if p.returncode == 0 else None
    return m.group(1) if m else None


def _stale(rd: Path, checker: str | None) -> str | None:
    """Why ``RUN/check.json`` cannot be reused (None: it can): missing, older than
    ``run.json``, written by other checker code (``checker``: the current code digest,
    against the file's ``checker_code``; None: not compared), or not the default report
    (another ``--step`` than the last, or no test-split ladder)."""
    out = rd / CHECK_FILE
    if not out.is_file():
        return "missing"
    if out.stat().st_mtime < (rd / L.RUN).stat().st_mtime:
        return "older than run.json"
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
        last = int(data["run"]["n_tasks"]) - 1
        step, ladder = data["step"], data["ladder"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable"
    if checker is not None and data.get("checker_code") != checker:
        return (f"written by other checker code ({data.get('checker') or 'unrecorded'}, "
                f"code {data.get('checker_code') or 'unrecorded'})")
    if step != last or not any(r.get("split") == "test" for r in ladder):
        return "not the default report (--split test at the last step)"
    return None


def ensure_check(run_dir: str | os.PathLike[str], *, jobs: int = 1,
                 checker: str | None = None,
                 progress: Callable[[str], None] | None = None) -> str | None:
    """Make ``RUN/check.json`` current (run the checker if it is stale, :func:`_stale`;
    ``checker``: the current :func:`checker_identity`, compared with the file's;
    ``progress`` hears whether, and why, the cell is checked); None when it is there,
    :data:`NOT_APPLICABLE` for a method with no task retrieval, else one line saying why
    it is not.  The checker writes to a temporary file, renamed over ``check.json`` only
    when it finished (exit 0 or 1), so a failed check never leaves an old report looking
    current."""
    rd = Path(run_dir)
    if _no_retrieval(rd):
        return NOT_APPLICABLE
    out = rd / CHECK_FILE
    stale = _stale(rd, checker)
    if progress is not None:
        progress(f"{rd}: " + (f"checking ({stale})" if stale else "check.json current"))
    if stale is None:
        return None
    tmp = rd / (CHECK_FILE + ".partial")
    tmp.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bounds.check", str(rd), "--json", str(tmp), "--split",
           "test", "--jobs", str(jobs)]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       check=False)
    if p.returncode in (0, 1) and tmp.is_file():
        os.replace(tmp, out)  # 1: a guaranteed bound is violated; the report shows it
        return None
    tmp.unlink(missing_ok=True)
    last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
    return f"bounds.check exited {p.returncode}: {last}"


@dataclass(frozen=True)
class TightRow:
    """One (group, rule) of the test split, over the seeds that have a ``check.json``."""

    preset: str
    dataset: str
    method: str
    variant: str
    rule: str
    seeds: tuple[int, ...]
    error: list[float]
    #: tier -> ratios bound / error of the seeds where that tier has a bound and error > 0
    ratios: dict[str, list[float]]
    #: |prediction - realised| of the seeds with a prediction
    pred_abs: list[float]
    #: the tiers (and "pred") whose row is about the earlier-claimed part of the error
    #: (docs/theory.md §10): no ratio to the whole error is taken for such a tier
    earlier: frozenset[str] = frozenset()


def _ladder(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((path / CHECK_FILE).read_text(encoding="utf-8"))
        return [r for r in data["ladder"] if r.get("split") == "test"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def gather(groups: Sequence[Any], ensure: bool = False,
           progress: Callable[[str], None] | None = None) -> tuple[list[TightRow], list[str]]:
    """The tightness rows of ``groups`` (:class:`cft.experiments.report.Group` with their
    ``paths``), and one line per cell without a usable ``check.json``.  ``ensure``: run the
    checker where it is missing or stale."""
    rows: list[TightRow] = []
    missing: list[str] = []
    checker = checker_identity() if ensure else None
    for g in groups:
        by_rule: dict[str, dict[str, Any]] = {}
        for seed, path in zip(g.seeds, g.paths):
            if _no_retrieval(Path(path)):
                continue  # no task retrieval: no bound to aggregate
            why = ensure_check(path, checker=checker, progress=progress) if ensure else None
            rungs = [] if why else _ladder(Path(path))
            if not rungs:
                missing.append(f"{path}: {why or 'no check.json (run cft report --bounds)'}")
                continue
            for r in rungs:
                acc = by_rule.setdefault(r["rule"], {"seeds": [], "error": [], "pred": [],
                                                     "ratios": {k: [] for k in TIERS},
                                                     "earlier": set()})
                acc["seeds"].append(seed)
                acc["error"].append(float(r["error"]))
                for k in TIERS:
                    t = (r.get("tiers") or {}).get(k)
                    # about the earlier-claimed part ("target"; older files: the key)
                    if t is not None and (t.get("target") == "earlier" or str(
                            t.get("key", "")).endswith("(earlier)")):
                        acc["earlier"].add(k)  # bounds the earlier-claimed part only
                    elif t is not None and t.get("ratio") is not None:
                        acc["ratios"][k].append(float(t["ratio"]))
                pr = r.get("prediction")
                if pr is not None and pr.get("target") == "earlier":
                    acc["earlier"].add("pred")
                if pr is not None and pr.get("abs_error") is not None:
                    acc["pred"].append(float(pr["abs_error"]))
        for rule in sorted(by_rule):
            a = by_rule[rule]
            rows.append(TightRow(g.preset, g.dataset, g.method, g.variant, rule,
                                 tuple(a["seeds"]), a["error"], a["ratios"], a["pred"],
                                 frozenset(a["earlier"])))
    return rows, missing


def _ms(values: list[float], fmt: str) -> str:
    mean, std = mean_std(values)
    if mean is None:
        return "-"
    return format(mean, fmt) + ("" if std is None else " ± " + format(std, fmt))


def render_markdown(rows: Sequence[TightRow], missing: Sequence[str]) -> str:
    """The report's section: one table row per (group, rule)."""
    out = ["## Bound tightness (test split)", "",
           "Over seeds, mean ± std: the retrieval error, the tightest bound of each ladder tier "
           "as a ratio bound / error (1 sample-exact, 2 PAC, 3 training-time; `-`: no bound "
           "of that tier; a ratio needs a non-zero error), and the prediction's |prediction "
           "- error| (an estimate, not a bound). (e): that tier's tightest row bounds only "
           "the part of the error claimed by an earlier task (docs/theory.md §10), so no "
           "ratio to the whole error is given; a prediction marked (e) is scored against that "
           "part. From each cell's `check.json` (docs/check-json.md).", "",
           "| preset | method | variant | rule | seeds | error | tier 1 ratio | tier 2 ratio "
           "| tier 3 ratio | prediction abs. error |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append("| " + " | ".join([
            r.preset, r.method, r.variant, r.rule, str(len(r.seeds)), _ms(r.error, ".3f"),
            *[_ms(r.ratios[k], ".2f") + (" (e)" if k in r.earlier else "") for k in TIERS],
            _ms(r.pred_abs, ".3f") + (" (e)" if "pred" in r.earlier else "")]) + " |")
    if missing:
        out += ["", "Cells without a checker report:", ""]
        out += [f"- `{m}`" for m in missing]
    out.append("")
    return "\n".join(out)


def render_csv(rows: Sequence[TightRow]) -> str:
    """One CSV row per (group, rule): :data:`CSV_FIELDS`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        cells: list[Any] = [r.preset, r.dataset, r.method, r.variant, r.rule, len(r.seeds),
                            *map(csv_number, mean_std(r.error))]
        for k in TIERS:
            cells += [*map(csv_number, mean_std(r.ratios[k])), len(r.ratios[k])]
        cells += [*map(csv_number, mean_std(r.pred_abs)), len(r.pred_abs),
                  " ".join(map(str, r.seeds))]
        w.writerow(cells)
    return buf.getvalue()
