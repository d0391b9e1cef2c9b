"""The batched interior-point solver of the compact VBC SDP (bounds/moment/batch.py,
docs/theory.md §14.6) against Clarabel, closed forms and itself one problem at a time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bounds.moment as mo
from bounds.moment import batch
from bounds.moment.sdp import _solve_compact_clarabel, certify_majorant

SOME = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _certified(sol: dict, W: np.ndarray, h: np.ndarray) -> float:
    """The value the checker prints for a solution: the verified majorant's E f."""
    val, _ = certify_majorant(sol["P"], sol["q"], sol["r0"], sol["tau"], W.T, h, None)
    return val


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A batch of problems of one shape (r <= k: the normals span the space), with
    adversarial members: duplicated and opposite normals, far and near halfspaces,
    offsets spread over six decades."""
    k = draw(st.integers(1, 6))
    r = draw(st.integers(1, k))
    B = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(B, r, k))
    if k > 1 and draw(st.booleans()):
        W[:, :, 1] = W[:, :, 0]  # a duplicated halfspace
    if k > 2 and draw(st.booleans()):
        W[:, :, 2] = -W[:, :, 0]  # an opposite one
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    lo = draw(st.sampled_from([1e-3, 0.1, 1.0, 30.0]))
    h = lo * np.exp(rng.uniform(0, np.log(1e3), size=(B, k)))
    return W, h


@SOME
@given(batches())
def test_agrees_with_clarabel_and_is_solved(pb: tuple[np.ndarray, np.ndarray]) -> None:
    """Every problem converges, except where the supremum is 1 (a degenerate optimum that
    is left to Clarabel); its certified value equals Clarabel's to Clarabel's tolerance
    (gap 1e-10); the primal objective (a feasible law's error mass) is below it."""
    W, h = pb
    got = batch.solve_compact_batch(W, h, 1e-10)
    for b, sol in enumerate(got):
        ref = _solve_compact_clarabel(W[b], h[b], 1e-10)
        if sol is None:
            assert ref["primal"] >= 1.0 - 1e-6, (W[b], h[b])
            continue
        v, v_ref = _certified(sol, W[b], h[b]), _certified(ref, W[b], h[b])
        assert v == pytest.approx(v_ref, abs=2e-10, rel=1e-9)
        assert sol["primal"] <= v + 1e-12
        assert sol["status"] == "Solved" and sol["iterations"] <= batch.MAX_ITER


@pytest.mark.parametrize("h", [1e-3, 0.5, 1.0, 7.0, 400.0])
def test_one_halfspace_is_cantelli(h: float) -> None:
    """One halfspace w'y >= h, mean 0, covariance I: the supremum is 1 / (1 + h^2), to
    the solver's gap (tol (GAP_FLOOR + 2 value) <= 1.1e-12 here; Clarabel's is 1e-10)."""
    sol = batch.solve_compact_batch(np.ones((1, 1, 1)), np.array([[h]]), 1e-10)[0]
    truth = 1.0 / (1.0 + h * h)
    v = _certified(sol, np.ones((1, 1)), np.array([h]))
    assert v >= truth
    assert v == pytest.approx(truth, rel=1e-9, abs=1.1e-12)


def test_two_opposite_halfspaces_closed_form() -> None:
    """|y| >= c in one dimension: sup P = 1/c^2 for c >= 1 (Chebyshev), 1 below."""
    W = np.array([[[1.0, -1.0]]])
    for c, truth in [(2.5, 1 / 2.5**2), (1.3, 1 / 1.3**2), (0.7, 1.0)]:
        sol = batch.solve_compact_batch(W, np.array([[c, c]]), 1e-10)[0]
        v = _certified(sol, W[0], np.array([c, c]))
        assert v >= truth - 1e-15 and v == pytest.approx(truth, rel=1e-9)


def test_each_problem_solved_as_if_alone() -> None:
    """Nothing is shared between the problems of a batch: each result is bit-identical to
    solving its problem alone (so moment-opt's batched SDPs equal the per-cluster ones)."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(40, 4, 5))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    h = rng.uniform(0.2, 50.0, size=(40, 5))
    together = batch.solve_compact_batch(W, h, 1e-10)
    for b in (0, 17, 39):
        alone = batch.solve_compact_batch(W[b:b + 1], h[b:b + 1], 1e-10)[0]
        for key in ("P", "q", "r0", "tau", "z", "lam"):
            np.testing.assert_array_equal(together[b][key], alone[key])


def test_unsolved_problems_are_reported_not_raised(monkeypatch) -> None:
    """Non-finite data or too few iterations: None (the caller goes to Clarabel), never an
    exception and never a number."""
    W = np.ones((2, 1, 1))
    h = np.array([[np.nan], [2.0]])
    got = batch.solve_compact_batch(W, h, 1e-10)
    assert got[0] is None and got[1] is not None
    monkeypatch.setattr(batch, "MAX_ITER", 2)
    assert batch.solve_compact_batch(W[1:], h[1:], 1e-10) == [None]


def test_drive_all_falls_back_to_clarabel(monkeypatch) -> None:
    """A problem the batch does not solve is solved by Clarabel: moment-opt's values then
    equal the Clarabel backend's exactly; a solver exception gives the Cantelli fallback."""
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(3):
        A = rng.normal(size=(3, 3))
        cases.append((np.zeros(3), np.eye(3), A, 2.0 * np.linalg.norm(A, axis=1)))

    def gens() -> list:
        return [mo.law._sup_union(*c, law=False, tol=1e-10) for c in cases]

    monkeypatch.setattr(mo.drive, "solve_compact_batch", lambda W, h, tol: [None] * len(W))
    got = mo.drive.drive_all(gens())
    want = [mo.drive.drive(g, "clarabel") for g in gens()]
    assert [g.value for g in got] == [w.value for w in want]

    def broken(W: np.ndarray, h: np.ndarray, tol: float) -> dict:
        raise RuntimeError("no convergence")

    monkeypatch.setattr(mo.drive, "_solve_compact_clarabel", broken)
    got = mo.drive.drive_all(gens())
    assert all(g.method == "cantelli-fallback" and "no convergence" in g.note for g in got)
    assert all(g.value == g.cantelli for g in got)


def _schur_reference(X: np.ndarray, T: np.ndarray, r: int, k: int) -> np.ndarray:
    """The Schur complement formed from the whole K[b, j, i, J, I] (i, I <= r), then its
    blocks copied: the earlier formulation, kept as the oracle of the in-place one."""
    t = r + 1
    X11, X12, X22 = X[:, :t, :t], X[:, :t, t:], X[:, t:, t:]
    T11, T22 = T[:, :t, :t], T[:, t:, t:]
    X21, T21 = np.swapaxes(X12, 1, 2), T[:, t:, :t]
    T12 = np.swapaxes(T21, 1, 2)
    Bn, m, rk = X.shape[0], r * k + k, r * k
    K = X21[:, :, None, None, :] * T12[:, None, :, :, None]
    K += X22[:, :, None, :, None] * T11[:, None, :, None, :]
    K += X11[:, None, :, None, :] * T22[:, :, None, :, None]
    K += X12[:, None, :, :, None] * T21[:, :, None, None, :]
    Kd = X22[:, :, None, :] * T12[:, None, :, :] + X12[:, None, :, :] * T22[:, :, None, :]
    M = np.empty((Bn, m, m))
    M[:, :rk, :rk] = K[:, :, :r, :, :r].reshape(Bn, rk, rk)
    M[:, :rk, rk:] = (K[:, :, :r, :, r] + Kd[:, :, :r, :]).reshape(Bn, rk, k)
    M[:, rk:, :rk] = np.swapaxes(M[:, :rk, rk:], 1, 2)
    Kdr = Kd[:, :, r, :]
    M[:, rk:, rk:] = K[:, :, r, :, r] + Kdr + np.swapaxes(Kdr, 1, 2) + X22 * T22
    return M


@settings(max_examples=40, deadline=None)
@given(r=st.integers(1, 8), k=st.integers(1, 8), B=st.sampled_from([1, 3, 64, 65, 130]),
       seed=st.integers(0, 2**32 - 1), scale_exp=st.integers(-40, 40))
def test_schur_same_bits_as_full_k(r: int, k: int, B: int, seed: int, scale_exp: int
                                   ) -> None:
    """The in-place Schur complement (chunks of batch._CHUNK, one chunk boundary crossed
    at B = 65, 130) equals the whole-K formulation bit for bit, at any scale."""
    rng = np.random.default_rng(seed)
    n = r + 1 + k
    A = rng.normal(size=(B, n, n))
    X = (A @ np.swapaxes(A, 1, 2) + n * np.eye(n)) * 2.0**scale_exp
    A = rng.normal(size=(B, n, n))
    T = (A @ np.swapaxes(A, 1, 2) + np.eye(n)) * 2.0**-scale_exp
    np.testing.assert_array_equal(batch._schur(X, T, r, k), _schur_reference(X, T, r, k))
