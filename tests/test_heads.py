"""LDA head: separable Gaussians, round trip, shrinkage."""

from __future__ import annotations

import numpy as np
import pytest

from cft.evaluation.heads.lda import LDAHead


def _data(n: int = 100, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = 4.0 * rng.normal(size=(3, d))
    y = np.repeat([10, 20, 30], n)
    Z = means[np.repeat(np.arange(3), n)] + rng.normal(size=(3 * n, d))
    return Z, y


@pytest.mark.parametrize("shrinkage", ["auto", 0.0, 0.5, 1.0])
def test_separable(shrinkage) -> None:
    Z, y = _data()
    head = LDAHead(shrinkage=shrinkage).fit(Z, y)
    assert head.score(Z, y) > 0.99
    assert set(head.predict(Z)) <= {10, 20, 30}
    assert head.decision_function(Z).shape == (300, 3)
    assert head.coef_.shape == (3, Z.shape[1]) and head.intercept_.shape == (3,)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_equals_sklearn_lda_with_uniform_priors(n_classes) -> None:
    """The head is scikit-learn's LDA (lsqr, Ledoit-Wolf, uniform priors): same decisions
    also in the two-class case, where scikit-learn keeps a single difference row."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(3)
    y = rng.integers(0, n_classes, size=120) * 7 + 1
    Z = rng.normal(size=(120, 6)) + y[:, None] * 0.05
    head = LDAHead().fit(Z, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto",
                                     priors=np.full(n_classes, 1.0 / n_classes)).fit(Z, y)
    np.testing.assert_array_equal(head.predict(Z), ref.predict(Z))
    dec = ref.decision_function(Z)
    got = head.decision_function(Z)
    if n_classes == 2:
        np.testing.assert_allclose(got[:, 1] - got[:, 0], dec, rtol=1e-10, atol=1e-10)
    else:
        np.testing.assert_allclose(got, dec, rtol=1e-10, atol=1e-10)


def test_full_shrinkage_is_nearest_class_mean_and_one_class_is_constant() -> None:
    rng = np.random.default_rng(4)
    y = np.repeat([0, 5, 9], 30)
    Z = rng.normal(size=(90, 4)) * np.array([5.0, 1.0, 0.2, 0.1]) + y[:, None] * 0.3
    mu = np.stack([Z[y == c].mean(0) for c in (0, 5, 9)])
    nearest = np.array([0, 5, 9])[np.argmin(((Z[:, None] - mu) ** 2).sum(-1), axis=1)]
    np.testing.assert_array_equal(LDAHead(shrinkage=1.0).fit(Z, y).predict(Z), nearest)
    one = LDAHead().fit(Z[:30], y[:30])
    assert (one.predict(Z) == 0).all() and one.decision_function(Z).shape == (90, 1)


def test_beats_chance_on_overlap_and_uses_covariance() -> None:
    rng = np.random.default_rng(0)
    # classes differ along a low-variance direction, a high-variance direction is noise
    n = 400
    y = np.repeat([0, 1], n)
    Z = np.stack([rng.normal(size=2 * n) * 10, rng.normal(size=2 * n) * 0.3 + y], axis=1)
    lda = LDAHead(shrinkage=0.0).fit(Z, y)
    iso = LDAHead(shrinkage=1.0).fit(Z, y)  # nearest class mean
    assert lda.score(Z, y) > 0.9 > iso.score(Z, y)


def test_round_trip(tmp_path) -> None:
    Z, y = _data()
    head = LDAHead().fit(Z, y)
    np.savez(tmp_path / "head.npz", **head.to_arrays())
    with np.load(tmp_path / "head.npz", allow_pickle=False) as f:
        back = LDAHead.from_arrays({k: f[k] for k in f.files})
    np.testing.assert_array_equal(back.predict(Z), head.predict(Z))
    np.testing.assert_allclose(back.decision_function(Z), head.decision_function(Z))


def test_bad_input() -> None:
    Z, y = _data()
    with pytest.raises(ValueError, match="shrinkage"):
        LDAHead(shrinkage=2.0).fit(Z, y)
    with pytest.raises(ValueError, match="y"):
        LDAHead().fit(Z, y[:-1])
    with pytest.raises(ValueError, match="Z"):
        LDAHead().fit(Z, y).predict(Z[:, :3])
    with pytest.raises(ValueError, match="not fitted"):
        LDAHead().predict(Z)
