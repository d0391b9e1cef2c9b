"""Blocks of a computation on threads (bounds/_blas.py, issue #21): the cluster statistics,
the directional tails and the distance matrices give the same bits on one thread and on
several, with blocks small enough that every thread runs many, and the same bits whatever
OpenBLAS's own thread count; thread_map keeps the order, raises a block's error and runs
each block under the caller's numpy error state."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bounds
import bounds._blas as blas
import bounds.cluster_fit as cluster_fit
import bounds.distances as distances
import bounds.geometry as geometry
import bounds.sketch as sketch
from bounds._blas import (
    blas_threads,
    blas_width,
    block_width,
    thread_map,
    threads_only_in_blocks,
)


def _at_width(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """``width`` threads for every thread_map, however small the work."""
    monkeypatch.setattr(blas, "blas_width", lambda: width)
    monkeypatch.setattr(blas, "THREAD_MIN_ELEMS", 0)


def test_thread_map_order_errors_and_width() -> None:
    blocks = list(range(37))
    for width in (1, 2, 5):
        assert thread_map(lambda b: b * b, blocks, width) == [b * b for b in blocks]
    assert thread_map(lambda b: b, [], 3) == []

    def bad(b: int) -> int:
        if b == 7:
            raise ValueError("block 7")
        return b

    for width in (1, 3):
        with pytest.raises(ValueError, match="block 7"):
            thread_map(bad, blocks, width)
    with blas_threads(1):
        assert blas_width() == 1


def test_threads_only_in_blocks() -> None:
    """Within: one BLAS thread, and thread_map really on the width set (three blocks
    meet at a barrier: one thread alone would wait for ever); a block's own thread_map
    runs on one thread (no threads within threads)."""
    import threading

    barrier = threading.Barrier(3, timeout=20)

    def meet(b: int) -> int:
        barrier.wait()
        return block_width()

    with threads_only_in_blocks(3):
        assert blas_width() == 1 and block_width() == 3
        assert thread_map(meet, [0, 1, 2]) == [1, 1, 1]


def test_blocks_keep_the_callers_error_state() -> None:
    """numpy's error state is per thread: every block runs under the caller's, its
    callback included."""
    tiny = np.full(4, 1e-300)

    def under(b: int) -> float:
        return float((tiny * tiny).sum())  # underflows

    for width in (1, 3):
        with np.errstate(under="raise"):
            with pytest.raises(FloatingPointError):
                thread_map(under, list(range(6)), width)
        with np.errstate(under="ignore"):
            assert thread_map(under, list(range(6)), width) == [0.0] * 6
        seen: list[str] = []
        with np.errstate(under="call", call=lambda kind, flag, seen=seen: seen.append(kind)):
            thread_map(under, list(range(6)), width)
        assert seen and set(seen) == {"underflow"}


def _problem(seed: int, C: int, d: int, n: int, scale_exp: int) -> tuple:
    rng = np.random.default_rng(seed)
    m = max(2, C // 3)
    ct = np.arange(C) % m
    mu = rng.normal(size=(C, d)) * 2.0**scale_exp
    mu[1] = mu[0] if C > 2 and ct[1] != ct[0] else mu[1]  # coincident foreign centroids
    task = rng.permutation(np.arange(n) % m)  # every task has points
    Z = rng.normal(size=(n, d)) * 2.0**scale_exp * rng.uniform(0.1, 2.0, size=d)
    Z[1] = Z[0]  # a duplicate point
    if n > 8:
        Z[:, -1] = 0.0  # a zero-variance coordinate
    return Z, task, mu, ct


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), C=st.integers(2, 70), d=st.sampled_from([5, 40, 130]),
       q=st.sampled_from([None, 1, 3, 8]), per=st.integers(1, 30),
       scale_exp=st.integers(-40, 40))
def test_cluster_stats_and_tails_same_bits_on_threads(seed: int, C: int, d: int,
                                                      q: int | None, per: int,
                                                      scale_exp: int) -> None:
    """cluster_stats (assignment, first pass, sketch chunks, residual diagonal) and the
    directional tails on 1 and on 3 threads, tiny blocks: every array bit-identical."""
    Z, task, mu, ct = _problem(seed, C, d, C * per, scale_exp)
    (cs1, p1), (cs3, p3) = (_stats_and_tails(Z, task, mu, ct, q, d, w) for w in (1, 3))
    _assert_same(cs1, p1, cs3, p3)


def _stats_and_tails(Z: np.ndarray, task: np.ndarray, mu: np.ndarray, ct: np.ndarray,
                     q: int | None, d: int, width: int) -> tuple:
    """cluster_stats and the tails at ``width`` threads, with the smallest blocks."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sketch, "_CHUNK_ELEMS", 3 * d * d)  # a few clusters per sketch chunk
        mp.setattr(cluster_fit, "_CLUSTER_BLOCK", 3)  # the per-cluster passes
        mp.setattr(geometry, "_BLOCK_ELEMS", 1)  # the smallest tail blocks
        mp.setattr(geometry, "_DIRECT_LIMIT", 0)  # the blocked BLAS path of the tails
        mp.setattr(distances, "_DIRECT_LIMIT", 0)  # and of the distances
        mp.setattr(distances, "_BLOCK_ELEMS", 1)  # in blocks of 64 rows
        _at_width(mp, width)
        cs = bounds.cluster_stats(Z, task, mu, ct, sketch_rank=q)
        return cs, bounds.BoundInputs(clusters=cs).directional()


