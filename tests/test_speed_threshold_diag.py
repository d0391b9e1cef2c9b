"""The fast G-emp search, the cached A.1 directions and the buffered diagonal
``component_logpdf`` (issue 21) against the straightforward algorithms they replace,
compared bit for bit (signed zeros included) on adversarial inputs."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bounds.base import BoundInputs
from bounds.check.diagnostics import (
    A1Expectation,
    _directions,
    _nearest_foreign,
    _task_mixture,
    a1_diagnostics,
)
from bounds.mixture import GaussianMixtures
from bounds.threshold import ThresholdEmpiricalBound

# ------------------------------------------------------------------ references


def _gemp_reference(S: np.ndarray, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original G-emp loop: every own and every foreign score a candidate."""
    m_ = S.shape[1]
    n_t = np.bincount(task, minlength=m_)
    per, r_best = np.empty(m_), np.empty(m_)
    for t in range(m_):
        rows = S[task == t]
        own = np.sort(rows[:, t])
        foreign = np.sort(np.delete(rows, t, axis=1).ravel())
        cand = np.concatenate([own, foreign, [np.inf]])
        f = (n_t[t] - np.searchsorted(own, cand, "left")
             + np.searchsorted(foreign, cand, "left")) / n_t[t]
        k = int(np.argmin(f))
        per[t], r_best[t] = f[k], cand[k]
    return per, r_best


