"""The data manager shared by every task stream (LAMDA-PILOT style).

A dataset module only has to say *what* its examples are: a list of class names, the
class label of every example of a pool, optionally which pool examples belong to an
official test set, and how to materialise a set of pool indices into model inputs
(:meth:`TaskStream._take`).  Everything else lives here, in one place:

* dropping classes that are too small (``min_class_size``) and capping the number of
  examples per class (``max_per_class``);
* the per-class train / calibration / test split, deterministic from the seed and the
  class *name* (so a class keeps its split when other classes are added or dropped);
* the class order (from the seed, the natural order, an explicit list, or explicit
  groups) and the partition of that order into tasks (``n_tasks`` / ``classes_per_task``).

No choice made here ever looks at test data: the class order depends only on the seed,
a class is kept or dropped from its size alone, and each class's split is a seeded
permutation of its examples.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from cft.config.seed import child_rng
from cft.config.validation import check_int, check_seed
from cft.data.split import (
    MODALITIES,
    SPLITS,
    Size,
    Split,
    TaskData,
    check_size,
    resolve_size,
    task_sizes,
)

__all__ = ["MODALITIES", "SPLITS", "Size", "Split", "TaskData", "TaskStream", "check_size",
           "resolve_size", "task_sizes"]


class TaskStream:
    """A class-incremental stream of tasks (the data manager).

    Subclasses set ``modality``, implement :meth:`_take`, and call :meth:`_build` from
    their ``__init__``.  Public read-only state after construction:

    ``name``, ``modality``, ``seed``, ``n_tasks``, ``class_names`` (global list; labels are
    indices into it), ``class_order`` (int64 global ids in the order they are learned; the
    concatenation of the tasks' classes), ``task_classes`` (list of int64 arrays).
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: keep at most this many materialised tasks in memory (None = all)
    cache_tasks: ClassVar[int | None] = None

    seed: int
    class_names: list[str]
    class_order: np.ndarray
    task_classes: list[np.ndarray]

    # ----------------------------------------------------------------- subclass API
    def _take(self, index: np.ndarray) -> Any:
        """Model inputs for pool indices ``index`` (in that order)."""
        raise NotImplementedError

    def _build(
        self,
        *,
        seed: int,
        class_names: Sequence[str],
        pool_labels: np.ndarray,
        pool_is_test: np.ndarray | None = None,
        train_size: Size = None,
        calibration_size: Size = 0.1,
        test_size: Size = 0.2,
        max_per_class: int | None = None,
        min_class_size: int = 1,
        order: str | Sequence[int | str] | Sequence[Sequence[str]] = "seed",
        n_tasks: int | None = None,
        classes_per_task: int | Sequence[int] | None = None,
    ) -> None:
        """Drop small classes, split every class, order the classes and cut them into tasks.

        ``pool_labels[i]`` is the class (index into ``class_names``) of pool example ``i``.
        ``pool_is_test`` marks an official test set: then test examples come from it (all
        of them when ``test_size`` is None) and train / calibration from the rest;
        otherwise every split is carved from each class's pool with the order
        test, calibration, train along a seeded permutation (so the test set does not
        move when train or calibration sizes change).

        ``order``: ``"seed"`` (a permutation drawn from the seed), ``"natural"`` (the
        order of ``class_names``), a sequence of class names / ids (a permutation of the
        kept classes), or a sequence of groups of class names (one task per non-empty
        group after dropping small classes; ``classes_per_task`` must then be None).
        """
        self.seed = check_seed(seed)
        names = [str(c) for c in class_names]
        if len(set(names)) != len(names):
            raise ValueError("class_names: must be unique")
        labels = np.asarray(pool_labels, dtype=np.int64)
        if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= len(names))):
            raise ValueError("pool_labels: must be 1-d ids into class_names")
        is_test = (np.zeros(labels.shape, bool) if pool_is_test is None
                   else np.asarray(pool_is_test, dtype=bool))
        if is_test.shape != labels.shape:
            raise ValueError("pool_is_test: must have the shape of pool_labels")
        official_test = pool_is_test is not None
        test_size = check_size("test_size", test_size, allow_none=official_test)
        calibration_size = check_size("calibration_size", calibration_size, allow_none=False)
        train_size = check_size("train_size", train_size, allow_none=True)
        max_per_class = check_int("max_per_class", max_per_class, minimum=1, allow_none=True)
        min_class_size = check_int("min_class_size", min_class_size, minimum=1)
        assert min_class_size is not None

        # --- drop classes that are too small (counted on the non-test pool only)
        counts = np.bincount(labels[~is_test], minlength=len(names))
        keep = np.flatnonzero(counts >= min_class_size)
        if keep.size == 0:
            raise ValueError(f"min_class_size: no class has {min_class_size} examples or more")
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        self.class_names = [names[i] for i in keep]
        small = (counts > 0) & (counts < min_class_size)
        #: classes that had examples but fewer than ``min_class_size``
        self.dropped_classes = [names[i] for i in np.flatnonzero(small)]
        self._pool_labels = remap[labels]

        # --- per-class splits
        self._split_index: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        for c, cname in enumerate(self.class_names):
            members = np.flatnonzero((self._pool_labels == c) & ~is_test)
            perm = child_rng(self.seed, "split", cname).permutation(members)
            if max_per_class is not None:
                perm = perm[:max_per_class]
            n = perm.size
            n_cal = resolve_size(calibration_size, n)  # type: ignore[arg-type]
            if official_test:
                test_members = np.flatnonzero((self._pool_labels == c) & is_test)
                tperm = child_rng(self.seed, "test", cname).permutation(test_members)
                n_test = tperm.size if test_size is None else resolve_size(test_size, tperm.size)
                if n_test < 1 or n_test > tperm.size:
                    raise ValueError(f"test_size: class {cname!r} has {tperm.size} test "
                                     f"examples, cannot take {n_test}")
                test_idx, rest = tperm[:n_test], perm
            else:
                n_test = resolve_size(test_size, n)  # type: ignore[arg-type]
                if n_test < 1:
                    raise ValueError("test_size: every class needs at least one test example")
                test_idx, rest = perm[:n_test], perm[n_test:]
            n_train = (rest.size - n_cal if train_size is None
                       else resolve_size(train_size, n))
            if n_train < 1 or n_cal + n_train > rest.size:
                raise ValueError(
                    f"train_size: class {cname!r} has {n} examples, too few for "
                    f"test {n_test if not official_test else 0} + calibration {n_cal} + "
                    f"train {max(n_train, 1)}"
                )
            self._split_index["test"].append(np.sort(test_idx))
            self._split_index["calibration"].append(np.sort(rest[:n_cal]))
            self._split_index["train"].append(np.sort(rest[n_cal:n_cal + n_train]))

        # --- class order and tasks
        self.task_classes = self._make_tasks(order, n_tasks, classes_per_task)
        self.class_order = np.concatenate(self.task_classes).astype(np.int64)
        self._cache: OrderedDict[int, TaskData] = OrderedDict()

    def _class_id(self, key: int | str, what: str) -> int:
        if isinstance(key, str):
            if key not in self.class_names:
                raise ValueError(f"{what}: unknown or dropped class {key!r}")
            return self.class_names.index(key)
        k = check_int(what, key)
        assert k is not None
        if k >= len(self.class_names):
            raise ValueError(f"{what}: class id {k} out of range")
        return k

    def _make_tasks(self, order: Any, n_tasks: int | None,
                    classes_per_task: int | Sequence[int] | None) -> list[np.ndarray]:
        n = len(self.class_names)
        if isinstance(order, str):
            if order == "seed":
                perm = child_rng(self.seed, "class_order").permutation(n)
            elif order == "natural":
                perm = np.arange(n)
            else:
                raise ValueError(f"class_order: must be 'seed', 'natural' or a list, got {order!r}")
        elif (isinstance(order, Sequence) and order
              and all(isinstance(g, list | tuple) for g in order)):
            if classes_per_task is not None:
                raise ValueError("classes_per_task: not allowed with explicit task groups")
            known = set(self.class_names)
            groups = [[self.class_names.index(c) for c in g if c in known] for g in order]
            groups = [g for g in groups if g]
            flat = [c for g in groups for c in g]
            if len(set(flat)) != len(flat):
                raise ValueError("class_order: a class appears in two task groups")
            n_tasks = check_int("n_tasks", n_tasks, minimum=1, allow_none=True)
            if n_tasks is not None:
                if n_tasks > len(groups):
                    raise ValueError(f"n_tasks: {n_tasks} requested but only {len(groups)} "
                                     f"non-empty task groups")
                groups = groups[:n_tasks]
            return [np.asarray(g, dtype=np.int64) for g in groups]
        elif isinstance(order, Sequence | np.ndarray) and len(order):
            perm = np.asarray([self._class_id(k, "class_order") for k in order], dtype=np.int64)
            if len(set(perm.tolist())) != perm.size:
                raise ValueError("class_order: repeated class")
            n = perm.size
        else:
            raise ValueError(f"class_order: must be 'seed', 'natural' or a list, got {order!r}")
        sizes = task_sizes(n, n_tasks, classes_per_task)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [np.asarray(perm[a:b], dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]

    # ----------------------------------------------------------------- public API
    @property
    def n_tasks(self) -> int:
        return len(self.task_classes)

    @property
    def n_classes(self) -> int:
        """Number of classes used by the tasks (``len(class_order)``)."""
        return int(self.class_order.size)

    def split_index(self, t: int, split: str) -> np.ndarray:
        """Pool indices of task ``t``'s split (grouped by class, in the task's class order)."""
        self._check_task(t)
        if split not in SPLITS:
            raise ValueError(f"split: unknown split {split!r} (known: {', '.join(SPLITS)})")
        parts = [self._split_index[split][c] for c in self.task_classes[t]]
        return np.concatenate(parts).astype(np.int64)

    def _check_task(self, t: Any) -> int:
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < self.n_tasks:
            raise ValueError(f"t: task index must be in [0, {self.n_tasks}), got {t!r}")
        return int(t)

    def task(self, t: int) -> TaskData:
        """Task ``t``'s classes and its train / calibration / test splits."""
        t = self._check_task(t)
        if t in self._cache:
            self._cache.move_to_end(t)
            return self._cache[t]
        classes = self.task_classes[t]
        splits = {}
        for s in SPLITS:
            idx = self.split_index(t, s)
            splits[s] = Split(self._take(idx), self._pool_labels[idx].astype(np.int64))
        data = TaskData(
            id=t,
            classes=classes.copy(),
            class_names=[self.class_names[c] for c in classes],
            **splits,
        )
        self._cache[t] = data
        if self.cache_tasks is not None:
            while len(self._cache) > self.cache_tasks:
                self._cache.popitem(last=False)
        return data

    def __iter__(self) -> Iterator[TaskData]:
        return (self.task(t) for t in range(self.n_tasks))

    def __len__(self) -> int:
        return self.n_tasks

    def _background_ids(self) -> list[int]:
        used = set(self.class_order.tolist())
        return [i for i in range(len(self.class_names)) if i not in used]

    def background_classes(self) -> list[str]:
        """Kept classes of the stream's corpus that no task uses."""
        return [self.class_names[i] for i in self._background_ids()]

    def background(self, n: int) -> Any:
        """Model inputs of ``n`` examples that belong to no task: the train splits of the
        :meth:`background_classes`, dealt round-robin over the classes along a seeded
        permutation of each (deterministic from the seed; never data of a task, later
        tasks included). Fewer when the classes hold fewer."""
        n = check_int("n_background", n, minimum=1)
        free = self._background_ids()
        if not free:
            raise ValueError("background: every class of this stream belongs to a task, so no "
                             "text belongs to none; use a stream with unused classes (fewer "
                             "n_tasks, or a corpus with more classes)")
        pools = [child_rng(self.seed, "background", self.class_names[c]).permutation(
            self._split_index["train"][c]) for c in free]
        picked: list[int] = []
        for r in range(max(len(q) for q in pools)):
            picked += [int(q[r]) for q in pools if r < len(q)]
            if len(picked) >= n:
                break
        return self._take(np.asarray(picked[:n], dtype=np.int64))

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (the content of ``tasks.json``, plus sizes)."""
        tasks = []
        for t, classes in enumerate(self.task_classes):
            entry: dict[str, Any] = {
                "id": t,
                "classes": [int(c) for c in classes],
                "names": [self.class_names[c] for c in classes],
            }
            for s in SPLITS:
                entry[f"n_{s}"] = int(sum(self._split_index[s][c].size for c in classes))
            tasks.append(entry)
        return {
            "dataset": self.name,
            "modality": self.modality,
            "seed": self.seed,
            "class_names": list(self.class_names),
            "class_order": [int(c) for c in self.class_order],
            "tasks": tasks,
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(seed={self.seed}, n_tasks={self.n_tasks}, "
                f"n_classes={self.n_classes}, modality={self.modality!r})")
