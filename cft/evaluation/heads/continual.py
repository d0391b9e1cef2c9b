"""Continual classifier heads over every class seen (``cft.config.registry.HEADS``, ``head.kind``),
for the module families with no task retrieval (``merged`` inference, :mod:`cft.model.modules`).

A head is updated once per task with :meth:`partial_fit` on that task's training
representations (under the task's merged module) and may use the task's calibration split
for its own choices; ``decision_function`` scores every class seen so far (columns in
``classes_`` order). The class-incremental prediction is the argmax over all columns, the
task-aware one the argmax over the true task's classes.

* ``lda``: LDA over every class seen. Each task contributes its class means and its
  pooled within-class covariance shrunk toward the scaled identity,
  ``(1 - g) Sigma + g (tr Sigma / d) I`` with ``g`` fixed or Ledoit-Wolf's
  (``shrinkage="auto"``, on the centred representations); the shared covariance is the
  sample-weighted mean of the tasks' covariances, and the rule is the linear discriminant
  with equal priors, ``argmax_c z^T P mu_c - mu_c^T P mu_c / 2``, ``P`` its inverse. The means of a
  task are computed under the representation of its own time (no replay), so the drift of
  a merged module shows as forgetting.
* ``ranpac``: RanPAC (McDonnell et al., "RanPAC: Random Projections and Pre-trained
  Models for Continual Learning", NeurIPS 2023, arXiv 2307.02251), its second phase
  (continual class prototypes; no first-session adaptation, the backbone stays as the
  family leaves it). Random projection ``h = ReLU(f(x) W)``, ``W`` in ``R^{d x M}`` with
  i.i.d. standard normal entries (fixed by the seed); Gram matrix ``G = sum h h^T`` and
  ``C = sum h y^T`` (one-hot ``y``) accumulated over tasks; prototypes by ridge
  regression, ``W_o = (G + lambda I)^{-1} C``; prediction ``argmax_c h^T W_o[:, c]``.
  ``lambda`` is chosen each task from a log grid by the class-incremental accuracy on the
  new task's calibration split (the paper selects it on held-out training data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cft.config.registry import HEADS

__all__ = ["MergedLDA", "RanPAC"]


def _check(Z: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y)
    if Z.ndim != 2 or not len(Z) or not np.isfinite(Z).all():
        raise ValueError(f"Z: expected a finite, non-empty (n, d) array, got shape {Z.shape}")
    if y.shape != (len(Z),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: expected integer labels of shape ({len(Z)},)")
    return Z, y.astype(np.int64)


def task_statistics(Z: np.ndarray, y: np.ndarray, shrinkage: float | str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
    """``(classes, class means, shrunk pooled within-class covariance)`` of one task."""
    s = shrinkage
    if not (s == "auto" or (isinstance(s, int | float) and not isinstance(s, bool)
                            and 0.0 <= s <= 1.0)):
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
    mu = mu if mu > 0 else 1.0
    return classes.astype(np.int64), means, (1.0 - g) * cov + g * mu * np.eye(d)


class _Head:
    classes_: np.ndarray

    def decision_function(self, Z: Any) -> np.ndarray:  # noqa: N803
        raise NotImplementedError

    def predict(self, Z: Any, allowed: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Class ids ``(n,)``: argmax over every class, or over ``allowed[i]`` (a boolean
        ``(n, C)`` mask in ``classes_`` order) per sample."""
        return self.predict_each(Z, [allowed])[0]

    def predict_each(self, Z: Any, masks: Any) -> list[np.ndarray]:  # noqa: N803
        """:meth:`predict` under each mask of ``masks`` (``None`` = every class), from one
        :meth:`decision_function`."""
        D = self.decision_function(Z)
        return [self.classes_[np.argmax(D if a is None else np.where(a, D, -np.inf), axis=1)]
                for a in masks]


@HEADS.register("lda")
class MergedLDA(_Head):
    """LDA over every class seen; per-task means and shrunk covariances (module docstring)."""

    def __init__(self, shrinkage: float | str = "auto", random_state: int = 0) -> None:
        self.shrinkage = shrinkage
        self.random_state = random_state

    def partial_fit(self, Z: Any, y: Any, Z_cal: Any = None,  # noqa: N803
                    y_cal: Any = None) -> MergedLDA:
        Z, y = _check(Z, y)
        classes, means, cov = task_statistics(Z, y, self.shrinkage)
        if hasattr(self, "means_"):
            if np.isin(classes, self.classes_).any():
                raise ValueError("y: classes already seen by this head")
            self.means_ = np.concatenate([self.means_, means])
            self.classes_ = np.concatenate([self.classes_, classes])
            self.cov_sum_ = self.cov_sum_ + len(Z) * cov
            self.n_seen_ = self.n_seen_ + len(Z)
        else:
            self.means_, self.classes_ = means, classes
            self.cov_sum_, self.n_seen_ = len(Z) * cov, len(Z)
        self._precision = None
        return self

    def decision_function(self, Z: Any) -> np.ndarray:  # noqa: N803
        if not hasattr(self, "means_"):
            raise ValueError("MergedLDA: not fitted")
        if getattr(self, "_precision", None) is None:
            self._precision = np.linalg.pinv(self.cov_sum_ / self.n_seen_, hermitian=True)
        W = self.means_ @ self._precision
        return np.asarray(Z, dtype=np.float64) @ W.T - 0.5 * (W * self.means_).sum(1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"kind": np.array("lda"), "means": self.means_, "classes": self.classes_,
                "cov_sum": self.cov_sum_, "n_seen": np.array(self.n_seen_)}

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> MergedLDA:
        obj = cls(**kwargs)
        obj.means_ = np.asarray(arrays["means"], dtype=np.float64)
        obj.classes_ = np.asarray(arrays["classes"], dtype=np.int64)
        obj.cov_sum_ = np.asarray(arrays["cov_sum"], dtype=np.float64)
        obj.n_seen_ = int(np.asarray(arrays["n_seen"]))
        obj._precision = None
        return obj


