"""How the SDPs of the moment bound are solved (docs/theory.md §3.7.1, §14.6).

A computation that needs SDP solutions is written as a generator (:data:`Steps`): it
yields each problem ``(W, h, tol)`` of :func:`.sdp._solve_compact_clarabel`, is sent the
solution (or thrown the solver's exception) and returns its result. :func:`drive` runs one
such computation with a chosen backend; :func:`drive_all` runs many, their problems of one
shape solved together by :func:`.batch.solve_compact_batch`. The certification of what
the solver returns is the computation's own (:func:`.sdp.certify_majorant`), whoever
solved it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

import numpy as np

from .batch import solve_compact_batch
from .sdp import _solve_compact_clarabel, _solve_slemma_cvxpy

_T = TypeVar("_T")

#: a computation that needs SDP solutions: it yields each problem ``(W, h, tol)`` of
#: :func:`.sdp._solve_compact_clarabel`, is sent its solution dict (or thrown the solver's
#: exception) and returns its result
Steps = Generator[tuple[np.ndarray, np.ndarray, float], dict, _T]


#: ``"ipm"``: the batched interior point (:mod:`.batch`), Clarabel where it does not
#: converge; ``"clarabel"``: the compact primal through Clarabel; ``"cvxpy"``: the S-lemma
#: dual through cvxpy (cross-check)
BACKENDS = ("ipm", "clarabel", "cvxpy")


def _solver(backend: str) -> Callable[..., dict]:
    """The one-problem solver of a backend other than ``"ipm"``."""
    return {"clarabel": _solve_compact_clarabel, "cvxpy": _solve_slemma_cvxpy}[backend]


def _advance(gen: Steps[_T], sol: dict | BaseException | None
             ) -> tuple[bool, Any]:
    """Send ``sol`` (None: start; an exception: thrown) into ``gen``: (True, its next
    problem) or (False, its result)."""
    try:
        if sol is None:
            return True, next(gen)
        if isinstance(sol, BaseException):
            return True, gen.throw(sol)
        return True, gen.send(sol)
    except StopIteration as stop:
        return False, stop.value


def _solve_guarded(solver: Callable[..., dict], W: np.ndarray, h: np.ndarray, tol: float
                   ) -> dict | Exception:
    try:
        return solver(W, h, tol)
    except Exception as exc:  # handed to the computation (its Cantelli fallback)
        return exc


def drive(gen: Steps[_T], backend: str = "ipm") -> _T:
    """Run one computation, solving its SDPs one by one with ``backend`` (BACKENDS;
    ``"ipm"`` is :func:`drive_all` of this one computation)."""
    if backend == "ipm":
        return drive_all([gen])[0]
    solver = _solver(backend)
    more, item = _advance(gen, None)
    while more:
        more, item = _advance(gen, _solve_guarded(solver, *item))
    return item


def drive_all(gens: list[Steps[_T]]) -> list[_T]:
    """Run many computations, solving their SDPs together: the problems of one shape in
    one batch of :func:`.batch.solve_compact_batch` (docs/theory.md §14.6); a problem it
    does not solve to the tolerance goes to Clarabel. The batch solves each problem on its
    own (nothing is shared between them), so the results are those of :func:`drive` with
    ``backend="ipm"``."""
    results: list[Any] = [None] * len(gens)
    todo: dict[int, tuple] = {}

    def advance(i: int, sol: dict | BaseException | None) -> None:
        more, item = _advance(gens[i], sol)
        if more:
            todo[i] = item
        else:
            results[i] = item

    for i in range(len(gens)):
        advance(i, None)
    while todo:
        groups: dict[tuple, list[int]] = {}
        for i, (W, _, tol) in todo.items():
            groups.setdefault((W.shape, tol), []).append(i)
        sols: dict[int, dict | Exception] = {}
        for (_, tol), idx in groups.items():
            got = solve_compact_batch(np.stack([todo[i][0] for i in idx]),
                                      np.stack([todo[i][1] for i in idx]), tol)
            for i, sol in zip(idx, got):
                sols[i] = sol if sol is not None else _solve_guarded(
                    _solve_compact_clarabel, *todo[i])
        todo.clear()
        for i, sol in sols.items():
            advance(i, sol)
    return results
