"""The registry of bounds: the built-in ones, :func:`register` and the plug-in entry points
(docs/theory.md §11; "Adding a bound" in the README).

A bound is a :class:`~bounds.base.Bound` with a unique name that declares its tier, the
inputs it reads and its assumptions. :func:`register` checks that declaration and refuses
a malformed bound or a name clash with one line (``ValueError``). Installed packages add
bounds through the entry-point group :data:`ENTRY_POINT_GROUP`; an entry point names a
``Bound`` instance, a ``Bound`` subclass (instantiated without arguments) or a list of
them. Plug-ins are loaded the first time the registry is read (or by
:func:`load_plugins`); a malformed one is refused with a one-line warning and recorded
in :data:`PLUGIN_ERRORS`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

from .base import EXACT_TIERS, INPUT_FIELDS, TIERS, Bound, BoundInputs, BoundResult
from .centroid import (
    ClippedMarkovBound,
    DirectionalBound,
    MarginBound,
    SecondMomentBound,
    TruncatedUnionBound,
)
from .chernoff import GaussianChernoffBound
from .moment import MomentOptBound
from .pac import ClopperPearsonBound, HoeffdingBound
from .threshold import CorollaryBound, ThresholdCantelliBound, ThresholdEmpiricalBound

__all__ = ["BoundInputs", "BoundResult", "Bound", "REGISTRY", "evaluate", "register",
           "unregister", "load_plugins", "validate_bound", "ENTRY_POINT_GROUP",
           "PLUGIN_ERRORS", "TIERS", "INPUT_FIELDS"]

#: The entry-point group through which installed packages register bounds.
ENTRY_POINT_GROUP = "cft_bounds.bounds"

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")

#: What each tier must read (at least one of) and may read (docs/theory.md §11).
_TIER_READS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sample-exact": (frozenset({"scores", "clusters"}),
                     frozenset({"scores", "task", "clusters"})),
    "training-time": (frozenset({"clusters"}), frozenset({"clusters"})),
    "pac": (frozenset({"cal_scores"}), frozenset({"cal_scores", "cal_task"})),
    "assumption": (frozenset({"mixtures"}), frozenset(INPUT_FIELDS)),
    "prediction": (frozenset(INPUT_FIELDS), frozenset(INPUT_FIELDS)),
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def validate_bound(bound: Any) -> Bound:
    """``bound`` (an instance, or a subclass instantiated without arguments) if its
    declaration is well formed, else ``ValueError`` with one line naming the fault."""
    if isinstance(bound, type) and issubclass(bound, Bound):
        try:
            bound = bound()
        except Exception as exc:  # a plug-in's constructor: report, never a traceback
            raise ValueError(f"bound {bound.__name__}: cannot be instantiated without "
                             f"arguments ({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(bound, Bound):
        raise ValueError(f"bound: {type(bound).__name__} {bound!r:.60} is not a bounds.Bound")
    name = bound.name
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"bound {type(bound).__name__}: name {name!r} must start with a "
                         "letter and use only letters, digits, '-', '_' and '.'")
    where = f"bound {name!r}"
    for attr in ("title", "section"):
        val = getattr(bound, attr)
        if not isinstance(val, str) or not val.strip():
            raise ValueError(f"{where}: {attr} must be a non-empty string")
    if bound.tier not in TIERS:
        raise ValueError(f"{where}: tier {bound.tier!r} is not one of {', '.join(TIERS)}")
    reads = bound.reads
    if (not isinstance(reads, tuple) or not reads
            or not all(isinstance(r, str) for r in reads)):
        raise ValueError(f"{where}: reads must be a non-empty tuple of input names "
                         f"({', '.join(INPUT_FIELDS)})")
    unknown = [r for r in reads if r not in INPUT_FIELDS]
    if unknown:
        raise ValueError(f"{where}: reads unknown input(s) {unknown}; known: "
                         f"{', '.join(INPUT_FIELDS)}")
    for a, b in (("scores", "task"), ("cal_scores", "cal_task")):
        if (a in reads) != (b in reads):
            raise ValueError(f"{where}: reads must list {a!r} and {b!r} together")
    need, allowed = _TIER_READS[bound.tier]
    if not need & set(reads) or not set(reads) <= allowed:
        raise ValueError(f"{where}: a {bound.tier} bound reads one of {sorted(need)} and "
                         f"only {sorted(allowed)}, not {list(reads)}")
    if (not isinstance(bound.assumptions, tuple) or not bound.assumptions
            or not all(isinstance(a, str) and a.strip() for a in bound.assumptions)):
        raise ValueError(f"{where}: assumptions must be a non-empty tuple of one-line strings")
    if bound.guaranteed != (bound.tier in EXACT_TIERS):
        raise ValueError(f"{where}: guaranteed={bound.guaranteed} contradicts tier "
                         f"{bound.tier!r}")
    if (not isinstance(bound.at_most, tuple)
            or not all(isinstance(a, str) and a != name for a in bound.at_most)):
        raise ValueError(f"{where}: at_most must be a tuple of other bounds' names")
    c = bound.continuous
    if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float))
                          or not 0 < c < 1):
        raise ValueError(f"{where}: continuous must be None or a relative accuracy in (0, 1)")
    cls = type(bound)
    if cls._per_task is Bound._per_task and cls.compute is Bound.compute:
        raise ValueError(f"{where}: implements neither _per_task nor compute")
    return bound


class _Registry(dict):  # type: ignore[type-arg]
    """name -> Bound; reading it loads the installed plug-ins first (once)."""

    _loaded = False

    def _ensure(self) -> None:
        if not _Registry._loaded:
            _Registry._loaded = True
            for msg in load_plugins():
                warnings.warn(msg, stacklevel=3)

    def __getitem__(self, key: str) -> Bound:
        self._ensure()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._ensure()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._ensure()
        return dict.__len__(self)

    def get(self, key: str, default: Any = None) -> Any:
        self._ensure()
        return dict.get(self, key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._ensure()
        return dict.items(self)


#: name -> Bound, built-ins first in display order, then registered ones.
REGISTRY: dict[str, Bound] = _Registry()

#: Where each registered bound came from: "built-in", "register()" or "entry point X (dist)".
ORIGIN: dict[str, str] = {}

#: One line per plug-in refused by :func:`load_plugins`.
PLUGIN_ERRORS: list[str] = []


def register(bound: Any, *, origin: str = "register()") -> Bound:
    """Add ``bound`` (a :class:`Bound` instance or subclass) to :data:`REGISTRY`.

    Refuses, with a one-line ``ValueError``, a malformed declaration
    (:func:`validate_bound`) and a name that is already registered. Returns the bound.
    """
    b = validate_bound(bound)
    if dict.__contains__(REGISTRY, b.name):
        raise ValueError(f"bound {b.name!r}: name already registered "
                         f"({ORIGIN.get(b.name, 'built-in')})")
    dict.__setitem__(REGISTRY, b.name, b)
    ORIGIN[b.name] = origin
    return b


def unregister(name: str) -> Bound:
    """Remove a bound added with :func:`register` (built-in bounds cannot be removed)."""
    if not dict.__contains__(REGISTRY, name):
        raise ValueError(f"bound {name!r}: not registered")
    if ORIGIN.get(name) == "built-in":
        raise ValueError(f"bound {name!r}: a built-in bound cannot be unregistered")
    ORIGIN.pop(name, None)
    return dict.pop(REGISTRY, name)


def load_plugins() -> list[str]:
    """Register the bounds of every installed entry point of :data:`ENTRY_POINT_GROUP`
    not registered yet; returns one line per refused plug-in (also kept in
    :data:`PLUGIN_ERRORS`)."""
    from importlib.metadata import entry_points

    _Registry._loaded = True
    errors: list[str] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        origin = f"entry point {ep.name} = {ep.value} ({dist})"
        if any(o == origin for o in ORIGIN.values()):
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            errors.append(f"plug-in {ep.name} ({dist}) refused: cannot load {ep.value}: "
                          f"{type(exc).__name__}: {_one_line(exc)}")
            continue
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for item in items:
            try:
                register(item, origin=origin)
            except ValueError as exc:
                errors.append(f"plug-in {ep.name} ({dist}) refused: {_one_line(exc)}")
    PLUGIN_ERRORS.extend(e for e in errors if e not in PLUGIN_ERRORS)
    return errors


for _b in (  # the built-in bounds, in display order
    MarginBound(),
    ClippedMarkovBound(),
    SecondMomentBound(),
    DirectionalBound(),
    TruncatedUnionBound(),
    MomentOptBound(),
    ThresholdEmpiricalBound(),
    ThresholdCantelliBound(),
    CorollaryBound(),
    GaussianChernoffBound(),
    HoeffdingBound(),
    ClopperPearsonBound(),
):
    register(_b, origin="built-in")
del _b


def evaluate(inputs: BoundInputs, names: list[str] | tuple[str, ...] | None = None
             ) -> dict[str, BoundResult]:
    """Compute every applicable bound (or exactly ``names``) in registry order.

    Prediction-tier entries are never reported as bounds: they are computed only when
    named explicitly."""
    if not isinstance(inputs, BoundInputs):
        raise ValueError("inputs: must be a BoundInputs")
    if names is None:
        chosen = [b for b in REGISTRY.values()
                  if b.tier != "prediction" and b.applicable(inputs)]
    else:
        if isinstance(names, str):
            names = [names]
        unknown = [nm for nm in names if nm not in REGISTRY]
        if unknown:
            raise ValueError(f"names: unknown bound(s) {unknown}; known: {list(REGISTRY)}")
        chosen = [REGISTRY[nm] for nm in names]
    return {b.name: b.compute(inputs) for b in chosen}