#: the ridge parameters RanPAC chooses from
LAMBDAS = tuple(float(10.0 ** e) for e in range(-8, 9))


@HEADS.register("ranpac")
class RanPAC(_Head):
    """RanPAC's random-projection ridge classifier (module docstring).

    ``n_features``: projection size ``M``; ``lambdas``: the ridge grid; ``random_state``:
    seed of ``W`` (the runner derives it from the run seed).
    """

    def __init__(self, n_features: int = 1000, lambdas: list[float] | None = None,
                 random_state: int = 0) -> None:
        if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
            raise ValueError(f"head.n_features: must be a positive int, got {n_features!r}")
        grid = LAMBDAS if lambdas is None else tuple(float(v) for v in lambdas)
        if not grid or any(not v > 0 for v in grid):
            raise ValueError(f"head.lambdas: must be a non-empty list of numbers > 0, "
                             f"got {lambdas!r}")
        self.n_features = n_features
        self.lambdas = lambdas
        self.random_state = random_state

    def projection(self, d: int) -> np.ndarray:
        """``W`` ``(d, M)``, a function of ``random_state`` only."""
        rng = np.random.default_rng(self.random_state)
        return rng.standard_normal((d, self.n_features))

    def transform(self, Z: Any) -> np.ndarray:  # noqa: N803
        """``h = ReLU(Z W)`` ``(n, M)``."""
        Z = np.asarray(Z, dtype=np.float64)
        if not hasattr(self, "_W") or self._W.shape[0] != Z.shape[1]:
            self._W = self.projection(Z.shape[1])
        return np.maximum(Z @ self._W, 0.0)

    def partial_fit(self, Z: Any, y: Any, Z_cal: Any = None,  # noqa: N803
                    y_cal: Any = None) -> RanPAC:
        Z, y = _check(Z, y)
        H = self.transform(Z)
        if not hasattr(self, "G_"):
            self.G_ = np.zeros((self.n_features, self.n_features))
            self.C_ = np.zeros((self.n_features, 0))
            self.classes_ = np.zeros(0, dtype=np.int64)
        new = np.setdiff1d(np.unique(y), self.classes_)
        self.classes_ = np.concatenate([self.classes_, new])
        self.C_ = np.concatenate([self.C_, np.zeros((self.n_features, len(new)))], 1)
        col = {c: i for i, c in enumerate(self.classes_)}
        Y = np.zeros((len(y), len(self.classes_)))
        Y[np.arange(len(y)), [col[c] for c in y]] = 1.0
        self.G_ = self.G_ + H.T @ H
        self.C_ = self.C_ + H.T @ Y
        ev, V = np.linalg.eigh(self.G_)
        VtC = V.T @ self.C_
        grid = LAMBDAS if self.lambdas is None else tuple(self.lambdas)
        self.lambda_ = grid[-1]
        if Z_cal is not None and len(Z_cal):
            Zc, yc = _check(Z_cal, y_cal)
            HV = self.transform(Zc) @ V
            best = -1.0
            for lam in grid:  # ties -> the larger (more regularised) lambda
                acc = float(np.mean(self.classes_[np.argmax((HV / (ev + lam)) @ VtC, 1)] == yc))
                if acc >= best:
                    best, self.lambda_ = acc, lam
            self.calibration_accuracy_ = best
        self.Wo_ = (V / (ev + self.lambda_)) @ VtC
        return self

    def decision_function(self, Z: Any) -> np.ndarray:  # noqa: N803
        if not hasattr(self, "Wo_"):
            raise ValueError("RanPAC: not fitted")
        return self.transform(Z) @ self.Wo_

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"kind": np.array("ranpac"), "G": self.G_, "C": self.C_,
                "classes": self.classes_, "Wo": self.Wo_, "lambda": np.array(self.lambda_)}

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> RanPAC:
        obj = cls(**kwargs)
        obj.G_ = np.asarray(arrays["G"], dtype=np.float64)
        obj.C_ = np.asarray(arrays["C"], dtype=np.float64)
        obj.classes_ = np.asarray(arrays["classes"], dtype=np.int64)
        obj.Wo_ = np.asarray(arrays["Wo"], dtype=np.float64)
        obj.lambda_ = float(np.asarray(arrays["lambda"]))
        if obj.G_.shape != (obj.n_features,) * 2:
            raise ValueError("arrays: G does not match n_features")
        return obj
