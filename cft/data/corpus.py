"""Shared helpers of the genre-corpus loaders (:mod:`cft.data.genres`).

Every loader returns ``(texts, labels)``: plain-text examples and the source's own label
of each (a fortune file name, a Debian section, a man section, ...).  :func:`finish`
applies the common rules: whitespace collapsed, texts outside ``[min_chars, max_chars]``
dropped, identical texts kept once (at their first occurrence, so they cannot leak
across splits or classes).  A missing corpus raises :func:`missing`'s one-line
ValueError, which names the installer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cft.config.validation import check_int

#: the installer of every genre corpus
INSTALLER = "scripts/ensure-genres.sh"

Corpus = tuple[list[str], list[str]]


def data_dir() -> Path:
    """Where :data:`INSTALLER` caches files: ``$CFT_DATA_DIR/genres`` (default
    ``~/.cache/cft-bounds/genres``)."""
    base = os.environ.get("CFT_DATA_DIR") or str(Path.home() / ".cache" / "cft-bounds")
    return Path(base) / "genres"


def missing(what: str, where: str | os.PathLike[str], option: str = "root") -> ValueError:
    """The one-line error for a corpus that is not installed (``option``: the loader's
    path option)."""
    return ValueError(f"{option}: {what} not found at {str(where)!r}; install it with "
                      f"`bash {INSTALLER}` (Debian/Ubuntu, apt-get)")


def check_lengths(min_chars: int, max_chars: int | None) -> None:
    """``min_chars >= 1`` and ``max_chars`` None or ``>= min_chars``."""
    check_int("min_chars", min_chars, minimum=1)
    check_int("max_chars", max_chars, minimum=min_chars, allow_none=True)


def clean(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to one space, ends stripped."""
    return " ".join(text.split())


def finish(pairs: Iterable[tuple[str, str]], min_chars: int = 1,
           max_chars: int | None = None) -> Corpus:
    """``(texts, labels)`` from ``(text, label)`` pairs: cleaned, length-filtered,
    de-duplicated (first occurrence kept)."""
    check_lengths(min_chars, max_chars)
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    for text, label in pairs:
        t = clean(text)
        if len(t) < min_chars or (max_chars is not None and len(t) > max_chars) or t in seen:
            continue
        seen.add(t)
        texts.append(t)
        labels.append(label)
    return texts, labels


def file_key(path: Path) -> tuple[str, int, int]:
    """Cache key of a file or directory: resolved path, mtime, size."""
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)
