"""cft.run.runner end to end on the ``tiny`` preset: layout, determinism, crash + resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bounds
from cft.run.resolve import resolve
from cft.run.rundir import RunDir, load_npz, read_json
from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash

OVR = ["data.n_tasks=3"]


def _run(path, overrides=(), seed=None):
    cfg = resolve("tiny", [*OVR, *overrides], seed=seed)
    return Runner(cfg, path, echo=lambda s: None).run()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("ref")
    res = _run(base / "run")
    return base / "run", res


def test_layout(reference):
    path, res = reference
    rd = RunDir(path)
    info = rd.info()
    assert info["status"] == "complete" and info["tasks_complete"] == 3 == info["n_tasks"]
    assert res.metrics == read_json(path / "metrics.json")
    assert res.wall_seconds > 0 and not res.already_complete
    tasks = read_json(path / "tasks.json")
    assert len(tasks["tasks"]) == 3 and {"class_names", "class_order"} <= set(tasks)
    for t in range(3):
        d = rd.task_dir(t)
        for f in ("module.safetensors", "signature-adapted.npz", "signature-shared.npz",
                  "head.npz", "train-clusters-shared.npz", "reps-shared-calibration.npy",
                  "reps-shared-test.npy", "done.json"):
            assert (d / f).is_file(), f
        done = read_json(d / "done.json")
        assert done["task"] == t and len(done["train_loss"]) == 10
        assert set(done["coef"]) == (set(done["overlap"]) if t else set())
        if t:
            assert all(len(v) == t for v in done["coef"].values())
            assert 0.0 <= done["coef_sparsity"] <= 1.0
            assert all(0.0 <= o <= 1.0 for v in done["overlap"].values() for o in v)
        else:
            assert done["coef_sparsity"] is None
    for k in range(3):
        sd = rd.step_dir(k)
        assert (sd / "metrics.json").is_file() and (sd / "mixtures-shared.npz").is_file()
        for split in ("calibration", "test"):
            n = sum(t["n_" + split] for t in tasks["tasks"][: k + 1])
            for mode in ("adapted", "shared"):
                for kind in ("centroid", "nll"):
                    z = load_npz(sd / split / f"{mode}-{kind}.npz")
                    assert z["scores"].shape == (n, k + 1)
                    assert z["task"].dtype == np.int64 and z["task"].max() == k
                    assert z["label"].shape == z["pred"].shape == (n,)
            cs = bounds.ClusterStats.load(sd / split / "clusters-shared.npz")
            assert cs.point_cluster.shape == (n,) and cs.n_tasks == k + 1
        mix = bounds.GaussianMixtures.load(sd / "mixtures-shared.npz")
        assert mix.n_tasks == k + 1
    # shared-mode nll scores are exactly the mixtures' nll of the saved representations
    z = np.concatenate([np.load(rd.task_dir(t) / "reps-shared-test.npy") for t in range(3)])
    S = load_npz(rd.step_dir(2) / "test" / "shared-nll.npz")["scores"]
    np.testing.assert_allclose(S, mix.nll(z.astype(np.float64)), rtol=1e-9, atol=1e-9)
    # the centroid scores are the bounds' nearest-centroid scores
    cs = bounds.ClusterStats.load(rd.step_dir(2) / "test" / "clusters-shared.npz")
    Sc = load_npz(rd.step_dir(2) / "test" / "shared-centroid.npz")["scores"]
    np.testing.assert_allclose(Sc, bounds.nearest_centroid_scores(z, cs.centroid, cs.task),
                               rtol=1e-9, atol=1e-9)



def test_l1_prox_gives_exact_zero_coefficients_recorded_in_done_json(tmp_path):
    """The proximal L1 step (cft.model.train.prox_l1_) zeroes reuse coefficients exactly, and
    done.json's ``coef`` / ``coef_sparsity`` are the saved module's ``c``. Without the prox
    (a subgradient of |c|) no coefficient would be exactly 0."""
    from safetensors.torch import load_file

    path = tmp_path / "run"
    _run(path, ["train.lambda_l1=1.0"])
    rd = RunDir(path)
    zeros = 0
    for t in (1, 2):
        done = read_json(rd.task_dir(t) / "done.json")
        state = load_file(str(rd.task_dir(t) / "module.safetensors"))
        flat = []
        for layer, vals in done["coef"].items():
            np.testing.assert_array_equal(state[f"{layer}.c"].numpy(), np.asarray(vals))
            flat += vals
        assert done["coef_sparsity"] == np.mean(np.asarray(flat) == 0.0)
        zeros += sum(v == 0.0 for v in flat)
    assert zeros > 0

def test_metrics_match_score_files(reference):
    path, res = reference
    rd = RunDir(path)
    m = res.metrics
    assert m["kind"] == "nll" and m["tasks_seen"] == 3
    for mode in ("adapted", "shared"):
        R = m["retrieval"][mode]["nll"]["matrix"]
        C = m["class_incremental"][mode]["nll"]["matrix"]
        assert R[0][1] is None and R[1][2] is None
        for k in range(3):
            z = load_npz(rd.step_dir(k) / "test" / f"{mode}-nll.npz")
            got = np.argmin(z["scores"], axis=1)
            for j in range(k + 1):
                sel = z["task"] == j
                assert R[k][j] == pytest.approx(np.mean(got[sel] == j))
                assert C[k][j] == pytest.approx(np.mean(z["pred"][sel] == z["label"][sel]))
    assert m["summary"]["adapted"]["retrieval_last"] == m["retrieval"]["adapted"]["nll"]["last"]
    results = (path / "results.jsonl").read_text().splitlines()
    assert len(results) == 1 and not (path.parent / "results.jsonl").exists()
    line = json.loads(results[0])
    assert line["summary"] == m["summary"] and line["n_tasks"] == 3


def test_deterministic(reference, tmp_path):
    path, _ = reference
    _run(tmp_path / "again")
    assert (tmp_path / "again" / "metrics.json").read_bytes() == \
        (path / "metrics.json").read_bytes()
    a = load_npz(path / "eval" / "step-002" / "test" / "adapted-centroid.npz")
    b = load_npz(tmp_path / "again" / "eval" / "step-002" / "test" / "adapted-centroid.npz")
    np.testing.assert_array_equal(a["scores"], b["scores"])


def test_resume_after_crash_equals_uninterrupted(reference, tmp_path, monkeypatch):
    path, _ = reference
    out = tmp_path / "crashy"
    monkeypatch.setenv(CRASH_ENV, "1")
    with pytest.raises(SimulatedCrash):
        _run(out)
    rd = RunDir(out)
    assert rd.info()["status"] == "running" and rd.info()["tasks_complete"] == 1
    assert rd.completed_tasks() == 1 and not rd.task_dir(1).exists()
    assert not (out / "metrics.json").exists()
    monkeypatch.delenv(CRASH_ENV)
    res = _run(out)
    assert res.resumed_from == 1 and rd.info()["resumed"] == 1
    assert (out / "metrics.json").read_bytes() == (path / "metrics.json").read_bytes()
    for t in range(3):
        np.testing.assert_array_equal(np.load(rd.task_dir(t) / "reps-shared-test.npy"),
                                      np.load(path / "tasks" / f"{t:03d}" /
                                              "reps-shared-test.npy"))
    a = load_npz(path / "eval" / "step-002" / "calibration" / "adapted-nll.npz")
    b = load_npz(out / "eval" / "step-002" / "calibration" / "adapted-nll.npz")
    np.testing.assert_array_equal(a["scores"], b["scores"])
    # a complete run is not redone
    again = _run(out)
    assert again.already_complete and again.metrics == res.metrics


def test_refuses_a_different_config(reference):
    path, _ = reference
    with pytest.raises(ValueError, match="different configuration"):
        Runner(resolve("tiny", [*OVR, "train.epochs=1"]), path).setup()


def test_lora_method_and_kmeans(tmp_path):
    from safetensors.torch import load_file

    res = _run(tmp_path / "lora", ["method=lora", "signature.family=kmeans", "data.n_tasks=2"],
               seed=3)
    assert res.metrics["kind"] == "centroid" and res.metrics["kinds"] == ["centroid"]
    st = load_file(str(tmp_path / "lora" / "tasks" / "001" / "module.safetensors"))
    assert float(st["meta.alpha"][0]) == 0.0
    step = tmp_path / "lora" / "eval" / "step-001"
    assert not (step / "test" / "shared-nll.npz").exists()
    assert not (step / "mixtures-shared.npz").exists()
    assert read_json(tmp_path / "lora" / "config.json")["seed"] == 3


def test_training_time_cluster_stats_load_per_task_and_concat(reference):
    """Each task's training-time ClusterStats loads on its own (global task id) and the
    concatenation over tasks is a complete, valid ClusterStats."""
    path, _ = reference
    rd = RunDir(path)
    parts = [rd.read_task(t, train_clusters=True).train_clusters for t in range(3)]
    for t, cs in enumerate(parts):
        assert np.all(cs.task == t)
    with pytest.raises(ValueError, match="have no centroid"):
        parts[2].validate("part")
    full = bounds.ClusterStats.concat(parts).validate("all")
    assert full.n_tasks == 3


def test_tiny_trains_enough_that_adapted_and_shared_differ(reference):
    """The tiny preset's modules move the representations: adapted and shared scores differ
    (median relative difference > 10 % for both kinds and splits) and retrieve different
    tasks for some samples of every split. Both rules are nearly always right on the tiny
    stream, so they can only disagree on its few hard samples (about 1-3 %)."""
    path, _ = reference
    for split in ("calibration", "test"):
        differ = []
        for kind in ("centroid", "nll"):
            a = load_npz(path / "eval" / "step-002" / split / f"adapted-{kind}.npz")["scores"]
            s = load_npz(path / "eval" / "step-002" / split / f"shared-{kind}.npz")["scores"]
            assert np.median(np.abs(a - s) / np.abs(s)) > 0.1, (split, kind)
            differ.append(a.argmin(1) != s.argmin(1))
        assert np.concatenate(differ).sum() >= 2, split


def test_calibration_summary_script(reference):
    """scripts/calibration_summary.py reads only the calibration files and done.json."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "calibration_summary",
        Path(__file__).resolve().parents[1] / "scripts" / "calibration_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path, _ = reference
    s = mod.summarise(path, n_boot=50)
    z = load_npz(path / "eval" / "step-002" / "calibration" / "adapted-nll.npz")
    assert s["kind"] == "nll"
    assert s["adapted"]["ret_last"] == pytest.approx(np.mean(z["scores"].argmin(1) == z["task"]))
    assert s["adapted"]["ci_last"] == pytest.approx(np.mean(z["pred"] == z["label"]))
    assert 0 < s["ci_aia_se"] < 0.2
    assert s["coef_sparsity"][0] is None and len(s["coef_sparsity"]) == 3
    assert mod.main([str(path), "--bootstrap", "0"]) == 0
