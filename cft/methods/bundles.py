"""Continual fine-tuning methods as configuration bundles (``METHODS`` registry).

A method is *only* a set of dotted configuration overrides applied on top of a preset and
below the user's own overrides (:func:`cft.config.resolve`). The runner and the trainer
never look at the method's name: everything a method changes is visible in the resolved
``config.json``.

* ``proteus``: composed PROTEUS modules, ``Delta W_k = alpha sum_j c_kj B_j A_j + B_k A_k``
  with ``alpha`` taken from the configuration (``module.reuse_weight``), the orthogonality penalty
  on the new factors and the L1 penalty on the coefficients as configured.
* ``lora``: an independent LoRA module per task: no reuse (``module.reuse_weight = 0``), no
  orthogonality constraint and no coefficient penalty (``train.lambda_orth = 0``,
  ``train.lambda_l1 = 0``).

Baselines. Where a bundle of overrides is not enough, a method names a small
*hook* by configuration: a module family (``module.family``, :mod:`cft.model.modules`: how the
task's module is built and trained, and whether inference retrieves a task's module or uses
one merged module), a continual classifier head (``head.kind``,
:mod:`cft.evaluation.heads.continual`) or a learned retrieval rule (``eval.rule``,
:mod:`cft.evaluation.keys`). The runner reads the hooks' declared capabilities, never the
method's name. Methods with no retrieval record ``"retrieval": "n/a"``.

* ``seq-lora``: one LoRA fine-tuned through all tasks (``sequential``; lower bound).
* ``o-lora``: a new LoRA per task with the orthogonality penalty against the earlier ones,
  all summed at inference (``summed``, ``lambda_orth = 0.5`` as in the O-LoRA paper).
* ``inflora``: ``A`` fixed orthogonal to the earlier tasks' inputs, only ``B`` trained,
  modules summed (``inflora``).
* ``sd-lora``: earlier directions normalised and frozen, magnitudes learned (``sd-lora``).
* ``ranpac``: frozen backbone, random ReLU projection and ridge prototypes (``frozen``
  family, ``ranpac`` head).
* ``keys``: PROTEUS modules, plus L2P-style learned keys as a third retrieval rule
  (``eval.rule = keys``), evaluated next to the adapted and shared signatures.
* ``joint``: one LoRA trained on the union of the training data of tasks ``0..t`` at step
  ``t`` (``joint`` family; cumulative-joint rows, the upper bound at every step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cft.config.registry import METHODS

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
    return Method("proteus",
                  "composed modules (reuse_weight, lambda_orth, lambda_l1 from config)", {})


#: no orthogonality and no L1 penalty (methods without PROTEUS's reuse)
_NO_PENALTIES = {"train.lambda_orth": 0.0, "train.lambda_l1": 0.0}


@METHODS.register("lora")
def lora() -> Method:
    """Independent LoRA per task (``alpha = 0``, no orthogonality / L1 penalties)."""
    return Method("lora", "independent LoRA per task (module.reuse_weight = 0)",
                  {"module.reuse_weight": 0.0, **_NO_PENALTIES})


@METHODS.register("seq-lora")
def seq_lora() -> Method:
    """One LoRA module fine-tuned through all tasks (no retrieval)."""
    return Method("seq-lora", "one LoRA fine-tuned through all tasks (no retrieval)",
                  {"module.family": "sequential", **_NO_PENALTIES})


@METHODS.register("o-lora")
def o_lora() -> Method:
    """O-LoRA: orthogonality penalty against earlier LoRAs, modules summed."""
    return Method("o-lora", "new LoRA per task, orthogonality penalty, summed (no retrieval)",
                  {"module.family": "summed", **_NO_PENALTIES, "train.lambda_orth": 0.5})


@METHODS.register("inflora")
def inflora() -> Method:
    """InfLoRA: A fixed orthogonal to earlier inputs, B trained, modules summed."""
    return Method("inflora", "A in the complement of earlier inputs, B trained, summed "
                  "(no retrieval)", {"module.family": "inflora", **_NO_PENALTIES})


@METHODS.register("sd-lora")
def sd_lora() -> Method:
    """SD-LoRA: normalised frozen directions, learned magnitudes."""
    return Method("sd-lora", "frozen normalised directions, learned magnitudes "
                  "(no retrieval)", {"module.family": "sd-lora", **_NO_PENALTIES})


@METHODS.register("ranpac")
def ranpac() -> Method:
    """RanPAC: frozen backbone, random ReLU projection, ridge class prototypes."""
    return Method("ranpac", "frozen backbone, random projection + ridge prototypes "
                  "(no retrieval)", {"module.family": "frozen", "head.kind": "ranpac"})


@METHODS.register("keys")
def keys() -> Method:
    """PROTEUS modules with L2P-style learned keys as an extra retrieval rule."""
    return Method("keys", "PROTEUS modules; learned L2P keys as a third retrieval rule",
                  {"eval.rule": "keys"})


@METHODS.register("joint")
def joint() -> Method:
    """Joint training on the data of tasks 0..t at every step (upper bound)."""
    return Method("joint", "one LoRA on all data seen so far (cumulative joint; upper bound)",
                  {"module.family": "joint", **_NO_PENALTIES})
