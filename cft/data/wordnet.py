"""WordNet 3.0 glosses labelled by lexicographer file (``DATASETS.build("wordnet")``).

The dict files ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv`` are parsed
directly (format: wndb(5WN)); a synset line reads
``synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt ... | gloss``
with ``w_cnt`` two hexadecimal digits.  Lines starting with two spaces are the licence.
The class of a synset is its lexicographer file; the number -> name table below is
WordNet's lexnames(5WN) (it is not read from a data file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cft.config.registry import DATASETS
from cft.config.validation import check_int

from .base import Size, TaskStream

#: lexnames(5WN): lexicographer file number -> name (45 files, 00..44).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
    "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication",
    "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive",
    "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)

#: part of speech -> dict file suffix
POS_FILES = {"noun": "noun", "verb": "verb", "adj": "adj", "adv": "adv"}

#: Default task groups: consecutive tasks alternate part of speech and semantic field
#: (concrete nouns, physical verbs, social nouns, mental verbs, abstract nouns, modifiers,
#: physical-world nouns, change verbs, happenings).  Every lexicographer file appears once.
SEMANTIC_GROUPS: tuple[tuple[str, ...], ...] = (
    ("noun.animal", "noun.plant", "noun.food", "noun.body", "noun.substance"),
    ("verb.motion", "verb.contact", "verb.body", "verb.consumption", "verb.competition"),
    ("noun.person", "noun.group", "noun.location", "noun.possession", "noun.communication"),
    ("verb.cognition", "verb.communication", "verb.emotion", "verb.perception", "verb.social"),
    ("noun.cognition", "noun.attribute", "noun.state", "noun.feeling", "noun.relation"),
    ("adj.all", "adj.pert", "adj.ppl", "adv.all"),
    ("noun.artifact", "noun.object", "noun.phenomenon", "noun.shape", "noun.quantity"),
    ("verb.change", "verb.stative", "verb.weather", "verb.creation", "verb.possession"),
    ("noun.act", "noun.event", "noun.process", "noun.time", "noun.motive", "noun.Tops"),
)

INSTALL_HINT = ("install it with `apt-get install -y wordnet-base` (files in /usr/share/wordnet) "
                "or set CFT_WORDNET_DIR to a WordNet 3.0 dict directory")

_CACHE: dict[tuple[str, int, int], list[tuple[int, tuple[str, ...], str]]] = {}
_WORD_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_EXAMPLE = re.compile(r';?\s*"[^"]*"')


def _has_dict(d: Path, pos: Sequence[str]) -> bool:
    return all((d / f"data.{POS_FILES[p]}").is_file() for p in pos)


def find_wordnet(root: str | os.PathLike[str] | None = None,
                 pos: Sequence[str] = tuple(POS_FILES)) -> Path:
    """The WordNet dict directory: ``root``, else $CFT_WORDNET_DIR, else
    /usr/share/wordnet, else ``<nltk_data>/corpora/wordnet`` on NLTK's search path."""
    if root is not None:
        d = Path(root)
        if not _has_dict(d, pos):
            raise ValueError(f"root: no WordNet data.* files for {list(pos)} in {str(d)!r}; "
                             f"{INSTALL_HINT}")
        return d
    env = os.environ.get("CFT_WORDNET_DIR")
    if env:
        if not _has_dict(Path(env), pos):
            raise ValueError(f"root: CFT_WORDNET_DIR={env!r} holds no WordNet data.* files; "
                             f"{INSTALL_HINT}")
        return Path(env)
    candidates = [Path("/usr/share/wordnet")]
    nltk_paths = [os.environ.get("NLTK_DATA", ""), str(Path.home() / "nltk_data"),
                  "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
                  "/usr/local/lib/nltk_data"]
    candidates += [Path(p) / "corpora" / "wordnet" for p in nltk_paths if p]
    for d in candidates:
        if _has_dict(d, pos):
            return d
    raise ValueError(f"root: WordNet not found (looked in {', '.join(map(str, candidates))}); "
                     f"{INSTALL_HINT}")


