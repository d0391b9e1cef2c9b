"""GCIDE (Webster 1913, Debian ``dict-gcide``) senses labelled by their domain tag.

The dictd database ``gcide.dict.dz`` is dictzip, i.e. gzip-compatible: it is read whole
with :mod:`gzip` (the ``gcide.index`` offsets are not needed).  Its text is a sequence of
paragraphs separated by blank lines; an entry starts with an unindented header line
``Word \\Word\\ (pron.), n. [etymology] (Tag.)`` whose header may continue on indented
lines until its brackets close; the body and later paragraphs of the entry are indented
and end with a source line (``[1913 Webster]``, ``[WordNet 1.5]``, ...).

A *sense* is kept when it carries a single-abbreviation domain tag in parentheses
(``(Zool.)``, ``(Bot.)``, ``(Chem.)``, ``(Med.)``, ``(Anat.)``, ``(Naut.)``, ...):

* a (numbered) sense paragraph that starts with the tag: ``2. (Mus.) A brace used ...``;
* a collocation: ``{Cameo conch} (Zool.), a large, marine, univalve shell ...``;
* an entry whose header ends with the tag (or whose body starts with a line holding
  only the tag): its body and its untagged numbered senses take that tag.

Text = the definition after the tag (sub-senses ``(a) ... (b) ...`` are one example
each), with ``{}`` cross-reference braces, ``--Author.`` citations and character codes
such as ``[=a]`` removed.  Pure cross-references (``See ...``, ``Same as ...``,
``Cf. ...``) are dropped.  Label = the tag without its period (``Zool``).
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .corpus import Corpus, file_key, finish, missing

#: where Debian's dict-gcide installs the database
GCIDE_DICT = Path("/usr/share/dictd/gcide.dict.dz")

_CACHE: dict[tuple[object, ...], Corpus] = {}
_PARA = re.compile(r"\n[ \t]*\n")
_TAG = r"\(([A-Z][a-z]+)\.\)"
_SENSE_TAG = re.compile(r"^(?:\d+\.\s*)?(?:\([a-z]\)\s*)?" + _TAG + r"[,.:]?\s*(.*)$", re.S)
_COLLOCATION = re.compile(r"^\{[^}]*\}(?:,? or \{[^}]*\}|, \{[^}]*\})*\.?,?\s*" + _TAG
                          + r"[,.:]?\s*(.*)$", re.S)
_HEADER_TAG = re.compile(_TAG + r"\s*$")
_NUMBERED = re.compile(r"^\d+\.\s*(.*)$", re.S)
_SUBSENSE = re.compile(r"(?:^|\s)\([a-z]\)\s+")
_CHARCODE = re.compile(r"\[[=^`'.~\"-]?([a-zA-Z]{1,2})\]")
_CITATION = re.compile(r"\s*--\s?[A-Z][\w.'&]*(?: [A-Z][\w.'&]*){0,3}\.?(?=\s|$)")
_XREF = re.compile(r"^(?:See|Same as|Cf\.)\b")


def _balance(line: str) -> int:
    return line.count("[") - line.count("]") + line.count("(") - line.count(")")


def _split_body(lines: list[str]) -> str:
    """Lines up to the first source line (``[1913 Webster]``), joined."""
    out: list[str] = []
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            break
        out.append(s)
    return " ".join(out).strip()


def _texts(definition: str) -> list[str]:
    """One cleaned text per sub-sense of a definition."""
    parts = _SUBSENSE.split(definition) if definition.startswith("(a)") else [definition]
    out = []
    for p in parts:
        p = _CHARCODE.sub(r"\1", p.replace("{", "").replace("}", ""))
        p = _CITATION.sub("", p).strip(" ;,")
        if p and not _XREF.match(p):
            out.append(p)
    return out


def iter_senses(text: str) -> Iterator[tuple[str, str]]:
    """``(definition, tag)`` for every tagged sense of a GCIDE dictd text (file order)."""
    header_tag: str | None = None
    for para in _PARA.split(text):
        para = para.lstrip("\n")
        entry = bool(para) and not para[0].isspace()
        if ".)" not in para:  # no tag here (fast path: most paragraphs)
            if entry:
                header_tag = None
            if header_tag is None:
                continue
        lines = [ln for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        if entry:  # a new entry: header lines, then its body
            k, bal = 0, _balance(lines[0])
            while bal > 0 and k + 1 < len(lines):
                k += 1
                bal += _balance(lines[k])
            header = " ".join(ln.strip() for ln in lines[: k + 1])
            m = _HEADER_TAG.search(header)
            header_tag = m.group(1) if m else None
            body_lines = lines[k + 1:]
            if body_lines and (m2 := re.fullmatch(_TAG, body_lines[0].strip())):
                header_tag, body_lines = m2.group(1), body_lines[1:]
        else:
            if len(lines[0]) - len(lines[0].lstrip()) > 5:  # a quotation
                continue
            body_lines = lines
        body = _split_body(body_lines)
        if not body or body.startswith(("Note:", "Syn:")):
            continue
        tag: str | None = None
        if (m := _SENSE_TAG.match(body)) or (m := _COLLOCATION.match(body)):
            tag, definition = m.group(1), m.group(2)
        elif header_tag is not None and not body.startswith("{"):
            tag = header_tag
            n = _NUMBERED.match(body)
            definition = n.group(1) if n else body
        if tag is not None:
            for t in _texts(definition):
                yield t, tag


def load_gcide(path: str | os.PathLike[str] | None = None, *, min_chars: int = 20,
               max_chars: int | None = 600) -> Corpus:
    """``(texts, labels)``: tagged GCIDE senses, in dictionary order, from ``path``
    (``gcide.dict.dz``, or its gunzipped text; default :data:`GCIDE_DICT`)."""
    p = Path(path) if path is not None else GCIDE_DICT
    if not p.is_file():
        raise missing("the GCIDE dictionary (Debian package dict-gcide)", p, "path")
    key = (file_key(p), min_chars, max_chars)
    if key not in _CACHE:
        with open(p, "rb") as fh:
            raw = fh.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        _CACHE[key] = finish(((t, tag) for t, tag in iter_senses(raw.decode("utf-8", "replace"))),
                             min_chars, max_chars)
    texts, labels = _CACHE[key]
    return list(texts), list(labels)
