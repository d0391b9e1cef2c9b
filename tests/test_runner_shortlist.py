"""``retrieval.shortlist=k`` end to end on the ``tiny`` preset: which cells hold adapted
scores, what the others hold, that the files encode the rule actually used (so the
checker's sample-exact bounds hold for it), resume, and ``bounds.check`` on such a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bounds
from cft.run.resolve import resolve
from cft.run.rundir import load_npz
from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash

M, K = 4, 2
OVR = [f"data.n_tasks={M}", "train.epochs=4"]
ROOT = Path(__file__).resolve().parents[1]


def _run(path, *overrides: str):
    return Runner(resolve("tiny", [*OVR, *overrides]), path, echo=lambda s: None).run()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("shortlist")
    _run(base / "full")
    _run(base / "short", f"retrieval.shortlist={K}")
    return base / "full", base / "short"


def _files(path, k, split, mode, kind):
    return load_npz(path / "eval" / f"step-{k:03d}" / split / f"{mode}-{kind}.npz")


@pytest.mark.parametrize("split", ["calibration", "test"])
@pytest.mark.parametrize("kind", ["centroid", "nll"])
def test_score_files_encode_the_shortlist_rule(runs, split: str, kind: str) -> None:
    full, short = runs
    for k in range(M):
        sh = _files(short, k, split, "shared", kind)
        np.testing.assert_array_equal(sh["scores"], _files(full, k, split, "shared", kind)
                                      ["scores"])
        a = _files(short, k, split, "adapted", kind)
        a_full = _files(full, k, split, "adapted", kind)["scores"]
        S, task = a["scores"], a["task"]
        n = len(S)
        top = np.argsort(sh["scores"], axis=1, kind="stable")[:, :K]
        scored = np.zeros_like(S, dtype=bool)
        np.put_along_axis(scored, top, True, axis=1)
        if k + 1 <= K:
            assert scored.all()
        # shortlisted cells: h_s(x) under module s scored by signature s (the full run's
        # numbers up to float rounding of other batch shapes)
        np.testing.assert_allclose(S[scored], a_full[scored], rtol=1e-5, atol=1e-6)
        # other cells: one ulp above the row's largest shortlisted score
        hi = np.where(scored, S, -np.inf).max(1)
        fill = np.broadcast_to(np.nextafter(hi, np.inf)[:, None], S.shape)
        np.testing.assert_array_equal(S[~scored], fill[~scored])
        # the file's argmin is the rule's choice; its error event is the rule's
        got = S.argmin(1)
        rule = np.array([min(top[i], key=lambda s: (a_full[i, s], s)) for i in range(n)])
        vals = np.sort(np.take_along_axis(a_full, top, 1), 1)
        close = vals[:, 1] - vals[:, 0] > 1e-4 if top.shape[1] > 1 else np.ones(n, bool)
        np.testing.assert_array_equal(got[close], rule[close])
        own_in = scored[np.arange(n), task]
        err = bounds.retrieval_errors(S, task)
        assert err[~own_in].all()
        np.testing.assert_array_equal(err[own_in], (got != task)[own_in])
        # pred of a sample = the full run's prediction when both retrieve the same task
        same = got == a_full.argmin(1)
        np.testing.assert_array_equal(a["pred"][same], _files(full, k, split, "adapted",
                                                                kind)["pred"][same])


def test_metrics_are_those_of_the_files(runs) -> None:
    _, short = runs
    met = json.loads((short / "metrics.json").read_text())
    R = met["retrieval"]["adapted"]["nll"]["matrix"]
    z = _files(short, M - 1, "test", "adapted", "nll")
    for j in range(M):
        sel = z["task"] == j
        assert R[M - 1][j] == pytest.approx(np.mean(z["scores"].argmin(1)[sel] == j))
    # train-time scores follow the same rule: unshortlisted cells filled
    ts = load_npz(short / "tasks" / f"{M - 1:03d}" / "train-scores.npz")
    top = np.argsort(ts["shared-nll"], axis=1, kind="stable")[:, :K]
    S = ts["adapted-nll"]
    scored = np.zeros_like(S, dtype=bool)
    np.put_along_axis(scored, top, True, axis=1)
    hi = np.where(scored, S, -np.inf).max(1)
    assert np.all(S[~scored] == np.broadcast_to(np.nextafter(hi, np.inf)[:, None],
                                                S.shape)[~scored])


def test_shortlist_of_one_is_shared_retrieval(tmp_path) -> None:
    out = tmp_path / "one"
    _run(out, "retrieval.shortlist=1", "data.n_tasks=3")
    for split in ("calibration", "test"):
        a = load_npz(out / "eval" / "step-002" / split / "adapted-nll.npz")["scores"]
        s = load_npz(out / "eval" / "step-002" / split / "shared-nll.npz")["scores"]
        np.testing.assert_array_equal(a.argmin(1), s.argmin(1))


def test_resume_with_a_shortlist_equals_uninterrupted(runs, tmp_path, monkeypatch) -> None:
    _, short = runs
    out = tmp_path / "crashy"
    monkeypatch.setenv(CRASH_ENV, "2")
    with pytest.raises(SimulatedCrash):
        _run(out, f"retrieval.shortlist={K}", "output.cache_mb=0")
    monkeypatch.delenv(CRASH_ENV)
    assert _run(out, f"retrieval.shortlist={K}").resumed_from == 2
    assert (out / "metrics.json").read_bytes() == (short / "metrics.json").read_bytes()
    for f in sorted((short / "eval").rglob("*.npz")):
        assert (out / f.relative_to(short)).read_bytes() == f.read_bytes(), f


def test_checker_exits_0_and_guaranteed_bounds_hold(runs, tmp_path) -> None:
    _, short = runs
    p = subprocess.run([sys.executable, "-m", "bounds.check", str(short), "--split", "both",
                        "--json", str(tmp_path / "check.json")], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "every guaranteed bound holds" in p.stdout
    rep = json.loads((tmp_path / "check.json").read_text())
    assert rep["exit_code"] == 0
