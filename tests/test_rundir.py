"""cft.run.rundir: atomic writes, round trip of every artifact, identity checks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import bounds
from bounds import rundir_schema as L
from cft.config import to_dict
from cft.evaluation.heads.lda import LDAHead
from cft.evaluation.signatures import GMMSignature, KMeansSignature, Signature
from cft.run import rundir as R
from cft.run.resolve import resolve


def _leftovers(path):
    return [p for p in path.rglob("*") if p.name.startswith(R.TMP_PREFIX)]


# ----------------------------------------------------------------------------- atomic I/O
def test_atomic_file_leaves_nothing_when_the_writer_raises(tmp_path):
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError), R.atomic_file(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_atomic_file_keeps_old_content_when_the_writer_raises(tmp_path):
    target = tmp_path / "x.json"
    R.write_json(target, {"v": 1})

    class Bad:
        pass

    with pytest.raises(TypeError):
        R.write_json(target, {"v": Bad()})  # fails while serialising
    with pytest.raises(RuntimeError), R.atomic_file(target) as fh:
        fh.write(b"{broken")
        raise RuntimeError("midway")
    assert R.read_json(target) == {"v": 1}
    assert _leftovers(tmp_path) == []


def test_save_npz_midway_failure(tmp_path, monkeypatch):
    target = tmp_path / "s.npz"
    import bounds.npz

    real = bounds.npz.save_npz

    def failing(fh, arrays):
        real(fh, arrays)
        raise OSError("disk full")

    monkeypatch.setattr(bounds.npz, "save_npz", failing)
    with pytest.raises(OSError):
        R.save_npz(target, {"a": np.arange(3)})
    assert not target.exists() and _leftovers(tmp_path) == []


def test_atomic_dir(tmp_path):
    with pytest.raises(RuntimeError), R.atomic_dir(tmp_path / "d") as d:
        (d / "f.txt").write_text("x")
        raise RuntimeError("boom")
    assert not (tmp_path / "d").exists() and _leftovers(tmp_path) == []
    with R.atomic_dir(tmp_path / "d") as d:
        (d / "f.txt").write_text("x")
    assert (tmp_path / "d" / "f.txt").read_text() == "x"
    with pytest.raises(ValueError, match="already exists"), R.atomic_dir(tmp_path / "d"):
        pass


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        R.write_json(tmp_path / "m.json", {"x": float("nan")})
    assert not (tmp_path / "m.json").exists()


def test_no_pickle(tmp_path):
    with pytest.raises(ValueError, match="object"):
        R.save_npz(tmp_path / "o.npz", {"a": np.array([{"x": 1}], dtype=object)})
    # a pickled archive is refused on load
    np.savez(tmp_path / "p.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        R.load_npz(tmp_path / "p.npz")


# ----------------------------------------------------------------------------- artifacts
def _task_artifacts(rng, t=0):
    d = 6
    z = rng.normal(size=(40, d))
    y = np.repeat(np.array([2 * t, 2 * t + 1]), 20)
    sig_a = KMeansSignature(n_components=2, random_state=0).fit(z)
    sig_s = GMMSignature(n_components=2, random_state=0).fit(z + 1.0)
    head = LDAHead().fit(z, y)
    cs = bounds.cluster_stats(z, np.full(40, t), sig_s.centroids_,
                              np.full(len(sig_s.centroids_), t), sketch_rank=3)
    module = {"meta.alpha": torch.tensor([1.0], dtype=torch.float64),
              "layers.1.q.A": torch.randn(4, d), "layers.1.q.B": torch.zeros(d, 4)}
    return R.TaskArtifacts(
        module=module, signature_adapted=sig_a.to_arrays(), signature_shared=sig_s.to_arrays(),
        head=head.to_arrays(), reps_calibration=rng.normal(size=(5, d)).astype(np.float32),
        reps_test=rng.normal(size=(7, d)).astype(np.float32),
        done={"task": t, "seconds": 1.5, "train_loss": [0.5, 0.25]}, train_clusters=cs)


def _new_run(tmp_path, n_tasks=2):
    rd = R.RunDir(tmp_path / "run")
    cfg = to_dict(resolve("tiny"))
    rd.create(cfg, preset="tiny", seed=0, n_tasks=n_tasks,
              tasks_meta={"class_names": ["a", "b", "c", "d"], "class_order": [0, 1, 2, 3],
                          "tasks": [{"id": 0, "classes": [0, 1], "names": ["a", "b"]},
                                    {"id": 1, "classes": [2, 3], "names": ["c", "d"]}]})
    return rd, cfg


def test_create_layout_and_identity(tmp_path):
    rd, cfg = _new_run(tmp_path)
    info = rd.info()
    assert info["schema_version"] == 1 and info["status"] == "running"
    assert info["n_tasks"] == 2 and info["tasks_complete"] == 0 and info["seed"] == 0
    assert {"created", "updated", "preset"} <= set(info)
    env = R.read_json(rd.path / "env.json")
    assert "python" in env and "torch" in env["packages"]
    assert R.read_json(rd.path / "config.json") == cfg
    rd.check_config(cfg)
    other = to_dict(resolve("tiny", ["train.epochs=9"]))
    with pytest.raises(ValueError, match="different configuration.*train.epochs"):
        rd.check_config(other)
    with pytest.raises(ValueError, match="not a run directory"):
        rd2 = R.RunDir(tmp_path / "junk")
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "file").write_text("x")
        rd2.create(cfg, preset="tiny", seed=0, n_tasks=1, tasks_meta={})
    assert rd.update_run(tasks_complete=1)["tasks_complete"] == 1
    assert rd.info()["tasks_complete"] == 1


def test_task_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rd, _ = _new_run(tmp_path)
    assert rd.completed_tasks() == 0
    art = _task_artifacts(rng)
    rd.write_task(0, art)
    assert rd.completed_tasks() == 1
    names = sorted(p.name for p in rd.task_dir(0).iterdir())
    assert names == ["done.json", "head.npz", "module.safetensors",
                     "reps-shared-calibration.npy", "reps-shared-test.npy",
                     "signature-adapted.npz", "signature-shared.npz",
                     "train-clusters-shared.npz"]
    back = rd.read_task(0, train_clusters=True)
    for k, v in art.module.items():
        assert torch.equal(back.module[k], v)
    for k, v in art.signature_shared.items():
        np.testing.assert_array_equal(back.signature_shared[k], v)
    sig = Signature.from_arrays(back.signature_shared)
    z = rng.normal(size=(9, 6))
    orig = Signature.from_arrays(art.signature_shared)
    np.testing.assert_array_equal(sig.cost(z, "nll"), orig.cost(z, "nll"))
    assert str(back.signature_adapted["kind"]) == "kmeans"
    head = LDAHead.from_arrays(back.head)
    np.testing.assert_array_equal(head.predict(z), LDAHead.from_arrays(art.head).predict(z))
    np.testing.assert_array_equal(back.reps_test, art.reps_test)
    assert back.reps_calibration.dtype == np.float32
    assert back.done == art.done
    np.testing.assert_array_equal(back.train_clusters.msr, art.train_clusters.msr)
    # a task folder appears only complete: failure midway leaves nothing
    bad = _task_artifacts(rng, 1)
    bad.head = {"x": np.array([{"a": 1}], dtype=object)}
    with pytest.raises(ValueError):
        rd.write_task(1, bad)
    assert not rd.task_dir(1).exists() and _leftovers(rd.path) == []
    assert rd.completed_tasks() == 1
    with pytest.raises(ValueError, match="not complete"):
        rd.read_task(1)


def test_step_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    rd, _ = _new_run(tmp_path)
    n, m, d = 12, 2, 4
    task = np.repeat(np.arange(m), n // m)
    S = rng.normal(size=(n, m))
    z = rng.normal(size=(n, d))
    cs = bounds.cluster_stats(z, task, z[[0, 6]], np.array([0, 1]))
    mix = bounds.GaussianMixtures(np.full((m, 2), 0.5), rng.normal(size=(m, 2, d)),
                                  np.ones((m, 2, d)))
    scores = {(s, mo, k): {"task": task, "scores": S, "label": task * 2, "pred": task * 2}
              for s in L.SPLITS for mo in L.MODES for k in L.KINDS}
    art = R.StepArtifacts(scores=scores, metrics={"step": 1, "x": [1.0, None]},
                          clusters={"test": cs, "calibration": cs}, mixtures=mix,
                          extra={("test", "task-aware"): {"task": task}})
    rd.write_step(1, art)
    assert rd.evaluated_steps() == [1]
    back = rd.read_scores(1, "test", "shared", "nll")
    np.testing.assert_array_equal(back["scores"], S)
    assert back["task"].dtype == np.int64
    assert rd.read_step_metrics(1) == {"step": 1, "x": [1.0, None]}
    cs2 = bounds.ClusterStats.load(rd.step_dir(1) / "test" / "clusters-shared.npz")
    np.testing.assert_array_equal(cs2.point_cluster, cs.point_cluster)
    mix2 = bounds.GaussianMixtures.load(rd.step_dir(1) / "mixtures-shared.npz")
    np.testing.assert_array_equal(mix2.nll(z), mix.nll(z))
    assert (rd.step_dir(1) / "test" / "task-aware.npz").is_file()
    with pytest.raises(ValueError, match="bad split .train."):
        rd.write_step(0, R.StepArtifacts(scores={("train", "shared", "nll"): {}}, metrics={}))
    assert not rd.step_dir(0).exists()
    rd.write_metrics({"final": True})
    assert rd.read_metrics() == {"final": True}


def test_clean_temp_and_completed_tasks_are_contiguous(tmp_path):
    rng = np.random.default_rng(2)
    rd, _ = _new_run(tmp_path)
    rd.write_task(1, _task_artifacts(rng, 1))  # task 1 without task 0: not resumable
    assert rd.completed_tasks() == 0
    junk = rd.path / "tasks" / (R.TMP_PREFIX + "000.abc")
    junk.mkdir()
    (junk / "module.safetensors").write_bytes(b"partial")
    (rd.path / (R.TMP_PREFIX + "run.json.x")).write_text("{")
    removed = rd.clean_temp()
    assert len(removed) == 2 and _leftovers(rd.path) == []
    assert os.path.isdir(rd.task_dir(1))


def test_schema_version_checked(tmp_path):
    rd, _ = _new_run(tmp_path)
    info = json.loads((rd.path / "run.json").read_text())
    info["schema_version"] = 2
    (rd.path / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="schema_version"):
        rd.info()
