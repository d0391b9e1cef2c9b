"""Numeric forms of the closed forms of :mod:`bounds.symbolic` (docs/theory.md §8).

``FUNCS[name]`` is the numpy version of ``EXPR[name]``: the ``lambdify`` output of every
expression is kept as source in ``bounds/forms_generated.py`` (``python -m
bounds.symbolic`` regenerates it; tests/test_bounds_api.py checks it against a fresh
lambdify), so neither ``import bounds`` nor a checker run imports sympy (0.3-0.6 s;
bench/bench_import.py). The rounding guards live here because the numeric code reads them
without needing sympy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from .forms_generated import RAW
from .guards import GUARD, NAMES, TAIL_GUARD

__all__ = ["FUNCS", "GUARD", "TAIL_GUARD", "NAMES"]


def wrap_form(name: str, raw: Callable[..., object], doc: str) -> Callable[..., np.ndarray]:
    """The calling convention of ``FUNCS``: float64 arrays in, broadcast float64 array out,
    floating-point warnings silenced (the forms' branches handle 0 and inf)."""

    def fn(*args: object) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = raw(*(np.asarray(x, dtype=np.float64) for x in args))
        shape = np.broadcast_shapes(*(np.shape(x) for x in args))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()

    fn.__name__ = f"{name}_numeric"
    fn.__doc__ = doc
    return fn


#: The numpy forms, keyed like ``bounds.symbolic.EXPR`` (a name missing from the generated
#: module, after an edit of EXPR, is missing here until ``python -m bounds.symbolic``;
#: tests/test_bounds_api.py fails meanwhile).
FUNCS: Mapping[str, Callable[..., np.ndarray]] = MappingProxyType({
    name: wrap_form(name, RAW[name], f"numpy form of bounds.symbolic.EXPR[{name!r}]")
    for name in NAMES if name in RAW})
