"""The runner's bounded representation store: spilling to RUN_DIR/scratch/ changes no
output byte; the scratch folder is working space only (cleaned, never part of a resume)."""

from __future__ import annotations

import os

import pytest

from cft.evaluation.store import SCRATCH
from cft.run.resolve import resolve
from cft.run.rundir import RunDir
from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash
from cft.run.step import StepEvaluator

OVR = ["data.n_tasks=3", "train.epochs=2"]


def _run(path, *overrides: str):
    return Runner(resolve("tiny", [*OVR, *overrides]), path, echo=lambda s: None).run()


def _outputs(path) -> dict[str, bytes]:
    """metrics.json and every file of eval/ (score files, ClusterStats, step metrics)."""
    files = [path / "metrics.json", *sorted((path / "eval").rglob("*.*"))]
    return {str(f.relative_to(path)): f.read_bytes() for f in files if f.is_file()}


@pytest.fixture(scope="module")
def unbounded(tmp_path_factory):
    path = tmp_path_factory.mktemp("spill") / "unbounded"
    _run(path, "output.cache_mb=none")
    return path


def test_spilling_changes_no_output_byte(unbounded, tmp_path, monkeypatch) -> None:
    spilled: list[int] = []
    real_close = __import__("cft.evaluation.store", fromlist=["RepStore"]).RepStore.close

    def close(self):  # record how much went to disk before the runner cleans up
        spilled.append(self.disk_bytes)
        assert (not self.disk_bytes) or any(self.folder.glob("reps-*.bin"))
        real_close(self)

    monkeypatch.setattr("cft.evaluation.store.RepStore.close", close)
    _run(tmp_path / "zero", "output.cache_mb=0")  # every block goes to disk
    _run(tmp_path / "small", "output.cache_mb=0.01")  # ~10 kB: spills in batches
    assert spilled[0] > 0 and spilled[1] > 0
    ref = _outputs(unbounded)
    assert len(ref) > 20
    for name in ("zero", "small"):
        assert _outputs(tmp_path / name) == ref, name
        assert not (tmp_path / name / SCRATCH).exists()  # removed on completion


def test_crash_leaves_scratch_then_resume_cleans_it(unbounded, tmp_path, monkeypatch) -> None:
    out = tmp_path / "crashy"
    monkeypatch.setenv(CRASH_ENV, "2")
    with pytest.raises(SimulatedCrash):
        _run(out, "output.cache_mb=0")
    left = sorted((out / SCRATCH).glob("reps-*.bin"))
    assert left  # a crashed run leaves its scratch files behind
    (out / SCRATCH / "stale-marker").write_text("x")
    monkeypatch.delenv(CRASH_ENV)
    seen: list[bool] = []
    real = StepEvaluator.evaluate

    def spy(self, k):
        seen.append((out / SCRATCH / "stale-marker").exists())
        return real(self, k)

    monkeypatch.setattr(StepEvaluator, "evaluate", spy)
    # another memory budget: not part of the run's identity, the resume is accepted
    res = _run(out, "output.cache_mb=64")
    assert res.resumed_from == 2 and seen and not any(seen)
    assert RunDir(out).info()["resumed"] == 1
    assert _outputs(out) == _outputs(unbounded)
    assert not (out / SCRATCH).exists()


def test_a_run_stored_without_the_new_keys_resumes(tmp_path, monkeypatch) -> None:
    """config.json of a run made before ``retrieval`` / ``output.cache_mb`` existed."""
    import json

    out = tmp_path / "old"
    monkeypatch.setenv(CRASH_ENV, "1")
    with pytest.raises(SimulatedCrash):
        _run(out)
    cfg = json.loads((out / "config.json").read_text())
    del cfg["retrieval"], cfg["output"]["cache_mb"]
    (out / "config.json").write_text(json.dumps(cfg))
    monkeypatch.delenv(CRASH_ENV)
    assert _run(out).resumed_from == 1
    with pytest.raises(ValueError, match="different configuration.*retrieval.shortlist"):
        Runner(resolve("tiny", [*OVR, "retrieval.shortlist=2"]), out).setup()


@pytest.mark.parametrize("bad,msg", [("retrieval.shortlist=0", "retrieval.shortlist"),
                                     ("output.cache_mb=-1", "output.cache_mb")])
def test_bad_values_are_one_line_exit_2(tmp_path, bad: str, msg: str) -> None:
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.run([sys.executable, "-m", "cft", "run", "--preset", "tiny", "--out",
                        str(tmp_path / "r"), bad], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 2 and msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
