"""The module-family protocol (:class:`ModuleFamily`, :class:`BuildContext`) and the
families that need no code of their own: ``proteus``, ``sequential``, ``joint``,
``frozen`` (the package docstring of :mod:`cft.model.modules` describes them)."""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from cft.config import ModuleConfig
from cft.config.registry import MODULE_FAMILIES
from cft.model.modules.proteus import ProteusAdapter

__all__ = ["BuildContext", "ModuleFamily"]


@dataclass
class BuildContext:
    """What a family may use to build task ``task``'s module."""

    backbone: Any  # cft.model.backbones.Backbone
    module: ModuleConfig
    previous: Sequence[Any]  # the modules of tasks 0..task-1 (None for ``frozen``)
    task: int
    n_tasks: int
    seed: int  # derive_seed(run seed, "module", task)
    cache: Any = None  # HiddenCache of the task's training split (lower layers)
    batch_size: int = 64


class ModuleFamily:
    """Base family: PROTEUS modules, one per task, routed by retrieval."""

    inference: ClassVar[str] = "retrieval"
    cumulative: ClassVar[bool] = False
    #: the ``module.orth`` modes the family supports
    orth_modes: ClassVar[tuple[str, ...]] = ("penalty", "project")

    def _adapter(self, ctx: BuildContext, cls: type[ProteusAdapter] = ProteusAdapter,
                 previous: Sequence[Any] | None = None, **kw: Any) -> ProteusAdapter:
        m = ctx.module
        opts: dict[str, Any] = {"rank": m.rank, "lora_alpha": m.lora_alpha, "alpha": m.reuse_weight,
                                "coef_init": m.coef_init, "orth": m.orth}
        opts.update(kw)
        prev = list(ctx.previous if previous is None else previous)
        return cls.for_backbone(ctx.backbone, previous=prev, seed=ctx.seed, **opts)

    def build(self, ctx: BuildContext) -> Any:
        return self._adapter(ctx)

    def after_train(self, module: Any, ctx: BuildContext) -> None:
        """Called once the module is trained (before it is used or saved)."""

    def state(self, module: Any) -> dict[str, Tensor]:
        return module.to_state_dict()

    def load(self, state: Mapping[str, Tensor], previous: Sequence[Any]) -> Any:
        return ProteusAdapter.from_state_dict(state, previous=list(previous))

    def stats(self, module: Any) -> dict[str, Any]:
        """JSON-able per-task statistics for ``done.json``."""
        return module.reuse_stats()


@MODULE_FAMILIES.register("proteus")
class Proteus(ModuleFamily):
    """PROTEUS composition (``module.reuse_weight``, ``module.orth``); ``alpha = 0`` is LoRA."""


@MODULE_FAMILIES.register("sequential")
class Sequential(ModuleFamily):
    """One LoRA module fine-tuned through all tasks (seq-LoRA, the forgetting lower bound):
    task ``t``'s module starts from task ``t-1``'s factors ``(A, B)`` and is trained
    further; only the latest module exists at inference (``merged``)."""

    inference: ClassVar[str] = "merged"

    def build(self, ctx: BuildContext) -> Any:
        mod = self._adapter(ctx, previous=[], alpha=0.0, orth="penalty")
        if ctx.previous:
            last = ctx.previous[-1]
            with torch.no_grad():
                for n in mod.shapes:
                    mod.A(n).copy_(last.A(n))
                    mod.B(n).copy_(last.B(n))
        return mod

    def load(self, state: Mapping[str, Tensor], previous: Sequence[Any]) -> Any:
        return ProteusAdapter.from_state_dict(state, previous=[])


@MODULE_FAMILIES.register("joint")
class Joint(Sequential):
    """The joint upper bound: task ``t``'s module is a fresh LoRA module (seed of task t)
    trained on the union of the training splits of tasks ``0..t`` (``cumulative``), so
    step ``t`` of the accuracy matrix is the joint model of the first ``t + 1`` tasks."""

    cumulative: ClassVar[bool] = True

    def build(self, ctx: BuildContext) -> Any:
        return self._adapter(ctx, previous=[], alpha=0.0, orth="penalty")


@MODULE_FAMILIES.register("frozen")
class Frozen(ModuleFamily):
    """No module at all: the frozen pre-trained backbone serves every task (RanPAC)."""

    inference: ClassVar[str] = "merged"

    def build(self, ctx: BuildContext) -> Any:
        return None

    def state(self, module: Any) -> dict[str, Tensor]:
        return {"meta.frozen": torch.ones(1, dtype=torch.int64)}

    def load(self, state: Mapping[str, Tensor], previous: Sequence[Any]) -> Any:
        if "meta.frozen" not in state:
            raise ValueError("state: not a 'frozen' module file (no meta.frozen)")
        return None

    def stats(self, module: Any) -> dict[str, Any]:
        return {}
