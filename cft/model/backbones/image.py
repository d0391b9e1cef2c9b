"""Image backbones: ViT encoders (``vit``, ``tiny-vit``), final-LayerNorm CLS token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from cft.config.registry import BACKBONES

if TYPE_CHECKING:  # pragma: no cover
    pass

from cft.model.backbones.base import (
    _seeded,
)
from cft.model.backbones.hf import _HFEncoder


class ViTBackbone(_HFEncoder):
    """ViT image encoder (``ViTModel``), final-LayerNorm CLS pooling.

    ``prepare`` takes uint8 ``(N, H, W, 3)`` images already resized to the model's
    ``image_size`` (resizing is the data's job) and normalises with mean = std = 0.5;
    ``resize=True``: images of another size are resized bilinearly to ``image_size``
    (e.g. CIFAR's 32x32 for a 224x224 ViT).
    """

    modality = "image"

    def __init__(
        self,
        path: str | None = None,
        *,
        model: nn.Module | None = None,
        adapt_layers: int = 2,
        targets: Sequence[str] = ("query", "value"),
        resize: bool = False,
    ) -> None:
        if model is None:
            if path is None:
                raise ValueError("path: a local path or hub id is required")
            from transformers import ViTModel

            model = ViTModel.from_pretrained(str(path), add_pooling_layer=False)
        layers = model.layers if hasattr(model, "layers") else model.encoder.layer
        super().__init__(model, layers, "cls", adapt_layers, targets)
        self.resize = bool(resize)

    def prepare(self, inputs: Any) -> dict[str, Tensor]:
        x = np.asarray(inputs)
        size = int(self.model.config.image_size)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"inputs: expected uint8 images (N, H, W, 3), got {x.dtype} "
                             f"{x.shape}")
        if x.shape[1:3] != (size, size) and not self.resize:
            raise ValueError(f"inputs: images must be {size}x{size}, got {x.shape[1:3]} "
                             f"(backbone.resize=true resizes them)")
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
        if x.shape[1:3] != (size, size):
            t = nn.functional.interpolate(t, size=(size, size), mode="bilinear",
                                          align_corners=False, antialias=True)
        return {"pixel_values": (t / 255.0 - 0.5) / 0.5}

    def lower(self, batch: dict[str, Tensor]) -> Tensor:
        hidden = self.model.embeddings(batch["pixel_values"])
        return self._run_layers(hidden, {}, 0, self.n_layers - self.adapt_layers)

    def _upper(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor:
        hidden = self._run_layers(hidden, {}, self.n_layers - self.adapt_layers, self.n_layers)
        return self.model.layernorm(hidden)[:, 0]




@BACKBONES.register("vit")
def build_vit(
    path: str,
    adapt_layers: int = 2,
    targets: Sequence[str] = ("query", "value"),
    resize: bool = False,
) -> ViTBackbone:
    """ViT checkpoint, e.g. google/vit-base-patch16-224-in21k or a local copy; ``resize``:
    resize images of another size to the model's."""
    return ViTBackbone(path, adapt_layers=adapt_layers, targets=targets, resize=resize)




@BACKBONES.register("tiny-vit")
def build_tiny_vit(
    seed: int = 0,
    image_size: int = 16,
    patch_size: int = 4,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    adapt_layers: int = 1,
    targets: Sequence[str] = ("query", "value"),
) -> ViTBackbone:
    """Random tiny ViT (from ``seed``) over uint8 images of ``image_size``."""
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(
        image_size=image_size, patch_size=patch_size, hidden_size=hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
    )
    model = _seeded(seed, lambda: ViTModel(cfg, add_pooling_layer=False))
    return ViTBackbone(model=model, adapt_layers=adapt_layers, targets=targets)
