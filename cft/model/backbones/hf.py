"""The Hugging Face encoder family shared by the text and image backbones: embeddings,
the frozen lower layers and the adapted upper layers of a ``transformers`` encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from cft.model.backbones.base import Backbone, _mean_pool


class _HFEncoder(Backbone):
    """Shared code of HF encoder backbones (BERT family, MPNet and ViT).

    ``position_bias``: for encoders whose layers take a relative position bias computed once
    per forward by the encoder (MPNet's ``encoder.compute_position_bias``), that function;
    it is recomputed from the hidden states of each call of :meth:`_run_layers`, so the lower
    and the upper layers see the bias of the same sequence length as the full forward (it
    depends only on relative positions, so trimming padding does not change it either).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: nn.ModuleList,
        pooling: str,
        adapt_layers: int,
        targets: Sequence[str],
        position_bias: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__(adapt_layers, targets)
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling: must be 'mean' or 'cls', got {pooling!r}")
        self.model = model
        self.pooling = pooling
        self._layers = layers
        self._position_bias = position_bias
        model.requires_grad_(False)
        model.eval()
        self._install_hooks(layers)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def n_layers(self) -> int:
        return len(self._layers)

    def _mask(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor | None:
        from transformers.masking_utils import create_bidirectional_mask

        mask = batch.get("attention_mask")
        if mask is None:
            return None
        return create_bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden, attention_mask=mask
        )

    def _run_layers(self, hidden: Tensor, batch: dict[str, Tensor], lo: int, hi: int) -> Tensor:
        if hi <= lo:
            return hidden
        mask = self._mask(hidden, batch)
        extra = {} if self._position_bias is None else {
            "position_bias": self._position_bias(hidden)}
        for layer in self._layers[lo:hi]:
            out = layer(hidden, mask, **extra)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def _pool(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        return _mean_pool(hidden, batch.get("attention_mask"))
