"""Every bound on a features-space task stream, without any backbone (notebooks 03/04):
class means as centroids and fitted per-class Gaussians as the task mixtures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import bounds

__all__ = ["features_experiment"]


def _class_gaussians(X: np.ndarray, y: np.ndarray, ridge: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = np.unique(y)
    d = X.shape[1]
    w = np.array([np.mean(y == c) for c in classes])
    mu = np.stack([X[y == c].mean(axis=0) for c in classes])
    cov = np.stack([np.cov(X[y == c], rowvar=False, bias=False).reshape(d, d)
                    + ridge * np.eye(d) for c in classes])
    return w, mu, cov


def features_experiment(stream: Any, *, delta: float = 0.05, ridge: float = 1e-6,
                        sketch_rank: int | None = None) -> dict[str, Any]:
    """All bounds for a features-space stream, without any backbone (notebooks 03/04).

    For each task the train split gives per-class means (the task's centroids, as a
    class-wise signature) and per-class Gaussians (sample mean, unbiased covariance +
    ``ridge`` I, class frequencies as weights) = fitted Gaussian mixture of the task.
    Two retrieval rules are evaluated on the test split:

    * ``"centroid"``: nearest stored centroid (score bounds, centroid bounds A-D on the test
      ClusterStats, PAC bounds on the calibration split);
    * ``"nll"``: likelihood under the fitted mixtures (score bounds, PAC bounds and the
      Gaussian Chernoff bound, docs/theory.md §4).

    Returns ``{"centroid": {...}, "nll": {...}, "n_test": (m,), "mixtures": GaussianMixtures}``
    where each rule maps to ``{"empirical": (m,), "empirical_overall": float,
    "bounds": {name: BoundResult}}``.
    """
    if getattr(stream, "modality", None) != "features":
        raise ValueError("stream: must be a features-space task stream")
    m = int(stream.n_tasks)
    parts: dict[str, list] = {"ctask": [], "w": [], "mu": [], "cov": []}
    data: dict[str, tuple[list, list]] = {"test": ([], []), "calibration": ([], [])}
    for t in range(m):
        td = stream.task(t)
        X = np.asarray(td.train.inputs, dtype=np.float64)
        w, mu, cov = _class_gaussians(X, td.train.labels, ridge)
        parts["ctask"].append(np.full(len(mu), t, dtype=np.int64))
        parts["w"].append(w)
        parts["mu"].append(mu)
        parts["cov"].append(cov)
        for split, (zs, ys) in data.items():
            Z = np.asarray(td.split(split).inputs, dtype=np.float64)
            zs.append(Z)
            ys.append(np.full(len(Z), t, dtype=np.int64))
    mix = bounds.stack_mixtures(list(zip(parts["w"], parts["mu"], parts["cov"])))
    cent = np.concatenate(parts["mu"])  # class means double as centroids
    ctask = np.concatenate(parts["ctask"])
    Zte, yte = (np.concatenate(a) for a in data["test"])
    Zca, yca = (np.concatenate(a) for a in data["calibration"])
    out: dict[str, Any] = {"n_test": np.bincount(yte, minlength=m), "mixtures": mix,
                           "centroids": cent, "centroid_task": ctask}
    rules = {
        "centroid": (bounds.nearest_centroid_scores(Zte, cent, ctask, m),
                     bounds.nearest_centroid_scores(Zca, cent, ctask, m)),
        "nll": (mix.nll(Zte), mix.nll(Zca)),
    }
    for rule, (S, Scal) in rules.items():
        inp = bounds.BoundInputs(
            scores=S, task=yte, cal_scores=Scal, cal_task=yca, delta=delta,
            clusters=bounds.cluster_stats(Zte, yte, cent, ctask, sketch_rank=sketch_rank)
            if rule == "centroid" else None,
            mixtures=mix if rule == "nll" else None,
        )
        per, overall = bounds.empirical_error(S, yte, m=m)
        out[rule] = {"empirical": np.asarray(per, dtype=np.float64),
                     "empirical_overall": float(overall), "bounds": bounds.evaluate(inp)}
    return out
