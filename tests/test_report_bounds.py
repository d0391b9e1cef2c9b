"""``cft report DIR --bounds``: the checker's ladder of every complete cell, aggregated over
seeds (:mod:`cft.experiments.tightness`): the checker is run where ``check.json`` is missing
or stale, the aggregates equal the per-cell ladders, and a cell the checker refuses is named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from rundir_factory import write_minimal_run

from bounds import empirical_error
from cft.cli import main
from cft.experiments.report import report
from cft.experiments.tightness import CHECK_FILE, NOT_APPLICABLE, ensure_check
from cft.run.rundir import write_json


def _scores(seed: int, m: int = 3, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(m), n // m)
    S = rng.uniform(1.0, 2.0, (len(task), m))
    S[np.arange(len(task)), task] -= rng.uniform(0.0, 1.2, len(task))  # some errors
    return S, task


def _cell(root: Path, seed: int) -> tuple[Path, np.ndarray, np.ndarray]:
    S, task = _scores(seed)
    d = write_minimal_run(root / f"runs/s{seed}", S, task)
    write_json(d / "run.json", {"schema_version": 1, "status": "complete", "n_tasks": 3,
                                "tasks_complete": 3, "seed": seed})
    write_json(d / "config.json", {"data": {"name": "hand"}, "preset": "hand",
                                   "method": "mine", "seed": seed})
    summ = {"task_aware": {"last": 0.9, "aia": 0.9, "forgetting": None, "bwt": None}}
    write_json(d / "metrics.json", {"n_tasks": 3, "summary": summ})
    return d, S, task


def test_report_bounds_aggregates_the_checkers_ladder(tmp_path, capsys) -> None:
    cells = [_cell(tmp_path, s) for s in (0, 1)]
    assert main(["report", str(tmp_path), "--metrics", "task_aware.last", "--bounds"]) == 0
    out = capsys.readouterr().out
    assert "## Bound tightness (test split)" in out and "report-bounds.csv" in out
    errors, ratios = [], []
    for d, S, task in cells:
        js = json.loads((d / CHECK_FILE).read_text())
        (rung,) = [r for r in js["ladder"] if r["split"] == "test"]
        assert rung["rule"] == "shared-centroid"
        assert rung["error"] == pytest.approx(empirical_error(S, task)[1], abs=1e-12)
        errors.append(rung["error"])
        ratios.append(rung["tiers"]["1"]["ratio"])
    assert min(errors) > 0 and all(r >= 1.0 - 1e-12 for r in ratios)
    rows = list((tmp_path / "report-bounds.csv").read_text().splitlines())
    head, (row,) = rows[0].split(","), [r.split(",") for r in rows[1:]]
    got = dict(zip(head, row))
    assert (got["preset"], got["method"], got["rule"], got["n"], got["seeds"]) == (
        "hand", "mine", "shared-centroid", "2", "0 1")
    assert float(got["error_mean"]) == pytest.approx(np.mean(errors), abs=1e-6)
    assert float(got["error_std"]) == pytest.approx(np.std(errors, ddof=1), abs=1e-6)
    assert float(got["tier1_ratio_mean"]) == pytest.approx(np.mean(ratios), abs=1e-6)
    assert got["tier1_n"] == "2" and got["tier2_n"] == "0" and got["tier2_ratio_mean"] == ""
    md = (tmp_path / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| hand | mine | base | shared-"))
    assert f"{np.mean(errors):.3f} ± {np.std(errors, ddof=1):.3f}" in line
    assert f"{np.mean(ratios):.2f}" in line


def test_check_json_is_reused_until_the_run_changes(tmp_path) -> None:
    d, _, _ = _cell(tmp_path, 0)
    assert ensure_check(d) is None
    first = (d / CHECK_FILE).stat().st_mtime_ns
    assert ensure_check(d) is None
    assert (d / CHECK_FILE).stat().st_mtime_ns == first  # current: not rerun
    later = (d / CHECK_FILE).stat().st_mtime + 5
    os.utime(d / "run.json", (later, later))
    assert ensure_check(d) is None
    assert (d / CHECK_FILE).stat().st_mtime_ns != first  # run.json newer: rerun


def test_a_cell_the_checker_refuses_is_named(tmp_path) -> None:
    _, S, task = _cell(tmp_path, 0)
    bad, _, _ = _cell(tmp_path, 1)
    (bad / "eval/step-002/test/shared-centroid.npz").write_bytes(b"not an npz")
    res = report(tmp_path, metrics=("task_aware.last",), bounds=True)
    (row,) = res.tightness
    assert row.seeds == (0,)
    assert row.error == [pytest.approx(empirical_error(S, task)[1], abs=1e-12)]
    assert "Cells without a checker report:" in res.markdown
    assert "s1: bounds.check exited 2: " in res.markdown


def test_a_failed_check_never_reuses_a_stale_report(tmp_path) -> None:
    """A current check.json, then the run changes and the checker refuses it: the old
    report is removed from the aggregate (the cell is named), not read as current."""
    _cell(tmp_path, 0)
    d, _, _ = _cell(tmp_path, 1)
    assert ensure_check(d) is None and (d / CHECK_FILE).is_file()
    (d / "eval/step-002/test/shared-centroid.npz").write_bytes(b"not an npz")
    later = (d / CHECK_FILE).stat().st_mtime + 5
    os.utime(d / "run.json", (later, later))
    res = report(tmp_path, metrics=("task_aware.last",), bounds=True)
    (row,) = res.tightness
    assert row.seeds == (0,)
    assert "s1: bounds.check exited 2: " in res.markdown
    assert not (d / "check.json.partial").exists()


def test_a_method_without_task_retrieval_is_skipped_quietly(tmp_path) -> None:
    _cell(tmp_path, 0)
    d, _, _ = _cell(tmp_path, 1)
    summ = {"retrieval": "n/a",
            "task_aware": {"last": 0.9, "aia": 0.9, "forgetting": None, "bwt": None}}
    write_json(d / "metrics.json", {"n_tasks": 3, "summary": summ})
    assert ensure_check(d) == NOT_APPLICABLE and not (d / CHECK_FILE).exists()
    res = report(tmp_path, metrics=("task_aware.last",), bounds=True)
    assert [r.seeds for r in res.tightness] == [(0,)]
    assert "Cells without a checker report" not in res.markdown


def test_earlier_claimed_rows_get_no_ratio_to_the_whole_error(tmp_path) -> None:
    """A tier whose tightest row bounds the earlier-claimed part only (key '... (earlier)')
    and a prediction of that part are marked (e); no ratio to the whole error is averaged."""
    d, _, _ = _cell(tmp_path, 0)
    rung = {"split": "test", "rule": "adapted-nll", "error": 0.8,
            "tiers": {"1": {"key": "G-emp", "overall": 1.0, "ratio": 1.25}, "2": None,
                      "3": {"key": "train:G-cantelli (earlier)", "overall": 0.4, "ratio": 0.5}},
            "prediction": {"key": "pred:gauss-scores", "target": "earlier", "abs_error": 0.01}}
    (d / CHECK_FILE).write_text(json.dumps({"ladder": [rung]}))
    res = report(tmp_path, metrics=("task_aware.last",))
    (row,) = res.tightness
    assert row.ratios == {"1": [1.25], "2": [], "3": []}
    assert row.earlier == frozenset({"3", "pred"})
    line = next(ln for ln in res.markdown.splitlines() if "| adapted-nll |" in ln)
    assert line.endswith("| 0.800 | 1.25 | - | - (e) | 0.010 (e) |")


def test_check_json_from_another_checker_or_another_report_is_rechecked(tmp_path) -> None:
    """check.json records its checker; a file written by another checker, at another
    step, or without a test-split ladder is re-checked, never aggregated as current."""
    from cft.experiments.tightness import _stale, checker_identity

    d, _, _ = _cell(tmp_path, 0)
    me = checker_identity()
    assert me is not None and len(me) == 12 and int(me, 16) >= 0
    assert _stale(d, me) == "missing"
    assert ensure_check(d, checker=me) is None
    data = json.loads((d / CHECK_FILE).read_text())
    assert data["checker_code"] == me and data["checker"].startswith("cft-bounds ")
    assert _stale(d, me) is None
    mtime = (d / CHECK_FILE).stat().st_mtime

    def rewrite(**change) -> None:
        (d / CHECK_FILE).write_text(json.dumps(data | change))
        os.utime(d / CHECK_FILE, (mtime, mtime))

    rewrite(checker="cft-bounds 0.1.0 (git 0000000)", checker_code="0123456789ab")
    assert _stale(d, me) == ("written by other checker code (cft-bounds 0.1.0 (git 0000000), "
                             "code 0123456789ab)")
    assert _stale(d, None) is None  # without a checker to compare: by date and content only
    rewrite(checker="a later commit, same bounds code")
    assert _stale(d, me) is None  # a commit that leaves bounds/ alone re-checks nothing
    rewrite(checker_code=None)
    assert _stale(d, me) == ("written by other checker code (" + data["checker"] +
                             ", code unrecorded)")
    rewrite(step=data["step"] - 1)
    assert _stale(d, me) == "not the default report (--split test at the last step)"
    rewrite(ladder=[dict(r, split="calibration") for r in data["ladder"]])
    assert _stale(d, me) == "not the default report (--split test at the last step)"
    (d / CHECK_FILE).write_text("{")
    assert _stale(d, me) == "unreadable"
    rewrite(checker_code="another")
    assert ensure_check(d, checker=me) is None  # re-checked: the file is current again
    assert json.loads((d / CHECK_FILE).read_text())["checker_code"] == me
