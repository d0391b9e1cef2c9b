"""The identity backbone for feature streams (``identity``): no layers, no adaptation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from cft.config.registry import BACKBONES

if TYPE_CHECKING:  # pragma: no cover
    pass

from cft.model.backbones.base import (
    Backbone,
)


class IdentityBackbone(Backbone):
    """Features are the representations; no adapted layers (``synthetic`` preset)."""

    modality = "features"

    def __init__(self, dim: int | None = None) -> None:
        super().__init__(adapt_layers=0, targets=())
        if dim is not None and dim < 1:
            raise ValueError(f"dim: must be >= 1, got {dim}")
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise ValueError("dim: unknown until the first call to prepare()")
        return self._dim

    @property
    def n_layers(self) -> int:
        return 0

    def prepare(self, inputs: Any) -> dict[str, Tensor]:
        x = np.asarray(inputs)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"inputs: expected float features (N, d), got {x.dtype} {x.shape}")
        if self._dim is None:
            self._dim = int(x.shape[1])
        if x.shape[1] != self._dim:
            raise ValueError(f"inputs: expected dimension {self._dim}, got {x.shape[1]}")
        return {"features": torch.as_tensor(x, dtype=torch.float32)}

    def lower(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["features"]

    def _upper(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor:
        return hidden




@BACKBONES.register("identity")
def build_identity(dim: int | None = None) -> IdentityBackbone:
    """Features are representations (no backbone)."""
    return IdentityBackbone(dim)
