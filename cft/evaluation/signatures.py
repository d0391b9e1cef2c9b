"""Task signatures: clusterings / Gaussian mixtures of a task's representations.

A signature is fitted on the representations of one task's training split (task-adapted
``h_k`` or frozen shared features) and scores new samples; smaller = closer. Two score kinds:

* ``"centroid"``: ``min_j ||z - mu_j||`` over the signature's centroids (k-means centres, or
  the means of mixture components with weight >= ``min_weight``);
* ``"nll"``: ``-log p(z)`` under the fitted mixture (mixtures only).

The NLL is computed here from the stored ``weights_/means_/covariances_`` (not through the
sklearn object), so a signature restored with :meth:`Signature.from_arrays` scores exactly
like the fitted one. Array layout: docs/run-dir.md, "Signature files".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bounds.mixture import one_mixture
from bounds.npz import save_npz
from bounds.rundir_schema import KINDS as _SCHEMA_KINDS
from cft.config.registry import SIGNATURES
from cft.config.validation import check_int

#: score kinds (the run-directory schema's): nearest centroid, mixture likelihood
KINDS = _SCHEMA_KINDS


def _check_Z(Z: Any, name: str = "Z", dim: int | None = None) -> np.ndarray:  # noqa: N802
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, d) array, got shape {Z.shape}")
    if not np.isfinite(Z).all():
        raise ValueError(f"{name}: contains non-finite values")
    if dim is not None and Z.shape[1] != dim:
        raise ValueError(f"{name}: expected dimension {dim}, got {Z.shape[1]}")
    return Z


def min_distance(Z: np.ndarray, centroids: np.ndarray, chunk: int = 4096) -> np.ndarray:  # noqa: N803
    """``min_j ||z_i - mu_j||`` (Euclidean), computed in chunks."""
    out = np.empty(len(Z))
    c2 = (centroids**2).sum(1)
    for s in range(0, len(Z), chunk):
        z = Z[s : s + chunk]
        d2 = (z**2).sum(1)[:, None] - 2.0 * z @ centroids.T + c2[None, :]
        out[s : s + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def mixture_nll(
    Z: np.ndarray,  # noqa: N803
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    covariance_type: str,
) -> np.ndarray:
    """``-log sum_k w_k N(z; mu_k, Sigma_k)`` for diagonal or full covariances: the
    project's one mixture density, ``bounds.GaussianMixtures`` (docs/theory.md §4)."""
    if covariance_type not in ("diag", "full"):
        raise ValueError(f"covariance_type: must be 'diag' or 'full', got {covariance_type!r}")
    want = 2 if covariance_type == "diag" else 3
    if np.ndim(covariances) != want:
        raise ValueError(f"covariances: {covariance_type!r} needs {want} dimensions, got "
                         f"shape {np.shape(covariances)}")
    return one_mixture(weights, means, covariances).nll(Z)[:, 0]


