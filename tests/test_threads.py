"""Blocks of a computation on threads (bounds/_blas.py, issue #21): the cluster statistics
and the directional tails give the same bits on one thread and on several, with blocks
small enough that every thread runs many; thread_map keeps the order and raises a
block's error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bounds
import bounds._blas as blas
import bounds.geometry as geometry
import bounds.sketch as sketch
from bounds._blas import blas_threads, blas_width, thread_map


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
    assert blas_width() >= 1


def _problem(seed: int, C: int, d: int, n: int, scale_exp: int) -> tuple:
    rng = np.random.default_rng(seed)
    m = max(2, C // 3)
    ct = np.arange(C) % m
    mu = rng.normal(size=(C, d)) * 2.0**scale_exp
    mu[1] = mu[0] if C > 2 and ct[1] != ct[0] else mu[1]  # coincident foreign centroids
    task = rng.integers(0, m, size=n)
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
    out = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sketch, "_CHUNK_ELEMS", 3 * d * d)  # a few clusters per sketch chunk
        mp.setattr(geometry, "_BLOCK_ELEMS", 1)  # the smallest tail blocks
        mp.setattr(geometry, "_DIRECT_LIMIT", 0)  # the blocked BLAS path of the tails
        for width in (1, 3):
            _at_width(mp, width)
            cs = bounds.cluster_stats(Z, task, mu, ct, sketch_rank=q)
            inp = bounds.BoundInputs(clusters=cs)
            out.append((cs, inp.directional()))
    (cs1, p1), (cs3, p3) = out
    for f in ("count", "msr", "max_radius", "offset", "eigvecs", "eigvals", "resid",
              "point_cluster", "point_radius", "resid_diag"):
        np.testing.assert_array_equal(getattr(cs1, f), getattr(cs3, f), err_msg=f)
    np.testing.assert_array_equal(p1, p3)


def test_tails_blocks_do_not_change_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tails in one block, in blocks of 4 clusters and by the direct path agree: the
    first two bit for bit, the direct path (another summation) to 1e-12."""
    Z, task, mu, ct = _problem(3, 60, 50, 1200, 0)
    cs = bounds.cluster_stats(Z, task, mu, ct, sketch_rank=4)
    got = []
    for block, direct in ((1 << 30, 0), (1, 0), (1 << 18, 1 << 40)):
        monkeypatch.setattr(geometry, "_BLOCK_ELEMS", block)
        monkeypatch.setattr(geometry, "_DIRECT_LIMIT", direct)
        got.append(bounds.BoundInputs(clusters=cs).directional())
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[2], got[0], rtol=1e-12, atol=1e-15)
