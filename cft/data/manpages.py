"""Man pages labelled by section: NAME line plus the first DESCRIPTION paragraph.

The gzipped roff sources under ``/usr/share/man/man<N>/`` are parsed directly (no call
to man(1)): man(7) pages (``.SH``, ``.PP``, ``.TP``, font macros ``.B .I .BR .IR ...``)
and mdoc(7) pages (``.Sh``, ``.Nm``, ``.Nd``, ``.Pp``, ``.Fl``, ``.Xr``, ...); comments,
``.de``/``.ig`` blocks, conditionals and unknown requests are dropped, and escapes are
rewritten (``\\fB`` fonts, ``\\*(..`` strings and ``\\s`` sizes removed, ``\\-`` -> ``-``,
``\\(em`` -> ``—``, ...).  Symbolic links and ``.so`` redirections (aliases of another
page) are skipped.

Text = ``"<NAME line>. <first DESCRIPTION paragraph>"``.  Label = the section
(``label="section"``: the directory, ``1`` ... ``8``) or the page's file extension
(``label="extension"``: ``1``, ``1ssl``, ``3perl``, ``7ssl``, ...).  Which pages exist
depends on the packages installed (``manpages``, ``manpages-dev`` and every other
package's pages).  At most ``max_pages`` pages per directory are parsed, taken in the
order of a hash of their file name (deterministic, and stable when pages are added), and
at most ``max_per_prefix`` of them share the first word of their file name (split at
``-``, ``_``, ``.``), so that a family of generated pages (the thousands of
``gcloud_*`` pages of the Google Cloud SDK, ``git-*``, ``systemd-*``) cannot fill a
section.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path

from .corpus import Corpus, clean, file_key, finish, missing

#: where man pages live
MAN_DIR = Path("/usr/share/man")
SECTIONS = ("1", "2", "3", "4", "5", "6", "7", "8")

_CACHE: dict[tuple[object, ...], Corpus] = {}
#: characters read from a page: NAME and the first DESCRIPTION paragraph come before
_READ_CHARS = 1 << 16
_CHARS = {"em": "—", "en": "–", "aq": "'", "dq": '"', "lq": '"', "rq": '"', "oq": "'",
          "cq": "'", "bu": "•", "co": "©", "rg": "®", "tm": "™", "hy": "-", "mi": "-",
          "pl": "+", "mu": "×", "<=": "≤", ">=": "≥", "ti": "~", "ha": "^", "ga": "`",
          "rs": "\\", "ba": "|", "dg": "†", "de": "°", "->": "→", "<-": "←"}
_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|\*(?:\[[^\]]*\]|\(..|.)|n[+-]?(?:\[[^\]]*\]|\(..|.)"
    r"|s[+-]?(?:\d+|\(\d\d|\[[^\]]*\])|[hvwoXlLDbxNkSZ]'[^']*'|\((..)|\[([^\]]*)\]|(.))"
)
_SIMPLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "'",
           "`": "`", ".": ".", '"': ""}
_PREFIX = re.compile(r"[-_.]")
_REQUEST = re.compile(r"[.']\s*(\S+)\s*(.*)")
_WANTED = ("NAME", "DESCRIPTION")
_DESCRIPTION = re.compile(r"^[.']\s*S[Hh]\s+\"?DESCRIPTION", re.M)
_HEADING = re.compile(r"^[.']\s*S[Hh]\b", re.M)
_CONTINUATION = re.compile(r"(?<!\\)\\\n")
_ARGS = re.compile(r'"((?:[^"]|"")*)"?|(\S+)')
_FONT_SPACED = {"B", "I", "SM", "SB"}
_FONT_JOINED = {"BR", "BI", "IB", "IR", "RB", "RI"}
_BREAKS = {"PP", "P", "LP", "TP", "TQ", "IP", "HP", "SS", "SH", "sp", "Pp", "Lp", "Bl", "El",
           "It", "Bd", "Ed", "Ss", "Sh", "RS", "RE", "nf", "EX", "Vb", "D1", "Dl"}
#: mdoc macros whose name is dropped and arguments kept (``Fl``, ``Xr``, ``Nm`` apart)
_MDOC = {"Ar", "Cm", "Em", "Sy", "Pa", "Li", "Va", "Ev", "Er", "Fn", "Fa", "Ft", "Dv", "Ic",
         "Ql", "Dq", "Sq", "Qq", "Pq", "Op", "Oo", "Oc", "Ns", "No", "Ad", "An", "Lk", "Mt",
         "Tn", "Ux", "Bx", "At", "St", "Xo", "Xc", "Aq", "Bq", "Brq", "Eo", "Ec", "Do", "Dc",
         "Po", "Pc", "Qo", "Qc", "So", "Sc", "Ms", "Ot", "Vt", "Cd", "Fd", "In", "Ta"}


def _char(name: str) -> str:
    if name.startswith("u") and len(name) >= 5:
        try:
            return chr(int(name[1:5], 16))
        except ValueError:
            return ""
    return _CHARS.get(name, "")


def unescape(text: str) -> str:
    """Roff escapes of one line rewritten to plain text (fonts, strings, sizes dropped)."""
    def repl(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return _char(m.group(1))
        if m.group(2) is not None:
            return _char(m.group(2))
        if m.group(3) is not None:
            return _SIMPLE.get(m.group(3), "")
        return ""
    return _ESCAPE.sub(repl, text.split('\\"', 1)[0])


def _args(rest: str) -> list[str]:
    """A request's arguments (double quotes group words; ``""`` in quotes is a quote)."""
    return [m.group(2) if m.group(1) is None else m.group(1).replace('""', '"')
            for m in _ARGS.finditer(rest)]


