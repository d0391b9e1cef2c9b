"""Adapted retrieval that survives later modules: two rules that score a sample under
module ``s`` against how module ``s`` treats text that belongs to no task (docs/theory.md
§13). Registered with ``RULES`` (config ``eval.rule``) and evaluated next to the
parameter-free rules by :func:`cft.evaluation.retrieval.add_rule`.

The failure they address: a later module ``s`` pulls inputs of earlier tasks onto its own
clusters, so ``nll_s(h_s(x))`` is small for a foreign ``x`` and module ``s`` claims it. Both
rules need, when module ``s`` is trained, its representations ``h_s(b)`` of a fixed
*background* sample ``b`` drawn from classes of the stream's own corpus that no task uses
(:meth:`cft.data.base.TaskStream.background`): never data of a later task.

* ``bg_ratio`` -- a background likelihood ratio (Ren et al., "Likelihood Ratios for
  Out-of-Distribution Detection", NeurIPS 2019; the relative Mahalanobis distance of Ren et
  al., arXiv 2106.09022, is its one-Gaussian case):
  ``score_s(x) = nll_s(h_s(x)) - lam * nll_bg,s(h_s(x))``, with ``nll_s`` the task's mixture
  fitted on ``h_s`` of its training data and ``nll_bg,s`` a mixture of the same family
  fitted on ``h_s(b)``. ``lam`` in ``GRID`` is chosen per step on the calibration split
  (retrieval accuracy; the test split never chooses), ``lam = 0`` being the paper's rule.
* ``bg_zscore`` -- the task's ``nll_s`` standardised by its values on the background:
  ``score_s(x) = (nll_s(h_s(x)) - mu_s) / sd_s`` with ``mu_s, sd_s`` the mean and standard
  deviation of ``nll_s(h_s(b))``: a module that pulls everything onto its clusters gives
  the background a small ``nll`` too, and its claims are discounted by as much.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cft.config.registry import RULES, SIGNATURES
from cft.config.validation import check_int

__all__ = ["GRID", "BackgroundRatioRule", "BackgroundZScoreRule"]

#: the weights ``lam`` of the background term that ``bg_ratio`` chooses from
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def _part(arrays: Any, prefix: str) -> Any:
    """The signature saved under ``prefix`` by a rule's ``to_arrays``."""
    from cft.evaluation.signatures import Signature

    return Signature.from_arrays({k[len(prefix):]: arrays[k] for k in arrays
                                  if k.startswith(prefix)})


class _BackgroundRule:
    """Shared parts: the task's mixture on ``h_s`` of its training data (sklearn style)."""

    kinds: ClassVar[tuple[str, ...]] = ("nll",)
    #: the space the queries live in: module s's adapted representations h_s(x)
    space: ClassVar[str] = "adapted"
    #: weights of the background term chosen on calibration data (None: no choice)
    grid: ClassVar[tuple[float, ...] | None] = None

    def __init__(self, family: str = "dpgmm", n_components: int = 5,
                 covariance_type: str = "diag", max_iter: int = 200, n_background: int = 1000,
                 random_state: int = 0) -> None:
        import cft.evaluation.signatures  # noqa: F401  (registers the signature families)

        if family not in ("gmm", "dpgmm"):
            raise ValueError(f"eval.family: must be 'gmm' or 'dpgmm' (a mixture with "
                             f"likelihoods), got {family!r}")
        check_int("eval.n_components", n_components, minimum=1)
        check_int("eval.n_background", n_background, minimum=2)
        self.family = family
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.n_background = n_background
        self.random_state = random_state

    def _mixture(self, seed_offset: int) -> Any:
        cls = SIGNATURES.get(self.family)
        return cls(n_components=self.n_components, covariance_type=self.covariance_type,
                   max_iter=self.max_iter, random_state=self.random_state + seed_offset)

    def cost(self, Q: Any, lam: float | None = None) -> np.ndarray:  # noqa: N803
        """The rule's score of ``h_s(x)`` (smaller = closer); ``lam`` for a tuned rule."""
        return self.combine(self.parts(Q), self.grid[-1] if lam is None and self.grid
                            else lam)

    def parts(self, Q: Any) -> dict[str, np.ndarray]:  # noqa: N803
        raise NotImplementedError

    @staticmethod
    def combine(parts: dict[str, np.ndarray], lam: float | None) -> np.ndarray:
        raise NotImplementedError


@RULES.register("bg_ratio")
class BackgroundRatioRule(_BackgroundRule):
    """``nll_s - lam * nll_bg,s`` (module docstring)."""

    grid = GRID

    def fit(self, Z: Any, background: Any) -> BackgroundRatioRule:  # noqa: N803
        """``Z``: ``h_s`` of task s's training data; ``background``: ``h_s(b)``."""
        self.task_ = self._mixture(0).fit(Z)
        self.background_ = self._mixture(1).fit(background)
        return self

    def parts(self, Q: Any) -> dict[str, np.ndarray]:  # noqa: N803
        return {"task": self.task_.cost(Q, "nll"), "background": self.background_.cost(Q, "nll")}

    @staticmethod
    def combine(parts: dict[str, np.ndarray], lam: float | None) -> np.ndarray:
        return parts["task"] - float(lam) * parts["background"]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{f"task_{k}": v for k, v in self.task_.to_arrays().items()},
                **{f"bg_{k}": v for k, v in self.background_.to_arrays().items()}}

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> BackgroundRatioRule:
        obj = cls(**kwargs)
        obj.task_, obj.background_ = _part(arrays, "task_"), _part(arrays, "bg_")
        return obj


@RULES.register("bg_zscore")
class BackgroundZScoreRule(_BackgroundRule):
    """``(nll_s - mu_s) / sd_s`` over the background (module docstring)."""

    def fit(self, Z: Any, background: Any) -> BackgroundZScoreRule:  # noqa: N803
        self.task_ = self._mixture(0).fit(Z)
        b = self.task_.cost(background, "nll")
        self.bg_mean_ = float(np.mean(b))
        self.bg_std_ = float(max(np.std(b), 1e-12 * max(1.0, abs(self.bg_mean_))))
        return self

    def parts(self, Q: Any) -> dict[str, np.ndarray]:  # noqa: N803
        return {"z": (self.task_.cost(Q, "nll") - self.bg_mean_) / self.bg_std_}

    @staticmethod
    def combine(parts: dict[str, np.ndarray], lam: float | None) -> np.ndarray:
        return parts["z"]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{f"task_{k}": v for k, v in self.task_.to_arrays().items()},
                "bg_mean": np.asarray(self.bg_mean_), "bg_std": np.asarray(self.bg_std_)}

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> BackgroundZScoreRule:
        obj = cls(**kwargs)
        obj.task_ = _part(arrays, "task_")
        obj.bg_mean_ = float(arrays["bg_mean"])
        obj.bg_std_ = float(arrays["bg_std"])
        return obj
