"""Declared dependencies are the ones used, and their floors are the tested ones.

* every runtime and ``dev`` dependency in pyproject.toml has a ``>=`` floor equal to its
  ``==`` pin in constraints/floors.txt (what ``make floors`` installs and tests), and
  floors.txt pins nothing else;
* every third-party top-level import (``ast`` scan, plus ``pytest.importorskip("x")``) of
  cft/ and bounds/ maps to a runtime dependency or an optional extra, and of tests/ and
  scripts/ also to a ``dev`` one; so an undeclared import fails here;
* every runtime dependency is imported by cft/ or bounds/, and every ``dev`` one by tests/
  or scripts/ unless it is a tool named in ``TOOLS``; so a declared but unused one fails.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ROOT / "constraints" / "floors.txt"
LOCAL = {"cft", "bounds"}
#: import names that differ from their distribution's (used when the package is not
#: installed; otherwise importlib.metadata says)
IMPORT_TO_DIST = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "cvxpy": "cvxpy-base",
    "IPython": "ipython",
}
#: dev dependencies used as tools, never imported: why each is declared
TOOLS = {
    "jupyterlab": "make lab",
    "ruff": "make lint",
    "ipykernel": "the notebooks' kernel (tests/test_notebooks.py)",
    "nbstripout": "python -m nbstripout (notebooks are committed stripped)",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse(req: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)", req)
    assert m, f"unparseable requirement {req!r}"
    return _norm(m.group(1)), m.group(2).split(";")[0].strip()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> dict[str, dict[str, str]]:
    """``{"runtime"|extra: {dist: specifier}}``."""
    proj = _project()
    out = {"runtime": dict(_parse(r) for r in proj["dependencies"])}
    for extra, reqs in proj.get("optional-dependencies", {}).items():
        out[extra] = dict(_parse(r) for r in reqs)
    return out


def _floors() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in FLOORS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s,;]+)", line)
        assert m, f"floors.txt: expected 'name==version', got {line!r}"
        name = _norm(m.group(1))
        assert name not in pins, f"floors.txt: {name} pinned twice"
        pins[name] = m.group(2)
    return pins


def _lower_bound(spec: str) -> str | None:
    m = re.search(r">=\s*([^\s,;]+)", spec)
    return m.group(1) if m else None


def _imports(path: Path) -> set[str]:
    """Top-level absolute imports of a file, and the names passed to pytest.importorskip."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "importorskip" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def third_party_imports(dirs: list[str]) -> dict[str, set[str]]:
    """``{top-level module: {files}}`` of the imports that are neither stdlib nor local."""
    out: dict[str, set[str]] = {}
    for d in dirs:
        for path in sorted((ROOT / d).rglob("*.py")):
            siblings = {p.stem for p in path.parent.glob("*.py")} | {
                p.name for p in path.parent.iterdir() if (p / "__init__.py").exists()}
            for name in _imports(path):
                if (name in sys.stdlib_module_names or name in LOCAL or name in siblings
                        or name == "__future__"):
                    continue
                out.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return out


def _dists_of(module: str) -> set[str]:
    found = metadata.packages_distributions().get(module, [])
    return {_norm(d) for d in found} | {_norm(IMPORT_TO_DIST.get(module, module))}


def undeclared(dirs: list[str], allowed: set[str]) -> dict[str, set[str]]:
    """Third-party imports of ``dirs`` that map to none of the ``allowed`` distributions."""
    return {m: files for m, files in third_party_imports(dirs).items()
            if not _dists_of(m) & allowed}


def test_floors_equal_the_pins() -> None:
    declared = _declared()
    pins = _floors()
    tested = {**declared["runtime"], **declared.get("dev", {})}
    for name, spec in tested.items():
        floor = _lower_bound(spec)
        assert floor is not None, f"pyproject.toml: {name} has no '>=' floor ({spec!r})"
        assert name in pins, f"floors.txt: {name} is declared but not pinned"
        assert pins[name] == floor, (
            f"{name}: pyproject.toml floor {floor} != floors.txt pin {pins[name]}")
    extra = set(pins) - set(tested)
    assert not extra, f"floors.txt pins undeclared packages: {sorted(extra)}"


def test_every_import_is_declared() -> None:
    declared = _declared()
    runtime = set(declared["runtime"])
    extras = {d for k, v in declared.items() if k not in ("runtime", "dev") for d in v}
    dev = set(declared.get("dev", {}))
    bad = undeclared(["cft", "bounds"], runtime | extras)
    assert not bad, f"imported by the package but not a runtime dependency or extra: {bad}"
    bad = undeclared(["tests", "scripts"], runtime | extras | dev)
    assert not bad, f"imported by tests/scripts but not declared: {bad}"


def test_an_undeclared_import_is_caught() -> None:
    """The scan sees bounds' threadpoolctl import: without the declaration it would fail."""
    runtime = set(_declared()["runtime"])
    assert "threadpoolctl" in third_party_imports(["bounds"])
    assert "threadpoolctl" in undeclared(["bounds"], runtime - {"threadpoolctl"})
    assert "PIL" in undeclared(["cft"], runtime - {"pillow"})


def test_every_declared_dependency_is_used() -> None:
    declared = _declared()
    used_pkg = {d for m in third_party_imports(["cft", "bounds"]) for d in _dists_of(m)}
    unused = set(declared["runtime"]) - used_pkg
    assert not unused, f"runtime dependencies never imported by cft/ or bounds/: {unused}"
    used_dev = {d for m in third_party_imports(["tests", "scripts"]) for d in _dists_of(m)}
    unused = set(declared.get("dev", {})) - used_dev - set(TOOLS)
    assert not unused, f"dev dependencies never imported by tests/ or scripts/: {unused}"


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_tools_are_declared(name: str) -> None:
    assert name in _declared().get("dev", {})