def _mdoc(args: list[str], name: str) -> str:
    """Text of an mdoc line (macro names dropped; ``Nm`` alone is the page's name)."""
    out: list[str] = []
    join = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "Ns":
            join = True
        elif a == "Nm":
            if i + 1 == len(args) or args[i + 1] in _MDOC:
                out.append(name)
        elif a == "Fl" and i + 1 < len(args) and args[i + 1] not in _MDOC:
            out.append("-" + args[i + 1])
            i += 1
        elif a == "Xr" and i + 2 < len(args):
            out.append(f"{args[i + 1]}({args[i + 2]})")
            i += 2
        elif a not in _MDOC:
            if join and out:
                out[-1] += a
            else:
                out.append(a)
            join = False
        i += 1
    return " ".join(out)


def parse_man(source: str) -> tuple[str, str] | None:
    """``(name line, first DESCRIPTION paragraph)`` of a roff page, None when the page
    is a ``.so`` alias or lacks either part."""
    section, name_parts, desc, page = "", [], [], ""
    skip_block = False
    if (d := _DESCRIPTION.search(source)) and (e := _HEADING.search(source, d.end())):
        source = source[:e.start()]  # nothing after the section that follows DESCRIPTION
    for raw in _CONTINUATION.sub("", source).splitlines():
        if skip_block:
            skip_block = raw.strip() != ".."
            continue
        if raw.startswith((".", "'")):
            m = _REQUEST.match(raw)
            if not m:
                continue
            req, rest = m.group(1), m.group(2)
            if req == "so":
                return None
            if req in ("de", "de1", "am", "ig"):
                skip_block = True
                continue
            if req in ("SH", "Sh"):
                if section == "DESCRIPTION" and desc:
                    break
                section = clean(unescape(" ".join(_args(rest)))).upper()
                continue
            if section not in _WANTED:
                continue
            if section == "DESCRIPTION" and desc and req in _BREAKS:
                break
            if req in _FONT_SPACED:
                line = " ".join(_args(unescape(rest)))
            elif req in _FONT_JOINED:
                line = "".join(_args(unescape(rest)))
            elif req == "Nm" and section == "NAME" and not page:
                words = _args(unescape(rest))
                page, line = (words or [""])[0], " ".join(words)
            elif req == "Nd":
                line = "- " + unescape(rest)
            elif req[:1].isupper() and req[1:2].islower() and len(req) <= 3:
                line = _mdoc([req, *_args(unescape(rest))], page)
            else:
                continue
        elif section in _WANTED:
            line = unescape(raw)
        else:
            continue
        if section == "NAME":
            name_parts.append(line)
        elif section == "DESCRIPTION" and line.strip():
            desc.append(line)
    name, body = clean(" ".join(name_parts)), clean(" ".join(desc))
    if not name or not body:
        return None
    return name, body


def _hash(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


def load_manpages(root: str | os.PathLike[str] | None = None, *, label: str = "section",
                  sections: tuple[str, ...] = SECTIONS, max_pages: int | None = 400,
                  max_per_prefix: int | None = 20,
                  min_chars: int = 40, max_chars: int | None = 1500) -> Corpus:
    """``(texts, labels)``: parsed pages of ``root`` (default :data:`MAN_DIR`), section by
    section, at most ``max_pages`` parsed pages per section directory."""
    if label not in ("section", "extension"):
        raise ValueError(f"label: must be 'section' or 'extension', got {label!r}")
    d = Path(root) if root is not None else MAN_DIR
    dirs = [d / f"man{s}" for s in sections if (d / f"man{s}").is_dir()]
    if not dirs:
        raise missing("man pages (Debian packages manpages, manpages-dev)", d)
    key = (tuple(file_key(p) for p in dirs), label, max_pages, max_per_prefix, min_chars,
           max_chars)
    if key not in _CACHE:
        pairs: list[tuple[str, str]] = []
        for sub in dirs:
            files = sorted((e for e in os.scandir(sub) if e.is_file(follow_symlinks=False)),
                           key=lambda e: _hash(e.name))
            n = 0
            per_prefix: dict[str, int] = {}
            for e in files:
                if max_pages is not None and n >= max_pages:
                    break
                prefix = _PREFIX.split(e.name, 1)[0]
                if max_per_prefix is not None and per_prefix.get(prefix, 0) >= max_per_prefix:
                    continue
                opener = gzip.open if e.name.endswith(".gz") else open
                try:
                    with opener(e.path, "rt", encoding="utf-8", errors="replace") as fh:
                        parsed = parse_man(fh.read(_READ_CHARS))
                except (OSError, EOFError):
                    continue
                if parsed is None:
                    continue
                ext = e.name.removesuffix(".gz").rsplit(".", 1)[-1]
                text = parsed[0] + ("" if parsed[0].endswith(".") else ".") + " " + parsed[1]
                pairs.append((text, sub.name[3:] if label == "section" else ext))
                n += 1
                per_prefix[prefix] = per_prefix.get(prefix, 0) + 1
        _CACHE[key] = finish(pairs, min_chars, max_chars)
    texts, labels = _CACHE[key]
    return list(texts), list(labels)
