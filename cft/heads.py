"""LDA classification head of one task (RanPAC-style: class means + shared covariance).

Fit: class means ``mu_c``, pooled within-class covariance ``Sigma`` shrunk toward the
scaled identity, ``Sigma_g = (1 - g) Sigma + g (tr Sigma / d) I`` with ``g`` fixed or chosen by
Ledoit-Wolf (``shrinkage="auto"``), precision ``P = Sigma_g^{-1}``. Predict: the linear
discriminant ``argmax_c  z^T P mu_c - mu_c^T P mu_c / 2`` (equal class priors).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LDAHead:
    """Linear discriminant over a task's classes (global class ids in ``classes_``)."""

    def __init__(self, shrinkage: float | str = "auto") -> None:
        self.shrinkage = shrinkage

    def fit(self, Z: Any, y: Any) -> LDAHead:  # noqa: N803
        Z = np.asarray(Z, dtype=np.float64)
        y = np.asarray(y)
        if Z.ndim != 2 or len(Z) == 0:
            raise ValueError(f"Z: expected a non-empty (n, d) array, got shape {Z.shape}")
        if not np.isfinite(Z).all():
            raise ValueError("Z: contains non-finite values")
        if y.shape != (len(Z),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y: expected integer labels of shape ({len(Z)},)")
        s = self.shrinkage
        if not (s == "auto" or (isinstance(s, int | float) and 0.0 <= s <= 1.0)):
            raise ValueError(f"shrinkage: must be 'auto' or a number in [0, 1], got {s!r}")
        classes, inv = np.unique(y, return_inverse=True)
        d = Z.shape[1]
        means = np.stack([Z[inv == c].mean(0) for c in range(len(classes))])
        X = Z - means[inv]
        cov = X.T @ X / max(len(Z) - len(classes), 1)
        if s == "auto":
            from sklearn.covariance import ledoit_wolf_shrinkage

            g = float(ledoit_wolf_shrinkage(X, assume_centered=True)) if len(Z) > 1 else 1.0
        else:
            g = float(s)
        mu = np.trace(cov) / d
        if mu <= 0:
            mu = 1.0
        cov = (1.0 - g) * cov + g * mu * np.eye(d)
        self.precision_ = np.linalg.pinv(cov, hermitian=True)
        self.means_ = means
        self.classes_ = classes.astype(np.int64)
        self.shrinkage_ = g
        return self

    def _check(self, Z: Any) -> np.ndarray:  # noqa: N803
        if not hasattr(self, "means_"):
            raise ValueError("LDAHead: not fitted")
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.means_.shape[1]:
            raise ValueError(f"Z: expected shape (n, {self.means_.shape[1]}), got {Z.shape}")
        return Z

    def decision_function(self, Z: Any) -> np.ndarray:  # noqa: N803
        """Discriminant values ``(n, C)``."""
        Z = self._check(Z)
        W = self.means_ @ self.precision_  # (C, d)
        b = -0.5 * (W * self.means_).sum(1)
        return Z @ W.T + b

    def predict(self, Z: Any) -> np.ndarray:  # noqa: N803
        """Global class ids ``(n,)``."""
        scores = self.decision_function(Z)
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, Z: Any, y: Any) -> float:  # noqa: N803
        """Accuracy."""
        return float(np.mean(self.predict(Z) == np.asarray(y)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "means_"):
            raise ValueError("LDAHead: not fitted")
        return {
            "means": self.means_.copy(),
            "precision": self.precision_.copy(),
            "classes": self.classes_.copy(),
            "shrinkage": np.array(self.shrinkage_),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> LDAHead:
        for key in ("means", "precision", "classes", "shrinkage"):
            if key not in arrays:
                raise ValueError(f"arrays: missing key {key!r}")
        obj = cls(shrinkage=float(np.asarray(arrays["shrinkage"])))
        obj.means_ = np.asarray(arrays["means"], dtype=np.float64)
        obj.precision_ = np.asarray(arrays["precision"], dtype=np.float64)
        obj.classes_ = np.asarray(arrays["classes"], dtype=np.int64)
        obj.shrinkage_ = float(np.asarray(arrays["shrinkage"]))
        if obj.precision_.shape != (obj.means_.shape[1],) * 2 or len(obj.classes_) != len(
            obj.means_
        ):
            raise ValueError("arrays: inconsistent shapes of means/precision/classes")
        return obj
