"""Name -> factory registries: backbones, datasets, methods, signatures and the method hooks
(module families, continual classifier heads, learned retrieval rules).

One decorator, one name (Mammoth style): ``@DATASETS.register("wordnet")``.

Installed packages add datasets, backbones and methods through the entry-point groups
``cft_bounds.datasets``, ``cft_bounds.backbones`` and ``cft_bounds.methods`` (as they add
bounds through ``cft_bounds.bounds``, :mod:`bounds.registry`)::

    [project.entry-points."cft_bounds.datasets"]
    my-data = "my_package.data:MyStream"      # a factory: registered under "my-data"

An entry point names the factory (a class or function; it is registered under the entry
point's name) or a module whose import registers that name with the decorator. Plug-ins
are loaded the first time a registry is read; a built-in name always wins, and a plug-in
that cannot be loaded or clashes is refused with a one-line warning (kept in
:attr:`Registry.plugin_errors` and repeated when its name is asked for).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["BACKBONES", "DATASETS", "ENTRY_POINT_GROUPS", "HEADS", "METHODS",
           "MODULE_FAMILIES", "RULES", "SIGNATURES", "Registry"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class Registry:
    """A mapping from a unique name to a factory (class or function).

    ``group``: the entry-point group whose installed plug-ins are registered (loaded once,
    the first time the registry is read); ``None``: no plug-ins.
    """

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, Callable[..., Any]] = {}
        #: where each plug-in name came from: ``entry point NAME = VALUE (DIST)``
        self.origin: dict[str, str] = {}
        #: one line per refused plug-in
        self.plugin_errors: list[str] = []
        self._loaded = group is None

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            # registered while a plug-in loads, by the plug-in's code (a plug-in importing
            # cft registers cft's own entries at that moment too: they stay built-in)
            plugin = bool(self._loading) and \
                str(getattr(obj, "__module__", "") or "").split(".")[0] != "cft"
            if name in self._items:
                if name in self.origin and not plugin:  # a built-in wins over a plug-in
                    self._refuse(f"{self.kind} plug-in {name!r} ({self.origin.pop(name)}) "
                                 f"refused: the name is built in")
                else:
                    raise ValueError(f"{self.kind}: name {name!r} is already registered"
                                     + (f" ({self.origin[name]})" if name in self.origin
                                        else ""))
            self._items[name] = obj
            if plugin:
                self.origin[name] = self._loading
            return obj

        return deco

    _loading: str = ""  # the origin of the plug-in being loaded (decorators inside it)

    def _refuse(self, message: str) -> None:
        if message not in self.plugin_errors:
            self.plugin_errors.append(message)
            warnings.warn(message, stacklevel=4)

    def load_plugins(self) -> list[str]:
        """Register every installed entry point of :attr:`group` not registered yet;
        returns the lines of the plug-ins refused (also warned and kept in
        :attr:`plugin_errors`)."""
        self._loaded = True
        if self.group is None:
            return []
        from importlib.metadata import entry_points

        before = len(self.plugin_errors)
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            origin = f"entry point {ep.name} = {ep.value} ({dist})"
            if self.origin.get(ep.name) == origin:
                continue
            where = f"{self.kind} plug-in {ep.name!r} ({dist}) refused"
            if ep.name in self._items:
                self._refuse(f"{where}: name already registered"
                             + (f" ({self.origin[ep.name]})" if ep.name in self.origin
                                else " (built in)"))
                continue
            self._loading = origin
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plug-in is refused, not fatal
                self._refuse(f"{where}: cannot load {ep.value}: {type(exc).__name__}: "
                             f"{_one_line(exc)}")
                continue
            finally:
                self._loading = ""
            if ep.name in self._items:  # registered by its module's decorator
                continue
            if isinstance(obj, types.ModuleType) or not callable(obj):
                self._refuse(f"{where}: {ep.value} is not a factory (class or function) "
                             f"and registers no {self.kind} named {ep.name!r}")
                continue
            self._items[ep.name] = obj
            self.origin[ep.name] = origin
        return self.plugin_errors[before:]

    def _ensure(self) -> None:
        if not self._loaded:
            self.load_plugins()

    def get(self, name: str) -> Callable[..., Any]:
        self._ensure()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            refused = [e for e in self.plugin_errors if f" {name!r} " in e]
            raise ValueError(f"{self.kind}: unknown name {name!r} (known: {known})"
                             + "".join(f"; {e}" for e in refused)) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._items


#: registry -> its entry-point group
ENTRY_POINT_GROUPS = {"datasets": "cft_bounds.datasets", "backbones": "cft_bounds.backbones",
                      "methods": "cft_bounds.methods"}

BACKBONES = Registry("backbone", ENTRY_POINT_GROUPS["backbones"])
DATASETS = Registry("dataset", ENTRY_POINT_GROUPS["datasets"])
METHODS = Registry("method", ENTRY_POINT_GROUPS["methods"])
SIGNATURES = Registry("signature")
#: how a task's module is built / trained / combined at inference (:mod:`cft.model.modules`)
MODULE_FAMILIES = Registry("module family")
#: classifier heads over every class seen, for methods with no task retrieval
#: (:mod:`cft.evaluation.heads.continual`)
HEADS = Registry("head")
#: learned task-retrieval rules, evaluated next to the parameter-free ones
#: (:mod:`cft.evaluation.keys`)
RULES = Registry("retrieval rule")
