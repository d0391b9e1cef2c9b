"""Fine-grained WordNet stream: one class per disjoint noun hypernym subtree.

``DATASETS.build("wordnet-fine")``.  Where ``wordnet`` uses WordNet's 45 lexicographer
files (large semantic shifts between tasks), this stream cuts the noun hierarchy into
a few hundred *fine* classes (``musician``, ``rodent``, ``orchid``, ``artery``, ...) and
deals them to tasks in a seeded order, so consecutive tasks differ only by which small
subtrees they hold (small shifts, like ImageNet-R's 200 classes in 5-20 tasks).

Class selection (deterministic, from ``data.noun`` alone, no seed):

1. The noun graph is read from the hypernym pointers of ``data.noun`` (``@`` and, with
   ``instances=True``, the instance hypernyms ``@i``).  ``subtree(s)`` = ``s`` and every
   synset below it.
2. Top-down from the roots (synsets without a hypernym: ``entity``), a synset whose
   subtree has more than ``max_subtree`` synsets is split into its hyponyms; a synset with
   ``min_class_size <= |subtree| <= max_subtree`` becomes a candidate class; smaller ones
   are not classes (their synsets belong to no class).
3. WordNet nouns can have two hypernyms, so a candidate can lie inside another
   candidate's subtree: the inner one is dropped.  A synset that still lies in two
   classes' subtrees is given to neither, so classes are disjoint.
4. A class's examples are the glosses of its synsets (identical texts kept once, at their
   first occurrence); classes left with fewer than ``min_class_size`` glosses are dropped.

The seed then draws the class order (and the subset, with ``n_classes``) and every
per-class split, as for every stream (:mod:`cft.data.base`).  With the defaults on
WordNet 3.0 (``max_subtree=400``, ``min_class_size=100``) this gives 221 classes of 102 to
399 glosses (about 44 000 glosses; sizes in the README).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cft.config.registry import DATASETS
from cft.config.seed import child_rng
from cft.config.validation import check_int, check_seed

from .base import Size, TaskStream
from .wordnet import _EXAMPLE, _WORD_MARKER, find_wordnet

__all__ = ["NounSynset", "WordNetFineStream", "parse_noun_graph", "select_subtrees"]


@dataclass(frozen=True)
class NounSynset:
    """One ``data.noun`` synset: offset, lexicographer file, words, gloss, hypernyms."""

    offset: int
    lexnum: int
    words: tuple[str, ...]
    gloss: str
    hypernyms: tuple[int, ...]  # "@" pointers to nouns
    instance_of: tuple[int, ...]  # "@i" pointers to nouns


FileKey = tuple[str, int, int]
_GRAPH_CACHE: dict[FileKey, dict[int, NounSynset]] = {}
_SUBTREE_CACHE: dict[tuple[FileKey, int, int, bool], dict[int, list[int]]] = {}


def _file_key(p: Path) -> FileKey:
    st = p.stat()
    return (str(p.resolve()), st.st_mtime_ns, st.st_size)


def parse_noun_graph(path: str | os.PathLike[str]) -> dict[int, NounSynset]:
    """Every synset of a ``data.noun`` file with its hypernym pointers, by offset (cached).

    wndb(5WN): ``offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt
    (pointer_symbol offset pos source/target)* | gloss``; ``p_cnt`` is three decimal digits.
    Malformed lines raise a one-line ValueError.
    """
    p = Path(path)
    key = _file_key(p)
    if key in _GRAPH_CACHE:
        return _GRAPH_CACHE[key]
    out: dict[int, NounSynset] = {}
    with open(p, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("  ") or not line.strip():
                continue
            head, bar, gloss = line.partition("|")
            f = head.split()
            try:
                if not bar:
                    raise IndexError
                offset = int(f[0], 10)
                lexnum = int(f[1], 10)
                w_cnt = int(f[3], 16)
                words = tuple(_WORD_MARKER.sub("", f[4 + 2 * i]).replace("_", " ")
                              for i in range(w_cnt))
                i0 = 4 + 2 * w_cnt
                p_cnt = int(f[i0], 10)
                hyper: list[int] = []
                inst: list[int] = []
                for k in range(p_cnt):
                    sym, target, pos = f[i0 + 1 + 4 * k: i0 + 4 + 4 * k]
                    if pos != "n":
                        continue
                    if sym == "@":
                        hyper.append(int(target, 10))
                    elif sym == "@i":
                        inst.append(int(target, 10))
                if len(f) < i0 + 1 + 4 * p_cnt:
                    raise IndexError
            except (IndexError, ValueError):
                raise ValueError(f"root: malformed WordNet line {lineno} in {str(p)!r}") from None
            out[offset] = NounSynset(offset, lexnum, words, gloss.strip(), tuple(hyper),
                                     tuple(inst))
    for s in out.values():
        for h in s.hypernyms + s.instance_of:
            if h not in out:
                raise ValueError(f"root: synset {s.offset:08d} points to a missing hypernym "
                                 f"{h:08d} in {str(p)!r}")
    _GRAPH_CACHE[key] = out
    return out


def _children(graph: dict[int, NounSynset], instances: bool) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {o: [] for o in graph}
    for s in graph.values():
        for h in s.hypernyms + (s.instance_of if instances else ()):
            kids[h].append(s.offset)
    for v in kids.values():
        v.sort()
    return kids


def select_subtrees(graph: dict[int, NounSynset], *, min_size: int, max_size: int,
                    instances: bool = True) -> dict[int, list[int]]:
    """Disjoint hypernym subtrees (steps 1-3 of the module docstring).

    Returns ``{root offset: sorted member offsets}`` (root included), roots ascending.
    Sizes are synset counts; the caller drops classes with too few distinct glosses.
    """
    kids = _children(graph, instances)
    cache: dict[int, frozenset[int]] = {}

    def subtree(n: int) -> frozenset[int]:
        if not kids[n]:
            return frozenset((n,))
        if n not in cache:
            seen = {n}
            stack = [n]
            while stack:
                for c in kids[stack.pop()]:
                    if c not in seen:
                        seen.add(c)
                        stack.append(c)
            cache[n] = frozenset(seen)
        return cache[n]

    tops = sorted(o for o, s in graph.items()
                  if not s.hypernyms and not (instances and s.instance_of))
    candidates: list[int] = []
    visited: set[int] = set()
    stack = list(reversed(tops))
    while stack:
        n = stack.pop()
        if n in visited:
            continue
        visited.add(n)
        size = len(subtree(n))
        if size > max_size:
            stack.extend(reversed(kids[n]))
        elif size >= min_size:
            candidates.append(n)
    cand = set(candidates)
    inner = {c for c in candidates if any(o != c and c in subtree(o) for o in cand)}
    roots = sorted(cand - inner)
    owners: dict[int, list[int]] = {}
    for r in roots:
        for x in subtree(r):
            owners.setdefault(x, []).append(r)
    members: dict[int, list[int]] = {r: [] for r in roots}
    for x, own in owners.items():
        if len(own) == 1:
            members[own[0]].append(x)
    return {r: sorted(v) for r, v in members.items()}


@DATASETS.register("wordnet-fine")
class WordNetFineStream(TaskStream):
    """Text stream: glosses of WordNet noun synsets, one class per disjoint hypernym subtree.

    Parameters
    ----------
    seed: drives the class order, the class subset (``n_classes``) and every split.
    root: dict directory (default: see :func:`cft.data.wordnet.find_wordnet`).
    max_subtree: a subtree with more synsets is split into its hyponyms' subtrees.
    min_class_size: fewest synsets for a candidate subtree and fewest distinct glosses for
        a kept class.
    instances: follow instance hypernyms (``Paris`` under ``national capital``).
    n_classes: use this many classes, the first of the seeded class order (None = all).
    n_tasks, classes_per_task: cut the used classes into tasks
        (:func:`cft.data.base.task_sizes`; default 10 tasks of equal size).
    with_lemmas: prefix the gloss with the synset's words (``"dog, domestic dog: ..."``).
    with_examples: keep the quoted usage examples of the gloss.
    max_per_class: cap on the examples of a class (a seeded subsample), None = all.
    train_size, calibration_size, test_size: per class; int = count, float = fraction.
    """

    name = "wordnet-fine"
    modality = "text"

    def __init__(
        self,
        *,
        seed: int = 0,
        root: str | os.PathLike[str] | None = None,
        max_subtree: int = 400,
        min_class_size: int = 100,
        instances: bool = True,
        n_classes: int | None = None,
        n_tasks: int | None = None,
        classes_per_task: int | Sequence[int] | None = None,
        with_lemmas: bool = False,
        with_examples: bool = True,
        max_per_class: int | None = None,
        train_size: Size = None,
        calibration_size: Size = 0.1,
        test_size: Size = 0.2,
    ) -> None:
        for opt, val in (("instances", instances), ("with_lemmas", with_lemmas),
                         ("with_examples", with_examples)):
            if not isinstance(val, bool):
                raise ValueError(f"{opt}: must be a bool, got {val!r}")
        min_class_size = check_int("min_class_size", min_class_size, minimum=1)  # type: ignore[assignment]
        max_subtree = check_int("max_subtree", max_subtree, minimum=1)  # type: ignore[assignment]
        if max_subtree < min_class_size:
            raise ValueError(f"max_subtree: must be >= min_class_size ({min_class_size}), "
                             f"got {max_subtree}")
        n_classes = check_int("n_classes", n_classes, minimum=1, allow_none=True)
        self.root = find_wordnet(root, ("noun",))
        graph = parse_noun_graph(self.root / "data.noun")
        key = (_file_key(self.root / "data.noun"), min_class_size, max_subtree, instances)
        if key not in _SUBTREE_CACHE:
            _SUBTREE_CACHE[key] = select_subtrees(graph, min_size=min_class_size,
                                                  max_size=max_subtree, instances=instances)
        subtrees = _SUBTREE_CACHE[key]
        roots = list(subtrees)
        names = [f"{graph[r].words[0]}.{r:08d}" for r in roots]
        owner = {x: c for c, r in enumerate(roots) for x in subtrees[r]}

        texts: list[str] = []
        labels: list[int] = []
        offsets: list[int] = []
        seen: set[str] = set()
        for off in sorted(graph):  # file order: first occurrence of a text wins
            s = graph[off]
            text = s.gloss if with_examples else _EXAMPLE.sub("", s.gloss).strip(" ;")
            if with_lemmas:
                text = f"{', '.join(s.words)}: {text}"
            if not text or text in seen:
                continue
            seen.add(text)
            c = owner.get(off)
            if c is None:
                continue
            texts.append(text)
            labels.append(c)
            offsets.append(off)
        self._texts = texts
        #: data.noun offset of each pool example
        self.pool_offsets = np.asarray(offsets, dtype=np.int64)
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
        kept = [n for n, k in zip(names, counts) if k >= min_class_size]
        if not kept:
            raise ValueError(f"min_class_size: no hypernym subtree has {min_class_size} "
                             f"distinct glosses (max_subtree={max_subtree})")
        if n_classes is not None and n_classes > len(kept):
            raise ValueError(f"n_classes: {n_classes} requested but only {len(kept)} classes "
                             f"(max_subtree={max_subtree}, min_class_size={min_class_size})")
        perm = child_rng(check_seed(seed), "class_order").permutation(len(kept))
        order = [kept[i] for i in perm[: n_classes or len(kept)]]
        if n_tasks is None and classes_per_task is None:
            n_tasks = min(10, len(order))
        self._build(
            seed=seed, class_names=names, pool_labels=np.asarray(labels, dtype=np.int64),
            train_size=train_size, calibration_size=calibration_size, test_size=test_size,
            max_per_class=max_per_class, min_class_size=min_class_size, order=order,
            n_tasks=n_tasks, classes_per_task=classes_per_task,
        )
        #: data.noun offset of the root synset of each (kept) class
        self.class_roots = np.asarray([int(c.rsplit(".", 1)[1]) for c in self.class_names],
                                      dtype=np.int64)
        #: distinct glosses of each kept class before ``max_per_class``
        self.class_sizes = counts[[names.index(c) for c in self.class_names]].astype(np.int64)

    def _take(self, index: np.ndarray) -> list[str]:
        return [self._texts[i] for i in index]
