"""``cft sweep`` / ``cft report``: SPEC validation, the report on hand-made cells (golden
files), and a real sweep of tiny cells with one cell killed mid-way and resumed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from golden_compare import assert_text_matches

from cft.cli import main
from cft.experiments.report import ci95, report
from cft.experiments.sweep import (
    KILL_ENV,
    Cell,
    cell_state,
    load_spec,
    manifest_cells,
    parse_spec,
    run_sweep,
    write_manifest,
)
from cft.run.rundir import RunDir, write_json
from cft.run.runner import Runner

GOLDEN = Path(__file__).parent / "golden"


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("cft: error:") and cap.err.count("\n") == 1, cap.err
    assert needle in cap.err and "Traceback" not in cap.err


# ----------------------------------------------------------------------------- SPEC
def test_spec_cells_and_defaults() -> None:
    spec = parse_spec({"presets": ["tiny"], "methods": ["proteus", "lora"], "seeds": 2,
                       "overrides": ["train.epochs=1"],
                       "grid": {"signature.family": ["gmm", "kmeans"],
                                "module.reuse_weight": [0.5]},
                       "resources": {"cpus": 2, "gpus": 0.5}}, check=False)
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2
    c = cells[0]
    assert c.id == "tiny/proteus/signature.family=gmm,module.reuse_weight=0.5/seed-0"
    assert c.dir == "cells/" + c.id and c.seed == 0 and c.variant.startswith("signature")
    assert c.overrides == ("method=proteus", "train.epochs=1", "signature.family=gmm",
                           "module.reuse_weight=0.5")
    assert c.point == ("signature.family=gmm", "module.reuse_weight=0.5")
    assert [x.seed for x in cells[:2]] == [0, 1] and cells[4].method == "lora"
    assert spec.resources.cpus == 2.0 and spec.resources.gpus == 0.5
    assert Cell.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    plain = parse_spec({"presets": ["tiny"]}, check=False)
    assert [x.id for x in plain.cells()] == ["tiny/proteus/base/seed-0"]
    cfg = parse_spec({"presets": ["tiny"], "seeds": [3]}).cells()[0].resolve()
    assert cfg.seed == 3 and cfg.method == "proteus" and cfg.output.progress is False
    # TOML value types become override text
    g = parse_spec({"presets": ["tiny"], "grid": {"data.pos": [["noun", "verb"]],
                                                  "output.progress": [True]}}, check=False)
    assert g.cells()[0].point == ('data.pos=["noun", "verb"]', "output.progress=true")


@pytest.mark.parametrize("data, needle", [
    ({}, "presets: missing"),
    ({"presets": []}, "presets: must be a non-empty list"),
    ({"presets": ["tiny", "tiny"]}, "presets: repeated"),
    ({"presets": ["tiny"], "seed": 1}, "unknown key 'seed'"),
    ({"presets": ["tiny"], "seeds": 0}, "seeds: a count must be >= 1"),
    ({"presets": ["tiny"], "seeds": [1, 1]}, "seeds: repeated"),
    ({"presets": ["tiny"], "seeds": [-1]}, "seeds: must be"),
    ({"presets": ["tiny"], "seeds": [True]}, "seeds: must be"),
    ({"presets": ["tiny"], "overrides": ["train.epochs"]}, "overrides: must be a list"),
    ({"presets": ["tiny"], "overrides": ["seed=3"]}, "set method, seed and preset"),
    ({"presets": ["tiny"], "grid": {"a": 1}}, "grid.a: must be a non-empty list"),
    ({"presets": ["tiny"], "grid": {"method": ["lora"]}}, "grid: 'method' has its own key"),
    ({"presets": ["tiny"], "grid": {"a": [1, "1"]}}, "grid.a: repeated value"),
    ({"presets": ["tiny"], "resources": {"tpus": 1}}, "resources: must be a table"),
    ({"presets": ["tiny"], "resources": {"cpus": -1}}, "resources.cpus: must be a number"),
    ({"presets": ["nope"]}, "cell nope/proteus/base/seed-0: preset: unknown preset 'nope'"),
    ({"presets": ["tiny"], "methods": ["nope"]}, "method: unknown name 'nope'"),
    ({"presets": ["tiny"], "overrides": ["train.epoch=1"]}, "unknown key 'train.epoch'"),
    ({"presets": ["tiny"], "grid": {"train.epochs": ["x"]}}, "train.epochs: expected an int"),
    ({"presets": ["tiny"], "overrides": ["backbone.hidden=3"]}, "unknown option 'backbone"),
])
def test_spec_errors(data, needle) -> None:
    with pytest.raises(ValueError) as err:
        parse_spec(data)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_spec_file_and_cli_errors(tmp_path, capsys) -> None:
    good = tmp_path / "good.toml"
    good.write_text('presets = ["tiny"]\nseeds = [0, 1]\n[grid]\n"train.epochs" = [1, 2]\n')
    assert len(load_spec(good).cells()) == 4
    bad = tmp_path / "bad.toml"
    bad.write_text('presets = ["tiny"\n')
    out = str(tmp_path / "out")
    _one_line_error(capsys, ["sweep", str(bad), "--out", out], "invalid TOML")
    _one_line_error(capsys, ["sweep", str(tmp_path / "none.toml"), "--out", out],
                    "no such file")
    (tmp_path / "typo.toml").write_text('presets = ["tiny"]\nmethod = ["lora"]\n')
    _one_line_error(capsys, ["sweep", str(tmp_path / "typo.toml"), "--out", out],
                    "unknown key 'method'")
    _one_line_error(capsys, ["sweep", str(good), "--out", out, "--workers", "0"], "--workers")
    _one_line_error(capsys, ["sweep", str(good), "--out", out, "--address", "x:1"],
                    "--address: only with --executor ray")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    _one_line_error(capsys, ["sweep", str(good), "--out", str(tmp_path / "busy")],
                    "not a sweep directory")
    _one_line_error(capsys, ["report", str(tmp_path / "missing")], "not a directory")
    _one_line_error(capsys, ["report", str(tmp_path / "busy")], "no sweep.json and no run")
    assert not Path(out).exists()


# ----------------------------------------------------------------------------- report
def test_ci95() -> None:
    assert ci95([0.4]) == (0.4, None, None)
    mean, std, half = ci95([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert half == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))  # t_{0.975, 2}
    with pytest.raises(ValueError):
        ci95([])


def _summary(a: float, s: float, ta: float | None = 0.9) -> dict:
    mode = lambda x: {"retrieval_last": x, "retrieval_aia": x, "retrieval_forgetting": None,  # noqa: E731
                      "ci_last": x - 0.1, "ci_aia": x - 0.05, "ci_forgetting": 0.02,
                      "ci_bwt": -0.02}
    return {"adapted": mode(a), "shared": mode(s),
            "task_aware": {"last": ta, "aia": ta, "forgetting": None, "bwt": None}}


def _hand_made_cell(root: Path, rel: str, *, n_tasks: int, summary: dict | None,
                    dataset: str = "tokens") -> None:
    d = root / rel
    d.mkdir(parents=True)
    done = summary is not None
    write_json(d / "run.json", {"schema_version": 1, "status": "complete" if done else "running",
                                "n_tasks": n_tasks, "tasks_complete": n_tasks if done else 1})
    write_json(d / "config.json", {"data": {"name": dataset}})
    if done:
        write_json(d / "metrics.json", {"n_tasks": n_tasks, "summary": summary})
        (d / "results.jsonl").write_text(json.dumps({"run_dir": rel, "n_tasks": n_tasks}) + "\n")


def _hand_made_sweep(root: Path) -> None:
    spec = parse_spec({"presets": ["small", "large"], "methods": ["proteus", "lora"],
                       "seeds": 3}, check=False)
    write_manifest(root, spec)
    values = {("small", "proteus"): [0.5, 0.6, 0.7], ("small", "lora"): [0.40, 0.45, 0.50],
              ("large", "proteus"): [0.30, 0.40, 0.35], ("large", "lora"): [0.2, 0.2]}
    for c in spec.cells():
        vals = values[(c.preset, c.method)]
        summ = _summary(vals[c.seed], 0.8) if c.seed < len(vals) else None
        _hand_made_cell(root, c.dir, n_tasks=5 if c.preset == "small" else 20, summary=summ)


@pytest.mark.exact_output
def test_report_golden(tmp_path, capsys) -> None:
    root = tmp_path / "demo-sweep"
    _hand_made_sweep(root)
    assert main(["report", str(root)]) == 0
    printed = capsys.readouterr().out
    md = (root / "report.md").read_text(encoding="utf-8")
    csv_text = (root / "report.csv").read_text(encoding="utf-8")
    assert md in printed
    # layout and names exactly; numbers within one unit of their last printed place
    assert_text_matches(md, GOLDEN / "report.md")
    assert_text_matches(csv_text, GOLDEN / "report.csv")
    png = (root / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    lines = (root / "results.jsonl").read_text().splitlines()
    assert len(lines) == 11 and json.loads(lines[0])["run_dir"].endswith("small/proteus/"
                                                                        "base/seed-0")
    # the golden numbers: small/proteus adapted task last = 0.5, 0.6, 0.7
    row = [r for r in csv_text.splitlines()
           if r.startswith("small,tokens,proteus,base,5,adapted.retrieval_last,")][0].split(",")
    mean, std, half = ci95([0.5, 0.6, 0.7])
    assert [float(x) for x in row[7:11]] == pytest.approx([mean, std, mean - half, mean + half],
                                                          abs=1e-6)
    # --metrics / --plot choose the columns; unknown names are one-line errors
    assert main(["report", str(root), "--metrics", "task_aware.last", "--plot",
                 "shared.ci_last"]) == 0
    assert "| task-aware last |" in capsys.readouterr().out
    _one_line_error(capsys, ["report", str(root), "--metrics", "nope"], "unknown metric 'nope'")


def test_report_finds_a_learned_rule_under_any_name(tmp_path, capsys) -> None:
    for seed, v in enumerate([0.5, 0.7]):
        summ = _summary(v, 0.8)
        summ["k2"] = dict(summ["shared"], retrieval_last=v + 0.2)
        _hand_made_cell(tmp_path, f"runs/s{seed}", n_tasks=3, summary=summ)
    res = report(tmp_path, write=False)
    rows = [r.split(",") for r in res.csv.splitlines()[1:]]
    got = {r[5]: float(r[7]) for r in rows}
    assert got["k2.retrieval_last"] == pytest.approx(0.8)  # mean of 0.7 and 0.9
    assert {"k2.ci_last", "k2.retrieval_aia", "adapted.retrieval_aia"} <= set(got)
    assert "keys.ci_last" not in got  # no such mode in the summaries: no row
    assert main(["report", str(tmp_path), "--metrics", "k2.retrieval_last"]) == 0
    assert "| k2 task last |" in capsys.readouterr().out
    _one_line_error(capsys, ["report", str(tmp_path), "--metrics", "k2.nope"],
                    "unknown metric 'k2.nope'")


def test_report_without_manifest(tmp_path) -> None:
    for seed, v in enumerate([0.5, 0.7]):
        _hand_made_cell(tmp_path, f"runs/s{seed}", n_tasks=3, summary=_summary(v, 0.8),
                        dataset="wordnet")
        cfg = json.loads((tmp_path / f"runs/s{seed}/config.json").read_text())
        write_json(tmp_path / f"runs/s{seed}/config.json",
                   cfg | {"preset": "wordnet-minilm", "method": "lora", "seed": seed})
    res = report(tmp_path)
    assert len(res.groups) == 1 and res.groups[0].seeds == [0, 1]
    assert "| lora | base | 3 | 2 | 60.0 ± 14.1 [" in res.markdown


# ----------------------------------------------------------------------------- a real sweep
SPEC = """presets = ["tiny"]
methods = ["proteus"]
seeds = [0, 1]
overrides = ["data.n_tasks=2", "train.epochs=1"]
"""


@pytest.mark.slow
def test_sweep_kill_and_resume_equals_uninterrupted(tmp_path, monkeypatch, capsys) -> None:
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC)
    spec = load_spec(spec_file)
    out = tmp_path / "sweep"
    killed = "tiny/proteus/base/seed-1"
    # first invocation: cell seed-1 is SIGKILLed during task 1 (task 0 saved); seed-0 runs on
    monkeypatch.setenv(KILL_ENV, f"{killed}@1")
    assert main(["sweep", str(spec_file), "--out", str(out), "--workers", "2"]) == 1
    text = capsys.readouterr().out
    assert f"{killed}: FAILED after 1 attempt(s): killed by SIGKILL" in text
    assert "1/2 cells complete" in text and "report.md" in text  # partial report
    cells = {c.id: c for c in manifest_cells(out)}
    assert cell_state(out, cells[killed]) == ("partial", 1, 2)
    assert cell_state(out, cells["tiny/proteus/base/seed-0"]) == ("complete", 2, 2)
    assert "- `tiny/proteus/base/seed-1`: running, 1/2 tasks" in (out / "report.md").read_text()
    # rerun (the hook only fires on a cell's first attempt): skip one, resume the other
    res = run_sweep(spec, out, workers=2, echo=lambda s: None)
    assert [o.status for o in res.outcomes] == ["skipped", "complete"]
    rd = RunDir(out / cells[killed].dir)
    assert rd.info()["resumed"] == 1 and rd.info()["status"] == "complete"
    log = (out / "logs" / cells[killed].log_name).read_text()
    assert "killing the process" in log and "resuming" in log
    # identical to uninterrupted runs of the same cells
    monkeypatch.delenv(KILL_ENV)
    for cid, cell in cells.items():
        ref = tmp_path / "ref" / cid
        Runner(cell.resolve(), ref, echo=lambda s: None).run()
        assert (out / cell.dir / "metrics.json").read_bytes() == \
            (ref / "metrics.json").read_bytes(), cid
    rep = report(out)
    assert len(rep.groups[0].seeds) == 2
    # the cost section: every task step of both seeds timed, the peak memory recorded
    cost = (out / "report-cost.csv").read_text().splitlines()
    row = dict(zip(cost[0].split(","), cost[1].split(",")))
    assert row["preset"] == "tiny" and row["n_steps"] == "4" and row["device"] == "cpu"
    assert 0 < float(row["step_seconds_mean"]) <= float(row["step_seconds_max"])
    assert float(row["peak_rss_mib"]) > 50  # a Python process with torch loaded
    assert "## Cost" in rep.markdown and "| tiny | proteus | base | 2 | cpu |" in rep.markdown
    # a third invocation has nothing to do
    again = run_sweep(spec, out, echo=lambda s: None)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
