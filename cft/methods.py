"""Continual fine-tuning methods as configuration bundles (``METHODS`` registry).

A method is *only* a set of dotted configuration overrides applied on top of a preset and
below the user's own overrides (:func:`cft.config.resolve`). The runner and the trainer
never look at the method's name: everything a method changes is visible in the resolved
``config.json``.

* ``proteus``: composed PROTEUS modules, ``Delta W_k = alpha sum_j c_kj B_j A_j + B_k A_k``
  with ``alpha`` taken from the configuration (``module.alpha``), the orthogonality penalty
  on the new factors and the L1 penalty on the coefficients as configured.
* ``lora``: an independent LoRA module per task: no reuse (``module.alpha = 0``), no
  orthogonality constraint and no coefficient penalty (``train.lambda_orth = 0``,
  ``train.lambda_l1 = 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cft.registry import METHODS

__all__ = ["Method"]


@dataclass(frozen=True)
class Method:
    """A named bundle of ``{dotted key: typed value}`` configuration overrides."""

    name: str
    description: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


@METHODS.register("proteus")
def proteus() -> Method:
    """PROTEUS: composed modules; ``alpha`` and penalties from the configuration."""
    return Method("proteus", "composed modules (alpha, lambda_orth, lambda_l1 from config)", {})


@METHODS.register("lora")
def lora() -> Method:
    """Independent LoRA per task (``alpha = 0``, no orthogonality / L1 penalties)."""
    return Method("lora", "independent LoRA per task (alpha = 0)",
                  {"module.alpha": 0.0, "train.lambda_orth": 0.0, "train.lambda_l1": 0.0})
