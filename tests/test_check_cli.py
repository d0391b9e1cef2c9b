"""End-to-end tests of ``python -m bounds.check`` (subprocess) on synthetic run dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rundir_factory import rewrite_npz, write_minimal_run, write_run_dir

import bounds

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "250"}


def run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bounds.check", *map(str, args)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def _strict_json(path: Path) -> dict:
    def no_constant(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=no_constant)


def test_gaussian_run_holds_json_and_plot(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", m=3, K=2, d=6, sep=2.5, seed=1)
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    p = run_cli(run, "--json", out_json, "--plot", out_png)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "every guaranteed bound holds" in p.stdout
    rep = _strict_json(out_json)
    for t in rep["tables"]:  # the JSON errors are those of the recorded score matrices
        z = np.load(run / "eval" / "step-002" / t["split"] / f"{t['mode']}-{t['kind']}.npz")
        err_t, err = bounds.empirical_error(z["scores"], z["task"])
        assert t["empirical_error"]["per_task"] == pytest.approx(err_t.tolist(), abs=1e-15)
        assert t["empirical_error"]["overall"] == pytest.approx(err, abs=1e-15)
    assert rep["exit_code"] == 0 and rep["step"] == 2
    keys = {(t["split"], t["mode"], t["kind"]) for t in rep["tables"]}
    assert keys == {(s, mo, k) for s in ("calibration", "test") for mo in ("adapted", "shared")
                    for k in ("centroid", "nll")}
    sc = next(t for t in rep["tables"] if (t["split"], t["mode"], t["kind"]) ==
              ("test", "shared", "centroid"))
    rows = {b["key"]: b for b in sc["bounds"]}
    for name in ("G-emp", "G-cantelli", "corollary", "A", "Bprime", "B", "C", "D"):
        assert rows[name]["category"] == "guaranteed" and rows[name]["holds"]
    for name in ("pac-hoeffding", "pac-clopper-pearson"):
        assert rows[name]["category"] == "pac"
    for name in ("train:A", "train:B", "train:D"):
        assert rows[name]["category"] == "assumption"
        assert rows[name]["source"] == "train-clusters"
    err = np.array(sc["empirical_error"]["per_task"])
    assert np.all(np.array(rows["A"]["per_task"]) >= err - 1e-9)
    assert len(sc["delta_t"]) == 3
    nll = next(t for t in rep["tables"] if (t["split"], t["mode"], t["kind"]) ==
               ("test", "shared", "nll"))
    assert any(b["key"] == "gaussian-chernoff" for b in nll["bounds"])
    assert nll["a1_diagnostics"]["n_flagged"] == 0  # A.1 holds for Gaussian data
    # PNG: magic bytes and readable by matplotlib
    data = out_png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = plt.imread(out_png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_heavy_tailed_run_flags_assumption(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", m=3, K=2, d=6, dist="student", dof=1.5, sep=6.0,
                        n_test=150, seed=2)
    out_json = tmp_path / "c.json"
    p = run_cli(run, "--split", "test", "--json", out_json)
    assert p.returncode == 0, p.stderr  # assumption-dependent failures never change it
    rep = _strict_json(out_json)
    assert {t["split"] for t in rep["tables"]} == {"test"}
    nll = next(t for t in rep["tables"] if (t["mode"], t["kind"]) == ("shared", "nll"))
    diag = nll["a1_diagnostics"]
    assert diag["n_flagged"] == 3 and all(diag["flag"])
    assert all(p_ is not None and p_ < 1e-3 for p_ in diag["normality_p"])
    assert "A.1 diagnostics flag 3 task(s)" in p.stdout


def test_corrupted_cluster_stats_violate_guaranteed_bound(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", m=3, K=2, d=6, sep=0.3, seed=3,
                        train_clusters=False, mixtures=False, reps=False)
    path = run / "eval" / "step-002" / "test" / "clusters-shared.npz"
    with np.load(path) as z:
        z = {k: np.array(z[k]) for k in z.files}
    # under-reported spread, consistently (so the file passes validation: it describes
    # other, tighter data than the evaluated one): bound B collapses
    rewrite_npz(path, **{k: z[k] * 1e-3 for k in ("point_radius", "max_radius", "offset")},
                **{k: z[k] * 1e-6 for k in ("msr", "eigvals", "resid")})
    p = run_cli(run, "--split", "test", "--bounds", "B,G-emp")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    assert "guaranteed bound B violated on split test, mode shared, kind centroid" in p.stderr
    assert "bug" in p.stderr and "misuse" in p.stderr
    assert "VIOLATED" in p.stdout


def test_handmade_score_matrix_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    task = np.repeat(np.arange(4), 50)
    S = rng.normal(size=(200, 4)) + 3.0
    S[np.arange(200), task] -= 2.5
    run = write_minimal_run(tmp_path / "hand", S, task)
    out_json = tmp_path / "c.json"
    p = run_cli(run, "--json", out_json)
    assert p.returncode == 0, p.stderr
    rep = _strict_json(out_json)
    (tab,) = rep["tables"]
    assert {b["key"] for b in tab["bounds"]} == {"G-emp", "G-cantelli", "corollary"}
    assert rep["run"]["status"] is None


def test_unfinished_run_is_a_warning(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", m=4, K=2, d=5, tasks_complete=2, status="running",
                        seed=4, steps="all")
    p = run_cli(run, "--split", "test", "--bounds", "G-emp,A")
    assert p.returncode == 0, p.stderr
    assert "2 of 4 tasks complete" in p.stderr
    assert "checking step 1" in p.stderr


@pytest.mark.parametrize("case", ["missing", "truncated"])
def test_bad_input_subprocess_one_line(tmp_path: Path, case: str) -> None:
    if case == "missing":
        target = tmp_path / "nope"
    else:
        target = write_run_dir(tmp_path / "run", m=2, K=1, d=4, seed=5)
        f = target / "eval" / "step-001" / "test" / "shared-nll.npz"
        f.write_bytes(f.read_bytes()[:100])
    p = run_cli(target)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "unexpected" not in p.stderr and "BOUNDS_CHECK_DEBUG" not in p.stderr, p.stderr
    expect = (("nope", "no such directory") if case == "missing" else
              ("eval/step-001/test/shared-nll.npz", "corrupt"))
    for frag in expect:
        assert frag in p.stderr, (frag, p.stderr)


@pytest.mark.slow
def test_check_tiny_cft_run(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    p = subprocess.run([sys.executable, "-m", "cft", "run", "--preset", "tiny", "--out",
                        str(out)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    c = run_cli(out, "--json", tmp_path / "check.json")
    assert c.returncode == 0, c.stdout[-4000:] + c.stderr
    rep = _strict_json(tmp_path / "check.json")
    assert rep["exit_code"] == 0 and rep["tables"]


def test_a_declared_learned_rule_is_checked_with_the_score_bounds(tmp_path: Path) -> None:
    """A learned rule R that the step's metrics.json declares (retrieval.R.K) has its score
    file R-K.npz checked with the score bounds (G-*, PAC; no cluster bound: those are about
    the shared centroids), listed among the rules; an undeclared look-alike is ignored."""
    run = write_run_dir(tmp_path / "run")
    step = sorted((run / "eval").glob("step-*"))[-1]
    rng = np.random.default_rng(5)
    want = {}
    for split in ("calibration", "test"):
        with np.load(step / split / "shared-centroid.npz") as z:
            S = z["scores"] + rng.normal(scale=2.0, size=z["scores"].shape)
            task = z["task"]
        np.savez(step / split / "myrule-score.npz", scores=S, task=task)
        np.savez(step / split / "sharde-nll.npz", scores=S, task=task)  # a typo: not a rule
        want[split] = bounds.empirical_error(S, task)[1]
    (step / "metrics.json").write_text(json.dumps({"retrieval": {"myrule": {"score": {}}}}))
    p = run_cli(run, "--split", "both", "--json", tmp_path / "c.json")
    assert p.returncode == 0, p.stderr
    js = _strict_json(tmp_path / "c.json")
    assert "myrule-score" in js["rules_checked"] and "sharde-nll" not in js["rules_checked"]
    assert "myrule-score" in js["rules_expected"]
    for split in ("calibration", "test"):
        (tab,) = [t for t in js["tables"] if t["split"] == split and t["mode"] == "myrule"]
        assert tab["kind"] == "score"
        names = {b["name"] for b in tab["bounds"]}
        assert {"G-emp", "G-cantelli", "corollary"} <= names and not names & {"A", "C", "D"}
        (rung,) = [r for r in js["ladder"] if r["split"] == split and r["rule"] ==
                   "myrule-score"]
        assert rung["error"] == want[split]  # the same error as computed from the file
        g = next(b for b in tab["bounds"] if b["name"] == "G-emp")
        assert g["overall"] >= want[split]  # guaranteed: the exact inequality
    assert "myrule-score" in p.stdout and "sharde" not in p.stdout
