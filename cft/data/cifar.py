"""CIFAR-100 from the official ``cifar-100-python`` files (``DATASETS.build("cifar100")``).

Layout: ``<root>/train``, ``<root>/test``, ``<root>/meta`` (``root`` may also be the
parent of ``cifar-100-python/``, or the ``cifar-100-python.tar.gz`` archive itself).
Each data file is a dict with ``b"data"`` (N, 3072) uint8 laid out as 1024 red, 1024
green, 1024 blue values of a row-major 32x32 image, and ``b"fine_labels"`` /
``b"coarse_labels"``; ``meta`` holds ``b"fine_label_names"`` / ``b"coarse_label_names"``.

Security note: the official files are Python pickles, so this reader (and only this
reader) uses ``pickle.load(..., encoding="bytes")``.  Only point it at the archive from
https://www.cs.toronto.edu/~kriz/cifar.html or files you made yourself: unpickling
runs code from the file.  The project never writes pickles of its own.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cft.config.registry import DATASETS

from .base import Size, TaskStream

_FILES = ("train", "test", "meta")
_HINT = ("download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
         "and pass root= or set CFT_CIFAR100_DIR")


def _load_pickle(raw: bytes) -> dict[bytes, Any]:
    # External official format only (see module docstring); never used for our own files.
    obj = pickle.load(io.BytesIO(raw), encoding="bytes")  # noqa: S301
    if not isinstance(obj, dict):
        raise ValueError("root: CIFAR file does not hold a dict")
    return obj


def read_cifar100(root: str | os.PathLike[str] | None = None) -> dict[str, dict[bytes, Any]]:
    """The raw ``train`` / ``test`` / ``meta`` dicts of a cifar-100-python copy."""
    if root is None:
        root = os.environ.get("CFT_CIFAR100_DIR")
        if not root:
            raise ValueError(f"root: no CIFAR-100 location given; {_HINT}")
    p = Path(root)
    if p.is_file() and tarfile.is_tarfile(p):
        out: dict[str, dict[bytes, Any]] = {}
        with tarfile.open(p) as tar:
            for member in tar.getmembers():
                base = member.name.rstrip("/").split("/")[-1]
                if member.isfile() and base in _FILES:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    out[base] = _load_pickle(fh.read())
        missing = [f for f in _FILES if f not in out]
        if missing:
            raise ValueError(f"root: archive {str(p)!r} lacks {missing}; {_HINT}")
        return out
    for d in (p, p / "cifar-100-python"):
        if all((d / f).is_file() for f in _FILES):
            return {f: _load_pickle((d / f).read_bytes()) for f in _FILES}
    raise ValueError(f"root: no cifar-100-python train/test/meta files in {str(p)!r}; {_HINT}")


def _images(d: dict[bytes, Any], what: str) -> np.ndarray:
    try:
        data = np.asarray(d[b"data"], dtype=np.uint8)
    except KeyError:
        raise ValueError(f"root: {what} file has no b'data' entry") from None
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"root: {what} data must be (N, 3072), got {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


@DATASETS.register("cifar100")
class Cifar100Stream(TaskStream):
    """Image stream: CIFAR-100, uint8 (N, 32, 32, 3).

    Parameters
    ----------
    seed: drives the class order and the train / calibration split.
    root: cifar-100-python directory, its parent, or the .tar.gz (default $CFT_CIFAR100_DIR).
    label_type: ``"fine"`` (100 classes, default) or ``"coarse"`` (20 superclasses).
    n_tasks, classes_per_task: default 10 classes per task (PILOT B0 Inc10).
    class_order: ``"seed"`` (default), ``"natural"`` or an explicit list.
    max_per_class: cap on the official-train examples of a class, None = all 500.
    train_size, calibration_size: carved per class from the official train split
        (default: calibration 10 %, train the rest).
    test_size: taken from the official test split; None (default) = all of it.
    """

    name = "cifar100"
    modality = "image"

    def __init__(
        self,
        *,
        seed: int = 0,
        root: str | os.PathLike[str] | None = None,
        label_type: str = "fine",
        n_tasks: int | None = None,
        classes_per_task: int | Sequence[int] | None = 10,
        class_order: str | Sequence[int | str] = "seed",
        max_per_class: int | None = None,
        train_size: Size = None,
        calibration_size: Size = 0.1,
        test_size: Size = None,
    ) -> None:
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"label_type: must be 'fine' or 'coarse', got {label_type!r}")
        raw = read_cifar100(root)
        key = f"{label_type}_labels".encode()
        names_key = f"{label_type}_label_names".encode()
        if names_key not in raw["meta"]:
            raise ValueError(f"root: meta file has no {names_key!r}")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw["meta"][names_key]]
        xs, ys = [], []
        for split in ("train", "test"):
            if key not in raw[split]:
                raise ValueError(f"root: {split} file has no {key!r}")
            xs.append(_images(raw[split], split))
            ys.append(np.asarray(raw[split][key], dtype=np.int64))
            if len(ys[-1]) != len(xs[-1]):
                raise ValueError(f"root: {split} labels and images differ in length")
        self._x = np.concatenate(xs)
        is_test = np.repeat([False, True], [len(ys[0]), len(ys[1])])
        self._build(
            seed=seed, class_names=names, pool_labels=np.concatenate(ys), pool_is_test=is_test,
            train_size=train_size, calibration_size=calibration_size, test_size=test_size,
            max_per_class=max_per_class, order=class_order, n_tasks=n_tasks,
            classes_per_task=classes_per_task,
        )

    def _take(self, index: np.ndarray) -> np.ndarray:
        return self._x[index]