def _assert_same(cs1: object, p1: np.ndarray, cs3: object, p3: np.ndarray) -> None:
    for f in ("count", "msr", "max_radius", "offset", "eigvecs", "eigvals", "resid",
              "point_cluster", "point_radius", "resid_diag"):
        np.testing.assert_array_equal(getattr(cs1, f), getattr(cs3, f), err_msg=f)
    np.testing.assert_array_equal(p1, p3)


def test_threads_interleaved_often() -> None:
    """A larger problem on 4 threads, the interpreter switching threads every microsecond
    (so that blocks really interleave: a buffer shared between blocks shows), 3 times."""
    Z, task, mu, ct = _problem(11, 150, 40, 150 * 12, 0)
    ref = _stats_and_tails(Z, task, mu, ct, 4, 40, 1)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(3):
            _assert_same(*ref, *_stats_and_tails(Z, task, mu, ct, 4, 40, 4))
    finally:
        sys.setswitchinterval(old)


@pytest.mark.parametrize("shape", [(1500, 700, 2), (700, 700, 10), (300, 90, 64),
                                   (2000, 600, 32), (900, 900, 130)])
def test_distances_same_bits_whatever_blas_threads(shape: tuple[int, int, int]) -> None:
    """sqdist's BLAS path with two BLAS threads (raised explicitly: a runner's default may
    be one) and with one: the same bits (shapes where OpenBLAS's own product differed
    between the two, on one CPU kernel or another)."""
    na, nb, d = shape
    rng = np.random.default_rng(na + d)
    A, B = rng.normal(size=(na, d)), rng.normal(size=(nb, d))
    with blas_threads(2):
        two = bounds.sqdist(A, B, direct=False)
    with blas_threads(1):
        one = bounds.sqdist(A, B, direct=False)
    np.testing.assert_array_equal(two, one)


def test_tails_blocks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tails in one block, in blocks of 16 clusters and by the direct path agree to
    1e-12 (the blocks' products have other shapes, the direct path sums otherwise)."""
    Z, task, mu, ct = _problem(3, 60, 50, 1200, 0)
    cs = bounds.cluster_stats(Z, task, mu, ct, sketch_rank=4)
    got = []
    for block, direct in ((1 << 30, 0), (1, 0), (1 << 18, 1 << 40)):
        monkeypatch.setattr(geometry, "_BLOCK_ELEMS", block)
        monkeypatch.setattr(geometry, "_DIRECT_LIMIT", direct)
        got.append(bounds.BoundInputs(clusters=cs).directional())
    np.testing.assert_allclose(got[1], got[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[2], got[0], rtol=1e-12, atol=1e-15)
