"""What a task stream hands out: :class:`Split` (inputs and global class ids),
:class:`TaskData` (one task's three splits), and the size rules of the data manager
(:func:`check_size`, :func:`resolve_size`, :func:`task_sizes`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cft.config.validation import check_float, check_int

MODALITIES = ("text", "image", "features", "tokens")
SPLITS = ("train", "calibration", "test")

Size = int | float | None


@dataclass(frozen=True)
class Split:
    """One split of one task: ``inputs`` and their int64 global class ids ``labels``.

    ``inputs`` is a ``list[str]`` (text), uint8 ``(N, H, W, 3)`` (image), float32
    ``(N, d)`` (features) or int64 ``(N, L)`` with 0 = padding (tokens).
    """

    inputs: Any
    labels: np.ndarray

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or labels.dtype != np.int64:
            raise ValueError("labels: must be a 1-d int64 array")
        if len(self.inputs) != len(labels):
            raise ValueError(
                f"inputs: length {len(self.inputs)} differs from labels length {len(labels)}"
            )

    def __len__(self) -> int:
        return int(len(self.labels))

    def subset(self, index: np.ndarray | Sequence[int]) -> Split:
        """The examples at positions ``index`` (same order)."""
        idx = np.asarray(index, dtype=np.int64)
        if isinstance(self.inputs, np.ndarray):
            inputs: Any = self.inputs[idx]
        else:
            inputs = [self.inputs[i] for i in idx]
        return Split(inputs, self.labels[idx])


@dataclass(frozen=True)
class TaskData:
    """Task ``id``: its classes (global ids, in class order), their names and three splits."""

    id: int
    classes: np.ndarray
    class_names: list[str]
    train: Split
    calibration: Split
    test: Split

    def split(self, name: str) -> Split:
        """``"train"``, ``"calibration"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"name: unknown split {name!r} (known: {', '.join(SPLITS)})")
        return getattr(self, name)


def check_size(name: str, value: Any, *, allow_none: bool) -> Size:
    """A split size is an int count >= 0, a float fraction in [0, 1), or (maybe) None."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name}: must be an int count or a float fraction, got None")
    if isinstance(value, bool):
        raise ValueError(f"{name}: must be an int count or a float fraction, got {value!r}")
    if isinstance(value, int | np.integer):
        return check_int(name, value)
    if isinstance(value, float | np.floating):
        return check_float(name, value, low=0.0, high=1.0)
    raise ValueError(f"{name}: must be an int count or a float fraction, got {value!r}")


def resolve_size(value: int | float, n: int) -> int:
    """Count for a size option on a pool of ``n``: ints are counts; floats are fractions of
    ``n`` rounded to the nearest int, and at least 1 when the fraction is positive."""
    if isinstance(value, float):
        if value == 0.0:
            return 0
        return max(1, int(round(value * n)))
    return int(value)


def task_sizes(n_classes: int, n_tasks: int | None,
               classes_per_task: int | Sequence[int] | None) -> list[int]:
    """Number of classes of each task.

    * ``classes_per_task`` int: tasks of that many classes, the last one takes a non-empty
      remainder (PILOT ``increment``); ``n_tasks`` then keeps only the first tasks.
    * ``classes_per_task`` sequence: exactly those sizes (their sum may be < n_classes).
    * ``classes_per_task`` None: ``n_tasks`` tasks of (almost) equal size.
    """
    n_tasks = check_int("n_tasks", n_tasks, minimum=1, allow_none=True)
    if classes_per_task is None:
        if n_tasks is None:
            raise ValueError("n_tasks: give n_tasks or classes_per_task")
        if n_tasks > n_classes:
            raise ValueError(f"n_tasks: {n_tasks} tasks but only {n_classes} classes")
        return [len(a) for a in np.array_split(np.arange(n_classes), n_tasks)]
    if isinstance(classes_per_task, int | np.integer) and not isinstance(classes_per_task, bool):
        cpt = check_int("classes_per_task", classes_per_task, minimum=1)
        assert cpt is not None
        if cpt > n_classes:
            raise ValueError(f"classes_per_task: {cpt} exceeds the {n_classes} classes")
        sizes = [cpt] * (n_classes // cpt) + ([n_classes % cpt] if n_classes % cpt else [])
        if n_tasks is not None:
            if n_tasks > len(sizes):
                raise ValueError(
                    f"n_tasks: {n_tasks} tasks of {cpt} classes need more than {n_classes} classes"
                )
            sizes = sizes[:n_tasks]
        return sizes
    if not isinstance(classes_per_task, Sequence) or isinstance(classes_per_task, str):
        raise ValueError(f"classes_per_task: must be an int or a list of ints, got "
                         f"{classes_per_task!r}")
    sizes = [check_int("classes_per_task", c, minimum=1) for c in classes_per_task]
    if not sizes:
        raise ValueError("classes_per_task: empty list")
    if sum(sizes) > n_classes:  # type: ignore[arg-type]
        raise ValueError(f"classes_per_task: sizes sum to {sum(sizes)} > {n_classes} classes")  # type: ignore[arg-type]
    if n_tasks is not None and n_tasks != len(sizes):
        raise ValueError(f"n_tasks: {n_tasks} differs from len(classes_per_task)={len(sizes)}")
    return [int(s) for s in sizes]  # type: ignore[arg-type]
