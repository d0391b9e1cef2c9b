"""Fortune cookies (Debian ``fortunes``, ``fortunes-min``) labelled by category file.

A category file (``/usr/share/games/fortunes/people``, ``.../science``, ...) holds items
separated by lines that are a single ``%`` (strfile(1)'s format); the ``.dat`` index and
the ``.u8`` links beside it are not read.  The label of an item is its file name.  The
offensive collection (the ``off/`` directory of ``fortunes-off``) is never read, nor are
the catch-all collections of :data:`SKIP_FILES`, whose name says nothing about their
topic (``cookie``, ``fortunes``, ``miscellaneous``, ``knghtbrd``: quotes collected by
one person).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from .corpus import Corpus, file_key, finish, missing

#: where Debian installs the fortune files
FORTUNES_DIR = Path("/usr/share/games/fortunes")

#: catch-all collections, not read by default
SKIP_FILES = frozenset({"cookie", "fortunes", "miscellaneous", "knghtbrd"})

_CACHE: dict[tuple[object, ...], Corpus] = {}


def parse_fortune_file(path: str | os.PathLike[str]) -> list[str]:
    """The items of one strfile-format file, in file order (raw, not cleaned)."""
    items: list[str] = []
    cur: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.rstrip("\r\n") == "%":
                items.append("".join(cur))
                cur = []
            else:
                cur.append(line)
    items.append("".join(cur))
    return [s for s in items if s.strip()]


def fortune_files(root: Path) -> list[Path]:
    """The category files of ``root`` (sorted; no ``.dat``, links or sub-directories)."""
    return sorted(p for p in root.iterdir()
                  if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8"))


def load_fortunes(root: str | os.PathLike[str] | None = None, *, min_chars: int = 20,
                  max_chars: int | None = 1000,
                  skip_files: Collection[str] = SKIP_FILES) -> Corpus:
    """``(texts, labels)``: every fortune of every category file of ``root`` (default
    :data:`FORTUNES_DIR`), labelled by file name; files read in sorted name order, so an
    item present in two files keeps the first one's label."""
    d = Path(root) if root is not None else FORTUNES_DIR
    if not d.is_dir() or not fortune_files(d):
        raise missing("fortune files (Debian package fortunes)", d)
    files = [p for p in fortune_files(d) if p.name not in skip_files]
    key = (tuple(file_key(p) for p in files), min_chars, max_chars)
    if key not in _CACHE:
        pairs = ((text, p.name) for p in files for text in parse_fortune_file(p))
        _CACHE[key] = finish(pairs, min_chars, max_chars)
    texts, labels = _CACHE[key]
    return list(texts), list(labels)
