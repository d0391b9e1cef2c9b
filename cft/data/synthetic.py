"""Task streams generated directly in feature space (``DATASETS.build("synthetic")``).

Task ``t`` is a mixture of ``classes_per_task`` clusters (one cluster = one class):

    mu_t      ~ N(0, task_separation^2 / (2 d) I)        task centres: E||mu_s - mu_t||^2 = sep^2
    m_{t,k}   ~ mu_t + N(0, cluster_spread^2 / d I)      class means: E||m - mu_t||^2 = spread^2
    Sigma_{t,k} = noise^2 * R diag(lambda) R^T          lambda log-spaced in [1/a, 1] * d/sum,
                                                        a = anisotropy, R a random rotation
    x | (t, k) ~ N(m_{t,k}, Sigma_{t,k})                          (distribution="gaussian")
    x | (t, k) = m_{t,k} + L z sqrt(dof / chi2_dof),  L L^T = Sigma  (distribution="student_t")

so the true per-task densities are exactly the mixtures of :class:`SyntheticTruth` (for
Student-t the covariance is ``dof / (dof - 2)`` times the scale matrix, dof > 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cft.config.registry import DATASETS
from cft.config.seed import child_rng
from cft.config.validation import check_float, check_int, check_seed

from .base import Size, TaskStream


@dataclass(frozen=True)
class SyntheticTruth:
    """True generating parameters, indexed by task ``t`` and cluster ``k`` (class t*K + k).

    ``weights`` (m, K), ``task_centers`` (m, d), ``means`` (m, K, d), ``scales`` (m, K, d, d)
    (the scale matrix), ``covariances`` (m, K, d, d) (the actual covariance; equal to
    ``scales`` for a Gaussian, infinite entries for Student-t with dof <= 2).
    """

    distribution: str
    dof: float | None
    weights: np.ndarray
    task_centers: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    covariances: np.ndarray


@DATASETS.register("synthetic")
class SyntheticStream(TaskStream):
    """Features stream of Gaussian or heavy-tailed (multivariate Student-t) mixtures.

    Parameters
    ----------
    seed: drives the generating parameters, the samples and the splits.
    n_tasks: number of tasks (default 5).
    classes_per_task: clusters (= classes) per task (default 4).
    dim: feature dimension d (default 16).
    distribution: ``"gaussian"`` or ``"student_t"``.
    dof: Student-t degrees of freedom (default 3.0; ignored for gaussian).
    task_separation: RMS distance between task centres (default 8.0).
    cluster_spread: RMS distance of a class mean to its task centre (default 3.0).
    noise: within-cluster scale; mean per-coordinate variance noise^2 (default 1.0).
    anisotropy: ratio largest / smallest eigenvalue of each scale matrix (default 1.0).
    n_per_class: examples generated per class, before the split (default 300).
    train_size, calibration_size, test_size: per class (int count or float fraction).
    class_order: ``"natural"`` (default: task t = clusters of mixture t) or ``"seed"``
        (the clusters are pooled and re-dealt by the seed, ``classes_per_task`` per task).
    """

    name = "synthetic"
    modality = "features"

    def __init__(
        self,
        *,
        seed: int = 0,
        n_tasks: int = 5,
        classes_per_task: int = 4,
        dim: int = 16,
        distribution: str = "gaussian",
        dof: float = 3.0,
        task_separation: float = 8.0,
        cluster_spread: float = 3.0,
        noise: float = 1.0,
        anisotropy: float = 1.0,
        n_per_class: int = 300,
        train_size: Size = None,
        calibration_size: Size = 0.2,
        test_size: Size = 0.2,
        class_order: str | Sequence[int | str] = "natural",
    ) -> None:
        seed = check_seed(seed)
        m = check_int("n_tasks", n_tasks, minimum=1)
        k = check_int("classes_per_task", classes_per_task, minimum=1)
        d = check_int("dim", dim, minimum=1)
        n = check_int("n_per_class", n_per_class, minimum=3)
        assert m is not None and k is not None and d is not None and n is not None
        if distribution not in ("gaussian", "student_t"):
            raise ValueError(f"distribution: must be 'gaussian' or 'student_t', "
                             f"got {distribution!r}")
        nu = check_float("dof", dof, low=0.0, strict_low=True) if distribution == "student_t" \
            else None
        sep = check_float("task_separation", task_separation, low=0.0)
        spread = check_float("cluster_spread", cluster_spread, low=0.0)
        sigma = check_float("noise", noise, low=0.0, strict_low=True)
        aniso = check_float("anisotropy", anisotropy, low=1.0)

        rng = child_rng(seed, "synthetic", "parameters")
        centers = rng.normal(0.0, sep / np.sqrt(2 * d), size=(m, d))
        means = centers[:, None, :] + rng.normal(0.0, spread / np.sqrt(d), size=(m, k, d))
        lam = np.logspace(0.0, -np.log10(aniso), d) if d > 1 else np.ones(1)
        lam = lam * d / lam.sum()
        scales = np.empty((m, k, d, d))
        for t in range(m):
            for j in range(k):
                q, r = np.linalg.qr(rng.normal(size=(d, d)))
                q = q * np.sign(np.diag(r))
                scales[t, j] = sigma**2 * (q * lam) @ q.T
        if nu is None:
            covs = scales.copy()
        elif nu > 2:
            covs = scales * (nu / (nu - 2))
        else:
            covs = np.full_like(scales, np.inf)
        self.truth_ = SyntheticTruth(
            distribution=distribution, dof=nu, weights=np.full((m, k), 1.0 / k),
            task_centers=centers, means=means, scales=scales, covariances=covs,
        )
        self.dim = d

        srng = child_rng(seed, "synthetic", "samples")
        chol = np.linalg.cholesky(scales + 1e-12 * np.eye(d))
        x = np.empty((m * k * n, d))
        for c in range(m * k):
            t, j = divmod(c, k)
            z = srng.normal(size=(n, d)) @ chol[t, j].T
            if nu is not None:
                z *= np.sqrt(nu / srng.chisquare(nu, size=n))[:, None]
            x[c * n:(c + 1) * n] = means[t, j] + z
        self._x = x.astype(np.float32)
        labels = np.repeat(np.arange(m * k, dtype=np.int64), n)
        names = [f"t{t}c{j}" for t in range(m) for j in range(k)]
        self._build(
            seed=seed, class_names=names, pool_labels=labels, train_size=train_size,
            calibration_size=calibration_size, test_size=test_size, order=class_order,
            classes_per_task=k,
        )

    def _take(self, index: np.ndarray) -> np.ndarray:
        return self._x[index]
