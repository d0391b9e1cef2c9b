"""Signatures: planted clusters, score kinds, array round trip, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from cft.config.registry import SIGNATURES
from cft.evaluation.signatures import KMeansSignature, Signature, load_signature, save_signature

CENTRES = np.array([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]])


def _planted(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + 0.5 * rng.normal(size=(n, 4)) for c in CENTRES])


def _all():
    return [
        SIGNATURES.build("kmeans", n_components=3, random_state=0),
        SIGNATURES.build("gmm", n_components=3, covariance_type="diag", random_state=0),
        SIGNATURES.build("gmm", n_components=3, covariance_type="full", random_state=0),
        SIGNATURES.build("dpgmm", n_components=6, covariance_type="diag", random_state=0),
    ]


@pytest.mark.parametrize("sig", _all(), ids=lambda s: f"{s.name}")
def test_planted_clusters_recovered(sig) -> None:
    sig.fit(_planted())
    c = sig.centroids_
    assert len(c) == 3
    d = np.linalg.norm(c[:, None] - CENTRES[None], axis=2)
    assert d.min(0).max() < 0.5  # every true centre has a centroid nearby
    Z = np.array([[0.1, 0, 0, 0], [5.0, 5.0, 0, 0]])
    s = sig.cost(Z, "centroid")
    np.testing.assert_allclose(s, np.linalg.norm(Z[:, None] - c[None], axis=2).min(1))
    assert s[0] < s[1]
    if sig.supports("nll"):
        nll = sig.cost(Z, "nll")
        assert nll[0] < nll[1]


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_nll_matches_sklearn(cov: str) -> None:
    from sklearn.mixture import GaussianMixture

    X = _planted(seed=1)
    sig = SIGNATURES.build("gmm", n_components=3, covariance_type=cov, random_state=0).fit(X)
    gm = GaussianMixture(3, covariance_type=cov, reg_covar=sig.reg_covar, random_state=0).fit(X)
    np.testing.assert_allclose(sig.cost(X, "nll"), -gm.score_samples(X), rtol=1e-8)
    assert set(sig.to_arrays()) == {"kind", "centroids", "weights", "means", "covariances",
                                    "covariance_type"}


def test_kmeans_has_no_nll() -> None:
    sig = KMeansSignature(n_components=2).fit(_planted())
    with pytest.raises(ValueError, match="kind"):
        sig.cost(_planted(), "nll")
    with pytest.raises(ValueError, match="kind"):
        sig.cost(_planted(), "bogus")


@pytest.mark.parametrize("sig", _all(), ids=lambda s: f"{s.name}")
def test_round_trip(sig, tmp_path) -> None:
    X = _planted(seed=2)
    sig.fit(X)
    path = tmp_path / "sig.npz"
    save_signature(sig, str(path))
    back = load_signature(str(path))
    assert type(back) is type(sig)
    for kind in sig.kinds:
        np.testing.assert_allclose(back.cost(X, kind), sig.cost(X, kind))
    back2 = Signature.from_arrays(sig.to_arrays())
    np.testing.assert_array_equal(back2.centroids_, sig.centroids_)
    with pytest.raises(ValueError, match="arrays"):
        Signature.from_arrays({"kind": np.array("nope"), "centroids": np.zeros((1, 2))})


@pytest.mark.parametrize("name", ["kmeans", "gmm", "dpgmm"])
def test_deterministic(name: str) -> None:
    X = np.random.default_rng(3).normal(size=(80, 5))
    a = SIGNATURES.build(name, n_components=4, random_state=7).fit(X)
    b = SIGNATURES.build(name, n_components=4, random_state=7).fit(X)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="Z"):
        KMeansSignature().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="covariance_type"):
        SIGNATURES.build("gmm", covariance_type="tied").fit(_planted())
    sig = KMeansSignature(n_components=2).fit(_planted())
    with pytest.raises(ValueError, match="Z"):
        sig.cost(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not fitted"):
        KMeansSignature().cost(np.zeros((2, 3)))
    assert KMeansSignature(n_components=50).fit(_planted(n=5)).n_components_ == 15
