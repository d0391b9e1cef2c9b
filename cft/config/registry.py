"""Name -> factory registries: backbones, datasets, methods, signatures and the method hooks
(module families, continual classifier heads, learned retrieval rules).

One decorator, one name (Mammoth style): ``@DATASETS.register("wordnet")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """A mapping from a unique name to a factory (class or function)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._items:
                raise ValueError(f"{self.kind}: name {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"{self.kind}: unknown name {name!r} (known: {known})") from None

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items


BACKBONES = Registry("backbone")
DATASETS = Registry("dataset")
METHODS = Registry("method")
SIGNATURES = Registry("signature")
#: how a task's module is built / trained / combined at inference (:mod:`cft.model.modules`)
MODULE_FAMILIES = Registry("module family")
#: classifier heads over every class seen, for methods with no task retrieval
#: (:mod:`cft.evaluation.heads.continual`)
HEADS = Registry("head")
#: learned task-retrieval rules, evaluated next to the parameter-free ones
#: (:mod:`cft.evaluation.keys`)
RULES = Registry("retrieval rule")
