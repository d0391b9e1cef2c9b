"""Properties of the optimal two-moment bound ``moment-opt`` (docs/theory.md §3.7).

Adversarial inputs: exact ties on integer grids, duplicated points, zero-variance and
single-point clusters, one cluster, coincident centroids, rank-deficient covariances,
scales from 1e-150 to 1e150, dimension up to 64 with up to ~10 halfspaces. Tolerances are
float or solver tolerances only: exactness on the empirical measure is checked at 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bounds
from bounds import moment as mo

FEW = settings(max_examples=15, deadline=None)
SOME = settings(max_examples=40, deadline=None)
SCALES = (1e-150, 2.0**-300, 1e-3, 1.0, 1e3, 1e150)


def _scaled(mean, cov, A, b, s):
    """The problem in coordinates x' = s x, written with a' = s a and b' = s^2 b."""
    return mean * s, cov * s * s, A * s, b * s * s


def _cantelli(v: float, g: float) -> float:
    return 1.0 if g <= 0 else v / (v + g * g)


def _rand_cov(rng: np.random.Generator, r: int, rank: int) -> np.ndarray:
    X = rng.normal(size=(r, rank)) * rng.uniform(0.2, 3.0, size=rank)
    return X @ X.T


def _outside_fraction(Z: np.ndarray, A: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.any(Z @ A.T >= b[None, :], axis=1)))


# ------------------------------------------------------------------ one halfspace
@SOME
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from(SCALES),
       st.sampled_from([-1.0, 0.0, 0.05, 0.5, 1.0, 3.0, 30.0]), st.booleans())
def test_one_halfspace_equals_cantelli(r: int, seed: int, scale: float, t: float,
                                       singular: bool) -> None:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=r)
    cov = _rand_cov(rng, r, max(1, r - 1) if singular else r)
    a = rng.normal(size=(1, r))
    v = float(a[0] @ cov @ a[0])
    b = np.array([a[0] @ mean + t * np.sqrt(v)])
    g = float(b[0] - a[0] @ mean)
    res = bounds.sup_union_probability(*_scaled(mean, cov, a, b, scale))
    assert res.value == pytest.approx(_cantelli(v, g), abs=1e-6)
    assert res.value >= _cantelli(v, g) - 1e-12  # an upper bound, never below the truth


def test_zero_variance_and_zero_normal() -> None:
    mean = np.array([1.0, 2.0])
    cov = np.zeros((2, 2))
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert bounds.sup_union_probability(mean, cov, A, np.array([1.5, 2.5])).value == 0.0
    assert bounds.sup_union_probability(mean, cov, A, np.array([1.0, 9.0])).value == 1.0
    # a zero normal: the whole space (b <= 0) or nothing (b > 0)
    A0 = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert bounds.sup_union_probability(mean, np.eye(2), A0, np.array([0.0, 5.0])).value == 1
    res = bounds.sup_union_probability(mean, np.eye(2), A0, np.array([1.0, 5.0]))
    assert res.value == pytest.approx(1 / (1 + 16), abs=1e-7)


# ------------------------------------------------------------------ pinned cases
def test_hand_computed_square_2d() -> None:
    """Mean 0, cov I in R^2, error = outside the square |y_i| < c: sup = 2 / c^2.

    Majorant f(y) = |y|^2 / c^2 (>= 1 outside the square, E f = 2/c^2); attained by mass
    1/(2c^2) on each of (+-c, 0), (0, +-c) (closed halfspaces: ties are errors). Posed after
    an affine map y -> L y + m so that neither the mean nor the covariance is trivial.
    """
    c = 2.0
    L = np.array([[2.0, 0.0], [1.0, 0.5]])
    m = np.array([3.0, -1.0])
    Ay = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # y = L^{-1}(x - m): a'y >= c  <=>  (L^{-T} a)'x >= c + (L^{-T} a)'m
    A = Ay @ np.linalg.inv(L)
    b = c + A @ m
    res = bounds.sup_union_probability(m, L @ L.T, A, b, law=True)
    assert res.value == pytest.approx(2.0 / c**2, abs=1e-8)
    assert res.value >= 2.0 / c**2
    assert res.cantelli == pytest.approx(4.0 / (1.0 + c**2))
    chk = bounds.check_law(res.atoms, res.weights, m, L @ L.T, A, b)
    assert chk.error_fraction >= 2.0 / c**2 - 1e-6