def _component_logpdf_reference(mix: GaussianMixtures, Z: np.ndarray) -> np.ndarray:
    """The original diagonal block loop (a fresh array per block)."""
    n, d = Z.shape
    m_, K = mix.weights.shape
    P = m_ * K
    mu = mix.means.reshape(P, d)
    var = mix.covariances.reshape(P, d)
    inv_sd = 1.0 / np.sqrt(var)
    logdet = np.log(var).sum(axis=1)
    out = np.empty((n, P))
    step = max(1, (1 << 17) // max(1, P * d))
    for i0 in range(0, n, step):
        y = Z[i0 : i0 + step][:, None, :] - mu[None]
        y *= inv_sd[None]
        out[i0 : i0 + step] = np.einsum("npd,npd->np", y, y)
    return (-0.5 * (out + logdet[None] + d * np.log(2 * np.pi))).reshape(n, m_, K)


def _directions_reference(mix: GaussianMixtures, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The original per-task direction loop of a1_diagnostics."""
    m_, K = mix.weights.shape
    nf = _nearest_foreign(mix)
    mu_all = mix.means.reshape(m_ * K, mix.dim)
    U = np.zeros((K, mix.dim))
    for k in range(K):
        j = nf[t * K + k]
        if j >= 0:
            U[k] = mu_all[j] - mix.means[t, k]
        else:
            cov = mix.covariances[t, k]
            U[k, int(np.argmax(cov if mix.diagonal else np.diagonal(cov)))] = 1.0
    if mix.diagonal:
        su = (mix.covariances[t] * U * U).sum(axis=1)
    else:
        su = np.einsum("ki,kij,kj->k", U, mix.covariances[t], U)
    return U, su


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ G-emp

#: few distinct values (ties across own/foreign scores), signed zeros, extreme scales
_POOL = [-0.0, 0.0, 1.0, -1.0, 2.0, 0.5, 1e300, -1e300, 5e-324, -5e-324, 1e-300, 3.0]
_values = st.one_of(
    st.sampled_from(_POOL),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-3, 3).map(float),
)


@st.composite
def _score_problem(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    m_ = draw(st.integers(1, 5))
    counts = draw(st.lists(st.integers(1, 6), min_size=m_, max_size=m_))
    task = np.repeat(np.arange(m_), counts)
    if draw(st.booleans()):  # labels in any order
        task = task[np.asarray(draw(st.permutations(range(task.size))))]
    n = task.size
    vals = draw(st.lists(_values, min_size=n * m_, max_size=n * m_))
    S = np.asarray(vals, dtype=np.float64).reshape(n, m_)
    if draw(st.booleans()):  # separated: own scores below every foreign one (mostly)
        S[np.arange(n), task] -= 10.0
    if draw(st.booleans()):  # a constant matrix (zero variance, all ties)
        S[:] = draw(st.sampled_from(_POOL))
    return S, task


def _gemp(S: np.ndarray, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scores look like similarities"
        inp = BoundInputs(scores=S, task=task)
    per, extra = ThresholdEmpiricalBound()._per_task(inp)
    return per, extra["r"]


@given(_score_problem())
def test_gemp_matches_full_candidate_search(prob: tuple[np.ndarray, np.ndarray]) -> None:
    S, task = prob
    per, r = _gemp(S, task)
    per_ref, r_ref = _gemp_reference(S, task)
    assert _same_bits(per, per_ref)
    assert _same_bits(r, r_ref)


@pytest.mark.parametrize("seed", range(4))
def test_gemp_matches_on_overlapping_and_separated_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m_, n = 7, 400
    task = rng.integers(0, m_, n)
    task[:m_] = np.arange(m_)
    for shift in (0.0, 0.5, 3.0, 50.0):  # from full overlap to full separation
        S = rng.standard_normal((n, m_))
        S[np.arange(n), task] -= shift
        S = np.round(S, 1)  # many ties
        per, r = _gemp(S, task)
        per_ref, r_ref = _gemp_reference(S, task)
        assert _same_bits(per, per_ref) and _same_bits(r, r_ref)


def test_gemp_signed_zero_candidate_is_the_full_sorts_choice() -> None:
    # the minimiser is the foreign value 0 with both signs present: the fast path must
    # return the sign the full sort puts first (it recomputes that task)
    for S in (np.array([[-1.0, -0.0, 0.0], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]),
              np.array([[-1.0, 0.0, -0.0], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]])):
        task = np.array([0, 1, 2])
        per, r = _gemp(S, task)
        per_ref, r_ref = _gemp_reference(S, task)
        assert _same_bits(per, per_ref) and _same_bits(r, r_ref)
    S = np.array([[-1.0, -0.0, 0.0, 5.0], [-2.0, 0.0, -0.0, 5.0], [-1.5, 7.0, 0.0, -0.0]])
    S = np.concatenate([S, np.full((3, 4), 9.0)])
    task = np.array([0, 0, 0, 1, 2, 3])
    per, r = _gemp(S, task)
    per_ref, r_ref = _gemp_reference(S, task)
    assert _same_bits(per, per_ref) and _same_bits(r, r_ref)


# ------------------------------------------------------------------ mixtures


def _mixture(rng: np.random.Generator, m_: int, K: int, d: int, *, scale: float = 1.0,
             diagonal: bool = True, zero_weight: bool = False) -> GaussianMixtures:
    w = rng.random((m_, K)) + 0.1
    if zero_weight and K > 1:
        w[:, -1] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    mu = rng.standard_normal((m_, K, d)) * scale
    if diagonal:
        cov = (rng.random((m_, K, d)) + 0.05) * scale**2
    else:
        A = rng.standard_normal((m_, K, d, d))
        cov = (A @ np.swapaxes(A, -1, -2) + d * np.eye(d)) * scale**2
    return GaussianMixtures(w, mu, cov)


@given(n=st.integers(1, 80), m_=st.integers(1, 3), K=st.integers(1, 4),
       d=st.sampled_from([1, 3, 700, 2000]), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-150, 1e-3, 1.0, 1e150]))
def test_component_logpdf_diagonal_bitwise(n: int, m_: int, K: int, d: int, seed: int,
                                           scale: float) -> None:
    # d = 700, 2000: several blocks per call, and a last partial block
    rng = np.random.default_rng(seed)
    mix = _mixture(rng, m_, K, d, scale=scale)
    Z = rng.standard_normal((n, d)) * scale
    Z[: n // 3] = mix.means[0, 0]  # rows at a component mean: zero deviations
    assert _same_bits(mix.component_logpdf(Z), _component_logpdf_reference(mix, Z))


@pytest.mark.parametrize("diagonal", [True, False])
@pytest.mark.parametrize("m_", [1, 3])
def test_cached_directions_match_the_per_task_loop(diagonal: bool, m_: int) -> None:
    rng = np.random.default_rng(m_)
    mix = _mixture(rng, m_, 3, 5, diagonal=diagonal, zero_weight=True)
    exp = A1Expectation(mix)
    for t in range(m_):
        U, su = exp.directions(t)
        U_ref, su_ref = _directions_reference(mix, t)
        assert _same_bits(U, U_ref) and _same_bits(su, su_ref)
        assert exp.directions(t)[0] is U  # cached
        U2, su2 = _directions(mix, _nearest_foreign(mix), t)
        assert _same_bits(U2, U_ref) and _same_bits(su2, su_ref)


def test_a1_diagnostics_shared_expectation_equals_fresh_calls() -> None:
    # a shared expectation (directions cached by the first split) gives what fresh
    # calls give; an expectation of other mixtures does not lend its directions
    rng = np.random.default_rng(5)
    mix = _mixture(rng, 3, 2, 6, zero_weight=True)
    other = _mixture(rng, 3, 2, 6)
    reps_a = [mix.sample(60, rng)[0] for _ in range(3)]
    reps_b = [mix.sample(40, rng)[0] for _ in range(3)]
    shared = A1Expectation(mix, n_samples=64)
    got = [a1_diagnostics(mix, r, expectation=shared) for r in (reps_a, reps_b)]
    fresh = [a1_diagnostics(mix, r, expectation=A1Expectation(mix, n_samples=64))
             for r in (reps_a, reps_b)]
    assert got == fresh
    alien = A1Expectation(other, n_samples=64)
    res = a1_diagnostics(mix, reps_a, expectation=alien)
    assert not alien._dirs  # the other mixtures' cache is left alone
    ref = a1_diagnostics(mix, reps_a, expectation=A1Expectation(other, n_samples=64))
    assert res == ref
    # the log-likelihoods are those of the task's own mixture
    for t in range(3):
        ll = _task_mixture(mix, t).logpdf(reps_a[t])[:, 0]
        assert np.isclose(got[0]["loglik_heldout"][t], ll.mean(), rtol=1e-12)


# ------------------------------------------------------------------ score blocks, claims


def _own_foreign_reference(S: np.ndarray, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original: a copy of the whole matrix with the own entries at +inf."""
    rows = np.arange(S.shape[0])
    F = S.copy()
    F[rows, task] = np.inf
    return S[rows, task], F.min(axis=1)


def _claim_split_reference(S: np.ndarray, task: np.ndarray) -> dict[str, np.ndarray]:
    """The original claim split (whole-matrix copy, one argmin)."""
    n, m_ = S.shape
    n_t = np.bincount(task, minlength=m_)
    rows = np.arange(n)
    own = S[rows, task]
    F = S.copy()
    F[rows, task] = np.inf
    win = np.argmin(F, axis=1)
    err = F[rows, win] <= own
    frac = lambda b: np.bincount(task, weights=b.astype(np.float64), minlength=m_) / n_t
    return {"error": frac(err), "earlier": frac(err & (win < task)),
            "later": frac(err & (win > task))}


@given(prob=_score_problem(), block=st.sampled_from([1, 2, 7, 64, 1 << 16]))
def test_score_blocks_equal_the_whole_matrix(prob: tuple[np.ndarray, np.ndarray],
                                             block: int) -> None:
    # row blocks of any size (down to one row; a last partial block) give the own scores,
    # the foreign minima (ties, signed zeros) and the claim split of the whole matrix
    import bounds.empirical
    from bounds.claims import claim_split
    from bounds.empirical import _own_and_foreign_min

    S, task = prob
    assume(S.shape[1] >= 2)  # one task: no foreign score (claim_split's own branch)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bounds.empirical, "_BLOCK_ELEMS", block)
        own, fmin = _own_and_foreign_min(S, task)
        own_w, fmin_w, win = _own_and_foreign_min(S, task, winner=True)
        got = claim_split(S, task)
    own_ref, fmin_ref = _own_foreign_reference(S, task)
    assert _same_bits(own, own_ref) and _same_bits(fmin, fmin_ref)
    # with the winner: the first foreign minimum, and the same minimum's value
    F = S.copy()
    F[np.arange(S.shape[0]), task] = np.inf
    assert np.array_equal(win, np.argmin(F, axis=1)) and _same_bits(own_w, own_ref)
    assert np.array_equal(fmin_w, fmin_ref)
    ref = _claim_split_reference(S, task)
    for key, val in ref.items():
        assert _same_bits(got[key], val), key


def test_table_claims_computed_by_the_items_are_the_tables_own(tmp_path) -> None:
    # the claim split each table's work item computes is that of the table's own scores
    # (not of another table), equal to what attach computes without it
    from rundir_factory import write_run_dir

    from bounds.check import check_run, load_run
    from bounds.check.ladder import attach, table_claims

    run = write_run_dir(tmp_path / "run", seed=3)
    data = load_run(run)
    report = check_run(data, jobs=2)
    assert report.tables
    for tab in report.tables:
        sf = data.splits[tab.split].scores[(tab.mode, tab.kind)]
        ref = table_claims(sf, tab.n_t)
        assert set(tab.claims) >= set(ref)
        for key, val in ref.items():
            assert _same_bits(tab.claims[key], val), (tab.title, key)
    fresh = [dataclasses.replace(t, claims=None, predictions=[]) for t in report.tables]
    attach(fresh, data)
    for a, b in zip(fresh, report.tables):
        assert a.claims.keys() == b.claims.keys()
        for key in a.claims:
            assert _same_bits(a.claims[key], b.claims[key]), (a.title, key)


# ------------------------------------------------------------------ mixture reductions


@given(n=st.integers(1, 40), m_=st.integers(1, 3), K=st.sampled_from([1, 2, 3, 5, 12, 20]),
       d=st.sampled_from([1, 4, 150]), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-150, 1.0, 1e150]), zero_weight=st.booleans())
