"""Gaussian (design note §6.4) and PAC (§6.5) checks, plus the Chernoff closed form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import integrate, stats

import bounds
from bounds.forms import FUNCS
from bounds.testing import gaussian_mixtures


@settings(max_examples=25)
@given(gaussian_mixtures())
def test_chernoff_pair_exponents(mix: bounds.GaussianMixtures) -> None:
    """The Gaussian bound's own structure (its validity on samples of the assumed law is
    the ``population-under-assumption`` property, tests/test_bounds_properties.py)."""
    # g_st(l) = g_ts(1 - l), which pairwise_chernoff relies on: the exponent of one
    # ordered component pair equals that of the swapped pair at 1 - l
    lam = np.array([0.3])
    a = (mix.means[0, :1], mix.covariances[0, :1])
    b = (mix.means[1, :1], mix.covariances[1, :1])
    k_ab = bounds.gaussian_exponent(lam, a[0], a[1], b[0], b[1])
    k_ba = bounds.gaussian_exponent(1.0 - lam, b[0], b[1], a[0], a[1])
    np.testing.assert_allclose(k_ba, k_ab, rtol=1e-10, atol=1e-12)
    # and the reported B[1, 0] is g_10 evaluated directly at its reported l
    ex = bounds.pairwise_chernoff(mix, prune_tol=0.0)
    l10 = ex["lam"][1, 0]
    K = mix.n_components
    i, j = np.divmod(np.arange(K * K), K)
    k = bounds.gaussian_exponent(np.full(K * K, l10), mix.means[1, i], mix.covariances[1, i],
                                 mix.means[0, j], mix.covariances[0, j])
    g10 = np.sum(mix.weights[1, i] ** (1 - l10) * mix.weights[0, j] ** l10 * np.exp(-k))
    np.testing.assert_allclose(ex["pairwise"][1, 0], g10, rtol=1e-10)


def test_gaussian_bound_close_to_truth_and_pruning_is_conservative() -> None:
    """Well separated 2-task case: the bound is small but >= a large-sample error, and
    pruning (prune_tol) can only raise it (strictly, with unequal anisotropic
    covariances, where the pruning lower bound on the exponent is not tight)."""
    rng = np.random.default_rng(3)
    mix = bounds.GaussianMixtures(np.array([[1.0], [1.0]]), np.array([[[0.0, 0.0]],
                                  [[3.0, 0.0]]]), np.ones((2, 1, 2)))
    Z, y = mix.sample(20000, rng)
    emp, _ = bounds.empirical_error(mix.nll(Z), y)
    exact = bounds.pairwise_chernoff(mix, prune_tol=0.0)["pairwise"]
    # equal isotropic covariances: Bhattacharyya exp(-||dmu||^2/8) at l = 1/2 is optimal
    np.testing.assert_allclose(exact[0, 1], np.exp(-9 / 8), rtol=1e-9)
    assert np.all(emp <= exact[0, 1] + 0.02)
    assert stats.norm.sf(1.5) <= exact[0, 1]
    # pruning: 3 tasks x 2 components, unequal anisotropic full covariances
    A = rng.normal(size=(3, 2, 2, 2))
    cov = A @ np.swapaxes(A, -1, -2) + np.diag([0.3, 2.0])
    aniso = bounds.GaussianMixtures(np.full((3, 2), 0.5), rng.normal(size=(3, 2, 2)) * 3.0,
                                    cov)
    exact = bounds.pairwise_chernoff(aniso, prune_tol=0.0)
    pruned = bounds.pairwise_chernoff(aniso, prune_tol=1.0)  # prune everything
    assert exact["n_refined"] == exact["n_pairs"] and pruned["n_refined"] == 0
    off = ~np.eye(3, dtype=bool)
    assert np.all(pruned["pairwise"][off] >= exact["pairwise"][off])
    assert np.any(pruned["pairwise"][off] > exact["pairwise"][off])


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.8])
def test_chernoff_exponent_matches_quadrature(lam: float) -> None:
    """exp(-k(l)) equals the integral of N1^(1-l) N2^l (1-d, numeric quadrature)."""
    m1, s1, m2, s2 = 0.3, 0.7, 1.9, 1.6
    f = lambda x: stats.norm.pdf(x, m1, np.sqrt(s1)) ** (1 - lam) * stats.norm.pdf(
        x, m2, np.sqrt(s2)) ** lam
    val, _ = integrate.quad(f, -30, 30, epsabs=1e-13)
    k_diag = bounds.gaussian_exponent(np.array([lam]), np.array([[m1]]), np.array([[s1]]),
                                      np.array([[m2]]), np.array([[s2]]))
    k_full = bounds.gaussian_exponent(np.array([lam]), np.array([[m1]]), np.array([[[s1]]]),
                                      np.array([[m2]]), np.array([[[s2]]]))
    np.testing.assert_allclose(np.exp(-k_diag), val, rtol=1e-8)
    np.testing.assert_allclose(k_full, k_diag, rtol=1e-12)


def test_clopper_pearson_is_the_tighter_pac_bound() -> None:
    """§5.2: on a population with errors near 1/2 and m = 20 tasks, Clopper-Pearson is at
    most Hoeffding on every task (their joint coverage of the population error is the
    ``joint-coverage`` property of every PAC bound, tests/test_bounds_properties.py,
    which also shows that a PAC bound without the union over tasks is caught)."""
    rng = np.random.default_rng(11)
    m, N = 20, 2000
    pop_S = rng.normal(size=(m * N, m))
    pop_y = np.repeat(np.arange(m), N)
    pop_S[np.arange(m * N), pop_y] -= np.linspace(1.2, 2.2, m)[pop_y]
    idx = np.concatenate([rng.integers(t * N, (t + 1) * N, 60) for t in range(m)])
    inp = bounds.BoundInputs(cal_scores=pop_S[idx], cal_task=pop_y[idx], delta=0.2)
    r_h = bounds.REGISTRY["pac-hoeffding"].compute(inp).per_task
    r_c = bounds.REGISTRY["pac-clopper-pearson"].compute(inp).per_task
    assert np.all(r_c <= r_h + 1e-12)
    assert np.all(r_c < r_h)  # strictly, at these error rates


def test_pac_bound_values_by_hand() -> None:
    S = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    inp = bounds.BoundInputs(cal_scores=S, cal_task=y, delta=0.1)
    h = bounds.REGISTRY["pac-hoeffding"].compute(inp)
    slack = np.sqrt(np.log(2 / 0.1) / 4)
    np.testing.assert_allclose(h.per_task, np.minimum(1, [0.5 + slack, 1.0]))
    c = bounds.REGISTRY["pac-clopper-pearson"].compute(inp)
    np.testing.assert_allclose(c.per_task[0], stats.beta.ppf(1 - 0.05, 2, 1))
    assert c.per_task[1] == 1.0
    np.testing.assert_allclose(FUNCS["hoeffding"](2.0, 0.1, 2.0), slack)


def test_pruning_lower_bound_is_exact_for_equal_isotropic_covariances() -> None:
    """With equal isotropic covariances s I the log-det part of k(l) is 0 and the
    quadratic form is ||dmu||^2 / s, so the pruning lower bound l(1-l)/2 ||dmu||^2 /
    sigma2_max (§4.4) *is* the exponent: pruning every pair changes nothing, and the
    Bhattacharyya value exp(-||dmu||^2 / (8 s)) is pinned (a lost /2 would square it)."""
    s2 = 1.7
    one = bounds.GaussianMixtures(np.ones((2, 1)), np.array([[[0.0, 0.0]], [[3.0, 0.0]]]),
                                  np.full((2, 1, 2), s2))
    pruned = bounds.pairwise_chernoff(one, prune_tol=1.0)
    assert pruned["n_refined"] == 0
    np.testing.assert_allclose(pruned["pairwise"][0, 1], np.exp(-9.0 / (8 * s2)), rtol=1e-12)
    np.testing.assert_allclose(pruned["lam"][0, 1], 0.5)
    rng = np.random.default_rng(8)
    mix = bounds.GaussianMixtures(rng.dirichlet(np.ones(2), size=3),
                                  rng.normal(size=(3, 2, 3)) * 2.0, np.full((3, 2, 3), s2))
    exact = bounds.pairwise_chernoff(mix, prune_tol=0.0)
    pruned = bounds.pairwise_chernoff(mix, prune_tol=1.0)
    assert exact["n_refined"] == exact["n_pairs"] > 0 and pruned["n_refined"] == 0
    np.testing.assert_allclose(pruned["pairwise"], exact["pairwise"], rtol=1e-12)
    np.testing.assert_allclose(pruned["lam"], exact["lam"], rtol=1e-12)
