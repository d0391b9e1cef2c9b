"""The rounding guards of the numeric bound code and the names of the closed forms: a leaf
module, imported by :mod:`bounds.forms` (the numpy forms) and by
:mod:`bounds.symbolic` (the sympy expressions), so that neither imports the other at
module level."""

from __future__ import annotations

__all__ = ["GUARD", "NAMES", "TAIL_GUARD"]

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
