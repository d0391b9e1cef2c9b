"""Multi-genre text stream: each task is one real corpus, its classes that corpus's labels.

``DATASETS.build("genres")``.  Sources (one loader module each, installed by
``scripts/ensure-genres.sh``; WordNet by ``scripts/ensure-wordnet.sh``):

========== =================================================== =======================
source     examples                                            label
========== =================================================== =======================
fortunes   fortune cookies (:mod:`.fortunes`)                  category file
apt        Debian package descriptions (:mod:`.aptdesc`)       archive section
man        NAME + first DESCRIPTION paragraph (:mod:`.manpages`) man section
gcide      Webster 1913 senses (:mod:`.gcide`)                 domain tag (Zool., ...)
pydoc      stdlib docstrings (:mod:`.pydocs`)                  module family
wordnet    WordNet glosses (:mod:`.wordnet`'s parser)          lexicographer file
========== =================================================== =======================

Class selection (deterministic, no seed, from class sizes alone, never from test data):
texts seen in an earlier source are dropped (identical texts are kept once); a source's
labels with at least ``min_class_size`` texts are ranked by size (largest first, ties
by name) and the first ``tasks_per_source * classes_per_task`` become the tasks' classes,
cut in rank order into ``tasks_per_source`` tasks (so the first task of a source is the same
whatever ``tasks_per_source``).  Class names are ``"<source>:<label>"``.  Tasks are
ordered round-robin over the sources (every source's first task, then every source's
second task, ...), ``"by-source"`` or in a seeded order; the seed also draws the
per-class cap (``max_per_class``) and the splits, as for every stream
(:mod:`cft.data.base`).  A source's other labels with at least ``min_class_size`` texts
stay classes of the stream that no task uses: its *background*
(:meth:`cft.data.base.TaskStream.background`), text that belongs to no task.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cft.config.registry import DATASETS
from cft.config.seed import child_rng
from cft.config.validation import check_int

from .aptdesc import DUMP_NAME, TRANSLATION_NAME, load_aptdesc
from .base import Size, TaskStream
from .corpus import Corpus, data_dir, file_key, finish
from .fortunes import load_fortunes
from .gcide import load_gcide
from .manpages import MAN_DIR, SECTIONS, load_manpages
from .pydocs import load_pydocs
from .wordnet import LEXNAMES, POS_FILES, find_wordnet, parse_data_file

__all__ = ["DEFAULT_SOURCES", "LOADERS", "GenresStream", "load_wordnet", "provenance",
           "select_classes"]


def load_wordnet(root: str | os.PathLike[str] | None = None, *, min_chars: int = 20,
                 max_chars: int | None = 1000) -> Corpus:
    """``(texts, labels)``: WordNet glosses by lexicographer file (noun, verb, adj, adv)."""
    d = find_wordnet(root)
    pairs = ((gloss, LEXNAMES[lex]) for pos in POS_FILES.values()
             for lex, _, gloss in parse_data_file(d / f"data.{pos}"))
    return finish(pairs, min_chars, max_chars)


#: source name -> loader ``(**options) -> (texts, labels)``
LOADERS: dict[str, Callable[..., Corpus]] = {
    "fortunes": load_fortunes, "apt": load_aptdesc, "man": load_manpages,
    "gcide": load_gcide, "pydoc": load_pydocs, "wordnet": load_wordnet,
}
DEFAULT_SOURCES = ("fortunes", "apt", "man", "gcide", "pydoc")
#: Debian packages that hold each source's corpus (versions go to :func:`provenance`)
PACKAGES: dict[str, tuple[str, ...]] = {
    "fortunes": ("fortunes", "fortunes-min"), "apt": (), "man": ("manpages", "manpages-dev"),
    "gcide": ("dict-gcide",), "pydoc": (), "wordnet": ("wordnet-base",),
}
TASK_ORDERS = ("round-robin", "by-source", "seed")
_HASHES: dict[tuple[str, int, int], str] = {}


def select_classes(labels: Sequence[str], n: int, min_class_size: int) -> list[str]:
    """The ``n`` largest labels with at least ``min_class_size`` examples (ties by name);
    fewer when fewer qualify."""
    ranked = sorted((-c, name) for name, c in Counter(labels).items() if c >= min_class_size)
    return [name for _, name in ranked[:n]]


def _dpkg_versions(packages: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = dict.fromkeys(packages)
    if not packages:
        return out
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t"
                              "${Version}\n", *packages], capture_output=True, text=True,
                             check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return out
    for line in res.stdout.splitlines():
        name, status, version = (line.split("\t") + ["", ""])[:3]
        if name in out and status.startswith("ii") and version:
            out[name] = version
    return out


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    key = file_key(path)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def provenance(sources: Sequence[str] = tuple(LOADERS)) -> dict[str, Any]:
    """What the corpora of ``sources`` were read from: the Debian package versions (None
    when not installed), the Python version (docstrings), the sha256 of the cached apt
    files and the number of man page files per section (they depend on what is
    installed).  JSON-able."""
    pkgs = sorted({p for s in sources for p in PACKAGES.get(s, ())})
    out: dict[str, Any] = {"python": platform.python_version(),
                           "packages": _dpkg_versions(pkgs)}
    if "apt" in sources:
        d = data_dir()
        out["apt_sha256"] = {n: _sha256(d / n) for n in (DUMP_NAME, TRANSLATION_NAME)}
    if "man" in sources:
        out["man_files"] = {s: sum(1 for e in os.scandir(MAN_DIR / f"man{s}")
                                   if e.is_file(follow_symlinks=False))
                            for s in SECTIONS if (MAN_DIR / f"man{s}").is_dir()}
    return out


@DATASETS.register("genres")
class GenresStream(TaskStream):
    """Text stream: one task per (source, rank block) of real-corpus classes.

    Parameters
    ----------
    seed: drives the per-class subsample, the splits and (``task_order="seed"``) the order.
    sources: corpora in :data:`LOADERS` (default :data:`DEFAULT_SOURCES`).
    classes_per_task: classes of each task (default 5).
    tasks_per_source: tasks per source (int, or a mapping source -> int), classes disjoint.
    task_order: ``"round-robin"`` (default), ``"by-source"`` or ``"seed"``.
    n_tasks: keep only the first tasks.
    source_options: source -> keyword options of its loader (``root``, ``min_chars``, ...).
    max_per_class (default 150), min_class_size (100), train_size (None: the rest),
        calibration_size (0.15), test_size (0.2): as for
        :class:`cft.data.wordnet.WordNetStream`.
    """

    name = "genres"
    modality = "text"

    def __init__(
        self,
        *,
        seed: int = 0,
        sources: Sequence[str] = DEFAULT_SOURCES,
        classes_per_task: int = 5,
        tasks_per_source: int | Mapping[str, int] = 1,
        task_order: str = "round-robin",
        n_tasks: int | None = None,
        source_options: Mapping[str, Mapping[str, Any]] | None = None,
        max_per_class: int | None = 150,
        min_class_size: int = 100,
        train_size: Size = None,
        calibration_size: Size = 0.15,
        test_size: Size = 0.2,
    ) -> None:
        sources = (sources,) if isinstance(sources, str) else tuple(sources)
        unknown = [s for s in sources if s not in LOADERS]
        if not sources or unknown or len(set(sources)) != len(sources):
            raise ValueError(f"sources: must be distinct names from {list(LOADERS)}, "
                             f"got {list(sources)!r}")
        per_task = check_int("classes_per_task", classes_per_task, minimum=1)
        min_size = check_int("min_class_size", min_class_size, minimum=1)
        if task_order not in TASK_ORDERS:
            raise ValueError(f"task_order: must be one of {list(TASK_ORDERS)}, got {task_order!r}")
        opts = dict(source_options or {})
        if set(opts) - set(sources):
            raise ValueError(f"source_options: sources {sorted(set(opts) - set(sources))} "
                             f"are not in sources")
        if isinstance(tasks_per_source, Mapping):
            if set(tasks_per_source) - set(sources):
                raise ValueError(f"tasks_per_source: sources "
                                 f"{sorted(set(tasks_per_source) - set(sources))} are not in "
                                 f"sources")
            tps = {s: check_int("tasks_per_source", tasks_per_source.get(s, 1), minimum=1)
                   for s in sources}
        else:
            k = check_int("tasks_per_source", tasks_per_source, minimum=1)
            tps = dict.fromkeys(sources, k)
        assert per_task is not None and min_size is not None
        self.sources = sources

        texts: list[str] = []
        labels: list[str] = []
        groups: dict[str, list[list[str]]] = {}
        rest: list[str] = []
        seen: set[str] = set()
        for src in sources:
            src_texts, src_labels = LOADERS[src](**dict(opts.get(src, {})))
            keep = [i for i, t in enumerate(src_texts) if t not in seen]
            seen.update(src_texts)
            texts += [src_texts[i] for i in keep]
            src_labels = [f"{src}:{src_labels[i]}" for i in keep]
            labels += src_labels
            need = tps[src] * per_task  # type: ignore[operator]
            ranked = select_classes(src_labels, len(src_labels), min_size)
            if len(ranked) < need:
                raise ValueError(
                    f"tasks_per_source: source {src!r} has {len(ranked)} classes with >= "
                    f"{min_size} texts, {tps[src]} tasks of {per_task} need {need}")
            groups[src] = [ranked[i:i + per_task] for i in range(0, need, per_task)]
            rest += ranked[need:] + sorted(set(src_labels) - set(ranked))
        order = self._task_order(groups, task_order, seed)
        # every class is kept: the ones no task uses are the stream's background
        class_names = [c for g in order for c in g] + rest
        index = {c: i for i, c in enumerate(class_names)}
        self._texts = texts
        self._build(
            seed=seed, class_names=class_names,
            pool_labels=np.asarray([index[lab] for lab in labels], dtype=np.int64),
            train_size=train_size, calibration_size=calibration_size, test_size=test_size,
            max_per_class=max_per_class, min_class_size=min_size, order=order,
            n_tasks=n_tasks,
        )
        #: source of each task
        self.task_sources = [self.class_names[c[0]].split(":", 1)[0] for c in self.task_classes]

    @staticmethod
    def _task_order(groups: dict[str, list[list[str]]], how: str, seed: int) -> list[list[str]]:
        if how == "by-source":
            return [g for gs in groups.values() for g in gs]
        rounds = max(len(gs) for gs in groups.values())
        order = [gs[r] for r in range(rounds) for gs in groups.values() if r < len(gs)]
        if how == "seed":
            perm = child_rng(seed, "genres", "task_order").permutation(len(order))
            order = [order[i] for i in perm]
        return order

    def _take(self, index: np.ndarray) -> list[str]:
        return [self._texts[i] for i in index]

    def provenance(self) -> dict[str, Any]:
        """:func:`provenance` of this stream's sources."""
        return provenance(self.sources)

    def describe(self) -> dict[str, Any]:
        """:meth:`TaskStream.describe` (``tasks.json``) plus each task's ``source``, the
        ``sources`` and the corpora's :meth:`provenance`."""
        d = super().describe()
        for entry, src in zip(d["tasks"], self.task_sources):
            entry["source"] = src
        d["sources"] = list(self.sources)
        d["provenance"] = self.provenance()
        return d
