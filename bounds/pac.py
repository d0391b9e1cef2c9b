"""Finite-sample PAC bounds from a held-out calibration sample (docs/theory.md §5)."""

from __future__ import annotations

import numpy as np

from .base import Bound, BoundInputs
from .empirical import task_counts
from .forms import FUNCS

__all__ = ["HoeffdingBound", "ClopperPearsonBound"]


# ------------------------------------------------------------------ PAC bounds
class _PACBound(Bound):
    tier = "pac"
    reads = ("cal_scores", "cal_task")
    assumptions = (
        "signatures fixed before the calibration sample was drawn (independent of it)",
        "calibration points i.i.d. from each task's population",
        "holds with probability >= 1 - delta simultaneously for all m tasks",
        "surrogate g = E_t (the retrieval-error indicator) on the calibration sample",
    )

    def _counts(self, inputs: BoundInputs) -> tuple[np.ndarray, np.ndarray, int]:
        S, task = inputs.cal_scores, inputs.cal_task
        m_ = S.shape[1]
        n_t = task_counts(task, m_, name="cal_task")
        err = inputs.cal_errors()
        k_t = np.bincount(task, weights=err.astype(np.float64), minlength=m_)
        return k_t, n_t, m_


class HoeffdingBound(_PACBound):
    """mean_cal(g) + sqrt(ln(m/delta) / (2 n_t)) (§5.1)."""

    name, title, section = "pac-hoeffding", "PAC, Hoeffding", "docs/theory.md §5.1"

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        k_t, n_t, m_ = self._counts(inputs)
        slack = FUNCS["hoeffding"](float(m_), inputs.delta, n_t.astype(np.float64))
        return k_t / n_t + slack, {"empirical": k_t / n_t, "slack": slack, "n_t": n_t}


def _clopper_pearson(k: float, n: float, alpha: float) -> float:
    """One-sided Clopper-Pearson upper limit of a binomial proportion at level alpha."""
    if k >= n:
        return 1.0
    from scipy.special import betaincinv  # the beta quantile, without scipy.stats' import

    return float(betaincinv(k + 1, n - k, 1.0 - alpha))


class ClopperPearsonBound(_PACBound):
    """One-sided Clopper-Pearson upper limit at level delta/m per task (§5.2)."""

    name, title, section = "pac-clopper-pearson", "PAC, Clopper-Pearson", "docs/theory.md §5.2"

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        k_t, n_t, m_ = self._counts(inputs)
        from scipy.special import betaincinv

        alpha = inputs.delta / m_
        with np.errstate(all="ignore"):
            up = betaincinv(k_t + 1, np.maximum(n_t - k_t, 1e-300), 1.0 - alpha)
        up = np.where(k_t >= n_t, 1.0, up)
        return up, {"empirical": k_t / n_t, "n_t": n_t,
                    "pooled": _clopper_pearson(k_t.sum(), n_t.sum(), inputs.delta)}


