"""Representations of a run's splits, computed once and cached.

* :meth:`SplitRepresentations.lower` ``(split, j)``: the frozen lower-layer cache of task
  ``j``'s split (a :class:`cft.model.backbones.HiddenCache`), encoded once per (split,
  task); its labels are kept with it, so a stream that holds one task in memory (images)
  is decoded once;
* :meth:`~SplitRepresentations.shared` ``(split, j)``: the frozen ``f(x)`` of the split;
* :meth:`~SplitRepresentations.adapted` ``(split, j, s, rows)``: ``h_s(x)`` of the split's
  samples ``rows`` under module ``s``; the caller caches it (:class:`cft.evaluation.store.
  SplitReps` in a bounded :class:`cft.evaluation.store.RepStore`), since a trained module
  never changes.

Every representation goes through :func:`cft.evaluation.retrieval.representations`, the
one evaluation path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SplitRepresentations"]


class SplitRepresentations:
    """The caches above, for one run: ``modules`` is the run's (growing) list of modules."""

    def __init__(self, stream: Any, backbone: Any, batch_size: int,
                 modules: Sequence[Any]) -> None:
        self.stream = stream
        self.backbone = backbone
        self.batch_size = batch_size
        self.modules = modules
        self._lower: dict[tuple[str, int], Any] = {}
        self._labels: dict[tuple[str, int], np.ndarray] = {}
        self._shared: dict[tuple[str, int], np.ndarray] = {}
        self._background: dict[int, Any] = {}

    def lower(self, split: str, j: int) -> Any:
        key = (split, j)
        if key not in self._lower:
            data = self.stream.task(j).split(split)
            self._labels[key] = data.labels
            self._lower[key] = self.backbone.encode(data.inputs, batch_size=self.batch_size,
                                                    progress=False)
        return self._lower[key]

    def background(self, n: int) -> Any:
        """The lower-layer cache of ``n`` background inputs of the stream (classes of its
        corpus that no task uses, :meth:`cft.data.base.TaskStream.background`), encoded once."""
        if n not in self._background:
            inputs = self.stream.background(n)
            self._background[n] = self.backbone.encode(inputs, batch_size=self.batch_size,
                                                       progress=False)
        return self._background[n]

    def labels(self, split: str, j: int) -> np.ndarray:
        self.lower(split, j)
        return self._labels[(split, j)]

    def upper(self, cache: Any, adapter: Any) -> np.ndarray:
        from cft.evaluation.retrieval import representations

        return representations(self.backbone, cache, adapter, self.batch_size)

    def module_reps(self, cache: Any, s: int, rows: np.ndarray | None) -> np.ndarray:
        """``h_s`` of the samples ``rows`` (``None`` = all) of a lower-layer cache."""
        return self.upper(cache if rows is None else cache.subset(rows), self.modules[s])

    def shared(self, split: str, j: int) -> np.ndarray:
        key = (split, j)
        if key not in self._shared:
            self._shared[key] = self.upper(self.lower(split, j), None)
        return self._shared[key]

    def set_shared(self, split: str, j: int, reps: np.ndarray) -> None:
        """Reuse stored ``f(x)`` (a resumed task's ``reps-shared-{split}.npy``)."""
        self._shared[(split, j)] = reps.astype(np.float32)

    def adapted(self, split: str, j: int, s: int, rows: np.ndarray | None = None
                ) -> np.ndarray:
        """``h_s`` of task ``j``'s split samples ``rows`` (``None`` = all)."""
        return self.module_reps(self.lower(split, j), s, rows)
