"""A seeded hypothesis search that does not depend on what the process imported before.

Hypothesis (6.13x and later) mixes into generation the literal constants of every
"local" module in ``sys.modules`` (``hypothesis.internal.conjecture.providers.
_get_local_constants``). Which modules are loaded depends on what ran before in the
process, so the same ``@seed`` generates different examples alone and inside a suite
(measured: a wrong bound found at seed 0 alone, missed inside the whole suite).

:func:`fixed_constants` replaces that set, for the duration of a search, by the constants
of the ``bounds`` package's own modules, read in sorted module order: the same in every
process, and still the boundary values (tolerances, levels) a bound's code compares
against. Where the hypothesis internals differ (another version), it does nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["fixed_constants", "freeze_constants"]

_FROZEN: Any = None


def _bounds_constants() -> Any:
    global _FROZEN
    if _FROZEN is None:
        from hypothesis.internal.constants_ast import Constants, constants_from_module

        import bounds

        out = Constants()
        names = sorted(m.name for m in pkgutil.walk_packages(bounds.__path__, "bounds.")
                       if not m.name.endswith(("__main__", "selftest")))
        for name in ["bounds", *names]:
            try:
                out |= constants_from_module(importlib.import_module(name))
            except Exception:  # noqa: BLE001 - an optional module that cannot import
                continue
        _FROZEN = out
    return _FROZEN


def _providers() -> Any:
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - another hypothesis layout
        return None
    ok = hasattr(providers, "_get_local_constants") and hasattr(providers, "CONSTANTS_CACHE")
    return providers if ok else None


@contextmanager
def fixed_constants() -> Iterator[None]:
    """Within the block, hypothesis draws its local constants from a fixed set."""
    providers = _providers()
    if providers is None:  # pragma: no cover
        yield
        return
    saved = providers._get_local_constants
    providers._get_local_constants = _bounds_constants
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


def freeze_constants() -> None:
    """:func:`fixed_constants` for the rest of the process (a test suite's conftest)."""
    providers = _providers()
    if providers is not None:  # read lazily, at the first draw (not at conftest import)
        providers._get_local_constants = _bounds_constants
        providers.CONSTANTS_CACHE.cache.clear()
