"""The tree is the architecture: one package per stage (docs/architecture.md), imports only
go down the stages, no import cycle anywhere in ``cft`` or ``bounds``, no module over 400
lines. Read from the source (every import statement, also those inside functions), so it
holds for code paths no test executes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the stages of docs/architecture.md, bottom first; a module may import its own stage and
#: the ones below, never one above. ``bounds`` sits below all of ``cft``.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bounds", ("bounds",)),
    ("configuration", ("cft", "cft.config")),
    ("data", ("cft.data",)),
    ("model", ("cft.model",)),
    ("methods", ("cft.methods",)),
    ("evaluation", ("cft.evaluation",)),
    ("run", ("cft.run",)),
    ("experiments", ("cft.experiments",)),
    ("entry", ("cft.cli", "cft.__main__")),
)
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in ("cft", "bounds")
            for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from a import b`` counts ``a.b`` when that is
    a module, else ``a``)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if sub in known else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name}


def _stage(module: str) -> int:
    best = (-1, -1)  # (prefix length, stage index): the longest matching prefix wins
    for i, (_, prefixes) in enumerate(STAGES):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                best = max(best, (len(p), i))
    assert best[1] >= 0, f"{module}: in no stage of docs/architecture.md"
    return best[1]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {n: _imports(n, p, set(mods)) for n, p in mods.items()}


def test_imports_only_go_down_the_stages() -> None:
    up = [f"{a} ({STAGES[_stage(a)][0]}) imports {b} ({STAGES[_stage(b)][0]})"
          for a, deps in sorted(_graph().items()) for b in sorted(deps)
          if _stage(b) > _stage(a)]
    assert not up, "\n".join(up)


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("pkg", ["cft", "bounds"])
def test_no_module_over_400_lines(pkg: str) -> None:
    long = [f"{p.relative_to(ROOT)} ({n})" for p in sorted((ROOT / pkg).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long


def test_the_architecture_table_is_the_tree() -> None:
    """docs/architecture.md's stage table names every stage package, in this order, and
    every ``cft`` package on disk is one of them."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = [ln for ln in doc.splitlines() if ln.startswith("| ") and ln.split("|")[2].strip()
             .startswith("`cft/")]
    named = [ln.split("|")[2].strip().strip("`").rstrip("/").replace("/", ".") for ln in table]
    want = ["cft.config", "cft.data", "cft.model", "cft.methods", "cft.evaluation", "cft.run",
            "cft.experiments", "cft.cli.py"]
    assert named == want, named
    pkgs = sorted(_module_name(p.parent) for p in (ROOT / "cft").glob("*/__init__.py"))
    assert set(pkgs) <= {p for _, ps in STAGES for p in ps}, pkgs


def test_the_checker_finds_an_upward_import(tmp_path: Path) -> None:
    """The rule can fail: an import of the run stage from the data stage is reported."""
    src = "from cft.run.runner import Runner\n"
    p = tmp_path / "x.py"
    p.write_text(src)
    deps = _imports("cft.data.x", p, set(_modules()) | {"cft.data.x"})
    assert deps == {"cft.run.runner"} and _stage("cft.run.runner") > _stage("cft.data.x")
