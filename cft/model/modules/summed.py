"""Summed-LoRA families: every task's LoRA stays in the model; inference uses their sum.

``summed`` -- O-LoRA (Wang et al., "Orthogonal Subspace Learning for Language Model
Continual Learning", Findings of EMNLP 2023, arXiv 2310.14152). Task ``t`` trains a new
LoRA ``(A_t, B_t)`` on top of the frozen earlier ones, with the paper's training objective
(orthogonality loss ``L_orth`` between the new and every earlier LoRA subspace; the paper's
additional L2 term on the new LoRA is AdamW's weight decay here),

    L = L_task + lambda_1 sum_{i<t} sum_{j,k} ||O_{i,t}[j, k]||^2,   O_{i,t} = A_i^T A_t

(their ``A`` is ``d x r``; in our row convention ``O`` is ``A_t A_i^T`` and the term is
``lambda_orth sum_i ||A_t A_i^T||_F^2``, :meth:`ProteusAdapter.orth_penalty`). The forward
pass is ``W_0 + sum_{i<=t} s B_i A_i`` in training and at inference (the earlier updates
merged into the weights): a :class:`ProteusAdapter` with ``alpha = 1`` and every
coefficient fixed at 1 (not trained). No task identity, no retrieval: ``merged``.
Departures from the official code (github.com/cmnfriend/O-LoRA, ``src/uie_trainer_lora.py``):
it penalises ``sum_{j,k} |O_{i,t}[j, k]|`` (the absolute entries, same zero set as the
paper's squares; we follow the paper) and adds ``lambda_2 ||(A_t, B_t)||_2`` explicitly
(here AdamW's weight decay); it fine-tunes T5 as a generator with instructions, here an
encoder with a classification head (the LDA head of :mod:`cft.evaluation.heads.continual`).

``sd-lora`` -- SD-LoRA (Wu et al., "Scalable Decoupled Low-Rank Adaptation for Class
Incremental Learning", ICLR 2025, arXiv 2501.13198; official code
github.com/WuYichen-97/SD-Lora-CL), the decoupled update of the paper:

    W = W_0 + sum_{i<t} alpha_i  (B_i A_i) / ||B_i A_i||_F  +  alpha_t B_t A_t,

the earlier directions normalised and frozen, their magnitudes ``alpha_i`` learned at every
later task together with the new direction. Here the magnitudes are per task and per
adapted layer (the coefficients ``c`` of :class:`ProteusAdapter`, not L1-penalised), the
new component's magnitude is folded into ``B_t`` during task ``t``, and when task ``t+1``
starts, its magnitude is initialised to ``||s B_t A_t||_F`` (the earlier ones to their
learned values), so the model is unchanged at the start of each task. The official code
divides by ``||B_i|| ||A_i||`` (product of the factors' norms) instead of
``||B_i A_i||_F``; we follow the paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from cft.config.registry import MODULE_FAMILIES
from cft.model.modules.base import BuildContext, ModuleFamily
from cft.model.modules.proteus import ProteusAdapter, _key


class SummedLoRA(ProteusAdapter):
    """``Delta W_t = sum_{j<=t} s_j B_j A_j``: alpha 1, coefficients fixed at 1."""

    def __init__(self, shapes: Mapping[str, tuple[int, int]], **kw: Any) -> None:
        super().__init__(shapes, **{**kw, "alpha": 1.0, "coef_init": 1.0})
        for c in self.coef.values():
            c.requires_grad_(False)

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"factors": list(self.lora_A.values()) + list(self.lora_B.values()),
                "coef": []}


class SDLoRAAdapter(ProteusAdapter):
    """SD-LoRA: frozen earlier directions ``s_j B_j A_j / ||s_j B_j A_j||_F`` weighted by
    learned magnitudes ``c_j`` (per layer), plus the new LoRA ``s B_t A_t``."""

    def __init__(self, shapes: Mapping[str, tuple[int, int]], **kw: Any) -> None:
        super().__init__(shapes, **{**kw, "alpha": 1.0, "coef_init": 0.0})
        if not self.task:
            return
        prev = kw["previous"][-1]
        with torch.no_grad():
            for n in self.shapes:
                nrm = 0.0
                for a_j, b_j in self.frozen_factors(n):  # views of the stacked buffer
                    nrm = float(direction_norm(a_j, b_j))
                    if nrm > 0:
                        b_j.div_(nrm)
                # magnitudes: the previous module's learned ones, then the norm of its own
                # direction (the model is unchanged at the start of the task)
                mags = list(prev.c(n).detach().tolist()) if prev.task else []
                self.coef[_key(n)].copy_(torch.tensor(mags + [nrm]))


def direction_norm(a: Tensor, sb: Tensor) -> Tensor:
    """``||sB A||_F`` from the factors (``tr((sB^T sB)(A A^T))``, no ``d x d`` matrix)."""
    return ((sb.T @ sb) * (a @ a.T)).sum().clamp_min(0.0).sqrt()


@MODULE_FAMILIES.register("summed")
class Summed(ModuleFamily):
    """O-LoRA: new LoRA per task, orthogonality penalty, all modules summed (``merged``)."""

    inference: ClassVar[str] = "merged"
    adapter_cls: ClassVar[type[ProteusAdapter]] = SummedLoRA

    def build(self, ctx: BuildContext) -> Any:
        return self._adapter(ctx, cls=self.adapter_cls)

    def load(self, state: Mapping[str, Tensor], previous: Sequence[Any]) -> Any:
        return self.adapter_cls.from_state_dict(state, previous=list(previous))


@MODULE_FAMILIES.register("sd-lora")
class SDLoRA(Summed):
    """SD-LoRA: normalised frozen directions with learned magnitudes (``merged``)."""

    adapter_cls: ClassVar[type[ProteusAdapter]] = SDLoRAAdapter

    def stats(self, module: Any) -> dict[str, Any]:
        out = module.reuse_stats()
        return {"magnitudes": out["coef"], "overlap": out["overlap"]}
