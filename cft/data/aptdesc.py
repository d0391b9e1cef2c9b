"""Debian package descriptions labelled by archive section (``science``, ``games``, ...).

Input: ``apt-cache dumpavail`` output (deb822 stanzas; ``scripts/ensure-genres.sh``
caches it as ``$CFT_DATA_DIR/genres/apt-dumpavail.txt``, default
``~/.cache/cft-bounds/genres``, keeping the Package, Section, Description and
Description-md5 fields) and the Translation-en indices (``apt-translation-en.txt``),
where Debian keeps the long descriptions: a Packages stanza holds only the short one
and its ``Description-md5``, which keys the Translation-en stanza (its
``Description-md5`` line directly followed by ``Description-en``, as Debian writes them).
A stanza whose own Description has a long part (a dump made with full descriptions)
is used as it is.

Text = short description, then the long description (`` .`` lines are paragraph
breaks).  Label = the Section field without its ``contrib/``, ``non-free/``,
``non-free-firmware/`` prefix.  Sections in :data:`SKIP_SECTIONS` are not read: the
library, debug and per-language sections (their texts describe bindings of software
that other sections describe: ``libs``, ``python``, ``perl``, ...), and the sections of
templated or derived texts (``doc``: documentation of other sections' packages;
``localization``: language packs; ``tasks``, ``metapackages``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator
from pathlib import Path

from .corpus import Corpus, data_dir, file_key, finish, missing

DUMP_NAME = "apt-dumpavail.txt"
TRANSLATION_NAME = "apt-translation-en.txt"

SKIP_SECTIONS = frozenset({
    "libs", "libdevel", "oldlibs", "debug", "introspection", "kernel",
    "python", "perl", "ruby", "java", "javascript", "golang", "rust", "haskell", "ocaml",
    "php", "lisp", "gnu-r", "cli-mono", "zope",
    "doc", "localization", "tasks", "metapackages",
})

_AREAS = ("contrib/", "non-free-firmware/", "non-free/")
_CACHE: dict[tuple[object, ...], Corpus] = {}
_STANZA = re.compile(r"\n[ \t]*\n")
_FIELD = re.compile(r"\n(?=[^ \t])")
#: a Translation-en stanza's md5 and description (dak writes the two fields in this order)
_TRANSLATION = re.compile(r"^Description-md5: *(\S+)\nDescription-en:(.*(?:\n[ \t].*)*)",
                          re.M)


def iter_stanzas(path: str | os.PathLike[str]) -> Iterator[dict[str, str]]:
    """deb822 stanzas of a file: field -> value (continuation lines joined with ``\\n``,
    their leading space kept)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for block in _STANZA.split(text):
        fields: dict[str, str] = {}
        for field in _FIELD.split(block.strip("\n")):
            name, sep, value = field.partition(":")
            if sep and name and not name[0].isspace():
                fields[name.strip()] = value.strip(" \t")
        if fields:
            yield fields


def description_text(value: str) -> str:
    """The short and long description of a ``Description`` value as one text."""
    short, _, long = value.partition("\n")
    paras: list[list[str]] = [[]]
    for line in long.split("\n"):
        s = line.strip()
        if s == ".":
            paras.append([])
        elif s:
            paras[-1].append(s)
    body = "\n\n".join(" ".join(p) for p in paras if p)
    short = short.strip()
    if not body:
        return short
    return f"{short}{'' if short.endswith(('.', '!', '?', ':')) else '.'} {body}"


def section_label(section: str) -> str:
    """``contrib/games`` -> ``games``."""
    for area in _AREAS:
        if section.startswith(area):
            return section[len(area):]
    return section


def load_aptdesc(root: str | os.PathLike[str] | None = None, *, min_chars: int = 40,
                 max_chars: int | None = 2000,
                 skip_sections: Collection[str] = SKIP_SECTIONS) -> Corpus:
    """``(texts, labels)``: package descriptions by section, in dump order, from ``root``
    (a directory with :data:`DUMP_NAME` and :data:`TRANSLATION_NAME`; default
    :func:`cft.data.corpus.data_dir`)."""
    d = Path(root) if root is not None else data_dir()
    dump, trans = d / DUMP_NAME, d / TRANSLATION_NAME
    for p in (dump, trans):
        if not p.is_file() or p.stat().st_size == 0:
            raise missing("the cached apt package descriptions", p)
    key = (file_key(dump), file_key(trans), min_chars, max_chars, tuple(sorted(skip_sections)))
    if key not in _CACHE:
        long_desc: dict[str, str] = {}
        for m in _TRANSLATION.finditer(trans.read_text(encoding="utf-8", errors="replace")):
            long_desc.setdefault(m.group(1), m.group(2).strip(" \t"))
        pairs: list[tuple[str, str]] = []
        for st in iter_stanzas(dump):
            label = section_label(st.get("Section", ""))
            desc = st.get("Description", "")
            if not label or label in skip_sections or not desc:
                continue
            if "\n" not in desc:
                desc = long_desc.get(st.get("Description-md5", ""), desc)
            pairs.append((description_text(desc), label))
        _CACHE[key] = finish(pairs, min_chars, max_chars)
    texts, labels = _CACHE[key]
    return list(texts), list(labels)