def test_component_reductions_bitwise(n: int, m_: int, K: int, d: int, seed: int,
                                      scale: float, zero_weight: bool) -> None:
    # the slice-wise min / max over the K components (mixture._last_axis) leaves nll,
    # nll_screen and nll_lower bit for bit as numpy's reductions make them
    import bounds.mixture
    from bounds.mixture import _last_axis

    rng = np.random.default_rng(seed)
    mix = _mixture(rng, m_, K, d, scale=scale, zero_weight=zero_weight)
    Z = rng.standard_normal((n, d)) * scale
    Z[: n // 3] = mix.means[0, 0]
    dims = np.arange(0, d, 2)
    got = (mix.nll(Z), *mix.nll_screen(Z), mix.nll_lower(Z, dims))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bounds.mixture, "_last_axis", lambda op, a: op.reduce(a, axis=-1))
        want = (mix.nll(Z), *mix.nll_screen(Z), mix.nll_lower(Z, dims))
    for g, w in zip(got, want):
        assert _same_bits(g, w)
    for op in (np.minimum, np.maximum):
        a = rng.choice([-0.0, 0.0, 1.0, -np.inf, np.inf, np.nan], size=(3, 2, K))
        assert np.array_equal(_last_axis(op, a), op.reduce(a, axis=-1), equal_nan=True)


