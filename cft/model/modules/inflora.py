"""InfLoRA family (``inflora``): Liang & Li, "InfLoRA: Interference-Free Low-Rank Adaptation
for Continual Learning", CVPR 2024 (arXiv 2404.00228; official code
github.com/liangyanshuo/InfLoRA, read for the threshold schedule).

Per adapted layer, with ``H_t`` the layer's input activations on task ``t``'s training
data (rows = tokens, padding excluded) and ``M_{t-1}`` an orthonormal basis of the earlier
tasks' input subspace (the gradient-projection memory):

* the paper's design of the dimensionality-reduction matrix (their ``B_t``, our ``A_t``,
  ``r x in``; we keep the LoRA naming ``Delta W = B A``): it is fixed to
  the top-``r`` eigenvectors of the projected input covariance
  ``(I - M M^T) H_t^T H_t (I - M M^T)``, so its rows are orthogonal to the earlier tasks'
  inputs (``A_t M = 0``) and lie where task ``t``'s inputs have the most energy; only
  ``B_t`` is trained. The input covariance is gathered under the model of the earlier tasks
  (the sum of their modules), as in the official code.
* the memory is updated after training, DualGPM / GPM style (Saha et al., "Gradient
  Projection Memory for Continual Learning", ICLR 2021: its energy criterion on the
  projected representation, referred to by the official InfLoRA code): with the
  covariance ``C`` of task ``t``'s inputs under the trained model, ``e_total = tr C``,
  ``e_kept = tr(M^T C M)`` and ``lambda_i`` the eigenvalues of the projected covariance,
  the fewest new directions are added such that
  ``(e_kept + sum_{i<=k} lambda_i) / e_total >= threshold``; the threshold grows linearly
  from ``threshold`` (task 0) toward ``threshold_end`` (the official ``lamb`` / ``lame``
  schedule). The memory never takes more than ``in - r`` dimensions, so the next task
  still has room for ``r`` orthogonal rows (we keep the "remove" representation; DualGPM's
  switch to storing the complement is a storage choice with the same subspace).
* Inference sums every task's module, ``W = W_0 + sum_j s B_j A_j`` (``merged``).

The basis ``M_t`` of each layer is saved with the module (``{layer}.gpm``), so a resumed
run continues with the same memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from cft.config.registry import MODULE_FAMILIES
from cft.model.modules.base import BuildContext
from cft.model.modules.proteus import ProteusAdapter
from cft.model.modules.summed import Summed, SummedLoRA


class InfLoRAAdapter(SummedLoRA):
    """Summed LoRA whose ``A`` is fixed (not trained) and which carries the GPM basis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for a in self.lora_A.values():
            a.requires_grad_(False)
        #: ``{layer: (in, k)}`` orthonormal basis of the inputs of tasks ``0..task``
        self.gpm: dict[str, Tensor] = {n: torch.zeros(i, 0) for n, (_, i) in self.shapes.items()}

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"factors": list(self.lora_B.values()), "coef": []}

    def to_state_dict(self) -> dict[str, Tensor]:
        out = super().to_state_dict()
        for n, q in self.gpm.items():
            out[f"{n}.gpm"] = q.detach().clone().contiguous()
        return out

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor],
                        previous: Sequence[ProteusAdapter] = ()) -> InfLoRAAdapter:
        mod = super().from_state_dict(state, previous)
        for n in mod.shapes:
            if f"{n}.gpm" not in state:
                raise ValueError(f"state: missing key {n + '.gpm'!r}")
            mod.gpm[n] = state[f"{n}.gpm"].clone()
        return mod  # type: ignore[return-value]


