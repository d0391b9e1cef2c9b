"""PROTEUS module composition: per-task LoRA updates built from earlier ones (Le, Bui,
Hoang & Hoang, "Continual Fine-Tuning with Provably Accurate and Parameter-Free Task
Retrieval", arXiv 2603.13235, its adaptive module composition; docs/theory.md §12 (M1)-(M5)).

For task ``k`` (0-based) and each adapted weight ``W`` (attention projections of the top
``L`` layers, see :mod:`cft.model.backbones`), the update is

    Delta W_k = alpha * sum_{j<k} c_{k,j} s_j B_j A_j  +  s_k B_k A_k,      (M1)

where ``(A_j, B_j)`` are the *new* low-rank factors learned for task ``j`` (frozen once task
``j`` is done), ``c_k`` are learnable composition coefficients (selective reuse, pushed to
sparsity by an L1 penalty ``lambda_l1 * ||c_k||_1``), ``s = lora_alpha / rank`` is the
standard LoRA scaling and ``alpha in [0, 1]`` is a fixed configuration value weighting the
reused part. ``alpha = 0`` (or task 0) is plain LoRA.

Orthogonality of the new component (``orth``). By default (``orth="penalty"``) the new
factors carry the penalty ``lambda_orth * sum_j ||A_k A_j^T||_F^2``
(:meth:`ProteusAdapter.orth_penalty`; the objective (M2) stated by the paper); ``lambda_orth =
0`` recovers unconstrained LoRA, which makes the effect of the constraint measurable. The
hard variant (``orth="project"``) keeps the rows of ``A_k`` in the orthogonal complement of
the earlier rows ``[A_0; ...; A_{k-1}]``: ``A_k <- A_k (I - Q Q^T)`` with ``Q`` an orthonormal
basis of the earlier rows, at initialisation and after every optimizer step
(:meth:`ProteusAdapter.project_`, (M4)). Re-projecting the *parameters* (not the gradient) is
what keeps them in the complement under AdamW, whose per-coordinate scaling and weight
decay move a projected gradient out of it. Projection needs ``sum_j r_j + r_k <= in``.

Selective reuse. The coefficients ``c_k`` carry ``lambda_l1 * ||c_k||_1``; it is applied
as a proximal (soft-threshold) step after each optimizer step
(:func:`cft.model.train.prox_l1_`, (M3)), not as a subgradient, so coefficients reach exact zeros.
:meth:`ProteusAdapter.reuse_stats` reports ``c``, its sparsity and the normalised overlaps
``||A_k A_j^T||_F / (||A_k||_F ||A_j||_F)`` (in [0, 1]; 0 = orthogonal rows) (M5).

Use of peft. We follow peft's LoRA conventions (A initialised like ``nn.Linear``, i.e.
Kaiming-uniform with ``a = sqrt(5)``; B initialised to zero, so a fresh module leaves the
backbone unchanged; scaling ``lora_alpha / r``), but we do not use peft's model injection:
peft stores adapters *inside* the model (one wrapped copy of each layer per adapter name),
whereas here a module is a free-standing object passed to ``Backbone.upper`` at call time,
and the composed update with learnable coefficients over frozen earlier factors is not a
peft primitive. tests/test_peft_equivalence.py checks that ``alpha = 0`` gives the outputs
of peft's ``get_peft_model`` LoRA carrying the same factors (peft is a dev dependency).

The delta is applied in factored form, ``x -> (x A_all^T) B_all^T`` with the factors of all
tasks stacked, so its cost is ``O(k r d)`` per token and no ``d x d`` matrix is formed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from cft.config.validation import check_float, check_int

META_KEYS = ("meta.alpha", "meta.scaling", "meta.task")
#: how the new factors are kept orthogonal to the earlier ones (module docstring)
ORTH_MODES = ("penalty", "project")


def _key(name: str) -> str:
    """ParameterDict keys may not contain dots."""
    return name.replace(".", "__")


def _row_basis(a_f: Tensor, d_in: int, name: str, rank: int) -> Tensor:
    """Orthonormal basis ``Q`` ``(in, R)`` of the row space of the stacked earlier factors
    ``a_f`` ``(sum r_j, in)`` (SVD, rank tolerance as numpy's ``matrix_rank``); raises when
    the complement cannot hold ``rank`` new rows."""
    if a_f.numel() == 0:
        return torch.zeros(d_in, 0)
    _, s, vh = torch.linalg.svd(a_f.double(), full_matrices=False)
    tol = float(s.max()) * max(a_f.shape) * torch.finfo(torch.float64).eps
    q = vh[s > tol].T.to(a_f.dtype).contiguous()
    if q.shape[1] + rank > d_in:
        raise ValueError(f"orth: 'project' needs room for {rank} new rows in layer {name!r}, "
                         f"but the earlier rows span {q.shape[1]} of its {d_in} input "
                         f"dimensions; use orth='penalty' or a smaller rank")
    return q


class ProteusAdapter(nn.Module):
    """The PROTEUS module of one task (``task = len(previous)``).

    Parameters
    ----------
    shapes : ``{layer name: (out_features, in_features)}``, from ``Backbone.adapter_shapes()``.
    rank : LoRA rank ``r`` of the new component.
    lora_alpha : LoRA scaling numerator; ``scaling = lora_alpha / rank`` (default ``rank``,
        i.e. scaling 1).
    alpha : weight in [0, 1] of the reused part ``S``.
    previous : the modules of tasks ``0..k-1`` in order; their own factors are copied and
        frozen here (later training can never change them).
    coef_init : initial value of every ``c_{k,j}``; default ``1 / k`` (the average of the
        earlier components).
    seed : seed of the Kaiming-uniform initialisation of ``A``.
    orth : ``"penalty"`` (soft, :meth:`orth_penalty`) or ``"project"`` (hard: ``A`` is kept in
        the orthogonal complement of the earlier rows, :meth:`project_`).
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, int]],
        rank: int = 8,
        lora_alpha: float | None = None,
        alpha: float = 1.0,
        previous: Sequence[ProteusAdapter] = (),
        coef_init: float | None = None,
        seed: int = 0,
        orth: str = "penalty",
    ) -> None:
        super().__init__()
        if orth not in ORTH_MODES:
            raise ValueError(f"orth: must be one of {', '.join(ORTH_MODES)}, got {orth!r}")
        check_int("rank", rank, minimum=1)
        check_float("alpha", alpha, low=0.0, high=1.0)
        lora_alpha = float(rank if lora_alpha is None else lora_alpha)
        if lora_alpha <= 0:
            raise ValueError(f"lora_alpha: must be > 0, got {lora_alpha!r}")
        self.shapes = {str(n): (int(o), int(i)) for n, (o, i) in shapes.items()}
        for p in previous:
            if p.shapes != self.shapes:
                raise ValueError("previous: modules were built for different layers")
        self.rank = rank
        self.orth = orth
        self.alpha = float(alpha)
        self.scaling = lora_alpha / rank
        self.task = len(previous)
        k = self.task
        c0 = (1.0 / k if k else 0.0) if coef_init is None else float(coef_init)
        # frozen factors of earlier tasks, stacked once per layer as buffers (they move with
        # the module and never receive gradients): A_f = [A_0; ...; A_{k-1}] (sum r_j, in),
        # sB_f = [s_0 B_0, ..., s_{k-1} B_{k-1}] (out, sum r_j); row i of A_f belongs to
        # task owner[i], so the coefficients enter as c[owner] (one matmul per call).
        self._ranks = [p.rank for p in previous]
        owner = torch.repeat_interleave(torch.arange(k),
                                        torch.tensor(self._ranks, dtype=torch.long))
        self.register_buffer("_owner", owner, persistent=False)
        for n in self.shapes:
            a_f = torch.cat([p.A(n).detach() for p in previous], 0) if k else torch.zeros(0)
            b_f = (torch.cat([(p.scaling * p.B(n)).detach() for p in previous], 1) if k
                   else torch.zeros(0))
            self.register_buffer(f"_A_f__{_key(n)}", a_f.clone(), persistent=False)
            self.register_buffer(f"_sB_f__{_key(n)}", b_f.clone(), persistent=False)
            if orth == "project":
                self.register_buffer(f"_Q__{_key(n)}", _row_basis(a_f, self.shapes[n][1], n, rank),
                                     persistent=False)
        gen = torch.Generator().manual_seed(int(seed))
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.coef = nn.ParameterDict()
        for n, (d_out, d_in) in self.shapes.items():
            a = torch.empty(rank, d_in)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=gen)
            self.lora_A[_key(n)] = nn.Parameter(a)
            self.lora_B[_key(n)] = nn.Parameter(torch.zeros(d_out, rank))
            if k:
                self.coef[_key(n)] = nn.Parameter(torch.full((k,), c0))
        if orth == "project":
            self.project_()

    @classmethod
    def for_backbone(cls, backbone: nn.Module, **kwargs: object) -> ProteusAdapter:
        """A module for every adapted layer of ``backbone`` (``adapter_shapes()``)."""
        return cls(backbone.adapter_shapes(), **kwargs)  # type: ignore[arg-type]

    # ---- accessors -------------------------------------------------------------------
    def A(self, name: str) -> Tensor:  # noqa: N802 - paper notation
        return self.lora_A[_key(name)]

    def B(self, name: str) -> Tensor:  # noqa: N802
        return self.lora_B[_key(name)]

    def c(self, name: str) -> Tensor:
        if not self.task:
            return torch.zeros(0)
        return self.coef[_key(name)]

    def _stacked(self, name: str) -> tuple[Tensor, Tensor]:
        k = _key(name)
        return getattr(self, f"_A_f__{k}"), getattr(self, f"_sB_f__{k}")

    def frozen_factors(self, name: str) -> list[tuple[Tensor, Tensor]]:
        """Earlier tasks' ``(A_j, s_j B_j)`` as stored (frozen) in this module."""
        a_f, b_f = self._stacked(name)
        if not self.task:
            return []
        return list(zip(a_f.split(self._ranks, 0), b_f.split(self._ranks, 1), strict=True))

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """``{"factors": [A, B...], "coef": [c...]}`` (separate weight-decay groups)."""
        return {
            "factors": list(self.lora_A.values()) + list(self.lora_B.values()),
            "coef": list(self.coef.values()),
        }

    # ---- the update --------------------------------------------------------------------
    def delta(self, name: str, x: Tensor) -> Tensor:
        """``x Delta W^T`` for layer ``name`` in factored form (called by the backbone hook):
        ``s (x A^T) B^T + alpha ((x A_f^T) * c[owner]) (s B)_f^T``; no ``d x d`` matrix."""
        out = (x @ self.A(name).T) @ (self.scaling * self.B(name)).T
        if self.task and self.alpha != 0.0:
            a_f, b_f = self._stacked(name)
            out = out + ((x @ a_f.T) * (self.alpha * self.c(name)[self._owner])) @ b_f.T
        return out

    def delta_weight(self, name: str) -> Tensor:
        """The dense update ``Delta W`` ``(out, in)`` of layer ``name`` (tests, analysis)."""
        w = self.scaling * self.B(name) @ self.A(name)
        if self.task:
            a_f, b_f = self._stacked(name)
            w = w + self.alpha * (b_f * self.c(name)[self._owner]) @ a_f
        return w

    # ---- penalties ---------------------------------------------------------------------
    def orth_penalty(self) -> Tensor:
        """``sum_layers sum_{j<k} ||A_k A_j^T||_F^2``."""
        total = torch.zeros(())
        if self.task:
            for n in self.shapes:
                total = total + (self.A(n) @ self._stacked(n)[0].T).pow(2).sum()
        return total

    @torch.no_grad()
    def project_(self) -> None:
        """Hard orthogonality (``orth="project"``): ``A_k <- A_k (I - Q Q^T)`` per layer, with
        ``Q`` an orthonormal basis of the earlier rows, so ``A_k A_j^T = 0`` for every ``j < k``
        up to rounding. A no-op in ``"penalty"`` mode and for task 0."""
        if self.orth != "project" or not self.task:
            return
        for n in self.shapes:
            q = getattr(self, f"_Q__{_key(n)}")
            a = self.A(n)
            a.sub_((a @ q) @ q.T)

    def l1_penalty(self) -> Tensor:
        """``sum_layers ||c_k||_1`` (selective reuse)."""
        total = torch.zeros(())
        for p in self.coef.values():
            total = total + p.abs().sum()
        return total

    # ---- diagnostics -------------------------------------------------------------------
    @torch.no_grad()
    def overlaps(self) -> dict[str, list[float]]:
        """Normalised overlap ``||A_k A_j^T||_F / (||A_k||_F ||A_j||_F)`` with every earlier
        module ``j < k``, per layer (in [0, 1]: 0 = orthogonal rows; the scale-free form of
        the penalty term ``||A_k A_j^T||_F^2``)."""
        out: dict[str, list[float]] = {}
        for n in self.shapes:
            a = self.A(n).double()
            na = float(a.norm())
            vals = []
            for a_j, _ in self.frozen_factors(n):
                den = na * float(a_j.double().norm())
                vals.append(float((a @ a_j.double().T).norm()) / den if den > 0 else 0.0)
            out[n] = vals
        return out

    @torch.no_grad()
    def reuse_stats(self) -> dict[str, object]:
        """JSON-able summary of the reuse and orthogonality of this module (``done.json``):
        ``coef`` (``{layer: [c_kj for j < k]}``), ``coef_sparsity`` (fraction of exact zeros
        over all layers; ``None`` for task 0), ``coef_sparsity_per_layer``, ``overlap``
        (:meth:`overlaps`) and the ``orth`` mode."""
        coef = {n: [float(v) for v in self.c(n)] for n in self.shapes} if self.task else {}
        per_layer = {n: float(np.mean(np.asarray(v) == 0.0)) for n, v in coef.items()}
        flat = [v for vals in coef.values() for v in vals]
        return {
            "coef": coef,
            "coef_sparsity": float(np.mean(np.asarray(flat) == 0.0)) if flat else None,
            "coef_sparsity_per_layer": per_layer,
            "overlap": self.overlaps() if self.task else {},
            "orth": self.orth,
            "reuse_weight": self.alpha,  # 0: the reused part (and so c) is not used
        }

    # ---- (de)serialisation -------------------------------------------------------------
    def to_state_dict(self) -> dict[str, Tensor]:
        """Plain tensors (safetensors-ready): this task's ``A``, ``B``, ``c`` per layer."""
        out: dict[str, Tensor] = {
            "meta.alpha": torch.tensor([self.alpha], dtype=torch.float64),
            "meta.scaling": torch.tensor([self.scaling], dtype=torch.float64),
            "meta.task": torch.tensor([self.task], dtype=torch.int64),
            "meta.orth": torch.tensor([ORTH_MODES.index(self.orth)], dtype=torch.int64),
        }
        for n in self.shapes:
            out[f"{n}.A"] = self.A(n).detach().clone().contiguous()
            out[f"{n}.B"] = self.B(n).detach().clone().contiguous()
            if self.task:
                out[f"{n}.c"] = self.c(n).detach().clone().contiguous()
        return out

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Tensor], previous: Sequence[ProteusAdapter] = ()
    ) -> ProteusAdapter:
        """Rebuild a module from :meth:`to_state_dict` and the modules of earlier tasks."""
        for k in META_KEYS:
            if k not in state:
                raise ValueError(f"state: missing key {k!r}")
        task = int(state["meta.task"].reshape(-1)[0])
        if task != len(previous):
            raise ValueError(f"previous: module of task {task} needs {task} earlier modules, "
                             f"got {len(previous)}")
        names = sorted({k[: -len(".A")] for k in state if k.endswith(".A")})
        shapes = {n: tuple(state[f"{n}.B"].shape[:1]) + tuple(state[f"{n}.A"].shape[1:])
                  for n in names}
        rank = int(state[f"{names[0]}.A"].shape[0]) if names else 1
        scaling = float(state["meta.scaling"].reshape(-1)[0])
        orth = "penalty"  # a module saved before the mode was stored
        if "meta.orth" in state:
            i = int(state["meta.orth"].reshape(-1)[0])
            if not 0 <= i < len(ORTH_MODES):
                raise ValueError(f"state: meta.orth must index {ORTH_MODES}, got {i}")
            orth = ORTH_MODES[i]
        mod = cls(shapes, rank=rank, lora_alpha=scaling * rank,  # type: ignore[arg-type]
                  alpha=float(state["meta.alpha"].reshape(-1)[0]), previous=previous,
                  orth=orth)
        with torch.no_grad():
            for n in names:
                mod.A(n).copy_(state[f"{n}.A"])
                mod.B(n).copy_(state[f"{n}.B"])
                if task:
                    mod.c(n).copy_(state[f"{n}.c"])
        return mod