@pytest.mark.parametrize("c1,c2", [(2.0, 2.0), (1.5, 3.0), (2.0, 5.0), (1.0, 1.0)])
def test_two_sided_closed_form(c1: float, c2: float) -> None:
    """sup P(X >= c1 or X <= -c2), mean 0, var 1: Cantelli if the other side is beyond
    c + 2/c, else (4 + (c1 - c2)^2) / (c1 + c2)^2 (quadratic majorant through both ends)."""
    if c2 >= c1 + 2 / c1:
        want = 1 / (1 + c1**2)
    elif c1 >= c2 + 2 / c2:
        want = 1 / (1 + c2**2)
    else:
        want = min(1.0, (4 + (c1 - c2) ** 2) / (c1 + c2) ** 2)
    # embedded in 3-d with a correlated covariance: the direction a has variance 1
    rng = np.random.default_rng(7)
    cov = _rand_cov(rng, 3, 3)
    a = rng.normal(size=3)
    a /= np.sqrt(a @ cov @ a)
    mu = rng.normal(size=3)
    A = np.vstack([a, -a])
    b = np.array([a @ mu + c1, -(a @ mu) + c2])
    res = bounds.sup_union_probability(mu, cov, A, b)
    assert res.value == pytest.approx(want, abs=1e-7)
    assert res.value >= want - 1e-12


# ------------------------------------------------------------------ general problems
@st.composite
def problems(draw: st.DrawFn, max_r: int = 8, max_k: int = 8) -> dict:
    r = draw(st.integers(1, max_r))
    k = draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rank = draw(st.integers(0, r))
    mean = rng.normal(size=r)
    cov = _rand_cov(rng, r, rank) if rank else np.zeros((r, r))
    A = rng.normal(size=(k, r))
    if draw(st.booleans()) and k > 1:  # duplicated / parallel halfspaces
        A[-1] = A[0] * draw(st.sampled_from([1.0, 2.0, -1.0]))
    sd = np.sqrt(np.maximum(np.einsum("ki,ij,kj->k", A, cov, A), 1e-3))
    b = A @ mean + rng.uniform(0.5, 4.0, size=k) * sd
    return {"mean": mean, "cov": cov, "A": A, "b": b, "seed": seed}


@SOME
@given(problems())
def test_sdp_below_cantelli_union_and_law_attains(pb: dict) -> None:
    res = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"], law=True)
    assert 0.0 <= res.value <= 1.0
    assert res.value <= res.cantelli + 1e-7
    if res.method == "dual-feasible":
        assert res.gap > -1e-7 and res.gap < 1e-6
    chk = bounds.check_law(res.atoms, res.weights, pb["mean"], pb["cov"], pb["A"], pb["b"])
    assert chk.total_mass == pytest.approx(1.0, abs=1e-12)
    assert chk.min_weight >= 0.0
    assert chk.mean_error <= 1e-6 and chk.cov_error <= 1e-6, chk
    assert chk.error_fraction >= res.value - 1e-5, (chk, res.value)


@FEW
@given(problems(max_r=4, max_k=5), st.sampled_from([1e-150, 1e150]),
       st.integers(0, 2**32 - 1))
def test_translation_rotation_scale_invariance(pb: dict, s: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = pb["mean"].size
    Q, _ = np.linalg.qr(rng.normal(size=(r, r)))
    t = rng.normal(size=r) * 10.0
    base = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"]).value
    # x' = s (Q x + t): a'x >= b  <=>  (Q a / s)'x' >= b + (Q a)'t
    mean = s * (Q @ pb["mean"] + t)
    cov = s * s * (Q @ pb["cov"] @ Q.T)
    A = (pb["A"] @ Q.T) / s
    b = pb["b"] + pb["A"] @ Q.T @ t
    assert bounds.sup_union_probability(mean, cov, A, b).value == pytest.approx(base, abs=1e-7)


@SOME
@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 25), st.booleans(),
       st.integers(0, 2**32 - 1), st.sampled_from(SCALES))
