"""Golden comparisons that give the same verdict on every CPU.

A golden *text* is compared in two parts:

* its skeleton (every decimal number replaced by ``#``, runs of two or more spaces read
  as one column gap) character for character: layout, names, order, tiers, verdicts;
* its decimal numbers one by one, each within one unit of its last printed place plus
  1e-9 relative (``numbers="printed"``; a value computed through BLAS may round the
  other way on another kernel), or not at all (``numbers="skip"``) where the numbers are
  checked at full precision through a golden JSON.

A golden *JSON* is compared exactly in structure, strings, booleans and integers; a
float within 1e-9 relative (plus 1e-12 absolute), unless the caller's ``tolerance``
function gives a Monte-Carlo tolerance for its path (a few standard errors).

``CFT_REGEN_GOLDEN=1`` rewrites the golden files instead (review the diff).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: a decimal number with a point (integers such as task ids and counts stay in the skeleton)
DECIMAL = re.compile(r"(?<![\d.])[-+]?\d+\.\d+(?:e[-+]?\d+)?")
REL = 1e-9
ABS = 1e-12

Tolerance = Callable[[tuple, dict], float | None]


def regen() -> bool:
    return bool(os.environ.get("CFT_REGEN_GOLDEN"))


def skeleton(text: str) -> str:
    return "\n".join(re.sub(r" {2,}", "  ", DECIMAL.sub("#", ln)).rstrip()
                     for ln in text.splitlines())


def assert_text_matches(got: str, path: Path, *, numbers: str = "printed") -> None:
    """``got`` against the golden text at ``path`` (see the module docstring)."""
    if regen():
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    want = path.read_text(encoding="utf-8")
    sg, sw = skeleton(got).splitlines(), skeleton(want).splitlines()
    for i, (a, b) in enumerate(zip(sg, sw)):
        assert a == b, (f"{path.name} line {i + 1} differs beyond its numbers:\n"
                        f"  got  {a}\n  want {b}")
    assert len(sg) == len(sw), f"{path.name}: {len(sg)} lines, golden has {len(sw)}"
    if numbers == "skip":
        return
    assert numbers == "printed", numbers
    for i, (a, b) in enumerate(zip(got.splitlines(), want.splitlines())):
        for x, y in zip(DECIMAL.findall(a), DECIMAL.findall(b)):
            places = len(y.split(".")[1].split("e")[0])
            tol = 10.0 ** -places + REL * abs(float(y))
            assert abs(float(x) - float(y)) <= tol, (
                f"{path.name} line {i + 1}: {x} differs from the golden {y} by more than one "
                f"unit of its last place ({tol:.1e})")


def assert_json_matches(got: Any, path: Path, *, tolerance: Tolerance | None = None) -> None:
    """``got`` (JSON-able) against the golden JSON at ``path``. ``tolerance(path, parent)``
    returns the absolute tolerance of a float at that key path (``parent`` is the dict that
    holds it, with its standard errors), or None for the deterministic 1e-9 relative."""
    got = json.loads(json.dumps(got))
    if regen():
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(path.read_text(encoding="utf-8"))
    _compare(got, want, (), {}, tolerance or (lambda p, parent: None), path.name)


def _compare(a: Any, b: Any, where: tuple, parent: dict, tol: Tolerance, name: str) -> None:
    loc = f"{name}:{'/'.join(map(str, where))}"
    if isinstance(b, dict):
        assert isinstance(a, dict) and sorted(a) == sorted(b), f"{loc}: keys differ"
        for k in b:
            _compare(a[k], b[k], (*where, k), b, tol, name)
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), f"{loc}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, (*where, i), parent, tol, name)
    elif isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
        t = tol(where, parent)
        limit = REL * abs(b) + ABS if t is None else t
        assert math.isfinite(a) and abs(a - b) <= limit, (
            f"{loc}: {a!r} differs from the golden {b!r} by more than {limit:.3g}")
    else:
        assert type(a) is type(b) and a == b, f"{loc}: {a!r} != golden {b!r}"
