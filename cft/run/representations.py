"""Representations of a run's splits, computed once and cached (a mixin of
:class:`cft.run.runner.Runner`).

* ``_lower(split, j)``: the frozen lower-layer cache of task ``j``'s split (a
  :class:`cft.model.backbones.HiddenCache`), encoded once per (split, task); its labels are kept
  with it, so a stream that holds one task in memory (images) is decoded once;
* ``_shared(split, j)``: the frozen ``f(x)`` of the split, kept per (split, task);
* ``_adapted(split, j, s, rows)``: ``h_s(x)`` of the split's samples ``rows`` under module
  ``s``; the caller caches it (:class:`cft.evaluation.store.SplitReps` in a bounded
  :class:`cft.evaluation.store.RepStore`), since a trained module never changes.

Every representation goes through :func:`cft.evaluation.retrieval.representations`, the one
evaluation path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SplitRepresentations"]


class SplitRepresentations:
    """The caches above; :meth:`_reset_reps` empties them (start of a run)."""

    # set by cft.run.runner.Runner
    cfg: Any
    stream: Any
    backbone: Any
    modules: list[Any]

    def _reset_reps(self) -> None:
        self._lower_cache: dict[tuple[str, int], Any] = {}
        self._labels: dict[tuple[str, int], np.ndarray] = {}
        self._shared_cache: dict[tuple[str, int], np.ndarray] = {}

    def _lower(self, split: str, j: int) -> Any:
        key = (split, j)
        if key not in self._lower_cache:
            data = self.stream.task(j).split(split)
            self._labels[key] = data.labels
            self._lower_cache[key] = self.backbone.encode(
                data.inputs, batch_size=self.cfg.backbone.batch_size, progress=False)
        return self._lower_cache[key]

    def _split_labels(self, split: str, j: int) -> np.ndarray:
        self._lower(split, j)
        return self._labels[(split, j)]

    def _upper(self, cache: Any, adapter: Any) -> np.ndarray:
        from cft.evaluation.retrieval import representations

        return representations(self.backbone, cache, adapter, self.cfg.backbone.batch_size)

    def _module_reps(self, cache: Any, s: int, rows: np.ndarray | None) -> np.ndarray:
        """``h_s`` of the samples ``rows`` (``None`` = all) of a lower-layer cache."""
        return self._upper(cache if rows is None else cache.subset(rows), self.modules[s])

    def _shared(self, split: str, j: int) -> np.ndarray:
        key = (split, j)
        if key not in self._shared_cache:
            self._shared_cache[key] = self._upper(self._lower(split, j), None)
        return self._shared_cache[key]

    def _set_shared(self, split: str, j: int, reps: np.ndarray) -> None:
        """Reuse stored ``f(x)`` (a resumed task's ``reps-shared-{split}.npy``)."""
        self._shared_cache[(split, j)] = reps.astype(np.float32)

    def _adapted(self, split: str, j: int, s: int, rows: np.ndarray | None = None
                 ) -> np.ndarray:
        """``h_s`` of task ``j``'s split samples ``rows`` (``None`` = all)."""
        return self._module_reps(self._lower(split, j), s, rows)
