"""The baselines end to end on the ``tiny`` preset: every method runs through the one runner;
methods with no retrieval record it as not applicable; resume; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cft.run.resolve import resolve
from cft.run.rundir import RunDir, load_npz, read_json
from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash

OVR = ["data.n_tasks=3", "train.epochs=4"]
MERGED = ("seq-lora", "o-lora", "inflora", "sd-lora", "ranpac", "joint")
NEW = (*MERGED, "keys")


def _run(path, overrides=(), seed=None):
    cfg = resolve("tiny", [*OVR, *overrides], seed=seed)
    return Runner(cfg, path, echo=lambda s: None).run()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("baselines")
    return {m: (base / m, _run(base / m, [f"method={m}"])) for m in NEW}


@pytest.mark.parametrize("method,key,value", [
    ("seq-lora", "module.family", "sequential"), ("o-lora", "module.family", "summed"),
    ("o-lora", "train.lambda_orth", 0.5), ("inflora", "module.family", "inflora"),
    ("sd-lora", "module.family", "sd-lora"), ("ranpac", "head.kind", "ranpac"),
    ("ranpac", "module.family", "frozen"), ("keys", "eval.rule", "keys"),
    ("joint", "module.family", "joint")])
def test_every_method_resolves_on_the_real_preset(method, key, value):
    cfg = resolve("wordnet-minilm", [f"method={method}"])
    sec, field = key.split(".")
    assert getattr(getattr(cfg, sec), field) == value and cfg.method == method


def test_inflora_refuses_projection():
    with pytest.raises(ValueError, match="module.orth: family 'inflora' supports penalty"):
        resolve("wordnet-minilm", ["method=inflora", "module.orth=project"])


def test_rule_options_reach_the_rule_and_are_checked():
    cfg = resolve("wordnet-minilm", ["method=keys", "eval.epochs=7"])
    assert cfg.eval.options == {"epochs": 7}
    with pytest.raises(ValueError, match=r"unknown option 'eval\.epoch' \(known: epochs"):
        resolve("wordnet-minilm", ["method=keys", "eval.epoch=7"])
    with pytest.raises(ValueError, match="eval.rule, which is not set"):
        resolve("wordnet-minilm", ["eval.epochs=7"])
    with pytest.raises(ValueError, match="random_state"):
        resolve("wordnet-minilm", ["method=keys", "eval.random_state=1"])
    with pytest.raises(ValueError, match="eval.batch_size"):  # values checked at resolve
        resolve("wordnet-minilm", ["method=keys", "eval.batch_size=0"])
    with pytest.raises(ValueError, match="eval.epochs"):
        resolve("wordnet-minilm", ["method=keys", "eval.epochs=2.5"])


def test_a_rule_is_evaluated_under_its_registered_name(tmp_path):
    """The evaluator names no rule: a second registered rule gets its own score mode."""
    from cft.config.registry import RULES
    from cft.evaluation.keys import KeysRule

    @RULES.register("keys_copy")
    class KeysCopy(KeysRule):
        pass

    try:
        cfg = resolve("tiny", [*OVR, "eval.rule=keys_copy", "eval.epochs=3"])
        Runner(cfg, tmp_path / "run", echo=lambda s: None).run()
        met = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert set(met["summary"]) == {"adapted", "shared", "keys_copy", "task_aware"}
        z = load_npz(tmp_path / "run" / "eval" / "step-002" / "test" / "keys_copy-cosine.npz")
        arrays = load_npz(tmp_path / "run" / "tasks" / "000" / "rule-keys_copy.npz")
        assert len(arrays["losses"]) == 3 and z["scores"].shape[1] == 3  # eval.epochs used
    finally:
        RULES._items.pop("keys_copy")


@pytest.mark.parametrize("name", ["shared", "merged", "retrieval", "bad-name"])
def test_a_rule_name_must_be_able_to_name_a_score_mode(name):
    from cft.config.registry import RULES
    from cft.evaluation.keys import KeysRule

    RULES.register(name)(type("R", (KeysRule,), {}))
    try:
        with pytest.raises(ValueError, match="cannot name a score mode"):
            resolve("tiny", [f"eval.rule={name}"])
    finally:
        RULES._items.pop(name)


def test_methods_without_retrieval_record_not_applicable(runs):
    for m in MERGED:
        path, res = runs[m]
        met = res.metrics
        assert met["retrieval"] == "n/a" and met["summary"]["retrieval"] == "n/a", m
        assert "adapted" not in met["summary"] and "shared" not in met["summary"]
        assert met["kind"] is None and met["kinds"] == []
        line = json.loads((path / "results.jsonl").read_text())
        assert line["summary"]["retrieval"] == "n/a" and line["method"] == m
        tasks = read_json(path / "tasks.json")["tasks"]
        for k in range(3):
            sd = RunDir(path).step_dir(k)
            assert read_json(sd / "metrics.json")["retrieval"] == "n/a"
            for split in ("calibration", "test"):
                names = sorted(p.name for p in (sd / split).iterdir())
                assert names == ["merged.npz", "task-aware.npz"], (m, names)
            z = load_npz(sd / "test" / "merged.npz")
            row = met["class_incremental"]["merged"]["matrix"][k]
            for j in range(k + 1):
                sel = z["task"] == j
                assert row[j] == pytest.approx(np.mean(z["pred"][sel] == z["label"][sel]))
            ta = load_npz(sd / "test" / "task-aware.npz")
            for j in range(k + 1):  # task-aware predictions stay in the true task's classes
                assert set(ta["pred"][ta["task"] == j]) <= set(tasks[j]["classes"])
            assert set(z["pred"]) <= {c for t in tasks[: k + 1] for c in t["classes"]}
        for t in range(3):
            assert not (RunDir(path).task_dir(t) / "signature-adapted.npz").exists()


def test_bounds_check_says_not_applicable(runs, capsys):
    from bounds.check import main

    for m in ("ranpac", "inflora"):
        assert main([str(runs[m][0])]) == 0
        out = capsys.readouterr().out
        assert "retrieval bounds not applicable" in out and "n/a" in out
    assert main([str(runs["ranpac"][0]), "--step", "1"]) == 0
    assert "step 1" in capsys.readouterr().out
    assert main([str(runs["ranpac"][0]), "--step", "7"]) == 2  # still checks its input
    assert main([str(runs["keys"][0]), "--split", "test"]) == 0  # a retrieval run: checked
    assert "not applicable" not in capsys.readouterr().out
    # a closed stdout on the not-applicable line is a normal end too (exit 0, no error)
    import os
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "bounds.check", str(runs["ranpac"][0])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0, err
    assert err == ""


def test_keys_rule_is_a_third_retrieval_mode(runs):
    path, res = runs["keys"]
    met = res.metrics
    assert set(met["summary"]) == {"adapted", "shared", "keys", "task_aware"}
    rd = RunDir(path)
    keys = np.stack([load_npz(rd.task_dir(t) / "rule-keys.npz")["key"] for t in range(3)])
    q = np.concatenate([np.load(rd.task_dir(t) / "reps-shared-test.npy") for t in range(3)])
    z = load_npz(rd.step_dir(2) / "test" / "keys-cosine.npz")
    want = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
        keys / np.linalg.norm(keys, axis=1, keepdims=True)).T
    np.testing.assert_allclose(z["scores"], want, rtol=1e-5, atol=1e-6)
    got = z["scores"].argmin(1)
    for j in range(3):
        sel = z["task"] == j
        assert met["retrieval"]["keys"]["cosine"]["matrix"][2][j] == pytest.approx(
            np.mean(got[sel] == j))
    assert met["summary"]["keys"]["retrieval_last"] == met["retrieval"]["keys"]["cosine"]["last"]
    # the modules and parameter-free modes are PROTEUS's own
    ref = _run(path.parent / "proteus-ref", ["method=proteus"]).metrics
    assert met["retrieval"]["adapted"] == ref["retrieval"]["adapted"]


def test_joint_trains_on_every_task_seen(runs):
    path, _ = runs["joint"]
    rd = RunDir(path)
    tasks = read_json(path / "tasks.json")["tasks"]
    done = [read_json(rd.task_dir(t) / "done.json") for t in range(3)]
    assert [d["n_fit"] for d in done] == list(np.cumsum([d["n_train"] for d in done]))
    for t in range(3):
        classes = load_npz(rd.task_dir(t) / "head.npz")["classes"]
        assert sorted(classes) == sorted(c for x in tasks[: t + 1] for c in x["classes"])
    seq = [read_json(RunDir(runs["seq-lora"][0]).task_dir(t) / "done.json") for t in range(3)]
    assert [d["n_fit"] for d in seq] == [d["n_train"] for d in seq]


def test_ranpac_projection_follows_the_run_seed(runs, tmp_path):
    path, res = runs["ranpac"]
    other = _run(tmp_path / "s1", ["method=ranpac"], seed=1)
    a = load_npz(RunDir(path).task_dir(0) / "head.npz")
    b = load_npz(RunDir(other.run_dir).task_dir(0) / "head.npz")
    assert a["G"].shape == (1000, 1000) and not np.allclose(a["G"], b["G"])
    again = _run(tmp_path / "s0", ["method=ranpac"])
    assert (tmp_path / "s0" / "metrics.json").read_bytes() == (path / "metrics.json").read_bytes()
    assert again.metrics == res.metrics


@pytest.mark.parametrize("method", ["inflora", "keys"])
def test_resume_after_crash_equals_uninterrupted(runs, tmp_path, monkeypatch, method):
    path, _ = runs[method]
    out = tmp_path / method
    monkeypatch.setenv(CRASH_ENV, "1")
    with pytest.raises(SimulatedCrash):
        _run(out, [f"method={method}"])
    assert RunDir(out).completed_tasks() == 1
    monkeypatch.delenv(CRASH_ENV)
    res = _run(out, [f"method={method}"])
    assert res.resumed_from == 1
    assert (out / "metrics.json").read_bytes() == (path / "metrics.json").read_bytes()
    name = "merged.npz" if method == "inflora" else "keys-cosine.npz"
    for split in ("calibration", "test"):
        a = load_npz(path / "eval" / "step-002" / split / name)
        b = load_npz(out / "eval" / "step-002" / split / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for t in range(3):
        assert (RunDir(out).task_dir(t) / "module.safetensors").read_bytes() == \
            (RunDir(path).task_dir(t) / "module.safetensors").read_bytes()


@pytest.mark.parametrize("overrides,match", [
    (["head.kind=ranpac"], "head.kind"),
    (["method=seq-lora", "eval.rule=keys"], "eval.rule"),
    (["module.threshold=0.9"], "unknown option 'module.threshold'"),
    (["module.family=nope"], "unknown name 'nope'"),
    (["head.kind=nope"], "unknown name 'nope'"),
    (["method=inflora", "module.threshold=2"], "threshold"),
    (["method=ranpac", "head.n_features=0"], "n_features"),
])
def test_bad_hook_configuration(overrides, match):
    with pytest.raises(ValueError, match=match):
        resolve("tiny", overrides)


def test_cli_bad_hook_is_one_line_exit_2(tmp_path, capsys):
    from cft.cli import main

    assert main(["run", "--preset", "tiny", "--out", str(tmp_path / "r"),
                 "method=ranpac", "eval.rule=keys"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cft: error: eval.rule") and "\n" not in err


def test_presets_lists_every_method(capsys):
    from cft.cli import main

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for m in ("proteus", "lora", *NEW):
        assert f"\n{m} " in out


def test_sweep_and_report_of_methods_without_retrieval(tmp_path):
    """A sweep cell of a method with no retrieval completes, its completion line names the
    merged CIL, and the report fills the merged columns (no retrieval number)."""
    from cft.experiments.report import report
    from cft.experiments.sweep import load_spec, run_sweep

    spec_file = tmp_path / "spec.toml"
    spec_file.write_text('presets = ["tiny"]\nmethods = ["ranpac", "keys"]\nseeds = 1\n'
                         'overrides = ["data.n_tasks=2", "train.epochs=2"]\n')
    lines: list[str] = []
    res = run_sweep(load_spec(spec_file), tmp_path / "sw", workers=1, echo=lines.append)
    assert [o.status for o in res.outcomes] == ["complete", "complete"]
    done = [x for x in lines if "complete in" in x]
    assert "CIL last merged" in done[0] and "keys" in done[1] and "adapted" in done[1]
    groups = {g.method: g for g in report(tmp_path / "sw").groups}
    assert groups["ranpac"].stat("merged.ci_last").n == 1
    assert groups["ranpac"].stat("adapted.retrieval_last") is None
    assert groups["keys"].stat("keys.retrieval_last").n == 1
