"""In-process tests of the checker: bad input (exit 2, one line), options, diagnostics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rundir_factory import rewrite_npz, write_minimal_run, write_run_dir
from scipy import stats as sps

from bounds.check import load_run, main
from bounds.check.diagnostics import dagostino_pearson


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_dir(tmp_path_factory.mktemp("base") / "run", m=3, K=2, d=5, n_train=60,
                         n_cal=40, n_test=50, sep=3.0, seed=7, steps="all")


@pytest.fixture()
def run(base_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


def _run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _scores(run: Path, step: int = 2, split: str = "test", name: str = "shared-centroid"):
    return run / "eval" / f"step-{step:03d}" / split / f"{name}.npz"


def _set_meta(run: Path, **kw: object) -> None:
    meta = json.loads((run / "run.json").read_text())
    meta.update(kw)
    (run / "run.json").write_text(json.dumps(meta))


def _clusters(run: Path) -> Path:
    return _scores(run).parent / "clusters-shared.npz"


def _cs_field(run: Path, key: str) -> np.ndarray:
    return np.load(_clusters(run))[key]


def _swap_points(run: Path) -> None:
    """Exchange the records (cluster, radius) of a task-0 and a task-1 point: every
    cluster keeps its counts and radii, but the points no longer match the scores."""
    z = dict(np.load(_clusters(run)))
    pt = z["task"][z["point_cluster"]]
    i, j = int(np.flatnonzero(pt == 0)[0]), int(np.flatnonzero(pt == 1)[0])
    for k in ("point_cluster", "point_radius"):
        z[k][[i, j]] = z[k][[j, i]]
    np.savez(_clusters(run), **z)


def _replace_by_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _self_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)  # a symbolic link to itself: a loop


def _uint64_task(run: Path) -> None:
    task = np.load(_scores(run))["task"].astype(np.uint64)
    task[7] = 2**63 + 5
    rewrite_npz(_scores(run), task=task)


BAD_CASES = {
    "missing run.json": lambda r: (r / "run.json").unlink(),
    "invalid run.json": lambda r: (r / "run.json").write_text("{not json"),
    "run.json not object": lambda r: (r / "run.json").write_text("[1, 2]"),
    "schema version 2": lambda r: _set_meta(r, schema_version=2),
    "no schema version": lambda r: (r / "run.json").write_text(
        json.dumps({"n_tasks": 3, "tasks_complete": 3})),
    "bad status": lambda r: _set_meta(r, status="paused"),
    "tasks_complete > n_tasks": lambda r: _set_meta(r, tasks_complete=9),
    "no tasks complete": lambda r: _set_meta(r, tasks_complete=0, status="running"),
    "no eval dir": lambda r: shutil.rmtree(r / "eval"),
    "truncated scores": lambda r: _scores(r).write_bytes(_scores(r).read_bytes()[:200]),
    "garbage scores": lambda r: _scores(r).write_bytes(b"not a zip at all"),
    "NaN scores": lambda r: rewrite_npz(_scores(r), scores=np.where(
        np.eye(150, 3, dtype=bool), np.nan, np.load(_scores(r))["scores"])),
    "inf scores": lambda r: rewrite_npz(_scores(r), scores=np.full((150, 3), np.inf)),
    "wrong column count": lambda r: rewrite_npz(_scores(r), scores=np.zeros((150, 4))),
    "task length mismatch": lambda r: rewrite_npz(_scores(r), task=np.zeros(10, np.int64)),
    "float task ids": lambda r: rewrite_npz(_scores(r), task=np.zeros(150)),
    "task id out of range": lambda r: rewrite_npz(_scores(r), task=np.full(150, 7)),
    "missing scores key": lambda r: rewrite_npz(_scores(r), scores=None),
    "pickled object array": lambda r: np.savez(_scores(r), task=np.zeros(150, np.int64),
                                               scores=np.array([{}] * 150, dtype=object)),
    "corrupt clusters": lambda r: (_scores(r).parent / "clusters-shared.npz").write_bytes(
        b"PK\x03\x04broken"),
    "clusters field missing": lambda r: rewrite_npz(
        _scores(r).parent / "clusters-shared.npz", msr=None),
    "clusters NaN": lambda r: rewrite_npz(
        _scores(r).parent / "clusters-shared.npz", msr=np.full(6, np.nan)),
    "clusters of other samples": lambda r: rewrite_npz(
        _scores(r), task=np.sort(np.r_[np.arange(3), np.zeros(147, np.int64)])),
    "NaN representations": lambda r: np.save(
        r / "tasks" / "001" / "reps-shared-test.npy", np.full((50, 5), np.nan, np.float32)),
    "truncated representations": lambda r: (r / "tasks" / "001" / "reps-shared-test.npy")
    .write_bytes(b"\x93NUMPY\x01\x00"),
    "mixtures shape": lambda r: rewrite_npz(
        r / "eval" / "step-002" / "mixtures-shared.npz", means=np.zeros((3, 2, 4))),
    "train clusters corrupt": lambda r: (r / "tasks" / "000" / "train-clusters-shared.npz")
    .write_bytes(b""),
    # issue #11, item 2: cluster statistics cross-validated (exit 2, file and field named)
    "clusters weight 0": lambda r: rewrite_npz(_clusters(r), weight=np.zeros(6)),
    "clusters weight 10": lambda r: rewrite_npz(_clusters(r), weight=np.full(6, 10.0)),
    "clusters negative msr": lambda r: rewrite_npz(_clusters(r), msr=-_cs_field(r, "msr")),
    "clusters negative max_radius": lambda r: rewrite_npz(
        _clusters(r), max_radius=-_cs_field(r, "max_radius")),
    "clusters negative point_radius": lambda r: rewrite_npz(
        _clusters(r), point_radius=-_cs_field(r, "point_radius")),
    "clusters zero eigvecs": lambda r: rewrite_npz(
        _clusters(r), eigvecs=np.zeros_like(_cs_field(r, "eigvecs"))),
    "clusters scaled eigvecs": lambda r: rewrite_npz(
        _clusters(r), eigvecs=_cs_field(r, "eigvecs") * 0.9),
    "clusters small eigvals": lambda r: rewrite_npz(
        _clusters(r), eigvals=_cs_field(r, "eigvals") * 0.5),
    "clusters negative resid": lambda r: rewrite_npz(_clusters(r), resid=np.full(6, -1.0)),
    "clusters points swapped": _swap_points,
    "train clusters weight 10": lambda r: rewrite_npz(
        r / "tasks" / "000" / "train-clusters-shared.npz", weight=np.full(2, 10.0)),
    # item 5: sloppy acceptance and messages
    "schema_version float": lambda r: _set_meta(r, schema_version=1.0),
    "deeply nested run.json": lambda r: (r / "run.json").write_text(
        "[" * 100_000 + "]" * 100_000),
    "run.json a directory": lambda r: _replace_by_dir(r / "run.json"),
    "run.json a symlink loop": lambda r: _self_link(r / "run.json"),
    "clusters a directory": lambda r: _replace_by_dir(_clusters(r)),
    "representations a directory": lambda r: _replace_by_dir(
        r / "tasks" / "001" / "reps-shared-test.npy"),
    "uint64 task id": _uint64_task,
    "pickled representations": lambda r: np.save(
        r / "tasks" / "001" / "reps-shared-test.npy", np.array([{}] * 50, dtype=object),
        allow_pickle=True),
}


# fragments the one-line message must contain: (file, what is wrong)
BAD_EXPECT = {
    "missing run.json": ("run.json", "missing"),
    "invalid run.json": ("run.json", "invalid JSON"),
    "run.json not object": ("run.json", "JSON object"),
    "schema version 2": ("run.json", "schema_version 2"),
    "no schema version": ("run.json", "lacks schema_version"),
    "bad status": ("run.json", "status"),
    "tasks_complete > n_tasks": ("run.json", "exceeds n_tasks"),
    "no tasks complete": ("run.json", "0 of 3 tasks complete"),
    "no eval dir": ("eval", "missing"),
    "truncated scores": ("test/shared-centroid.npz", "corrupt"),
    "garbage scores": ("test/shared-centroid.npz", "not an .npz"),
    "NaN scores": ("test/shared-centroid.npz", "NaN or infinite"),
    "inf scores": ("test/shared-centroid.npz", "NaN or infinite"),
    "wrong column count": ("test/shared-centroid.npz", "4 task columns, expected 3"),
    "task length mismatch": ("test/shared-centroid.npz", "150"),
    "float task ids": ("test/shared-centroid.npz", "integers"),
    "task id out of range": ("test/shared-centroid.npz", "out of range"),
    "missing scores key": ("test/shared-centroid.npz", "required key 'scores'"),
    "pickled object array": ("test/shared-centroid.npz: scores: holds pickled Python objects",
                             "refused"),
    "corrupt clusters": ("test/clusters-shared.npz", "corrupt"),
    "clusters field missing": ("test/clusters-shared.npz", "msr"),
    "clusters NaN": ("test/clusters-shared.npz", "NaN"),
    "clusters of other samples": ("test/clusters-shared.npz", "point counts"),
    "NaN representations": ("tasks/001/reps-shared-test.npy", "NaN"),
    "truncated representations": ("tasks/001/reps-shared-test.npy", "corrupt"),
    "mixtures shape": ("mixtures-shared.npz", "covariances"),
    "train clusters corrupt": ("tasks/000/train-clusters-shared.npz", "not an .npz"),
    "clusters weight 0": ("test/clusters-shared.npz: weight:", "count / task size"),
    "clusters weight 10": ("test/clusters-shared.npz: weight:", "count / task size"),
    "clusters negative msr": ("test/clusters-shared.npz: msr: negative",),
    "clusters negative max_radius": ("test/clusters-shared.npz: max_radius: negative",),
    "clusters negative point_radius": ("test/clusters-shared.npz: point_radius: negative",),
    "clusters zero eigvecs": ("test/clusters-shared.npz: eigvecs:", "zero eigenvector"),
    "clusters scaled eigvecs": ("test/clusters-shared.npz: eigvecs:", "orthonormal"),
    "clusters small eigvals": ("test/clusters-shared.npz: eigvals:", "spread"),
    "clusters negative resid": ("test/clusters-shared.npz: resid: negative",),
    "clusters points swapped": ("test/clusters-shared.npz: point_cluster:", "another task",
                                "test/shared-centroid.npz"),
    "train clusters weight 10": ("tasks/000/train-clusters-shared.npz: weight:",),
    "schema_version float": ("run.json: schema_version:", "integer", "1.0"),
    "deeply nested run.json": ("run.json", "nested too deeply"),
    "run.json a directory": ("run.json: is a directory",),
    "run.json a symlink loop": ("run.json: a symbolic link loop",),
    "clusters a directory": ("test/clusters-shared.npz: is a directory",),
    "representations a directory": ("tasks/001/reps-shared-test.npy: is a directory",),
    "uint64 task id": ("test/shared-centroid.npz", "task", "9223372036854775813",
                       "out of range"),
    "pickled representations": ("tasks/001/reps-shared-test.npy: holds pickled", "refused"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_exit_2_one_line(run: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    BAD_CASES[case](run)
    code, out, err = _run(capsys, run)
    assert code == 2, (case, out[-500:], err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    assert "unexpected" not in err and "BOUNDS_CHECK_DEBUG" not in err, err  # not a crash
    for frag in BAD_EXPECT[case]:
        assert frag in lines[0], (case, frag, err)


def test_bad_expect_covers_every_case() -> None:
    assert set(BAD_EXPECT) == set(BAD_CASES)


def test_missing_directory_and_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _run(capsys, tmp_path / "absent")
    assert code == 2 and "no such directory" in err
    (tmp_path / "f").write_text("x")
    code, _, err = _run(capsys, tmp_path / "f")
    assert code == 2 and "not a directory" in err


BAD_OPTION_EXPECT = {"--bounds": "unknown bound", "--delta": "--delta", "--split": "--split",
                     "--step": "step"}


@pytest.mark.parametrize("args", [["--bounds", "nope"], ["--delta", "2"], ["--delta", "x"],
                                  ["--split", "train"], ["--step", "-1"], ["--step", "9"]])
def test_bad_options_exit_2_one_line(run: Path, capsys: pytest.CaptureFixture,
                                     args: list[str]) -> None:
    try:
        code = main([str(run), *args])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "unexpected" not in err and "BOUNDS_CHECK_DEBUG" not in err, err
    assert BAD_OPTION_EXPECT[args[0]] in err and args[1] in err, err


def test_step_bounds_and_split_selection(run: Path, capsys: pytest.CaptureFixture,
                                         tmp_path: Path) -> None:
    out_json = tmp_path / "c.json"
    code, out, _ = _run(capsys, run, "--step", 1, "--split", "calibration", "--bounds",
                        "G-emp,B,pac-hoeffding", "--json", out_json)
    assert code == 0
    rep = json.loads(out_json.read_text())
    assert rep["step"] == 1
    assert {t["split"] for t in rep["tables"]} == {"calibration"}
    for t in rep["tables"]:
        assert len(t["empirical_error"]["per_task"]) == 2
        keys = {b["key"] for b in t["bounds"]}
        assert "pac-hoeffding" not in keys  # PAC rows only on the test split
        assert keys <= {"G-emp", "B", "train:B"}
        if (t["mode"], t["kind"]) == ("shared", "centroid"):
            assert keys == {"G-emp", "B", "train:B"}


def test_load_run_reads_training_stats(run: Path) -> None:
    data = load_run(run)
    assert data.step == 2 and data.m == 3
    assert data.train_clusters is not None and data.train_clusters.n_tasks == 3
    assert data.mixtures is not None and data.splits["test"].reps is not None


def test_missing_train_stats_is_a_note(run: Path, capsys: pytest.CaptureFixture) -> None:
    (run / "tasks" / "002" / "train-clusters-shared.npz").unlink()
    code, out, _ = _run(capsys, run, "--split", "test")
    assert code == 0
    assert "train-clusters-shared.npz missing for task(s) [2]" in out


def test_tampered_scores_violate_geometry_bound(run: Path, capsys: pytest.CaptureFixture
                                                ) -> None:
    """Scores that disagree with the cluster stats: every sample looks misretrieved."""
    f = _scores(run)
    z = np.load(f)
    rewrite_npz(f, scores=np.zeros_like(z["scores"]))  # all ties -> error 1 everywhere
    code, out, err = _run(capsys, run, "--split", "test", "--bounds", "A,G-emp")
    assert code == 1
    assert "guaranteed bound A violated on split test, mode shared, kind centroid" in err
    assert "G-emp" not in err  # the score bound reads the same scores and still holds


def test_handmade_other_name_and_no_status(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    rng = np.random.default_rng(1)
    task = np.repeat(np.arange(3), 30)
    S = rng.random((90, 3))
    run = write_minimal_run(tmp_path / "h", S, task, name="adapted-nll", split="calibration")
    code, out, _ = _run(capsys, run)
    assert code == 0 and "calibration split" in out
    assert any(ln.startswith("adapted-nll ") for ln in out.splitlines())


def test_dagostino_pearson_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    sizes = [20, 35, 200, 8]
    xs = [rng.standard_t(3, size=n) if i % 2 else rng.normal(size=n)
          for i, n in enumerate(sizes)]
    g = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    p, skew, kurt = dagostino_pearson(np.concatenate(xs), g, len(sizes) + 1)
    for i, x in enumerate(xs[:3]):
        assert p[i] == pytest.approx(sps.normaltest(x).pvalue, rel=1e-8)
        assert skew[i] == pytest.approx(sps.skew(x), rel=1e-8)
        assert kurt[i] == pytest.approx(sps.kurtosis(x), rel=1e-8)
    assert np.isnan(p[4])  # empty group


def test_long_id_lists_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue #11: 2000 task columns with 3 sampled tasks listed all 1,997 empty ids in an
    11 kB line; lists in messages stop after 8 ids and give the count."""
    task = np.repeat(np.arange(3), 2)
    run = write_minimal_run(tmp_path / "wide", np.random.default_rng(0).random((6, 2000)),
                            task)
    code, _, err = _run(capsys, run)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "[3, 4, 5, 6, 7, 8, 9, 10, ... (1997 in all)]" in err, err
    assert len(err) < 300, len(err)


