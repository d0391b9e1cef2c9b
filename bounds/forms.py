"""Numeric forms of the closed forms of :mod:`bounds.symbolic`, lambdified on first use
(docs/theory.md §8).

``FUNCS[name]`` is the numpy version of ``EXPR[name]``; sympy is imported, and that one
expression lambdified, the first time a bound needs it, so that ``import bounds`` stays
cheap (bench/bench_import.py). The rounding guards live here because the numeric code
reads them without needing sympy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from .guards import GUARD, NAMES, TAIL_GUARD

__all__ = ["FUNCS", "GUARD", "TAIL_GUARD", "NAMES"]


class _LazyForms(Mapping[str, Callable[..., np.ndarray]]):
    """A read-only mapping name -> numpy function that lambdifies each form on first access."""

    def __init__(self) -> None:
        self._done: dict[str, Callable[..., np.ndarray]] = {}

    def __getitem__(self, name: str) -> Callable[..., np.ndarray]:
        fn = self._done.get(name)
        if fn is None:
            if name not in NAMES:
                raise KeyError(name)
            from .symbolic import numeric_form  # imports sympy once

            fn = self._done[name] = numeric_form(name)
        return fn

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


#: The lambdified numpy forms, keyed like ``bounds.symbolic.EXPR``.
FUNCS: Mapping[str, Callable[..., np.ndarray]] = _LazyForms()
