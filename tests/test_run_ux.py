"""What a user of ``python -m cft run`` meets around the run itself (issue 25): files
readable by collaborators (the umask, item 11), Ctrl-C and logs (item 12), provenance and
``--version`` (item 16), ``make install`` (item 17), LICENSE and CITATION.cff (item 18)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cft
from cft.cli import main
from cft.run import atomic
from cft.run.task import TaskTrainer

ROOT = Path(__file__).resolve().parents[1]
FAST = ["data.n_tasks=2", "train.epochs=1"]


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------ item 11: the umask
@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"),
                         [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_atomic_writes_honour_the_umask(tmp_path: Path, umask, mask: int, file_mode: int,
                                        dir_mode: int) -> None:
    umask(mask)
    assert atomic.current_umask() == mask
    atomic.write_json(tmp_path / "a.json", {"x": 1})
    atomic.save_npz(tmp_path / "b.npz", {"x": [1, 2]})
    assert _mode(tmp_path / "a.json") == file_mode and _mode(tmp_path / "b.npz") == file_mode
    with atomic.atomic_dir(tmp_path / "d") as d:
        atomic.write_json(d / "inner.json", {})
    assert _mode(tmp_path / "d") == dir_mode and _mode(tmp_path / "d" / "inner.json") == file_mode


def test_rewriting_a_file_keeps_its_mode(tmp_path: Path, umask) -> None:
    umask(0o022)
    p = tmp_path / "run.json"
    atomic.write_json(p, {"v": 1})
    p.chmod(0o640)
    atomic.write_json(p, {"v": 2})
    assert _mode(p) == 0o640 and json.loads(p.read_text()) == {"v": 2}


def test_a_run_directory_is_readable_by_others(tmp_path: Path, umask, capsys) -> None:
    umask(0o022)
    out = tmp_path / "run"
    assert main(["run", "--preset", "tiny", "--out", str(out), "--quiet", *FAST]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    dirs = [out, *(p for p in out.rglob("*") if p.is_dir())]
    assert len(files) > 20
    assert {str(p.relative_to(out)): oct(_mode(p)) for p in files
            if _mode(p) != 0o644} == {}
    assert {str(p.relative_to(out)): oct(_mode(p)) for p in dirs if _mode(p) != 0o755} == {}


# ------------------------------------------------------------ item 12: Ctrl-C, logs
def test_ctrl_c_prints_one_line_and_the_rerun_resumes(tmp_path: Path, capsys,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    train = TaskTrainer.train

    def interrupted_at_task_2(self, t):  # the third task: two are complete
        if t == 2:
            raise KeyboardInterrupt
        return train(self, t)

    monkeypatch.setattr(TaskTrainer, "train", interrupted_at_task_2)
    argv = ["run", "--preset", "tiny", "--out", str(out), "--quiet", "train.epochs=1"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.strip() == ("cft: interrupted with 2 of 3 tasks complete (tasks 0-1); rerun "
                           "the same command to resume")
    assert "Traceback" not in err
    monkeypatch.setattr(TaskTrainer, "train", train)
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "resuming" in cap.out and "2/3 tasks complete" in cap.out
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_ctrl_c_before_the_first_task(tmp_path: Path, capsys,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from cft.run.runner import Runner

    def setup(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "setup", setup)
    assert main(["run", "--preset", "tiny", "--out", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err.strip() == ("cft: interrupted before the first task "
                                               "started; rerun the same command to resume")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True], ids=["log", "terminal"])
def test_progress_bars_only_on_a_terminal(tmp_path: Path, capsys,
                                          monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    term = _Terminal()
    if tty:
        monkeypatch.setattr(sys, "stderr", term)
    assert main(["run", "--preset", "tiny", "--out", str(tmp_path / "r"), *FAST,
                 "output.progress=true"]) == 0  # tiny's default is no bars
    cap = capsys.readouterr()
    err = term.getvalue() if tty else cap.err
    assert ("\r" in err) is tty  # a log gets no carriage-return updates
    assert "(2 of 2 done)" in cap.out  # the per-task lines, either way


# ------------------------------------------------------------ item 16: provenance
def test_version_everywhere(tmp_path: Path, capsys) -> None:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    assert cft.__version__ == version == "0.2.0"
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"cft-bounds {version} (git ") and line.endswith(")")
    from cft.run.rundir import env_info, git_describe

    env = env_info()
    assert env["cft_version"] == version and env["git"] == git_describe()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    if (ROOT / ".git").exists() and head:  # a checkout: git describe names the commit
        assert head in env["git"]
    proc = subprocess.run([sys.executable, "-m", "cft", "--version"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith(f"cft-bounds {version} ")


def test_git_describe_outside_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from cft.run import rundir

    monkeypatch.setattr(rundir, "__file__", str(tmp_path / "cft" / "run" / "rundir.py"))
    assert rundir.git_describe() == "unknown"


# ------------------------------------------------------------ items 17, 18: project files
def test_make_install_is_a_venv_and_an_editable_install_without_tests(tmp_path) -> None:
    proc = subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'v'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode == 127 or "not found" in proc.stderr and "make" in proc.stderr:
        pytest.skip("no make")
    assert proc.returncode == 0, proc.stderr
    assert "-m venv" in proc.stdout and "pip install" in proc.stdout and "-e '.[dev]'" in \
        proc.stdout
    assert "-m pytest" not in proc.stdout
    readme = (ROOT / "README.md").read_text()
    assert "make install" in readme and "-e '.[dev]'" in readme  # and the plain pip line


def test_license_and_citation() -> None:
    lic = (ROOT / "LICENSE").read_text()
    assert lic.startswith("MIT License") and "cft-bounds authors" in lic
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert project["license"] == {"text": "MIT"}
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == project["version"] and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["title"] == ("Continual Fine-Tuning with Provably Accurate and "
                              "Parameter-Free Task Retrieval")
    assert paper["url"] == "https://arxiv.org/abs/2603.13235"
    assert {"type": "doi", "value": "10.48550/arXiv.2603.13235"} in paper["identifiers"]
    assert all({"family-names", "given-names"} <= set(a) for a in paper["authors"])
