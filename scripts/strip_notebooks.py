#!/usr/bin/env python
"""Strip outputs from Jupyter notebooks (they are committed without outputs).

Usage::

    python scripts/strip_notebooks.py                  # every notebooks/*.ipynb, in place
    python scripts/strip_notebooks.py a.ipynb b.ipynb  # given files
    python scripts/strip_notebooks.py --check          # exit 1 if any notebook has outputs

Clears code-cell outputs and execution counts, per-cell execution metadata and the
notebook-level widget state; keeps sources, cell types and the kernelspec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
_CELL_META_DROP = ("execution", "collapsed", "scrolled", "ExecuteTime")
_NB_META_DROP = ("widgets",)


def is_stripped(nb: nbformat.NotebookNode) -> bool:
    """True when no code cell has outputs, an execution count or execution metadata."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            return False
        if any(k in cell.get("metadata", {}) for k in _CELL_META_DROP):
            return False
    return not any(k in nb.metadata for k in _NB_META_DROP)


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs, execution counts and execution metadata, in place; returns ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for k in _CELL_META_DROP:
            cell.get("metadata", {}).pop(k, None)
    for k in _NB_META_DROP:
        nb.metadata.pop(k, None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks (default: notebooks/*.ipynb of the repository)")
    parser.add_argument("--check", action="store_true",
                        help="only report notebooks with outputs; exit 1 if any")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        if not path.is_file():
            parser.error(f"paths: {path} is not a file")
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if is_stripped(nb):
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(strip(nb), path)
    for path in dirty:
        print(f"{'has outputs' if args.check else 'stripped'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
