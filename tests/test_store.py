"""cft.evaluation.store: the bounded representation store and the on-demand split
representations."""

from __future__ import annotations

import numpy as np
import pytest

from cft.evaluation.store import RepStore, SplitReps


def _blocks(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(1, 40)), 7)).astype(np.float32)
            for _ in range(n)]


@pytest.mark.parametrize("budget", [None, 0, 3000, 10**9])
def test_round_trip_is_bitwise_whatever_the_budget(tmp_path, budget) -> None:
    blocks = _blocks(30)
    store = RepStore(tmp_path / "scratch", budget)
    for i, b in enumerate(blocks):
        store.put(("test", i, 0), b)
        if budget is not None:
            assert store.memory_bytes <= budget
    for i, b in enumerate(blocks):
        got = store.get(("test", i, 0))
        assert got.dtype == b.dtype and got.shape == b.shape
        assert got.tobytes() == b.tobytes()
    total = sum(b.nbytes for b in blocks)
    assert store.memory_bytes + store.disk_bytes == total and len(store) == 30
    files = sorted((tmp_path / "scratch").glob("reps-*.bin")) if budget is not None else []
    if budget in (0, 3000):
        assert store.disk_bytes > 0 and files
        assert sum(f.stat().st_size for f in files) == store.disk_bytes
        if budget == 3000:  # a spill writes many blocks into one file, down to budget / 2
            assert len(files) < 30
    else:
        assert store.disk_bytes == 0 and not (tmp_path / "scratch").exists()
    store.close()
    assert not (tmp_path / "scratch").exists() and len(store) == 0


def test_oldest_blocks_spill_first(tmp_path) -> None:
    store = RepStore(tmp_path / "s", 4 * 100 * 4)
    for i in range(6):
        store.put(i, np.full((100, 1), i, dtype=np.float32))
    # the 5th block overflows: 0, 1, 2 go to disk (half the budget stays)
    assert list(store._mem) == [3, 4, 5] and sorted(store._disk) == [0, 1, 2]
    assert store.get(0)[0, 0] == 0 and store.get(5)[0, 0] == 5


def test_bad_use(tmp_path) -> None:
    with pytest.raises(ValueError, match="budget_bytes"):
        RepStore(tmp_path, -1)
    with pytest.raises(ValueError, match="folder"):
        RepStore(None, 10)
    store = RepStore(None, None)
    store.put("a", np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="already stored"):
        store.put("a", np.zeros(3, dtype=np.float32))
    with pytest.raises(KeyError):
        store.get("b")
    assert store.get_or_compute("a", lambda: 1 / 0).shape == (3,)


class _Model:
    """h_s of task j's sample r = a fixed function of (j, s, r); records every call."""

    def __init__(self, sizes: list[int], d: int = 3) -> None:
        self.sizes, self.d, self.calls = sizes, d, []

    def value(self, j: int, s: int, r: np.ndarray) -> np.ndarray:
        base = 1000.0 * j + 10.0 * s + r.astype(np.float32)
        return np.repeat(base[:, None], self.d, axis=1).astype(np.float32) + np.arange(self.d)

    def __call__(self, j: int, s: int, rows: np.ndarray | None) -> np.ndarray:
        self.calls.append((j, s, None if rows is None else tuple(rows.tolist())))
        r = np.arange(self.sizes[j]) if rows is None else rows
        return self.value(j, s, r)

    def want(self, s: int, rows: np.ndarray) -> np.ndarray:
        starts = np.concatenate([[0], np.cumsum(self.sizes)])
        j = np.searchsorted(starts, rows, side="right") - 1
        return np.concatenate([self.value(int(jj), s, np.array([r - starts[jj]]))
                               for jj, r in zip(j, rows)])


@pytest.mark.parametrize("chunk", [None, 1, 4, 64])
def test_split_reps_serve_any_rows(tmp_path, chunk) -> None:
    sizes = [5, 0, 9, 3]
    model = _Model(sizes)
    reps = SplitReps(RepStore(tmp_path, 0), "test", sizes, 3, model, chunk=chunk)
    rng = np.random.default_rng(1)
    for _ in range(5):
        s = int(rng.integers(0, 3))
        rows = rng.permutation(reps.n)[: int(rng.integers(1, reps.n))]
        np.testing.assert_array_equal(reps.get(s, rows), model.want(s, rows))
    np.testing.assert_array_equal(reps.get(2), model.want(2, np.arange(reps.n)))
    assert reps.get(1, np.array([], dtype=np.int64)).shape[0] == 0
    keys = [c[:2] + (c[2] if chunk is None else c[2][0] // chunk,) for c in model.calls]
    assert len(keys) == len(set(keys)), "a block or chunk was computed twice"
    with pytest.raises(ValueError, match="out of range"):
        reps.get(3)
    fresh = _Model(sizes)  # rows of task 2 only: no other task's block or chunk is computed
    SplitReps(RepStore(tmp_path / "f", 0), "test", sizes, 3, fresh, chunk=chunk).get(
        0, np.array([6, 9, 13]))
    assert {c[0] for c in fresh.calls} == {2}


def test_chunks_do_not_depend_on_the_request_history(tmp_path) -> None:
    """A chunk is always computed over the same samples (the resume guarantee)."""
    sizes = [10, 7]
    a, b = _Model(sizes), _Model(sizes)
    ra = SplitReps(RepStore(tmp_path / "a", None), "x", sizes, 2, a, chunk=4)
    rb = SplitReps(RepStore(tmp_path / "b", None), "x", sizes, 2, b, chunk=4)
    ra.get(1, np.array([13]))
    ra.get(1, np.array([2, 9, 16]))
    rb.get(1, np.array([16, 9, 2, 13]))
    assert sorted(a.calls) == sorted(b.calls) == [
        (0, 1, (0, 1, 2, 3)), (0, 1, (8, 9)), (1, 1, (0, 1, 2, 3)), (1, 1, (4, 5, 6))]