class _InputRecorder(nn.Module):
    """An 'adapter' that records ``sum x^T x`` over the non-padding tokens entering every
    adapted layer and applies ``inner``'s update (or none). An ``nn.Module`` (no parameters)
    because the backbone holds its adapter as a child module."""

    def __init__(self, shapes: Mapping[str, tuple[int, int]], inner: Any = None) -> None:
        super().__init__()
        self.shapes = dict(shapes)
        self.inner = inner
        self.mask: Tensor | None = None
        #: accumulated on the inputs' device (no host copy per batch), returned on the CPU
        self.cov: dict[str, Tensor] = {}

    def delta(self, name: str, x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if self.mask is not None and x.dim() == 3:
            rows = rows[self.mask.reshape(-1).to(torch.bool)]
        rows = rows.detach().to(torch.float64)
        gram = rows.T @ rows
        self.cov[name] = self.cov[name] + gram if name in self.cov else gram
        if self.inner is None:
            return torch.zeros(*x.shape[:-1], self.shapes[name][0], dtype=x.dtype,
                               device=x.device)
        return self.inner.delta(name, x)


@torch.no_grad()
def input_covariance(backbone: Any, cache: Any, inner: Any,
                     batch_size: int = 64) -> dict[str, Tensor]:
    """``{layer: H^T H}`` (float64) of the inputs of every adapted layer on ``cache`` under
    the update of ``inner`` (None = pre-trained)."""
    rec = _InputRecorder(backbone.adapter_shapes(), inner)
    for h, b in cache.iter_batches(batch_size):
        rec.mask = b.get("attention_mask") if isinstance(b, dict) else None
        backbone.upper(h, b, rec)
    return {n: rec.cov[n].cpu() if n in rec.cov else torch.zeros(i, i, dtype=torch.float64)
            for n, (_, i) in rec.shapes.items()}


def _complement_top(cov: Tensor, basis: Tensor, r: int) -> Tensor:
    """Top-``r`` eigenvectors (rows, ``r x in``) of ``P cov P`` with ``P = I - basis basis^T``,
    taken inside the orthogonal complement of ``basis`` (so exactly orthogonal to it)."""
    d = cov.shape[0]
    q, _ = np.linalg.qr(np.concatenate([basis.numpy(), np.eye(d)], 1))
    comp = q[:, basis.shape[1]:]  # orthonormal basis of the complement, (d, d - k)
    ev, vec = np.linalg.eigh(comp.T @ cov.numpy() @ comp)
    top = comp @ vec[:, np.argsort(ev)[::-1][:r]]  # (d, r)
    return torch.from_numpy(np.ascontiguousarray(top.T)).float()


def gpm_update(basis: Tensor, cov: Tensor, threshold: float, cap: int) -> Tensor:
    """GPM energy criterion: ``basis`` extended by the fewest top directions of the projected
    covariance such that the kept energy fraction reaches ``threshold`` (at most ``cap``
    columns in all)."""
    c = cov.numpy()
    m = basis.numpy().astype(np.float64)
    total = float(np.trace(c))
    if total <= 0:
        return basis
    kept = float(np.trace(m.T @ c @ m)) if m.shape[1] else 0.0
    p = np.eye(len(c)) - m @ m.T
    ev, vec = np.linalg.eigh(p @ c @ p)
    order = np.argsort(ev)[::-1]
    ev, vec = np.clip(ev[order], 0.0, None), vec[:, order]
    frac = (kept + np.cumsum(ev)) / total
    k = int(np.searchsorted(frac, threshold) + 1) if kept / total < threshold else 0
    k = max(0, min(k, cap - m.shape[1], len(ev)))
    if k == 0:
        return basis
    new = vec[:, :k]
    new -= m @ (m.T @ new)  # re-orthogonalise against the memory (rounding)
    new, _ = np.linalg.qr(new)
    return torch.from_numpy(np.concatenate([m, new], 1)).float()


@MODULE_FAMILIES.register("inflora")
class InfLoRA(Summed):
    """InfLoRA: ``A_t`` fixed in the complement of the earlier inputs, only ``B_t`` trained,
    modules summed (``merged``)."""

    adapter_cls: ClassVar[type[ProteusAdapter]] = InfLoRAAdapter
    orth_modes: ClassVar[tuple[str, ...]] = ("penalty",)  # A_t is fixed: nothing to project

    def __init__(self, threshold: float = 0.95, threshold_end: float = 0.99) -> None:
        for key, v in (("threshold", threshold), ("threshold_end", threshold_end)):
            if not (isinstance(v, int | float) and 0.0 < v <= 1.0):
                raise ValueError(f"module.{key}: must lie in (0, 1], got {v!r}")
        self.threshold = float(threshold)
        self.threshold_end = float(threshold_end)

    def build(self, ctx: BuildContext) -> Any:
        if ctx.cache is None:
            raise ValueError("inflora: needs the task's training cache")
        mod = self._adapter(ctx, cls=self.adapter_cls)
        prev = ctx.previous[-1] if ctx.previous else None
        cov = input_covariance(ctx.backbone, ctx.cache, prev, ctx.batch_size)
        with torch.no_grad():
            for n in mod.shapes:
                basis = prev.gpm[n] if prev is not None else mod.gpm[n]
                mod.gpm[n] = basis.clone()
                mod.A(n).copy_(_complement_top(cov[n], basis, mod.rank))
        return mod

    def after_train(self, module: Any, ctx: BuildContext) -> None:
        cov = input_covariance(ctx.backbone, ctx.cache, module, ctx.batch_size)
        frac = ctx.task / max(ctx.n_tasks, 1)
        thr = self.threshold + (self.threshold_end - self.threshold) * frac
        for n, (_, d_in) in module.shapes.items():
            module.gpm[n] = gpm_update(module.gpm[n], cov[n], thr, d_in - module.rank)

    def stats(self, module: Any) -> dict[str, Any]:
        out = module.reuse_stats()
        return {"overlap": out["overlap"],
                "memory_dims": {n: int(q.shape[1]) for n, q in module.gpm.items()}}