def test_bounds_selecting_nothing_applicable(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    """Issue #11: --bounds A,B on a run without cluster statistics checked nothing and
    printed 'every guaranteed bound holds'; it must say so and exit 2."""
    rng = np.random.default_rng(1)
    run = write_minimal_run(tmp_path / "h", rng.random((60, 3)), np.repeat(np.arange(3), 20))
    code, out, err = _run(capsys, run, "--bounds", "A,B")
    assert code == 2, (out, err)
    assert "every guaranteed bound holds" not in out
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--bounds: nothing applicable was selected: A,B" in err, err
    assert "clusters-shared.npz" in err
    code, out, _ = _run(capsys, run, "--bounds", "A,G-emp")  # one applies: checked, ok
    assert code == 0 and "every guaranteed bound holds" in out


@pytest.mark.parametrize("below, expect", [(1e-6, 1), (2e-9, 1), (5e-10, 0), (0.0, 0)])
def test_tolerance_is_pinned(tmp_path: Path, capsys: pytest.CaptureFixture,
                             monkeypatch: pytest.MonkeyPatch, below: float,
                             expect: int) -> None:
    """A guaranteed bound ``below`` under the empirical error on every task: a violation
    (exit 1) from 2e-9 on, none at 5e-10, so the checker's TOL lies in [5e-10, 2e-9)
    (it is 1e-9); a loosened TOL of 1e-3 would let the 1e-6 case pass."""
    import bounds

    rng = np.random.default_rng(3)
    task = np.repeat(np.arange(3), 40)
    S = rng.random((120, 3))
    S[np.arange(120), task] -= 0.3
    run = write_minimal_run(tmp_path / "tol", S, task)
    emp = bounds.empirical_error(S, task)[0]
    assert np.all((emp > 0.05) & (emp < 0.95))

    def just_below(inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        return bounds.empirical_error(inputs.scores, inputs.task)[0] - below, {}

    monkeypatch.setattr(bounds.REGISTRY["G-emp"], "_per_task", just_below)
    code, out, err = _run(capsys, run, "--bounds", "G-emp")
    assert code == expect, (below, out[-300:], err)
    if expect:
        assert "guaranteed bound G-emp violated" in err
