"""Issue 25: what a new user meets in ``python -m bounds.check`` and ``bounds.testing``.

False passes (a missing rule file in a complete run), the JSON's names and the CSV, a
closed pipe, output paths validated first, the ladder's width, one verdict vocabulary,
what the soft failures are, provenance, ``--plot`` formats, ``check_bound`` on a class,
and the score orientation."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from rundir_factory import write_minimal_run, write_run_dir

import bounds
from bounds.check import check_run, load_run, main
from bounds.check.export import CSV_COLUMNS
from bounds.check.report import LADDER_WIDTH, render, to_jsonable

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
ENV.pop("COLUMNS", None)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_dir(tmp_path_factory.mktemp("ux") / "run", m=3, K=2, d=5, n_train=60,
                         n_cal=40, n_test=50, sep=3.0, seed=7)


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Student-t data: Assumption A.1 fails, gaussian-chernoff fails on some tasks."""
    return write_run_dir(tmp_path_factory.mktemp("heavy") / "run", m=5, K=2, d=6,
                         dist="student", dof=1.5, sep=6.0, n_test=150, seed=2)


@pytest.fixture()
def run(base_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


def _main(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _text(report: object, monkeypatch: pytest.MonkeyPatch, columns: int | None, **kw: object
          ) -> str:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    buf = io.StringIO()
    render(report, buf, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


# ------------------------------------------------------------------ item 1: false pass
def test_missing_rule_file_in_complete_run_is_bad_input(run: Path, capsys) -> None:
    (run / "eval" / "step-002" / "test" / "shared-centroid.npz").unlink()
    code, out, err = _main(capsys, run)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "eval/step-002/test/shared-centroid.npz: missing" in err
    assert "complete" in err and "shared-centroid" in err


def test_missing_rule_named_by_metrics_json(run: Path, capsys) -> None:
    """A rule that the step's metrics.json lists is expected even when no split has it."""
    step = run / "eval" / "step-002"
    for split in ("test", "calibration"):
        (step / split / "adapted-nll.npz").unlink()
    (step / "metrics.json").write_text(json.dumps({"retrieval": {
        "adapted": {"centroid": {}, "nll": {}}, "shared": {"centroid": {}, "nll": {}},
        "keys": {"cosine": {}}}}))
    code, _, err = _main(capsys, run, "--split", "test")
    assert code == 2 and "test/adapted-nll.npz: missing" in err, err
    assert "keys" not in err  # modes the checker does not read are not expected


def test_unfinished_or_handmade_run_is_checked_as_it_is(run: Path, tmp_path: Path,
                                                        capsys) -> None:
    (run / "eval" / "step-002" / "test" / "shared-centroid.npz").unlink()
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    code, out, _ = _main(capsys, run, "--split", "test")
    assert code == 0
    assert "rules checked: adapted-centroid, adapted-nll, shared-nll; expected: " \
           "adapted-centroid, adapted-nll, shared-centroid, shared-nll" in " ".join(out.split())
    rng = np.random.default_rng(0)
    task = np.repeat(np.arange(3), 20)
    S = rng.normal(size=(60, 3)) + 3.0
    S[np.arange(60), task] -= 2.5
    code, out, _ = _main(capsys, write_minimal_run(tmp_path / "hand", S, task))
    assert code == 0 and "rules checked: shared-centroid (expected: the same 1)" in out


# ------------------------------------------------------------------ item 2: JSON and CSV
def test_json_uses_the_api_names_and_csv(heavy_run: Path, tmp_path: Path, capsys) -> None:
    js, cs = tmp_path / "c.json", tmp_path / "c.csv"
    code, out, _ = _main(capsys, heavy_run, "--json", js, "--csv", cs)
    assert code == 0
    rep = json.loads(js.read_text())
    report = check_run(load_run(heavy_run))
    assert rep["violations"] == [] == report.violations  # guaranteed violations only
    assert len(rep["soft_violations"]) == len(report.soft_violations) > 0
    assert {v["category"] for v in rep["soft_violations"]} <= {"pac", "assumption"}
    assert rep["guaranteed_violations"] == 0 and rep["exit_code"] == 0
    assert any(line.startswith("gaussian-chernoff: fails (assumption) on ")
               for line in rep["soft_summary"])
    rows = list(csv.reader(cs.read_text().splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    n_rows = sum(len(b["per_task"]) + 1 for t in rep["tables"] for b in t["bounds"])
    assert len(rows) == 1 + n_rows
    by = {(r[0], r[1], r[2], r[3]): r for r in rows[1:]}
    tab = next(t for t in rep["tables"] if (t["split"], t["mode"], t["kind"]) ==
               ("test", "shared", "nll"))
    g = next(b for b in tab["bounds"] if b["key"] == "gaussian-chernoff")
    for t, (val, ok) in enumerate(zip(g["per_task"], g["holds_per_task"])):
        r = by[("test", "shared-nll", str(t), "gaussian-chernoff")]
        assert r[4] == "assumption" and r[7] == str(ok).lower()
        assert float(r[5]) == pytest.approx(val, rel=1e-12)
        assert float(r[6]) == pytest.approx(tab["empirical_error"]["per_task"][t], rel=1e-12)
    assert by[("test", "shared-centroid", "overall", "G-emp")][4] == "1"
    # the last lines say what the soft failures are
    flat = " ".join(out.split())
    assert "gaussian-chernoff: fails (assumption) on " in flat
    import re

    assert re.search(r"test/shared-nll \d/5 tasks( \+ overall)? \(A\.1 flagged 5/5\)", flat)


# ------------------------------------------------------------------ item 3: closed pipe
def test_closed_pipe_is_a_normal_end(base_run: Path, tmp_path: Path) -> None:
    js = tmp_path / "c.json"
    p = subprocess.Popen([sys.executable, "-m", "bounds.check", str(base_run), "--per-task",
                          "--json", str(js)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before the first line is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err
    assert json.loads(js.read_text())["exit_code"] == 0  # the report is still written
    sh = subprocess.run(["bash", "-c", f"{sys.executable} -m bounds.check {base_run} "
                         "--per-task | head -1; exit ${PIPESTATUS[0]}"], cwd=ROOT, env=ENV,
                        capture_output=True, text=True, timeout=300)
    assert sh.returncode == 0, sh.stderr
    assert sh.stdout.startswith("run ")


# ------------------------------------------------------------------ item 6: output paths
@pytest.mark.parametrize("opt,path,frag", [
    ("--json", "/nonexistent/x.json", "/nonexistent does not exist"),
    ("--csv", "/nonexistent/x.csv", "/nonexistent does not exist"),
    ("--plot", "/nonexistent/x.png", "/nonexistent does not exist"),
    ("--plot", "{tmp}/x.jpg", "unknown format '.jpg'"),
    ("--json", "{tmp}", "is a directory"),
])
def test_output_paths_checked_before_computing(base_run: Path, tmp_path: Path, capsys,
                                               monkeypatch, opt: str, path: str,
                                               frag: str) -> None:
    import bounds.check.core as core

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr(core, "check_run", boom)
    code, out, err = _main(capsys, base_run, opt, path.format(tmp=tmp_path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and frag in err, err


# ------------------------------------------------------------------ item 7: width
@pytest.mark.parametrize("columns", [100, 120, None])
def test_ladder_fits_the_width_and_never_cuts_a_verdict(heavy_run: Path, monkeypatch,
                                                        columns: int | None) -> None:
    report = check_run(load_run(heavy_run))
    width = LADDER_WIDTH if columns is None else columns
    text = _text(report, monkeypatch, columns)
    lines = text.splitlines()
    long = [ln for ln in lines[1:] if len(ln) > width]  # line 0: the run's path, whole
    assert lines[0] == f"run {heavy_run}"
    assert not long, long
    # every rule's verdict is there whole: 4 rules x 2 splits
    assert sum("holds; A.1 flagged" in ln for ln in lines) == 2
    assert sum(ln.strip().startswith("holds") or ln.rstrip().endswith("  holds")
               for ln in lines) + 2 >= 8
    # the per-task tables are never truncated: every cell of gaussian-chernoff is there
    per = _text(report, monkeypatch, columns, per_task=True)
    assert "…" not in per
    assert per.count("fails (assumption)") >= sum(
        1 for v in report.soft_violations if v.key == "gaussian-chernoff")


def test_wide_is_the_one_line_layout(heavy_run: Path, monkeypatch) -> None:
    report = check_run(load_run(heavy_run))
    text = _text(report, monkeypatch, 250, wide=True)
    rule_lines = [ln for ln in text.splitlines() if ln.startswith("adapted-centroid ")]
    assert len(rule_lines) == 2 and all(len(ln) > LADDER_WIDTH for ln in rule_lines)
    assert "earlier/later" in text


# ------------------------------------------------------------------ item 10: vocabulary
def test_one_verdict_vocabulary_and_vacuous(heavy_run: Path, monkeypatch) -> None:
    report = check_run(load_run(heavy_run))
    per = _text(report, monkeypatch, 120, per_task=True)
    words = {"ok", "FAILS"}
    cells = {w for ln in per.splitlines() for w in ln.split()}
    assert not words & cells, words & cells
    assert " holds" in per and "fails (assumption)" in per and "flagged" in per
    assert "vacuous" in per  # corollary is >= 0.95 here
    js = to_jsonable(report)
    verdicts = {v for t in js["tables"] for b in t["bounds"] for v in b["verdict_per_task"]}
    assert verdicts <= {"holds", "VIOLATED", "fails (PAC)", "fails (assumption)"}
    assert any(b["vacuous_overall"] for t in js["tables"] for b in t["bounds"])


def test_help_and_ladder_speak_the_one_vocabulary(capsys) -> None:
    """--help names every tier with the ladder's words, and each bound with the ladder tiers
    its rows land in (a training-time registry bound is 'sample-exact / training-time', never
    plain 'training-time'); the ladder's numbered tiers are the vocabulary's."""
    from bounds.check.ladder import TIER_NAMES
    from bounds.vocabulary import LADDER, bound_tiers

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert TIER_NAMES == {1: "sample-exact", 2: "PAC", 3: "training-time"}
    for name, (n, what) in LADDER.items():
        assert f"  {n if n else '-'} {name:<14} {what}" in out
    for name, b in bounds.REGISTRY.items():
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  {name} "))
        assert line.split(None, 1)[1].startswith(" / ".join(bound_tiers(b.tier))), line
    assert "moment-opt" in out and "prediction" in out


# ------------------------------------------------------------------ item 16: provenance
def test_version_and_provenance_in_the_header(run: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("python -m bounds.check: cft-bounds ") and "(git " in out
    env = json.loads((run / "env.json").read_text())
    (run / "env.json").write_text(json.dumps({**env, "cft_version": "9.9.9",
                                              "git": "abc1234-dirty"}))
    (run / "results.jsonl").write_text(json.dumps({
        "preset": "tiny", "method": "proteus", "dataset": "synthetic",
        "summary": {"shared": {"retrieval_last": 0.8}}}) + "\n")
    code, out, _ = _main(capsys, run, "--split", "test")
    assert code == 0
    flat = " ".join(out.split())
    assert "made by cft 9.9.9 (git abc1234-dirty); checked by cft-bounds " in flat
    assert ("run summary: preset tiny, method proteus, dataset synthetic, shared retrieval "
            "accuracy 80.0% (error 0.200)") in flat
    assert "(tasks 0..2, numbered from 0)" in flat
    assert "worst shared-centroid" in flat and " [c0, c1]: " in flat  # task names


# ------------------------------------------------------------------ item 9: plot formats
@pytest.mark.parametrize("ext,magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_format_from_the_extension(base_run: Path, tmp_path: Path, ext: str,
                                        magic: bytes) -> None:
    from bounds.check import write_plot

    report = check_run(load_run(base_run), splits=("test",))
    path = tmp_path / f"p{ext}"
    write_plot(report, str(path))
    assert path.read_bytes()[:len(magic)] == magic


# ------------------------------------------------------------------ item 4: check_bound
def test_check_bound_accepts_a_class_or_an_instance() -> None:
    from bounds.testing import check_bound, properties_for
    from bounds.testing.runners import as_bound
    from bounds.threshold import ThresholdEmpiricalBound

    assert isinstance(as_bound(ThresholdEmpiricalBound), ThresholdEmpiricalBound)
    assert [p.name for p in properties_for(ThresholdEmpiricalBound)] == \
        [p.name for p in properties_for(ThresholdEmpiricalBound())]
    res = check_bound(ThresholdEmpiricalBound, examples=3)
    assert res and all(cex is None for _, cex in res), res

    class NeedsArgs(ThresholdEmpiricalBound):
        def __init__(self, x: int) -> None:
            super().__init__()

    for bad, frag in ((NeedsArgs, "cannot be instantiated without arguments"),
                      (object(), "is not a bounds.Bound")):
        with pytest.raises(ValueError) as exc:
            check_bound(bad)  # type: ignore[arg-type]
        assert frag in str(exc.value) and "\n" not in str(exc.value)


# ------------------------------------------------------------------ item 5: orientation
def test_similarity_scores_are_warned_about() -> None:
    rng = np.random.default_rng(1)
    task = np.repeat(np.arange(3), 30)
    D = rng.uniform(1, 2, size=(90, 3))
    D[np.arange(90), task] -= 0.9  # distances: own task closest
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bounds.BoundInputs(scores=D, task=task)  # no warning
    with pytest.warns(UserWarning, match="looks like similarities"):
        bounds.BoundInputs(scores=-D, task=task)
    assert bounds.empirical_error(-D, task)[1] == 1.0  # what the docstring warns about
    from bounds.base import own_column_max_rate

    assert own_column_max_rate(D, task) == 0.0 and own_column_max_rate(-D, task) == 1.0


def test_bounds_option_says_what_it_does_not_filter(base_run: Path, capsys) -> None:
    code, out, _ = _main(capsys, base_run, "--split", "test", "--bounds", "G-emp,A")
    assert code == 0
    flat = " ".join(out.split())
    assert "--bounds G-emp,A: filters the bound rows" in flat
    assert "not filtered: the predictions" in flat
    assert "CP-pooled" not in flat and "moment-opt" not in flat


# ------------------------------------------------------------------ item 14: your own scores
def test_readme_scores_example_runs_and_unknown_names_are_listed(tmp_path: Path) -> None:
    """The README's hand-made run directory is checked as it stands (exit 0; its error
    is the one the scores give), and a score file under another name is refused with the
    valid names listed."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"\n  ```python\n(.*?)\n  ```", text, re.S)
    assert code is not None
    src = "\n".join(ln[2:] for ln in code.group(1).splitlines())
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        exec(compile(src, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    run = tmp_path / "my-run"
    report = check_run(load_run(run))
    (tab,) = report.tables
    assert tab.err == pytest.approx(1 / 6)  # input 1 (task 0) is closest to task 1
    assert main([str(run)]) == 0
    step = run / "eval" / "step-002" / "test"
    (step / "shared-centroid.npz").rename(step / "mine-centroid.npz")
    p = subprocess.run([sys.executable, "-m", "bounds.check", str(run)], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert ("valid names: adapted-centroid.npz, adapted-nll.npz, shared-centroid.npz, "
            "shared-nll.npz); found mine-centroid.npz") in p.stderr