class Signature:
    """Base class (sklearn estimator style: params in ``__init__``, learned ``*_``)."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ("centroid",)

    centroids_: np.ndarray

    def supports(self, kind: str) -> bool:
        return kind in self.kinds

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise ValueError(f"{type(self).__name__}: not fitted")

    def fit(self, Z: Any) -> Signature:  # noqa: N803
        raise NotImplementedError

    def cost(self, Z: Any, kind: str = "centroid") -> np.ndarray:  # noqa: N803
        """Per-sample retrieval cost ``(n,)`` of ``Z`` for this task: smaller = closer
        (``centroid``: squared distance to the nearest centroid; ``nll``: ``-log p(z)``).
        Named ``cost``, not ``score``: unlike scikit-learn's ``score``/``score_samples``
        (higher = better) it is minimised by retrieval (docs/theory.md §1)."""
        self._check_fitted()
        if kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
        if kind not in self.kinds:
            raise ValueError(f"kind: {type(self).__name__} does not support {kind!r}")
        Z = _check_Z(Z, dim=self.centroids_.shape[1])
        if kind == "centroid":
            return min_distance(Z, self.centroids_)
        return self._nll(Z)

    def _nll(self, Z: np.ndarray) -> np.ndarray:  # noqa: N803
        raise NotImplementedError

    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"kind": np.array(self.name), "centroids": self.centroids_.copy()}

    @classmethod
    def from_arrays(cls, arrays: Any) -> Signature:
        """Restore any signature from :meth:`to_arrays` (dispatches on ``kind``)."""
        for key in ("kind", "centroids"):
            if key not in arrays:
                raise ValueError(f"arrays: missing key {key!r}")
        name = str(np.asarray(arrays["kind"]))
        if name not in _BY_NAME:
            raise ValueError(f"arrays: unknown signature kind {name!r}")
        target = _BY_NAME[name]
        if cls is not Signature and not issubclass(target, cls):
            raise ValueError(f"arrays: kind {name!r} is not a {cls.__name__}")
        return target._restore(arrays)

    @classmethod
    def _restore(cls, arrays: Any) -> Signature:
        obj = cls(n_components=len(arrays["centroids"]))  # type: ignore[call-arg]
        obj.centroids_ = np.asarray(arrays["centroids"], dtype=np.float64)
        obj.n_components_ = len(obj.centroids_)
        return obj


@SIGNATURES.register("kmeans")
class KMeansSignature(Signature):
    """k-means centres (``sklearn.cluster.KMeans``); ``n_components`` is clipped to ``n``."""

    name = "kmeans"
    kinds = ("centroid",)

    def __init__(self, n_components: int = 5, n_init: int = 4, random_state: int = 0) -> None:
        self.n_components = n_components
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, Z: Any) -> KMeansSignature:  # noqa: N803
        from sklearn.cluster import KMeans

        check_int("n_components", self.n_components, minimum=1)
        Z = _check_Z(Z)
        k = min(self.n_components, len(Z))
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(Z)
        self.centroids_ = km.cluster_centers_.astype(np.float64)
        self.labels_ = km.labels_
        self.n_components_ = k
        return self


class _MixtureSignature(Signature):
    kinds = ("centroid", "nll")

    weights_: np.ndarray
    means_: np.ndarray
    covariances_: np.ndarray

    def __init__(
        self,
        n_components: int = 5,
        covariance_type: str = "diag",
        reg_covar: float = 1e-4,
        min_weight: float = 1e-2,
        max_iter: int = 200,
        n_init: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.min_weight = min_weight
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state

    def _estimator(self, k: int) -> Any:
        raise NotImplementedError

    def fit(self, Z: Any) -> _MixtureSignature:  # noqa: N803
        check_int("n_components", self.n_components, minimum=1)
        if self.covariance_type not in ("diag", "full"):
            raise ValueError(
                f"covariance_type: must be 'diag' or 'full', got {self.covariance_type!r}"
            )
        if not self.reg_covar > 0:
            raise ValueError(f"reg_covar: must be > 0, got {self.reg_covar!r}")
        Z = _check_Z(Z)
        k = min(self.n_components, len(Z))
        est = self._estimator(k).fit(Z)
        self._set(est.weights_, est.means_, est.covariances_)
        self.n_components_ = k
        self.converged_ = bool(est.converged_)
        return self

    def _set(self, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> None:
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.means_ = np.asarray(means, dtype=np.float64)
        self.covariances_ = np.asarray(covariances, dtype=np.float64)
        keep = self.weights_ >= self.min_weight
        keep[np.argmax(self.weights_)] = True
        self.centroids_ = self.means_[keep].copy()

    def _nll(self, Z: np.ndarray) -> np.ndarray:  # noqa: N803
        return mixture_nll(Z, self.weights_, self.means_, self.covariances_,
                           self.covariance_type)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = super().to_arrays()
        out.update(
            weights=self.weights_.copy(),
            means=self.means_.copy(),
            covariances=self.covariances_.copy(),
            covariance_type=np.array(self.covariance_type),
        )
        return out

    @classmethod
    def _restore(cls, arrays: Any) -> _MixtureSignature:
        for key in ("weights", "means", "covariances", "covariance_type"):
            if key not in arrays:
                raise ValueError(f"arrays: missing key {key!r}")
        weights = np.asarray(arrays["weights"], dtype=np.float64)
        obj = cls(n_components=len(weights),
                  covariance_type=str(np.asarray(arrays["covariance_type"])))
        obj._set(weights, arrays["means"], arrays["covariances"])
        obj.centroids_ = np.asarray(arrays["centroids"], dtype=np.float64)
        obj.n_components_ = len(weights)
        return obj


@SIGNATURES.register("gmm")
class GMMSignature(_MixtureSignature):
    """``sklearn.mixture.GaussianMixture`` with ``K`` components (diag or full)."""

    name = "gmm"

    def _estimator(self, k: int) -> Any:
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(
            n_components=k, covariance_type=self.covariance_type, reg_covar=self.reg_covar,
            max_iter=self.max_iter, n_init=self.n_init, random_state=self.random_state,
        )


@SIGNATURES.register("dpgmm")
class DPGMMSignature(_MixtureSignature):
    """Dirichlet-process mixture (``BayesianGaussianMixture``), at most ``K`` components."""

    name = "dpgmm"

    def _estimator(self, k: int) -> Any:
        from sklearn.mixture import BayesianGaussianMixture

        return BayesianGaussianMixture(
            n_components=k, covariance_type=self.covariance_type, reg_covar=self.reg_covar,
            weight_concentration_prior_type="dirichlet_process", max_iter=self.max_iter,
            n_init=self.n_init, random_state=self.random_state,
        )


_BY_NAME: dict[str, type[Signature]] = {
    "kmeans": KMeansSignature,
    "gmm": GMMSignature,
    "dpgmm": DPGMMSignature,
}


def load_signature(path: str) -> Signature:
    """Read a ``signature-*.npz`` file (no pickle)."""
    with np.load(path, allow_pickle=False) as f:
        return Signature.from_arrays({k: f[k] for k in f.files})


def save_signature(signature: Signature, path: str) -> None:
    """Write ``signature.to_arrays()`` as ``.npz`` (not atomic; the run dir wraps it)."""
    save_npz(path, signature.to_arrays())
