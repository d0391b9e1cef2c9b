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

__all__ = ["FUNCS", "GUARD", "TAIL_GUARD", "NAMES"]

#: Conservative relative rounding guard used in threshold comparisons (docs/theory.md §3.5).
#: A comparison ``4 r^2 >= D^2`` is evaluated as ``4 r^2 >= (1 - GUARD) D^2``, which can only
#: enlarge a bound; it absorbs the last-ulp rounding of squared distances.
GUARD = 1e-10

#: Relative rounding guard for the directional tail gap ``a = D/2 - m_nu`` (§3.5): a gap
#: below ``TAIL_GUARD * (D/2 + |m_nu|)`` is treated as 0 (tail 1), which can only enlarge a
#: bound; it absorbs the cancellation in computing ``a``.
TAIL_GUARD = 1e-9

#: The names of the closed forms (the keys of ``bounds.symbolic.EXPR``).
NAMES = ("cantelli", "markov", "margin_indicator", "separation", "corollary_r", "corollary",
         "chernoff_k", "chernoff_k_lb", "chernoff_term", "hoeffding")


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