def parse_data_file(path: str | os.PathLike[str]) -> list[tuple[int, tuple[str, ...], str]]:
    """``(lex_filenum, words, gloss)`` for every synset of one ``data.*`` file (cached).

    Words have underscores replaced by spaces and adjective markers ``(a)``, ``(p)``,
    ``(ip)`` removed.  Malformed lines raise ValueError.
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key in _CACHE:
        return _CACHE[key]
    out: list[tuple[int, tuple[str, ...], str]] = []
    with open(p, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("  ") or not line.strip():
                continue
            head, bar, gloss = line.partition("|")
            fields = head.split()
            try:
                if not bar:
                    raise IndexError
                lexnum = int(fields[1])
                w_cnt = int(fields[3], 16)
                words = tuple(_WORD_MARKER.sub("", fields[4 + 2 * i]).replace("_", " ")
                              for i in range(w_cnt))
            except (IndexError, ValueError):
                raise ValueError(f"root: malformed WordNet line {lineno} in {str(p)!r}") from None
            if not 0 <= lexnum < len(LEXNAMES):
                raise ValueError(f"root: lex_filenum {lexnum} out of range at line {lineno} "
                                 f"in {str(p)!r}")
            out.append((lexnum, words, gloss.strip()))
    _CACHE[key] = out
    return out


@DATASETS.register("wordnet")
class WordNetStream(TaskStream):
    """Text stream: WordNet glosses, one class per lexicographer file.

    Parameters
    ----------
    seed: drives the class order (``grouping="seed"``) and every split.
    root: dict directory (default: see :func:`find_wordnet`).
    pos: parts of speech to use, subset of ``("noun", "verb", "adj", "adv")``.
    grouping: ``"semantic"`` (default: :data:`SEMANTIC_GROUPS`, one task per group, fixed
        order) or ``"seed"`` (class order drawn from the seed, cut by ``classes_per_task``
        / ``n_tasks``; default 5 classes per task).
    n_tasks, classes_per_task: see :func:`cft.data.base.task_sizes`.
    with_lemmas: prefix the gloss with the synset's words (``"dog, domestic dog: ..."``).
    with_examples: keep the quoted usage examples of the gloss.
    max_per_class: cap on the examples of a class (a seeded subsample), None = all.
    min_class_size: classes with fewer synsets (after de-duplication) are dropped.
    train_size, calibration_size, test_size: per class; int = count, float = fraction of
        the class; train None = the rest.
    """

    name = "wordnet"
    modality = "text"

    def __init__(
        self,
        *,
        seed: int = 0,
        root: str | os.PathLike[str] | None = None,
        pos: Sequence[str] = ("noun", "verb", "adj", "adv"),
        grouping: str = "semantic",
        n_tasks: int | None = None,
        classes_per_task: int | Sequence[int] | None = None,
        with_lemmas: bool = False,
        with_examples: bool = True,
        max_per_class: int | None = None,
        min_class_size: int = 100,
        train_size: Size = None,
        calibration_size: Size = 0.1,
        test_size: Size = 0.2,
    ) -> None:
        if isinstance(pos, str):
            pos = (pos,)
        pos = tuple(pos)
        if not pos or any(p not in POS_FILES for p in pos) or len(set(pos)) != len(pos):
            raise ValueError(f"pos: must be distinct values from {list(POS_FILES)}, got {pos!r}")
        if grouping not in ("semantic", "seed"):
            raise ValueError(f"grouping: must be 'semantic' or 'seed', got {grouping!r}")
        for opt, val in (("with_lemmas", with_lemmas), ("with_examples", with_examples)):
            if not isinstance(val, bool):
                raise ValueError(f"{opt}: must be a bool, got {val!r}")
        check_int("min_class_size", min_class_size, minimum=1)
        self.root = find_wordnet(root, pos)
        self.pos = pos
        self.grouping = grouping

        texts: list[str] = []
        labels: list[int] = []
        self.synset_words: list[tuple[str, ...]] = []
        seen: set[str] = set()
        for p in pos:
            for lexnum, words, gloss in parse_data_file(self.root / f"data.{POS_FILES[p]}"):
                text = gloss if with_examples else _EXAMPLE.sub("", gloss).strip(" ;")
                if with_lemmas:
                    text = f"{', '.join(words)}: {text}"
                if not text or text in seen:  # identical texts would leak across splits
                    continue
                seen.add(text)
                texts.append(text)
                labels.append(lexnum)
                self.synset_words.append(words)
        self._texts = texts
        if grouping == "semantic":
            order: Any = [list(g) for g in SEMANTIC_GROUPS]
        else:
            order = "seed"
            if classes_per_task is None and n_tasks is None:
                classes_per_task = 5
        self._build(
            seed=seed, class_names=LEXNAMES, pool_labels=np.asarray(labels, dtype=np.int64),
            train_size=train_size, calibration_size=calibration_size, test_size=test_size,
            max_per_class=max_per_class, min_class_size=min_class_size, order=order,
            n_tasks=n_tasks, classes_per_task=classes_per_task,
        )
        #: lexicographer file number of each (kept) class
        self.lexfile_ids = np.asarray([LEXNAMES.index(c) for c in self.class_names], np.int64)

    def _take(self, index: np.ndarray) -> list[str]:
        return [self._texts[i] for i in index]