def test_exact_on_the_empirical_measure(r: int, k: int, n: int, grid: bool, seed: int,
                                        scale: float) -> None:
    """The sample is one law with its own (1/n) moments: bound >= fraction outside."""
    rng = np.random.default_rng(seed)
    if grid:  # integer grid: points on the boundaries, duplicates
        Z = rng.integers(-2, 3, size=(n, r)).astype(float)
        A = rng.integers(-2, 3, size=(k, r)).astype(float)
        b = rng.integers(-1, 4, size=k).astype(float)
    else:
        Z = rng.normal(size=(n, r)) * rng.uniform(0.1, 2.0, size=r)
        A = rng.normal(size=(k, r))
        b = A @ Z.mean(axis=0) + rng.uniform(0.0, 3.0, size=k)
    frac = _outside_fraction(Z, A, b)
    mean = Z.mean(axis=0)
    cov = (Z - mean).T @ (Z - mean) / n
    res = bounds.sup_union_probability(*_scaled(mean, cov, A, b, scale))
    assert res.value >= frac - 1e-9, (res, frac)


@SOME
@given(problems(max_r=5, max_k=6), st.integers(0, 2**32 - 1))
def test_monotone_in_covariance(pb: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = pb["mean"].size
    extra = _rand_cov(rng, r, int(rng.integers(1, r + 1))) * rng.choice([1e-3, 0.1, 1.0])
    v1 = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"]).value
    v2 = bounds.sup_union_probability(pb["mean"], pb["cov"] + extra, pb["A"], pb["b"]).value
    assert v2 >= v1 - 1e-7


@FEW
@given(problems(max_r=4, max_k=4))
def test_backends_agree(pb: dict) -> None:
    """The batched interior point and Clarabel on the compact VBC primal, and the S-lemma
    dual (cvxpy), give the same value."""
    a = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"])
    b = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"], backend="cvxpy")
    c = bounds.sup_union_probability(pb["mean"], pb["cov"], pb["A"], pb["b"],
                                     backend="clarabel")
    assert a.value == pytest.approx(b.value, abs=1e-7)
    assert a.value == pytest.approx(c.value, abs=1e-9)


# ------------------------------------------------------------------ certification
def _cantelli_majorant(c: float, r: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The optimal majorant for u'y >= c, u = e_1, mean 0, cov I: E f = 1 / (1 + c^2)."""
    s = c + 1.0 / c
    u = np.eye(r)[0]
    return np.outer(u, u) / s**2, u / (c * s**2), 1.0 / (c * s) ** 2, 2.0 / s


@pytest.mark.parametrize("how", ["P*0.9", "r0-0.01", "q*1.1", "tau*0.5", "tau<0"])
def test_perturbed_dual_point_is_repaired(how: str) -> None:
    r, c = 3, 1.7
    P, q, r0, tau = _cantelli_majorant(c, r)
    U = np.eye(r)[:1]
    truth = 1.0 / (1.0 + c * c)
    val, eps = mo.certify_majorant(P, q, r0, np.array([tau]), U, np.array([c]), np.eye(r))
    assert val == pytest.approx(truth, abs=1e-12) and val >= truth
    if how == "P*0.9":
        P = 0.9 * P
    elif how == "r0-0.01":
        r0 -= 0.01
    elif how == "q*1.1":
        q = 1.1 * q
    elif how == "tau*0.5":
        tau *= 0.5
    else:
        tau = -1.0
    val, eps = mo.certify_majorant(P, q, r0, np.array([tau]), U, np.array([c]), np.eye(r))
    assert eps > 0
    assert val >= truth


def test_solver_value_below_the_truth_is_never_printed(monkeypatch) -> None:
    """A solver returning a point whose objective is half the truth: the printed value is
    still >= the known supremum (here Chebyshev's 1/c^2 for |y| >= c)."""
    real = mo._solve_compact_clarabel

    def bad(W: np.ndarray, h: np.ndarray, tol: float) -> dict:
        sol = real(W, h, tol)
        sol["P"] = 0.5 * sol["P"]
        sol["q"] = 0.5 * sol["q"]
        sol["r0"] = 0.5 * sol["r0"]
        sol["primal"] = 0.5 * sol["primal"]
        return sol

    monkeypatch.setattr(mo.drive, "_solve_compact_clarabel", bad)  # where drive calls it
    c = 2.5
    A = np.array([[1.0, 0.0], [-1.0, 0.0]])
    res = bounds.sup_union_probability(np.zeros(2), np.eye(2), A, np.array([c, c]),
                                       backend="clarabel")
    assert res.primal == pytest.approx(0.5 / c**2, rel=1e-6)  # the bad solver's claim
    assert res.value >= 1.0 / c**2
    assert res.eps_repair > 0

    def broken(W: np.ndarray, h: np.ndarray, tol: float) -> dict:
        raise RuntimeError("no convergence")

    monkeypatch.setattr(mo.drive, "_solve_compact_clarabel", broken)
    res = bounds.sup_union_probability(np.zeros(2), np.eye(2), A, np.array([c, c]),
                                       backend="clarabel")
    assert res.method == "cantelli-fallback" and "no convergence" in res.note
    assert res.value == pytest.approx(2.0 / (1.0 + c * c))


# ------------------------------------------------------------------ clusters
@st.composite
def clustered(draw: st.DrawFn) -> dict:
    """Random clustered data, centroids that are not means (adversarial cases included)."""
    d = draw(st.sampled_from([1, 2, 3, 8, 64]))
    m = draw(st.integers(1, 4))
    K = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    grid = draw(st.booleans())
    spread = draw(st.sampled_from([0.0, 0.3, 1.0]))
    cents, ctask, Z, y = [], [], [], []
    for t in range(m):
        n_t = int(rng.integers(1, 16))
        if grid:
            mu = rng.integers(-3, 4, size=(K, d)).astype(float)
            pts = mu[rng.integers(0, K, n_t)] + np.round(rng.normal(size=(n_t, d)) * spread)
        else:
            mu = rng.normal(size=d) * 1.5 + rng.normal(size=(K, d))
            pts = mu[rng.integers(0, K, n_t)] + rng.normal(size=(n_t, d)) * spread
            mu = mu + rng.normal(size=mu.shape) * 0.3
        if n_t > 2 and draw(st.booleans()):
            pts[-1] = pts[0]  # duplicate
        cents.append(mu)
        ctask.append(np.full(K, t))
        Z.append(pts)
        y.append(np.full(n_t, t))
    cents = np.concatenate(cents)
    ctask = np.concatenate(ctask)
    if m > 1 and draw(st.booleans()):  # a centroid coincides with another task's
        cents[0] = cents[-1]
    # bound C's tails (reused here) form s^4-sized products: valid for |log10 s| < ~75
    scale = draw(st.sampled_from([1e-60, 1e-3, 1.0, 1e3, 1e60]))
    return {"Z": np.concatenate(Z) * scale, "y": np.concatenate(y), "C": cents * scale,
            "ct": ctask, "m": m}


@SOME
@given(clustered())
def test_evaluate_exact_on_sample_and_below_C(cfg: dict) -> None:
    S = bounds.nearest_centroid_scores(cfg["Z"], cfg["C"], cfg["ct"], cfg["m"])
    cs = bounds.cluster_stats(cfg["Z"], cfg["y"], cfg["C"], cfg["ct"])
    inp = bounds.BoundInputs(scores=S, task=cfg["y"], clusters=cs)
    res = bounds.evaluate(inp, names=["C", "moment-opt"])
    emp, overall = bounds.empirical_error(S, cfg["y"])
    mo_ = res["moment-opt"]
    assert np.all(mo_.per_task >= emp - 1e-9), (mo_.per_task, emp)
    assert mo_.overall >= overall - 1e-9
    assert np.all(mo_.details["per_cluster"] <= res["C"].details["per_cluster"] + 1e-12)
    assert np.all(np.isfinite(mo_.details["sdp"]) | np.isnan(mo_.details["sdp"]))
    p = inp.directional()
    g = inp.cluster_geometry()
    for c in range(cs.n_clusters):  # the raw SDP value against the union it replaces
        if cs.count[c] == 0:
            continue
        f = np.flatnonzero(g["foreign"][c])
        one = bounds.centroid_moment_bound(cs.centroid[c], cs.centroid[f], cs.offset[c],
                                           cs.eigvecs[c], cs.eigvals[c], cs.resid[c],
                                           tails=p[c, f])
        assert one.value == mo_.details["per_cluster"][c]
        assert one.sdp <= p[c, f][one.chosen].sum() + 1e-7
        assert one.value <= min(1.0, one.sdp + one.rest) + 1e-15


def _cluster_case(seed: int, d: int, k: int, rank: int) -> dict:
    rng = np.random.default_rng(seed)
    own = rng.normal(size=d)
    foreign = own + rng.normal(size=(k, d)) * 2.0
    X = rng.normal(size=(d, rank)) * 0.4
    w, V = np.linalg.eigh(X @ X.T)
    w = np.clip(w, 0.0, None)
    return {"own": own, "foreign": foreign, "offset": rng.normal(size=d) * 0.1, "V": V,
            "L": w, "resid": 0.0, "Sigma": (V * w) @ V.T}


@SOME
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 5, 16, 64]), st.integers(1, 10),
       st.integers(1, 8))
