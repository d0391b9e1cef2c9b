"""Images in ``root/<class_name>/*.{jpg,jpeg,png}`` (ImageNet-R layout).

``DATASETS.build("imagefolder", root=...)``.  Classes are the sub-directories in sorted
order; files are read with Pillow (RGB) only when a task is requested, resized to
``image_size`` (shorter side then centre crop, or a plain stretch), uint8 (N, H, W, 3).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cft.config.registry import DATASETS
from cft.config.validation import check_int

from .base import Size, TaskStream

EXTENSIONS = (".jpg", ".jpeg", ".png")


def load_image(path: str | os.PathLike[str], size: int, resize: str = "crop") -> np.ndarray:
    """One RGB image as uint8 (size, size, 3)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if resize == "stretch":
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        else:
            w, h = im.size
            s = size / min(w, h)
            nw, nh = max(size, round(w * s)), max(size, round(h * s))
            im = im.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - size) // 2, (nh - size) // 2
            im = im.crop((left, top, left + size, top + size))
        return np.asarray(im, dtype=np.uint8)


@DATASETS.register("imagefolder")
class ImageFolderStream(TaskStream):
    """Image stream from a class-per-directory tree (e.g. ImageNet-R, 200 classes).

    Parameters
    ----------
    seed: drives the class order and every split.
    root: the tree (default $CFT_IMAGEFOLDER_DIR).
    image_size: output side H = W (default 224).
    resize: ``"crop"`` (shorter side to image_size, centre crop; default) or ``"stretch"``.
    n_tasks, classes_per_task: default (both None) min(10, n_classes) tasks of equal size.
    class_order: ``"seed"`` (default), ``"natural"`` (sorted names) or an explicit list.
    max_per_class, min_class_size: cap / minimum on the images of a class.
    train_size, calibration_size, test_size: per class (default: test 20 %,
        calibration 10 %, train the rest).
    """

    name = "imagefolder"
    modality = "image"
    cache_tasks = 1  # full-size images are large: keep only the last task in memory

    def __init__(
        self,
        *,
        seed: int = 0,
        root: str | os.PathLike[str] | None = None,
        image_size: int = 224,
        resize: str = "crop",
        n_tasks: int | None = None,
        classes_per_task: int | Sequence[int] | None = None,
        class_order: str | Sequence[int | str] = "seed",
        max_per_class: int | None = None,
        min_class_size: int = 1,
        train_size: Size = None,
        calibration_size: Size = 0.1,
        test_size: Size = 0.2,
    ) -> None:
        size = check_int("image_size", image_size, minimum=1)
        assert size is not None
        if resize not in ("crop", "stretch"):
            raise ValueError(f"resize: must be 'crop' or 'stretch', got {resize!r}")
        if root is None:
            root = os.environ.get("CFT_IMAGEFOLDER_DIR")
            if not root:
                raise ValueError("root: no image folder given (pass root= or set "
                                 "CFT_IMAGEFOLDER_DIR to a root/<class>/*.jpg tree)")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root: {str(self.root)!r} is not a directory")
        names: list[str] = []
        paths: list[Path] = []
        labels: list[int] = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = sorted(f for f in d.iterdir()
                           if f.is_file() and f.suffix.lower() in EXTENSIONS)
            if not files:
                continue
            names.append(d.name)
            labels += [len(names) - 1] * len(files)
            paths += files
        if not names:
            raise ValueError(f"root: no <class>/*.jpg|png images under {str(self.root)!r}")
        if n_tasks is None and classes_per_task is None:
            n_tasks = min(10, len(names))
        self.image_size = size
        self.resize = resize
        self.paths = paths
        self._build(
            seed=seed, class_names=names, pool_labels=np.asarray(labels, dtype=np.int64),
            train_size=train_size, calibration_size=calibration_size, test_size=test_size,
            max_per_class=max_per_class, min_class_size=min_class_size, order=class_order,
            n_tasks=n_tasks, classes_per_task=classes_per_task,
        )

    def _take(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), self.image_size, self.image_size, 3), dtype=np.uint8)
        for row, i in enumerate(index):
            out[row] = load_image(self.paths[i], self.image_size, self.resize)
        return out
