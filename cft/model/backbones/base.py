"""Frozen backbones split into cached lower layers and adapted upper layers.

Every backbone is an ``nn.Module`` with the contract of docs/architecture.md:

* ``.modality`` -- ``"text"`` (``list[str]``), ``"tokens"`` (int64 ``(N, L)``, 0 = padding),
  ``"image"`` (uint8 ``(N, H, W, 3)``) or ``"features"`` (float32 ``(N, d)``);
* ``.dim`` (representation size), ``.n_layers`` (transformer layers in total),
  ``.adapt_layers`` (the top ``L`` layers that carry the PROTEUS modules);
* ``.prepare(inputs) -> dict[str, Tensor]`` (tokenise / normalise);
* ``.lower(batch) -> hidden`` -- embeddings and the frozen layers *below* the adapted ones.
  They never change during continual fine-tuning, so the result is computed once per
  sample and cached (:class:`HiddenCache`, built by :meth:`Backbone.encode`);
* ``.upper(hidden, batch, adapter=None) -> (B, dim)`` -- the top ``L`` layers with the
  adapter's low-rank update applied *at call time*, followed by pooling (mean over the
  attention mask for text/tokens, final-LayerNorm CLS token for ViT);
* ``.features(inputs, adapter=None)`` -- ``upper(lower(prepare(x)))`` in batches.

Call-time adaptation (the Mammoth idea of passing weights to the layers instead of copying
the model): each adapted ``nn.Linear`` in the top ``L`` layers gets a forward hook that, when
an adapter is active, adds ``adapter.delta(name, x)`` to the layer's output. The pre-trained
weights are never touched, there is one backbone object for every task and method, and
``adapter=None`` is exactly the pre-trained model. Backbones are always in ``eval()`` mode
(no dropout) so that forward passes are deterministic and cached lower states stay valid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from cft.config.validation import check_int

if TYPE_CHECKING:  # pragma: no cover
    from cft.model.modules.proteus import ProteusAdapter

#: Aliases of attention projection names across HF model families (BERT:
#: ``query``/``key``/``value``; ViT in transformers 5.x: ``q_proj``/``k_proj``/``v_proj``;
#: MPNet: ``attention.attn.q``/``.k``/``.v``/``.o``). Matched as a dotted suffix of the module
#: name, so ``attn.q`` never matches a module that is merely called ``q``.
TARGET_ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("query", "q_proj", "attn.q"),
    "key": ("key", "k_proj", "attn.k"),
    "value": ("value", "v_proj", "attn.v"),
    "output": ("attention.output.dense", "o_proj", "attn.o"),
}

MODALITIES = ("text", "tokens", "image", "features")


@dataclass
class HiddenCache:
    """Lower-layer hidden states of a set of samples, computed once and reused.

    ``hidden`` is ``(N, T, d)`` for sequence backbones (``mask`` ``(N, T)``, 1 = real token,
    or ``None`` when every position is real, e.g. ViT patches) and ``(N, d)`` for the
    ``identity`` backbone. Batches are trimmed to their longest sequence (right padding).
    """

    hidden: Tensor
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and self.mask.shape != self.hidden.shape[:2]:
            raise ValueError(
                f"mask: shape {tuple(self.mask.shape)} does not match hidden "
                f"{tuple(self.hidden.shape)}"
            )

    def __len__(self) -> int:
        return int(self.hidden.shape[0])

    def batch(self, idx: Tensor | np.ndarray | slice) -> tuple[Tensor, dict[str, Tensor]]:
        """Hidden states and the batch dict (``attention_mask``) of the rows ``idx``."""
        if isinstance(idx, np.ndarray):
            idx = torch.as_tensor(idx, dtype=torch.long)
        hidden = self.hidden[idx]
        if self.mask is None:
            return hidden, {}
        mask = self.mask[idx]
        used = mask.any(dim=0).nonzero()
        t = int(used.max()) + 1 if used.numel() else 1
        return hidden[:, :t], {"attention_mask": mask[:, :t]}

    def iter_batches(
        self, batch_size: int, order: Tensor | np.ndarray | None = None
    ) -> Iterator[tuple[Tensor, dict[str, Tensor]]]:
        """Consecutive batches (in ``order`` if given)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        n = len(self)
        for s in range(0, n, batch_size):
            if order is None:
                yield self.batch(slice(s, min(s + batch_size, n)))
            else:
                yield self.batch(order[s : s + batch_size])

    def subset(self, idx: Tensor | np.ndarray | Sequence[int]) -> HiddenCache:
        """The cache restricted to rows ``idx``."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return HiddenCache(
            self.hidden[idx], None if self.mask is None else self.mask[idx]
        )

    @classmethod
    def concat(cls, caches: Sequence[HiddenCache]) -> HiddenCache:
        """Stack caches, right-padding sequences to the longest one."""
        if not caches:
            raise ValueError("caches: empty")
        if caches[0].hidden.dim() == 2:
            return cls(torch.cat([c.hidden for c in caches]))
        t = max(c.hidden.shape[1] for c in caches)
        hs, ms = [], []
        for c in caches:
            pad = t - c.hidden.shape[1]
            m = c.mask
            if m is None:
                m = torch.ones(c.hidden.shape[:2], dtype=torch.long)
            hs.append(nn.functional.pad(c.hidden, (0, 0, 0, pad)))
            ms.append(nn.functional.pad(m, (0, pad)))
        if all(c.mask is None for c in caches) and all(
            c.hidden.shape[1] == t for c in caches
        ):
            return cls(torch.cat(hs))
        return cls(torch.cat(hs), torch.cat(ms))


class Backbone(nn.Module):
    """Base class: a frozen encoder split at layer ``n_layers - adapt_layers``."""

    modality: str = "features"

    def __init__(self, adapt_layers: int = 2, targets: Sequence[str] = ("query", "value")):
        super().__init__()
        self.adapt_layers = check_int("adapt_layers", adapt_layers, minimum=0)
        self.targets = tuple(targets)
        self._adapter: ProteusAdapter | None = None
        self._targets: dict[str, nn.Linear] = {}
        self._device = torch.device("cpu")
        self._amp: torch.dtype | None = None

    # ---- contract -----------------------------------------------------------------
    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def n_layers(self) -> int:
        raise NotImplementedError

    def prepare(self, inputs: Any) -> dict[str, Tensor]:
        raise NotImplementedError

    def lower(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def _upper(self, hidden: Tensor, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def upper(
        self,
        hidden: Tensor,
        batch: dict[str, Tensor] | None = None,
        adapter: ProteusAdapter | None = None,
    ) -> Tensor:
        """Top ``adapt_layers`` layers with ``adapter`` applied at call time, then pooling."""
        with self.use_adapter(adapter):
            if self._amp is None:
                return self._upper(hidden, batch or {})
            with self._autocast():
                out = self._upper(hidden, batch or {})
            return out.float()

    # ---- device ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the forward passes run (:meth:`place`; CPU by default)."""
        return self._device

    def place(self, device: torch.device | str, amp_dtype: torch.dtype | None = None
              ) -> Backbone:
        """Move the backbone to ``device``; ``amp_dtype`` (e.g. ``torch.bfloat16``) runs
        :meth:`lower` and :meth:`upper` under autocast (outputs are cast back to float32)."""
        self._device = torch.device(device)
        self._amp = amp_dtype
        self.to(self._device)
        return self

    def _autocast(self) -> Any:
        if self._amp is None:
            return nullcontext()
        return torch.autocast(device_type=self._device.type, dtype=self._amp)

    def _to_device(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self._device.type == "cpu":
            return batch
        return {k: v.to(self._device, non_blocking=True) for k, v in batch.items()}

    # ---- adapter plumbing ------------------------------------------------------------
    def adapter_shapes(self) -> dict[str, tuple[int, int]]:
        """``{name: (out_features, in_features)}`` of every adapted linear layer."""
        return {n: (m.out_features, m.in_features) for n, m in self._targets.items()}

    @contextmanager
    def use_adapter(self, adapter: ProteusAdapter | None) -> Iterator[None]:
        if adapter is not None:
            missing = set(adapter.shapes) ^ set(self._targets)
            if missing:
                raise ValueError(
                    f"adapter: target layers {sorted(missing)} do not match this backbone"
                )
        previous, self._adapter = self._adapter, adapter
        try:
            yield
        finally:
            self._adapter = previous

    def _install_hooks(self, layers: nn.ModuleList) -> None:
        """Hook the target linears of the top ``adapt_layers`` layers."""
        n = len(layers)
        if self.adapt_layers > n:
            raise ValueError(f"adapt_layers: {self.adapt_layers} exceeds the {n} layers")
        wanted: list[str] = []
        for t in self.targets:
            if t not in TARGET_ALIASES:
                raise ValueError(f"targets: unknown target {t!r} (known: {sorted(TARGET_ALIASES)})")
            wanted.extend(TARGET_ALIASES[t])
        for i in range(n - self.adapt_layers, n):
            for sub, mod in layers[i].named_modules():
                if isinstance(mod, nn.Linear) and any(
                    sub == w or sub.endswith("." + w) for w in wanted
                ):
                    name = f"layers.{i}.{sub}"
                    self._targets[name] = mod
                    mod.register_forward_hook(self._make_hook(name))
        if self.adapt_layers and not self._targets:
            raise ValueError(f"targets: none of {self.targets} found in the adapted layers")

    def _make_hook(self, name: str):
        def hook(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
            if self._adapter is None:
                return None
            return output + self._adapter.delta(name, args[0])

        return hook

    # ---- conveniences -----------------------------------------------------------------
    def _chunks(self, inputs: Any, batch_size: int) -> Iterator[Any]:
        n = len(inputs)
        for s in range(0, n, batch_size):
            yield inputs[s : s + batch_size]

    @torch.no_grad()
    def encode(self, inputs: Any, batch_size: int = 64, progress: bool = False) -> HiddenCache:
        """Lower-layer states of every input, as a :class:`HiddenCache`.

        Computed under ``no_grad`` (not ``inference_mode``) so that the cached states can
        feed the training graph of the upper layers.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        parts = []
        for chunk in _progress(self._chunks(inputs, batch_size), len(inputs), batch_size,
                               progress, "lower layers"):
            batch = self._to_device(self.prepare(chunk))
            with self._autocast():
                hidden = self.lower(batch)
            parts.append(HiddenCache(hidden, batch.get("attention_mask")))
        if not parts:
            raise ValueError("inputs: empty")
        return HiddenCache.concat(parts)

    @torch.inference_mode()
    def upper_cache(
        self,
        cache: HiddenCache,
        adapter: ProteusAdapter | None = None,
        batch_size: int = 128,
        progress: bool = False,
    ) -> Tensor:
        """Pooled representations ``(N, dim)`` of a cache under ``adapter``."""
        out = [
            self.upper(h, b, adapter)
            for h, b in _progress(cache.iter_batches(batch_size), len(cache), batch_size,
                                  progress, "upper layers")
        ]
        return torch.cat(out)

    @torch.inference_mode()
    def features(
        self,
        inputs: Any,
        adapter: ProteusAdapter | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> Tensor:
        """Pooled representations ``(N, dim)`` (lower + upper, in batches)."""
        out = []
        for chunk in _progress(self._chunks(inputs, batch_size), len(inputs), batch_size,
                               progress, "features"):
            batch = self._to_device(self.prepare(chunk))
            with self._autocast():
                hidden = self.lower(batch)
            out.append(self.upper(hidden, batch, adapter))
        if not out:
            raise ValueError("inputs: empty")
        return torch.cat(out)

    def train(self, mode: bool = True) -> Backbone:
        """Backbones stay in eval mode (frozen, no dropout)."""
        return super().train(False)


def _progress(it: Any, n: int, batch_size: int, enabled: bool, desc: str) -> Any:
    """A progress bar over ``it`` when ``enabled`` and stderr is a terminal (``disable=None``:
    no ``\\r`` updates in a log file or a pipe)."""
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=math.ceil(n / batch_size), desc=desc, leave=False, disable=None)


def _mean_pool(hidden: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over real tokens (sentence-transformers' pooling for all-MiniLM-L6-v2)."""
    if mask is None:
        return hidden.mean(dim=1)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def _seeded(seed: int, build: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
