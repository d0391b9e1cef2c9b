"""Typed values for dataclass fields: the parser of ``key=value`` override text and the
checker of values read from JSON (used by :mod:`cft.config` for every section).

:func:`parse_scalar` parses override *text* against a field's annotation (``int``,
``float`` (finite), ``bool`` (true/false/1/0/yes/no/on/off), ``str``, ``dict`` (a JSON
object), ``X | None`` (``none`` / ``null``), unions tried in order); :func:`coerce` checks an
already-typed value (from ``config.json``); free-form registry options are JSON literals
falling back to the raw string (:func:`parse_option`). Every error is a one-line
``ValueError`` naming the dotted key.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["check_field", "coerce", "field_hints", "option_value", "parse_option",
           "parse_override", "parse_scalar", "type_name"]

def field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_field(obj: Any, key: str, full: str) -> None:
    names = [f.name for f in dataclasses.fields(obj)]
    if key not in names:
        where = f" in {full.rsplit('.', 1)[0]}" if "." in full else ""
        raise ValueError(f"override: unknown key {full!r} (known{where}: {', '.join(names)})")


def type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if args and (typing.get_origin(tp) in (typing.Union, types.UnionType)):
        return " | ".join("None" if a is type(None) else type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_scalar(text: str, tp: Any, key: str) -> Any:
    """Parse override text ``text`` as type ``tp`` (one of the section field types)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return parse_scalar(text, a, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: expected {type_name(tp)}, got {text!r}")
    if tp is bool:
        t = text.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ValueError(f"{key}: expected a bool (true/false), got {text!r}")
    if tp is int:
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{key}: expected an int, got {text!r}") from None
    if tp is float:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{key}: expected a float, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{key}: expected a finite float, got {text!r}")
        return v
    if tp is str:
        return text
    if origin is dict or tp is dict:
        try:
            v = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{key}: expected a JSON object, got {text!r}") from None
        if not isinstance(v, dict):
            raise ValueError(f"{key}: expected a JSON object, got {text!r}")
        return v
    raise ValueError(f"{key}: cannot parse type {tp!r}")  # pragma: no cover


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Type-check an already-typed value (from JSON) against ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected {type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
    raise ValueError(f"{key}: expected {type_name(tp)}, got {value!r}")


def parse_option(text: str) -> Any:
    """A free-form option value: a JSON literal, else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def option_value(text: str, current: Any, key: str) -> Any:
    v = parse_option(text)
    if current is None or v is None:
        return v
    if isinstance(current, bool):
        if not isinstance(v, bool):
            raise ValueError(f"{key}: expected a bool, got {text!r}")
    return v  # int options also accept floats (split sizes may be fractions)


def parse_override(item: str) -> tuple[str, str]:
    """``"a.b=c"`` -> ``("a.b", "c")``."""
    if "=" not in item:
        raise ValueError(f"override: expected key=value, got {item!r}")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"override: empty key in {item!r}")
    return key, value