def test_cluster_law_matches_projected_moments_and_attains(seed: int, d: int, k: int,
                                                           rank: int) -> None:
    cc = _cluster_case(seed, d, k, min(rank, d))
    res = bounds.centroid_moment_bound(cc["own"], cc["foreign"], cc["offset"], cc["V"],
                                       cc["L"], cc["resid"], law=True)
    assert res.value <= min(1.0, res.cantelli)
    if res.certificate is None or res.atoms is None:
        return
    X, w = res.atoms, res.weights
    F = cc["foreign"][res.chosen]
    Q, _ = np.linalg.qr((F - cc["own"]).T)
    # moments of the projection on span{f_j - o}
    mean = Q.T @ cc["offset"]
    cov = Q.T @ cc["Sigma"] @ Q
    P = (X - cc["own"]) @ Q
    m_hat = w @ P
    C_hat = ((P - m_hat) * w[:, None]).T @ (P - m_hat)
    ref = np.linalg.norm(cov) + np.linalg.norm(mean) ** 2
    assert np.linalg.norm(m_hat - mean) <= 1e-6 * np.sqrt(ref)
    assert np.linalg.norm(C_hat - cov) <= 1e-6 * ref
    # error fraction by the rule itself: some chosen foreign centroid at least as close
    d_own = np.sum((X - cc["own"]) ** 2, axis=1)
    d_for = np.min(np.sum((X[:, None, :] - F[None]) ** 2, axis=2), axis=1)
    assert w[d_for <= d_own].sum() >= res.sdp - 1e-5


