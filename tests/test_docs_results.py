"""README.md and docs/results.md hold current facts: every generated region equals what its
results file gives (``make docs-results``), the README is one short page, and neither
document carries development-log residue or numbers typed by hand."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS_MD = ROOT / "docs" / "results.md"


def _script():
    spec = importlib.util.spec_from_file_location("docs_results",
                                                  ROOT / "scripts" / "docs_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _outside_regions(text: str) -> str:
    """The hand-written text: generated regions and code blocks removed."""
    text = re.sub(r"<!-- results:([\w.-]+) -->.*?<!-- /results:\1 -->", "", text, flags=re.S)
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_every_generated_region_is_current() -> None:
    stale = _script().update(check=True)
    assert not stale, f"run `make docs-results`: {stale}"


def test_a_changed_results_file_makes_the_region_stale(tmp_path, monkeypatch) -> None:
    mod = _script()
    doc = tmp_path / "doc.md"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "x.txt").write_text("one\n")
    doc.write_text("a\n<!-- results:text.x -->\n```\none\n```\n<!-- /results:text.x -->\nb\n")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(mod, "DOCS", (doc,))
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    assert mod.update(check=True) == []
    (tmp_path / "results" / "x.txt").write_text("two\n")
    assert mod.update(check=True) == ["doc.md:text.x"]
    assert mod.update() and "two" in doc.read_text() and mod.update(check=True) == []


def test_the_readme_is_one_short_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    text = README.read_text(encoding="utf-8")
    assert "make test" in text and "make demo" in text


@pytest.mark.parametrize("path", [README, RESULTS_MD], ids=lambda p: p.name)
def test_no_development_log_residue_and_no_hand_typed_numbers(path: Path) -> None:
    hand = _outside_regions(path.read_text(encoding="utf-8"))
    assert not re.search(r"\b[Ii]ssues? #?\d+", hand), "issue numbers"
    assert not re.search(r"\b(commit|main) [0-9a-f]{7,40}\b|`[0-9a-f]{7,40}`", hand), "hashes"
    assert not re.search(r"(?<![\w.])/(work|home|root|tmp)/", hand), "a machine's paths"
    assert not re.search(r"earlier code|older code|was measured", hand, re.I), "history"
    # not measurements: the paper's arXiv id, the Python version, a confidence level
    hand = re.sub(r"arXiv \d+\.\d+|Python \d+\.\d+|95 % Student-t", "", hand)
    numbers = re.findall(r"(?<![\w.§-])\d+\.\d+(?![\w.])|\d+(?:\.\d+)? ?%", hand)
    assert not numbers, f"numbers outside generated regions: {numbers}"


_ROOT = README.parent
_EVERY_DOC = sorted([*(_ROOT / "docs").glob("*.md"), *(_ROOT / "sweeps").glob("*.toml"),
                     _ROOT / "notebooks" / "README.md", _ROOT / "results" / "README.md"])


@pytest.mark.parametrize("path", _EVERY_DOC, ids=lambda p: p.relative_to(_ROOT).as_posix())
def test_no_development_log_residue_in_any_doc(path: Path) -> None:
    """Every document and sweep spec (not only the README): no issue numbers, no commit
    hashes, no paths of one machine."""
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\b[Ii]ssues? #?\d+", text), "issue numbers"
    assert not re.search(r"\b(commit|main) [0-9a-f]{7,40}\b", text), "hashes"
    assert not re.search(r"(?<![\w.~])/(work|home|root|tmp)/", text), "a machine's paths"
