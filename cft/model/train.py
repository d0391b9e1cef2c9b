"""Per-task training of a PROTEUS module with a linear task head.

Objective for task ``k`` (see :mod:`cft.model.modules.proteus`):

    loss = CE(head(upper(h, adapter_k)), y) + lambda_orth * sum_j ||A_k A_j^T||_F^2
           + lambda_l1 * ||c_k||_1,

minimised by proximal AdamW: AdamW (weight decay on the LoRA factors and the head, none on
``c``) with gradient-norm clipping takes a step on the smooth part (CE + orthogonality
penalty), then the coefficients take the proximal step of the L1 term
(:func:`prox_l1_`, soft-thresholding), which sets small coefficients *exactly* to zero. In
``orth="project"`` mode the penalty is replaced by re-projecting ``A_k`` onto the
orthogonal complement of the earlier rows after each step (``lambda_orth`` is unused).

The frozen lower layers are evaluated once per task (a :class:`cft.model.backbones.HiddenCache`
of the training split); back-propagation runs only through the top ``L`` adapted layers.
The head is a linear layer over the task's own classes, used only to train the module
(prediction uses the LDA head, :mod:`cft.evaluation.heads.lda`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cft.config import TrainConfig
from cft.config.validation import check_seed
from cft.model.backbones import Backbone, HiddenCache
from cft.model.modules.proteus import ProteusAdapter


@torch.no_grad()
def prox_l1_(opt: torch.optim.Optimizer, params: list[nn.Parameter], lam: float) -> None:
    """In-place proximal step of ``lam * ||c||_1`` after ``opt.step()`` on ``params``.

    The proximal operator of ``t |c|`` is soft-thresholding,
    ``c <- sign(c) max(|c| - t, 0)``, with ``t = lr * lam`` for a plain gradient step
    (proximal gradient / ISTA). AdamW's step on ``c`` is a gradient step in the diagonal
    metric ``D = diag(sqrt(v_hat) + eps)`` (``c <- c - lr D^-1 m_hat``), and the prox of
    ``lr * lam * |c|`` in that same metric is soft-thresholding at ``t_i = lr * lam / D_ii``
    (ProxGen: Yun, Lozano & Yang, "Adaptive proximal gradient methods for structured
    neural networks", NeurIPS 2021, with Adam's diagonal preconditioner).
    Its fixed points satisfy the L1 optimality condition: ``c_i = 0`` stays zero while the
    smoothed gradient ``|m_hat_i| <= lam``. (With the Euclidean threshold ``lr * lam``
    instead, the outcome under Adam depends on the gradient's sign consistency, not on
    ``lam`` against the gradient size.) Parameters with no optimizer state yet (no
    gradient: e.g. ``alpha = 0``) are left as they are.
    """
    if lam <= 0:
        return
    for group in opt.param_groups:
        lr = float(group["lr"])
        beta2 = float(group["betas"][1])
        eps = float(group["eps"])
        for p in group["params"]:
            if not any(p is q for q in params):
                continue
            state = opt.state.get(p)
            if not state or "exp_avg_sq" not in state:
                continue
            step = float(state["step"])
            denom = (state["exp_avg_sq"] / (1.0 - beta2 ** step)).sqrt().add_(eps)
            thr = (lr * lam) / denom
            mag = (p.abs() - thr).clamp_min_(0.0)
            p.copy_(torch.where(mag > 0, p.sign() * mag, torch.zeros_like(p)))  # no -0.0


@dataclass
class TrainResult:
    """Per-epoch mean losses (total objective and its CE part) and the trained head."""

    losses: list[float] = field(default_factory=list)
    ce_losses: list[float] = field(default_factory=list)
    head: nn.Linear | None = None
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seconds: float = 0.0


def train_task(
    backbone: Backbone,
    adapter: ProteusAdapter,
    cache: HiddenCache,
    labels: np.ndarray,
    config: TrainConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
) -> TrainResult:
    """Train ``adapter`` (in place) and a linear head on one task's cached training data.

    ``labels`` are global class ids (int, ``(N,)``); the head is over ``np.unique(labels)``.
    With no trainable module parameters (``identity`` backbone, ``adapt_layers=0``) this is
    a no-op returning empty losses.
    """
    cfg = config or TrainConfig()
    cfg.check()
    seed = check_seed(seed)
    t0 = time.perf_counter()
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(cache):
        raise ValueError(f"labels: expected shape ({len(cache)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected integer class ids, got {labels.dtype}")
    classes, y_local = np.unique(labels, return_inverse=True)
    params = adapter.trainable_parameters()
    if not params["factors"] or cfg.epochs == 0:
        return TrainResult(classes=classes.astype(np.int64),
                           seconds=time.perf_counter() - t0)

    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(backbone.dim, len(classes))
    with torch.no_grad():
        nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=gen)
        head.bias.zero_()
    device = getattr(backbone, "device", torch.device("cpu"))  # init on the CPU, then move
    head.to(device)
    groups = [
        {"params": params["factors"] + list(head.parameters()),
         "weight_decay": cfg.weight_decay},
    ]
    if params["coef"]:
        groups.append({"params": params["coef"], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    all_params = [p for g in groups for p in g["params"]]
    y = torch.as_tensor(y_local, dtype=torch.long, device=device)
    n = len(cache)
    result = TrainResult(head=head, classes=classes.astype(np.int64))

    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        # disable=None: drawn only when stderr is a terminal (no \r updates in logs)
        epochs = tqdm(epochs, desc=f"train task {adapter.task}", leave=False, disable=None)
    adapter.train()
    for _ in epochs:
        order = torch.randperm(n, generator=gen)
        tot = ce_tot = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            hidden, batch = cache.batch(idx)
            z = backbone.upper(hidden, batch, adapter)
            ce = nn.functional.cross_entropy(head(z), y[idx])
            loss = ce
            if cfg.lambda_orth and adapter.task and adapter.orth == "penalty":
                loss = loss + cfg.lambda_orth * adapter.orth_penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(all_params, cfg.grad_clip)
            l1 = float(adapter.l1_penalty().detach()) if cfg.lambda_l1 and adapter.task else 0.0
            opt.step()
            adapter.project_()
            if params["coef"]:
                prox_l1_(opt, params["coef"], cfg.lambda_l1)
            tot += (float(loss.detach()) + cfg.lambda_l1 * l1) * len(idx)
            ce_tot += float(ce.detach()) * len(idx)
        result.losses.append(tot / n)
        result.ce_losses.append(ce_tot / n)
        if progress:
            epochs.set_postfix(loss=f"{tot / n:.4f}")  # type: ignore[union-attr]
    adapter.eval()
    result.seconds = time.perf_counter() - t0
    return result
