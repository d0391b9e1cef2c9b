"""Continual heads (RanPAC, merged LDA) and the learned-keys retrieval rule."""

from __future__ import annotations

import numpy as np
import pytest

from cft.evaluation.heads.continual import LAMBDAS, MergedLDA, RanPAC
from cft.evaluation.keys import KeysRule
from cft.evaluation.retrieval import rule_scores


def _xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes by the sign of x1 * x2: no linear classifier beats chance much."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_ranpac_needs_its_random_relu_projection():
    X, y = _xor(600, 0)
    Xc, yc = _xor(200, 1)
    Xt, yt = _xor(400, 2)
    head = RanPAC(n_features=400, random_state=3).partial_fit(X, y, Xc, yc)
    # lambda_ is the grid point of the best calibration accuracy, and that accuracy is real
    assert head.calibration_accuracy_ == np.mean(head.predict(Xc) == yc)
    acc = np.mean(head.predict(Xt) == yt)
    assert acc > 0.9
    # the same ridge regression on the raw features (no projection) is at chance
    G, C = X.T @ X, X.T @ np.eye(2)[y]
    W = np.linalg.solve(G + head.lambda_ * np.eye(2), C)
    assert np.mean(np.argmax(Xt @ W, 1) == yt) < 0.65


def test_ranpac_is_ridge_on_the_accumulated_gram_matrix_and_picks_lambda_on_calibration():
    rng = np.random.default_rng(0)
    Z1, y1 = rng.normal(size=(50, 6)), np.repeat([3, 7], 25)
    Z2, y2 = rng.normal(size=(40, 6)) + 1.0, np.repeat([1, 9], 20)
    Zc, yc = rng.normal(size=(30, 6)) + 1.0, np.repeat([1, 9], 15)
    head = RanPAC(n_features=32, random_state=5).partial_fit(Z1, y1).partial_fit(Z2, y2, Zc, yc)
    W = RanPAC(n_features=32, random_state=5).projection(6)
    H = np.maximum(np.concatenate([Z1, Z2]) @ W, 0)
    classes = np.array([3, 7, 1, 9])
    Y = (np.concatenate([y1, y2])[:, None] == classes[None]).astype(float)
    assert np.array_equal(head.classes_, classes)
    np.testing.assert_allclose(head.G_, H.T @ H, rtol=1e-10)
    # lambda: the calibration accuracy of every grid value, ties to the larger
    Hc = np.maximum(Zc @ W, 0)
    accs = [np.mean(classes[np.argmax(Hc @ np.linalg.solve(H.T @ H + lam * np.eye(32), H.T @ Y),
                                      1)] == yc) for lam in LAMBDAS]
    want = max(i for i, a in enumerate(accs) if a == max(accs))
    assert head.lambda_ == LAMBDAS[want]
    Wo = np.linalg.solve(H.T @ H + head.lambda_ * np.eye(32), H.T @ Y)
    np.testing.assert_allclose(head.decision_function(Zc), Hc @ Wo, rtol=1e-6, atol=1e-8)
    back = RanPAC.from_arrays(head.to_arrays(), n_features=32, random_state=5)
    np.testing.assert_array_equal(back.decision_function(Zc), head.decision_function(Zc))
    other = RanPAC(n_features=32, random_state=6).projection(6)
    assert not np.allclose(other, W)  # the seed drives the projection
    allowed = np.isin(classes, [3, 7])[None].repeat(len(Zc), 0)
    assert set(head.predict(Zc, allowed=allowed)) <= {3, 7}


def test_ranpac_bad_options():
    with pytest.raises(ValueError, match="n_features"):
        RanPAC(n_features=0)
    with pytest.raises(ValueError, match="lambdas"):
        RanPAC(lambdas=[-1.0])


def test_merged_lda_pools_every_task():
    rng = np.random.default_rng(1)
    Z1, y1 = rng.normal(size=(60, 4)), np.repeat([0, 1], 30)
    Z2, y2 = rng.normal(size=(40, 4)) + 2, np.repeat([5, 6], 20)
    head = MergedLDA(shrinkage=0.1).partial_fit(Z1, y1).partial_fit(Z2, y2)

    def shrunk(Z, y):  # pooled within-class covariance, shrunk 10 % to the scaled identity
        m = np.stack([Z[y == c].mean(0) for c in np.unique(y)])
        X = Z - m[np.searchsorted(np.unique(y), y)]
        c = X.T @ X / (len(Z) - 2)
        return m, 0.9 * c + 0.1 * np.trace(c) / 4 * np.eye(4)

    (m1, c1), (m2, c2) = shrunk(Z1, y1), shrunk(Z2, y2)
    cov = (60 * c1 + 40 * c2) / 100
    means = np.concatenate([m1, m2])
    P = np.linalg.pinv(cov, hermitian=True)
    want = Z2 @ P @ means.T - 0.5 * np.einsum("cd,de,ce->c", means, P, means)
    np.testing.assert_allclose(head.decision_function(Z2), want, rtol=1e-8)
    assert list(head.classes_) == [0, 1, 5, 6]
    back = MergedLDA.from_arrays(head.to_arrays(), shrinkage=0.1)
    np.testing.assert_array_equal(back.predict(Z2), head.predict(Z2))
    with pytest.raises(ValueError, match="already seen"):
        head.partial_fit(Z1, y1)


def test_keys_are_trained_to_the_tasks_query_direction():
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(3, 16)) * 3
    Q = [centers[t] + rng.normal(size=(80, 16)) for t in range(3)]
    rules = [KeysRule(epochs=60, lr=0.05, random_state=t).fit(q) for t, q in enumerate(Q)]
    for t, r in enumerate(rules):
        mean_dir = (Q[t] / np.linalg.norm(Q[t], axis=1, keepdims=True)).mean(0)
        cos = r.key_ @ mean_dir / (np.linalg.norm(r.key_) * np.linalg.norm(mean_dir))
        assert cos > 0.99  # the minimiser of the matching loss
        assert r.losses_[-1] < r.losses_[0]
    S = rule_scores(rules, Q[1])
    k = rules[2].key_
    np.testing.assert_allclose(S[:, 2], 1 - Q[1] @ k / (np.linalg.norm(Q[1], axis=1)
                                                        * np.linalg.norm(k)))
    assert np.mean(S.argmin(1) == 1) > 0.9
    untrained = KeysRule(epochs=0, random_state=1).fit(Q[1])
    assert np.mean(rule_scores([rules[0], untrained, rules[2]], Q[1]).argmin(1) == 1) < 0.9
    back = KeysRule.from_arrays(rules[0].to_arrays())
    np.testing.assert_array_equal(back.cost(Q[0]), rules[0].cost(Q[0]))
