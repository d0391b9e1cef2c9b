"""Python standard-library docstrings labelled by module family (from the interpreter).

Each family of :data:`FAMILIES` lists top-level standard modules; a package's submodules
are included (``email.mime.text``, ``xml.etree.ElementTree``, ...) except tests,
``__main__``, private (``_x``) and platform modules that fail to import.  Modules with
import-time side effects or a display (``antigravity``, ``this``, ``idlelib``, ``tkinter``,
``turtle``, ...) are in no family and never imported.  Importing is done with warnings
silenced; a module that raises on import is skipped.

Examples: the docstring of every public function, class and (public) method *defined*
in a module (``__module__`` is the module, so re-exports are not counted twice), first
paragraph only; a paragraph that is only a call signature (``sub(pattern, repl) ->
str``) is passed over.  Label = the family.  The texts depend on the Python version
(recorded by :func:`cft.data.genres.provenance`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .corpus import Corpus, finish

#: family -> top-level standard modules (the family's examples come from these and their
#: submodules)
FAMILIES: dict[str, tuple[str, ...]] = {
    "email": ("email", "mailbox", "smtplib", "imaplib", "poplib", "mimetypes"),
    "xml": ("xml", "html"),
    "web": ("json", "urllib", "http", "wsgiref", "xmlrpc", "webbrowser"),
    "concurrency": ("asyncio", "concurrent", "multiprocessing", "threading", "queue", "sched",
                    "subprocess"),
    "files": ("os", "pathlib", "shutil", "glob", "fnmatch", "filecmp", "tempfile", "stat",
              "io", "fileinput", "posixpath"),
    "numbers": ("math", "cmath", "statistics", "decimal", "fractions", "numbers", "random"),
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "codecs", "locale",
             "gettext"),
    "archives": ("zlib", "gzip", "bz2", "lzma", "zipfile", "tarfile", "zipimport", "base64",
                 "binascii", "quopri"),
    "testing": ("unittest", "doctest", "pdb", "bdb", "trace", "cProfile", "profile",
                "pstats", "timeit", "tracemalloc", "faulthandler"),
    "datatypes": ("collections", "heapq", "bisect", "array", "weakref", "copy", "enum",
                  "types", "dataclasses", "graphlib", "itertools", "functools", "operator"),
    "time": ("datetime", "time", "calendar", "zoneinfo"),
    "language": ("importlib", "pkgutil", "inspect", "ast", "dis", "symtable", "tokenize",
                 "token", "keyword", "compileall", "py_compile", "modulefinder", "typing",
                 "abc", "contextlib"),
    "storage": ("csv", "configparser", "tomllib", "plistlib", "netrc", "pickle",
                "pickletools", "shelve", "dbm", "sqlite3", "marshal"),
    "logging": ("logging", "warnings", "traceback"),
    "cli": ("argparse", "getopt", "optparse", "cmd", "shlex", "getpass"),
    "network": ("socket", "ssl", "selectors", "socketserver", "ipaddress", "ftplib",
                "hashlib", "hmac", "secrets", "uuid"),
}

_SKIP_PARTS = frozenset({"test", "tests", "__main__", "idle_test"})
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(?:\s*->\s*.*)?$", re.S)
_CACHE: dict[tuple[object, ...], Corpus] = {}


def _import(name: str) -> ModuleType | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - platform modules (winreg, ...) and optional deps
        return None


def family_modules(top: str) -> list[ModuleType]:
    """``top`` and its submodules (sorted by name) that import."""
    mod = _import(top)
    if mod is None:
        return []
    out = [mod]
    path = getattr(mod, "__path__", None)
    if path is not None:
        found = pkgutil.walk_packages(path, top + ".", onerror=lambda n: None)
        names = sorted(m.name for m in found
                       if not any(p in _SKIP_PARTS or p.startswith("_")
                                  for p in m.name.split(".")[1:]))
        out += [m for m in map(_import, names) if m is not None]
    return out


def first_paragraph(doc: str | None) -> str | None:
    """The first paragraph of a docstring that is not a bare call signature."""
    if not doc:
        return None
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        para = para.strip()
        if para and not _SIGNATURE.match(para):
            return para
    return None


def _members(obj: Any) -> Iterator[tuple[str, Any]]:
    for name, value in sorted(vars(obj).items()):
        if not name.startswith("_"):
            yield name, value


def module_docstrings(mod: ModuleType) -> Iterator[str]:
    """First paragraphs of the docstrings of what ``mod`` defines (name order)."""
    for _, obj in _members(mod):
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if getattr(obj, "__module__", None) != mod.__name__:
            continue
        if (text := first_paragraph(getattr(obj, "__doc__", None))) is not None:
            yield text
        if inspect.isclass(obj):
            for _, meth in _members(obj):
                func = meth.__func__ if isinstance(meth, classmethod | staticmethod) else meth
                if inspect.isroutine(func) or isinstance(func, property):
                    text = first_paragraph(getattr(func, "__doc__", None))
                    if text is not None:
                        yield text


def load_pydocs(families: dict[str, tuple[str, ...]] | None = None, *, min_chars: int = 30,
                max_chars: int | None = 1000) -> Corpus:
    """``(texts, labels)``: docstrings by family (families in the given order, modules
    sorted), from the running interpreter."""
    fams = FAMILIES if families is None else families
    key = (sys.version, tuple((f, tuple(m)) for f, m in fams.items()), min_chars, max_chars)
    if key not in _CACHE:
        pairs: list[tuple[str, str]] = []
        with warnings.catch_warnings():  # deprecated members (typing.io, ...) warn when read
            warnings.simplefilter("ignore")
            for fam, tops in fams.items():
                mods = sorted({m.__name__: m for top in tops
                               for m in family_modules(top)}.items())
                pairs += [(text, fam) for _, m in mods for text in module_docstrings(m)]
        _CACHE[key] = finish(pairs, min_chars, max_chars)
    texts, labels = _CACHE[key]
    return list(texts), list(labels)
