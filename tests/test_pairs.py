"""The pair analysis (cft.experiments.analysis.pairs): confusions counted exactly, the
Bhattacharyya distance against its closed form, sources read from tasks.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rundir_factory import write_run_dir

from cft.experiments.analysis import Run, bhattacharyya_diag, pair_table, task_sources


def test_bhattacharyya_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200_000, 2))
    b = rng.normal(size=(200_000, 2)) * np.array([1.0, 2.0]) + np.array([3.0, 0.0])
    # diagonal Gaussians N((0,0), diag(1,1)) and N((3,0), diag(1,4)):
    v = np.array([1.0, 2.5])
    want = 9 / (8 * v[0]) + 0.5 * (np.log(2.5) - 0.5 * np.log(4.0))
    assert bhattacharyya_diag(a, b) == pytest.approx(want, rel=2e-2)
    assert bhattacharyya_diag(a, a) == pytest.approx(0.0, abs=1e-12)


def test_pair_errors_are_the_confusions_of_the_score_files(tmp_path) -> None:
    root = write_run_dir(tmp_path / "run", m=3, K=2, d=4, sep=0.8, seed=1)
    meta = json.loads((root / "tasks.json").read_text())
    for t, e in enumerate(meta["tasks"]):
        e["source"] = ["a", "b", "a"][t]
    (root / "tasks.json").write_text(json.dumps(meta))
    run = Run(root)
    assert task_sources(run) == ["a", "b", "a"]
    tab = pair_table(run)
    assert tab["same_source"][0, 2] and not tab["same_source"][0, 1]
    sf = run.scores(tab["step"], "test", "shared", "nll")
    got = np.argmin(sf.scores, axis=1)
    r = tab["rules"]["shared-nll"]
    for t in range(3):
        for s in range(3):
            want = np.mean(got[sf.task == t] == s)
            assert r["confusion"][t, s] == want
    assert r["error"] == np.mean(got != sf.task)
    assert np.allclose(r["pair_error"], r["pair_error"].T) and not np.diag(r["pair_error"]).any()
    # off-diagonal confusions sum to the error of each task
    per_task = [np.mean(got[sf.task == t] != t) for t in range(3)]
    assert np.allclose(r["confusion"].sum(1) - np.diag(r["confusion"]), per_task)
    assert tab["distance"][0, 1] > 0 and tab["distance"][0, 1] == tab["distance"][1, 0]
    with pytest.raises(ValueError, match="no test/nope-nll.npz"):
        pair_table(run, rules=(("nope", "nll"),))