def _sample_reference(mix: GaussianMixtures, n_per_task: list[int], seed: int) -> np.ndarray:
    """The original sampler: the rows of each component filled through a boolean mask."""
    rng = np.random.default_rng(seed)
    Zs = []
    for t in range(mix.n_tasks):
        comp = rng.choice(mix.n_components, size=n_per_task[t], p=mix.weights[t])
        eps = rng.standard_normal((n_per_task[t], mix.dim))
        Z = np.empty((n_per_task[t], mix.dim))
        for k in np.unique(comp):
            sel = comp == k
            Z[sel] = mix.means[t, k] + eps[sel] * np.sqrt(mix.covariances[t, k])
        Zs.append(Z)
    return np.concatenate(Zs)


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150])
@pytest.mark.parametrize("zero_weight", [False, True])
def test_diagonal_sample_bitwise(scale: float, zero_weight: bool) -> None:
    # the gathered sampler draws the same stream and forms the same rows (tasks with 0,
    # 1 and many draws; a component of weight 0 is never drawn)
    rng = np.random.default_rng(11)
    mix = _mixture(rng, 4, 5, 9, scale=scale, zero_weight=zero_weight)
    counts = [0, 1, 37, 300]
    Z, task = mix.sample(counts, np.random.default_rng(2))
    assert _same_bits(Z, _sample_reference(mix, counts, 2))
    assert np.array_equal(task, np.repeat(np.arange(4), counts))