def test_cluster_bound_attained_by_a_sample() -> None:
    """Hand-computed: own centroid 0, foreign (+-4, 0); the cluster is the extremal law of
    Chebyshev's inequality, 1/8 at each of (+-2, 0) (ties: errors), 6/8 at 0: variance 1
    along e_1, so the two-sided bound v / (D/2)^2 = 1/4 equals the empirical error."""
    Z = np.array([[2.0, 0.0], [-2.0, 0.0]] + [[0.0, 0.0]] * 6 + [[4.0, 0.0], [-4.0, 0.0]])
    y = np.array([0] * 8 + [1, 1])
    C = np.array([[0.0, 0.0], [4.0, 0.0], [-4.0, 0.0]])
    ct = np.array([0, 1, 1])
    S = bounds.nearest_centroid_scores(Z, C, ct)
    emp, _ = bounds.empirical_error(S, y)
    assert emp[0] == 0.25
    for scale in (2.0**-40, 1.0, 1e7):
        cs = bounds.cluster_stats(Z * scale, y, C * scale, ct)
        res = bounds.evaluate(bounds.BoundInputs(clusters=cs), names=["C", "moment-opt"])
        r = res["moment-opt"]
        assert r.per_task[0] == pytest.approx(0.25, abs=1e-7) and r.per_task[0] >= 0.25
        assert res["C"].per_task[0] == pytest.approx(0.4)  # 2 x Cantelli 1/(1+4)
        one = bounds.centroid_moment_bound(cs.centroid[0], cs.centroid[1:], cs.offset[0],
                                           cs.eigvecs[0], cs.eigvals[0], cs.resid[0],
                                           law=True)
        assert one.sdp == pytest.approx(0.25, abs=1e-7) and one.r == 2
        assert one.certificate.method == "dual-feasible"


