"""Bounded store of representation blocks (the runner's adapted-representation cache).

The runner keeps ``h_s(x)`` of every (split, task ``j``, module ``s``) block it has
computed, because a trained module never changes; over a run that is ``m^2`` blocks.
:class:`RepStore` holds them in memory up to a byte budget (``output.cache_mb``); beyond it
the oldest blocks are *spilled*: written, as raw float32, into a segment file of the run's
scratch folder ``RUN_DIR/scratch/`` and read back through ``np.memmap`` when needed. A
spilled block reads back bit for bit, so the outputs do not depend on the budget.

The scratch folder is working space only: the runner empties it when it starts (a crashed
run leaves it behind) and removes it when the run completes; nothing reads it to resume and
it is no part of a run's results (docs/run-dir.md).

:class:`SplitReps` serves one split's adapted representations to
:func:`cft.evaluation.retrieval.evaluate` on demand (``get(s, rows)``), computing missing
blocks with
a callback and caching them in a :class:`RepStore`. With ``chunk=None`` a block is a whole
(task, module) block, computed as one call; with ``chunk=c`` (shortlisted retrieval, where
only some samples need module ``s``) it is the ``c`` consecutive samples of a task that hold
a requested row. A chunk's value depends only on which samples it holds, never on which
requests came before, so a resumed run computes the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from bounds.rundir_schema import SCRATCH

__all__ = ["SCRATCH", "RepStore", "SplitReps"]


class RepStore:
    """Arrays by key, in memory up to ``budget_bytes`` and spilled to ``folder`` beyond.

    ``budget_bytes=None``: never spill. ``budget_bytes=0``: every block goes straight to
    disk. When the in-memory bytes exceed the budget, the oldest blocks are written to one
    new segment file until at most half the budget stays in memory (so a file holds many
    blocks). ``folder`` is created on the first spill and removed by :meth:`close`.
    """

    def __init__(self, folder: str | Path | None, budget_bytes: int | None) -> None:
        if budget_bytes is not None and budget_bytes < 0:
            raise ValueError(f"budget_bytes: must be >= 0 or None, got {budget_bytes}")
        if budget_bytes is not None and folder is None:
            raise ValueError("folder: required when the budget is finite")
        self.folder = Path(folder) if folder is not None else None
        self.budget = budget_bytes
        self._mem: dict[Hashable, np.ndarray] = {}  # insertion order = age
        self._disk: dict[Hashable, tuple[Path, int, np.dtype, tuple[int, ...]]] = {}
        self.memory_bytes = 0
        self.disk_bytes = 0
        self.segments = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._mem or key in self._disk

    def __len__(self) -> int:
        return len(self._mem) + len(self._disk)

    def get(self, key: Hashable) -> np.ndarray:
        """The block (a read-only memmap copy for a spilled block); ``KeyError`` if absent."""
        if key in self._mem:
            return self._mem[key]
        path, offset, dtype, shape = self._disk[key]
        if not shape or 0 in shape:
            return np.empty(shape, dtype=dtype)
        mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
        out = np.array(mm)  # copy out, so the mapping is released at once
        del mm
        return out

    def put(self, key: Hashable, array: np.ndarray) -> np.ndarray:
        """Store ``array`` (made C-contiguous) under a new ``key``; returns it."""
        if key in self:
            raise ValueError(f"key: {key!r} is already stored")
        arr = np.ascontiguousarray(array)
        if arr.dtype == object:
            raise ValueError("array: object arrays cannot be stored")
        self._mem[key] = arr
        self.memory_bytes += arr.nbytes
        if self.budget is not None and self.memory_bytes > self.budget:
            self._spill(self.budget // 2)
        return arr

    def get_or_compute(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self:
            return self.get(key)
        return self.put(key, compute())

    def _spill(self, keep_bytes: int) -> None:
        """Write the oldest in-memory blocks to one new segment file until at most
        ``keep_bytes`` stay in memory."""
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"reps-{self.segments:06d}.bin"
        self.segments += 1
        offset = 0
        with open(path, "wb") as fh:
            while self._mem and self.memory_bytes > keep_bytes:
                key = next(iter(self._mem))
                arr = self._mem.pop(key)
                fh.write(arr.tobytes(order="C"))
                self._disk[key] = (path, offset, arr.dtype, tuple(arr.shape))
                offset += arr.nbytes
                self.memory_bytes -= arr.nbytes
                self.disk_bytes += arr.nbytes

    def close(self) -> None:
        """Forget every block and remove the spill folder."""
        self._mem.clear()
        self._disk.clear()
        self.memory_bytes = self.disk_bytes = 0
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class SplitReps:
    """Adapted representations of one split (tasks ``0..k`` in task order) on demand.

    ``sizes[j]``: samples of task ``j``; ``compute(j, s, rows)`` returns ``h_s`` of task
    ``j``'s samples ``rows`` (``None`` = all) as float32 ``(len, d)``. Blocks are cached in
    ``store`` under ``(tag, j, s)`` (whole blocks) or ``(tag, j, s, chunk index)``.
    This is the ``reps_adapted`` argument of :func:`cft.evaluation.retrieval.evaluate`.
    """

    def __init__(self, store: RepStore, tag: Hashable, sizes: Sequence[int], n_modules: int,
                 compute: Callable[[int, int, np.ndarray | None], np.ndarray],
                 chunk: int | None = None) -> None:
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk: must be >= 1 or None, got {chunk}")
        self.store = store
        self.tag = tag
        self.sizes = [int(s) for s in sizes]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.n = int(self.starts[-1])
        self.m = int(n_modules)
        self.compute = compute
        self.chunk = chunk

    def _block(self, j: int, s: int) -> np.ndarray:
        return self.store.get_or_compute((self.tag, j, s), lambda: self.compute(j, s, None))

    def _chunk(self, j: int, s: int, c: int) -> np.ndarray:
        assert self.chunk is not None
        lo, hi = c * self.chunk, min((c + 1) * self.chunk, self.sizes[j])
        return self.store.get_or_compute(
            (self.tag, j, s, c), lambda: self.compute(j, s, np.arange(lo, hi)))

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray:
        """``h_s(x_i)`` for the split's rows ``rows`` (global indices, ``None`` = all)."""
        if not 0 <= s < self.m:
            raise ValueError(f"s: module {s} out of range 0..{self.m - 1}")
        if self.chunk is None and rows is None:
            return np.concatenate([self._block(j, s) for j in range(len(self.sizes))])
        idx = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        if idx.size == 0:
            return (self._block(0, s) if self.chunk is None else self._chunk(0, s, 0))[:0]
        task = np.searchsorted(self.starts, idx, side="right") - 1
        local = idx - self.starts[task]
        if self.chunk is None:  # only the blocks of the tasks that hold a requested row
            out = None
            for j in np.unique(task).tolist():
                block = self._block(j, s)
                if out is None:
                    out = np.empty((len(idx), block.shape[1]), dtype=block.dtype)
                sel = np.flatnonzero(task == j)
                out[sel] = block[local[sel]]
            assert out is not None
            return out
        chunk = local // self.chunk
        groups, inverse = np.unique(np.stack([task, chunk], axis=1), axis=0,
                                    return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1))
        out: np.ndarray | None = None
        for g, (j, c) in enumerate(groups.tolist()):
            block = self._chunk(j, s, c)
            if out is None:
                out = np.empty((len(idx), block.shape[1]), dtype=block.dtype)
            sel = order[bounds[g]:bounds[g + 1]]
            out[sel] = block[local[sel] - c * self.chunk]
        assert out is not None
        return out
