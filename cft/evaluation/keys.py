"""Learned retrieval rules (``cft.config.registry.RULES``, config ``eval.rule``), evaluated next to
the parameter-free rules (adapted and shared signatures) by
:func:`cft.evaluation.retrieval.add_rule` and saved as score mode ``<rule name>`` (here ``keys``).

``keys`` -- L2P-style learned keys (Wang et al., "Learning to Prompt for Continual
Learning", CVPR 2022, arXiv 2112.08654; official code google-research/l2p). The query is
the frozen pre-trained feature ``q(x) = f(x)``; each task ``t`` gets one key ``k_t``
(L2P's key-value pool with a key per task, i.e. its task-boundary-prior variant),
initialised uniformly in ``[-1, 1]`` as in the official code and trained on task ``t``'s
training queries only with the paper's query-key matching (surrogate) loss

    min_{k_t}  sum_{x in task t} gamma(q(x), k_t),   gamma(q, k) = 1 - cos(q, k),

by Adam. Retrieval picks ``argmin_s gamma(q(x), k_s)``: the score matrix is
``S[i, s] = 1 - cos(q(x_i), k_s)`` (kind ``cosine``). The difference from the
parameter-free shared signature is the single cosine key per task, trained by gradient
descent, against a fitted mixture in the Euclidean space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cft.config.registry import RULES
from cft.config.validation import check_float, check_int

__all__ = ["KeysRule"]

KIND = "cosine"


@RULES.register("keys")
class KeysRule:
    """One learned key per task (module docstring); sklearn-style."""

    kinds = (KIND,)
    #: the space the queries live in: the frozen (shared) representations
    space = "shared"

    def __init__(self, epochs: int = 100, lr: float = 0.05, batch_size: int = 64,
                 random_state: int = 0) -> None:
        check_int("eval.epochs", epochs, minimum=0)
        check_float("eval.lr", lr, low=0.0, strict_low=True)
        check_int("eval.batch_size", batch_size, minimum=1)
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, Q: Any) -> KeysRule:  # noqa: N803
        """Train the key of one task on its training queries ``Q`` ``(n, d)``."""
        Q = np.asarray(Q, dtype=np.float32)
        if Q.ndim != 2 or not len(Q) or not np.isfinite(Q).all():
            raise ValueError(f"Q: expected a finite, non-empty (n, d) array, got {Q.shape}")
        gen = torch.Generator().manual_seed(int(self.random_state))
        key = torch.empty(Q.shape[1]).uniform_(-1.0, 1.0, generator=gen).requires_grad_()
        q = torch.nn.functional.normalize(torch.from_numpy(Q), dim=1)
        opt = torch.optim.Adam([key], lr=self.lr)
        self.losses_: list[float] = []
        for _ in range(self.epochs):
            order = torch.randperm(len(q), generator=gen)
            tot = 0.0
            for s in range(0, len(q), self.batch_size):
                qb = q[order[s : s + self.batch_size]]
                loss = (1.0 - qb @ torch.nn.functional.normalize(key, dim=0)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(qb)
            self.losses_.append(tot / len(q))
        self.key_ = key.detach().numpy().astype(np.float64)
        return self

    def cost(self, Q: Any) -> np.ndarray:  # noqa: N803
        """``gamma(q, k) = 1 - cos(q, k)`` ``(n,)`` (smaller = closer)."""
        if not hasattr(self, "key_"):
            raise ValueError("KeysRule: not fitted")
        Q = np.asarray(Q, dtype=np.float64)
        qn = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ (self.key_ / max(np.linalg.norm(self.key_), 1e-12))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"key": self.key_.copy(), "losses": np.asarray(self.losses_)}

    @classmethod
    def from_arrays(cls, arrays: Any, **kwargs: Any) -> KeysRule:
        obj = cls(**kwargs)
        obj.key_ = np.asarray(arrays["key"], dtype=np.float64)
        obj.losses_ = [float(v) for v in np.asarray(arrays["losses"])]
        return obj
