"""The score-table statistics rewritten for speed (issue #21) give the same bits as the
formulations they replace, on adversarial matrices: per-group score moments one group at
a time (bounds/score_moments.py; ties, constant groups, one group, one column, extreme
scales, unsorted keys), segment sums one segment at a time (bounds/distances.py, used by
cluster_stats: wide rows, one-row segments) and the orientation check's own-column-maximum rate
(bounds/base.py; ties, NaN, infinities, two columns), and unit_exponent without an |x|
temporary (bounds/distances.py; NaN, infinities, signed zeros, integers, empty arrays)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bounds.base import own_column_max_rate
from bounds.distances import _group_starts, _segment_sums, unit_exponent
from bounds.score_moments import _grouped_moments


def _reference(X: np.ndarray, keys: np.ndarray, n_groups: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The previous implementation (every group at once), kept as the oracle."""
    order = np.argsort(keys, kind="stable")
    Xs = X[order]
    starts, counts = _group_starts(keys[order], n_groups)
    cnt = counts[:, None].astype(np.float64)
    mean = np.add.reduceat(Xs, starts, axis=0) / cnt
    rep = np.repeat(mean, counts, axis=0)
    mean = mean + np.add.reduceat(Xs - rep, starts, axis=0) / cnt
    lo = np.minimum.reduceat(Xs, starts, axis=0)
    hi = np.maximum.reduceat(Xs, starts, axis=0)
    mean = np.clip(mean, lo, hi)
    const = lo == hi
    mean = np.where(const, lo, mean)
    rep = np.repeat(mean, counts, axis=0)
    var = np.add.reduceat((Xs - rep) ** 2, starts, axis=0) / cnt
    var = np.where(const, 0.0, var)
    return mean, var


@settings(max_examples=150, deadline=None)
@given(n_groups=st.integers(1, 12), m=st.sampled_from([1, 2, 3, 17, 64]),
       extra=st.integers(0, 400), sort=st.booleans(), seed=st.integers(0, 2**32 - 1),
       scale_exp=st.integers(-300, 300), offset=st.floats(-1e6, 1e6),
       ties=st.sampled_from(["none", "rounded", "constant", "constant-group"]))
def test_same_bits_as_whole_matrix_reduceat(n_groups: int, m: int, extra: int, sort: bool,
                                            seed: int, scale_exp: int, offset: float,
                                            ties: str) -> None:
    rng = np.random.default_rng(seed)
    keys = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, extra)])
    keys = np.sort(keys) if sort else rng.permutation(keys)
    X = (rng.normal(size=(keys.size, m)) + offset) * 2.0**scale_exp
    if ties == "rounded":
        X = np.round(X / 2.0**scale_exp, 1) * 2.0**scale_exp
    elif ties == "constant":
        X[:] = X[0, 0]
    elif ties == "constant-group":
        X[keys == 0] = X[0]
    want = _reference(X, keys, n_groups)
    got = _grouped_moments(X, keys, n_groups)
    for a, b in zip(got, want):
        assert a.shape == b.shape == (n_groups, m)
        np.testing.assert_array_equal(a, b)  # bit for bit, inf and 0 included


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 60), m=st.integers(2, 6), seed=st.integers(0, 2**32 - 1),
       levels=st.integers(1, 4), special=st.sampled_from(["none", "nan", "inf", "-inf"]),
       flip=st.booleans())
def test_own_column_max_rate_exact(n: int, m: int, seed: int, levels: int, special: str,
                                   flip: bool) -> None:
    """Few distinct values (many ties), NaN and infinities: the same fraction as the
    direct formula (own > max of the other columns)."""
    rng = np.random.default_rng(seed)
    S = rng.integers(0, levels, size=(n, m)).astype(np.float64)
    S = -S if flip else S
    if special != "none":
        S[rng.random(size=S.shape) < 0.2] = float(special)
    task = rng.integers(0, m, size=n)
    own = S[np.arange(n), task]
    others = np.where(np.arange(m)[None, :] == task[:, None], -np.inf, S)
    want = float(np.mean(own > others.max(axis=1)))
    assert own_column_max_rate(S, task) == want


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(1, 300), min_size=1, max_size=12),
       d=st.sampled_from([1, 2, 5, 64, 768]), seed=st.integers(0, 2**32 - 1),
       scale_exp=st.integers(-300, 300), fortran=st.booleans())
def test_segment_sums_same_bits_as_reduceat(counts: list[int], d: int, seed: int,
                                            scale_exp: int, fortran: bool) -> None:
    rng = np.random.default_rng(seed)
    cnt = np.array(counts)
    starts = np.concatenate(([0], np.cumsum(cnt)[:-1]))
    X = rng.normal(size=(int(cnt.sum()), d)) * 2.0**scale_exp
    X = np.asfortranarray(X) if fortran else X
    np.testing.assert_array_equal(_segment_sums(X, starts, cnt),
                                  np.add.reduceat(X, starts, axis=0))


def _unit_exponent_reference(*arrays: np.ndarray, squared: tuple = ()) -> int:
    mx = 0.0
    for a in arrays:
        if a.size:
            mx = max(mx, float(np.max(np.abs(a))))
    for a in squared:
        if a.size:
            mx = max(mx, float(np.sqrt(np.max(np.abs(a)))))
    if not (0.0 < mx < np.inf):
        return 0
    return min(int(np.frexp(mx)[1]), 1023)


_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.sampled_from([0.0, -0.0, 5e-324, -1.7976931348623157e308]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_VALUES, max_size=6), max_size=3),
       st.lists(st.lists(_VALUES, max_size=6), max_size=2),
       st.lists(st.integers(-2**63 + 1, 2**63 - 1), max_size=4))
def test_unit_exponent_same_as_abs_max(arrays: list, squared: list, ints: list) -> None:
    """(At -2**63 the reference's np.abs wraps to a negative number; the new form gives
    2**63 there, the right magnitude.)"""
    arrs = [np.array(a, dtype=np.float64) for a in arrays] + [np.array(ints, dtype=np.int64)]
    sq = tuple(np.array(a, dtype=np.float64) for a in squared)
    assert unit_exponent(*arrs, squared=sq) == _unit_exponent_reference(*arrs, squared=sq)
    b = np.array([True, False])
    assert unit_exponent(b) == _unit_exponent_reference(b) == 1