def test_one_cluster_and_coincident_centroids() -> None:
    Z = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    cs = bounds.cluster_stats(Z, np.zeros(3, dtype=int), np.zeros((1, 2)), np.array([0]))
    r = bounds.evaluate(bounds.BoundInputs(clusters=cs), names=["moment-opt"])["moment-opt"]
    assert r.per_task.tolist() == [0.0]
    # task 1's centroid coincides with task 0's: misretrieval bound 1 for both
    C = np.array([[0.0, 0.0], [0.0, 0.0]])
    cs = bounds.cluster_stats(np.vstack([Z, Z]), np.repeat([0, 1], 3), C, np.array([0, 1]))
    r = bounds.evaluate(bounds.BoundInputs(clusters=cs), names=["moment-opt"])["moment-opt"]
    assert r.per_task.tolist() == [1.0, 1.0]


def test_sketch_upper_bound_keeps_it_valid() -> None:
    """A rank-q sketch is a PSD upper bound of Sigma: the bound only grows (monotone)."""
    rng = np.random.default_rng(3)
    d, m = 12, 4
    C = rng.normal(size=(m, d)) * 1.5
    ct = np.arange(m)
    y = rng.integers(0, m, 200)
    Z = C[y] + rng.normal(size=(200, d)) * rng.uniform(0.2, 0.8, size=d)
    exact = bounds.cluster_stats(Z, y, C, ct)
    sk = bounds.cluster_stats(Z, y, C, ct, sketch_rank=3)
    S = bounds.nearest_centroid_scores(Z, C, ct)
    emp, _ = bounds.empirical_error(S, y)
    a = bounds.evaluate(bounds.BoundInputs(clusters=exact), names=["C", "moment-opt"])
    b = bounds.evaluate(bounds.BoundInputs(clusters=sk), names=["moment-opt"])
    assert np.all(a["moment-opt"].per_task >= emp - 1e-9)
    assert np.all(b["moment-opt"].per_task >= a["moment-opt"].per_task - 1e-7)
    assert np.all(a["moment-opt"].per_task <= a["C"].per_task)
    assert a["moment-opt"].overall < a["C"].overall  # strictly tighter on this example


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,match", [
    (lambda: bounds.sup_union_probability([0.0], [[1.0]], [[1.0, 2.0]], [1.0]), "A: shape"),
    (lambda: bounds.sup_union_probability([0.0, 0], [[1, 2], [0, 1]], [[1, 0]], [1]),
     "cov: must be symmetric"),
    (lambda: bounds.sup_union_probability([0.0, 0], [[1, 2], [2, 1]], [[1, 0]], [1]),
     "cov: not positive semidefinite"),
    (lambda: bounds.sup_union_probability([np.nan], [[1.0]], [[1.0]], [1.0]), "mean: "),
    (lambda: bounds.sup_union_probability([0.0], [[1.0]], [[1.0]], [1.0, 2.0]), "b: shape"),
    (lambda: bounds.sup_union_probability([0.0], [[1.0]], [[1.0]], [1.0], backend="x"),
     "backend: "),
    (lambda: bounds.centroid_moment_bound([0.0], [[1.0]], [0.0], [[1.0]], [1.0], 0.0,
                                          r_max=0), "r_max: "),
    (lambda: bounds.centroid_moment_bound([0.0], [[1.0]], [0.0], [[1.0]], [-1.0], 0.0),
     "eigvals: "),
    (lambda: bounds.centroid_moment_bound([0.0], [[1.0, 2.0]], [0.0], [[1.0]], [1.0], 0.0),
     "foreign: shape"),
    (lambda: bounds.MomentOptBound(r_max=0), "r_max: "),
    (lambda: bounds.check_law([[0.0]], [1.0, 2.0], [0.0], [[1.0]], [[1.0]], [1.0]),
     "weights: shape"),
])
def test_bad_input_names_the_argument(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
