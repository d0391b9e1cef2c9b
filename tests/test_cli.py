"""``python -m cft``: presets, an end-to-end tiny run, one-line errors with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cft.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_presets_listing(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("wordnet-minilm", "synthetic", "tiny"):
        assert name in out
    assert main(["presets", "--show", "tiny"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["backbone"]["name"] == "tiny-bert"


def test_end_to_end_tiny(tmp_path, capsys):
    out = tmp_path / "run"
    results = tmp_path / "res" / "all.jsonl"
    code = main(["run", "--preset", "tiny", "--out", str(out), "--seed", "1", "--quiet",
                 "--results", str(results), "data.n_tasks=2", "train.epochs=1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "task 0 [" in text and "(1 of 2 done)" in text and "task 1 [" in text
    assert "(2 of 2 done)" in text
    for word in ("adapted", "shared", "task-aware", "wall time"):
        assert word in text
    line = json.loads(results.read_text().splitlines()[-1])
    assert line["seed"] == 1 and line["preset"] == "tiny" and line["n_tasks"] == 2
    assert set(line["summary"]) == {"adapted", "shared", "task_aware"}
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert json.loads((out / "results.jsonl").read_text()) == line  # inside the run dir too
    # rerun with the same config: already complete, table printed again, exit 0
    assert main(["run", "--preset", "tiny", "--out", str(out), "--seed", "1", "--quiet",
                 "data.n_tasks=2", "train.epochs=1"]) == 0
    assert "already complete" in capsys.readouterr().out
    # a different config in the same folder is refused in one line
    assert main(["run", "--preset", "tiny", "--out", str(out), "--seed", "2", "--quiet",
                 "data.n_tasks=2", "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different configuration" in err and "seed" in err


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("cft: error:") and cap.err.count("\n") == 1, cap.err
    assert needle in cap.err
    assert "Traceback" not in cap.err


def test_bad_input(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "x")
    _one_line_error(capsys, ["run", "--preset", "nope", "--out", out], "unknown preset")
    _one_line_error(capsys, ["run", "--preset", "tiny", "--out", out, "train.epoch=2"],
                    "unknown key 'train.epoch'")
    _one_line_error(capsys, ["run", "--preset", "tiny", "--out", out, "train.epochs=x"],
                    "train.epochs: expected an int")
    _one_line_error(capsys, ["run", "--preset", "tiny"], "--out")
    _one_line_error(capsys, ["run", "--preset", "tiny", "--out", out, "method=lora",
                             "module.reuse_weight=0.5"], "contradicts method=lora")
    _one_line_error(capsys, ["frobnicate"], "invalid choice")
    _one_line_error(capsys, ["presets", "--show", "nope"], "unknown preset")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    _one_line_error(capsys, ["run", "--preset", "tiny", "--out", str(tmp_path / "full")],
                    "not a run directory")
    monkeypatch.setenv("CFT_WORDNET_DIR", str(tmp_path / "no-wordnet"))
    _one_line_error(capsys, ["run", "--preset", "wordnet-minilm", "--out", out],
                    "CFT_WORDNET_DIR")
    assert not Path(out).exists()


def test_module_entry_point(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    ok = subprocess.run([sys.executable, "-m", "cft", "presets"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "tiny" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "cft", "run", "--preset", "nope", "--out",
                          str(tmp_path / "o")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown preset 'nope'" in bad.stderr


def test_run_help_lists_every_method_and_points_to_presets_show(capsys):
    import cft.methods  # noqa: F401
    from cft.config.registry import METHODS

    try:
        rc = main(["run", "--help"])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 0
    out = capsys.readouterr().out
    for name in METHODS.names():
        assert f"\n  {name} " in out, name
    assert "python -m cft presets --show PRESET" in out
