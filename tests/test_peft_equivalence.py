"""``alpha = 0`` PROTEUS is peft's LoRA: same factors, same scaling, same outputs.

Two identical tiny BERTs (same seed). On one, a :class:`ProteusAdapter` is applied at call
time through the backbone's hooks; the other is wrapped by peft's ``get_peft_model`` with
the same target modules (query/value of the adapted top layers), rank and ``lora_alpha``,
and the adapter's ``A``/``B`` copied into peft's ``lora_A``/``lora_B``. The hidden states
must agree, and so must the dense updates (``B A * lora_alpha / r``, ``(out, in)``), which
pins down the factor orientation. Negative controls show the comparison is sensitive: a
peft LoRA with another ``lora_alpha``, or the PROTEUS module with ``alpha > 0``, differs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cft.model.backbones  # noqa: F401  (registers the backbones)
from cft.config.registry import BACKBONES
from cft.model.modules.proteus import ProteusAdapter

peft = pytest.importorskip("peft")

RANK = 4
LORA_ALPHA = 12.0  # scaling 3, so a wrong scaling (1 or lora_alpha) cannot pass
ADAPT = 1


def _ids(n: int = 6, length: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, size=(n, length)).astype(np.int64)
    for i in range(n):
        ids[i, rng.integers(3, length + 1):] = 0
    return ids


def _randomise(ad: ProteusAdapter, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in ad.shapes:
            ad.A(n).copy_(torch.randn(ad.A(n).shape, generator=g) * 0.3)
            ad.B(n).copy_(torch.randn(ad.B(n).shape, generator=g) * 0.3)


def _hf_name(name: str) -> str:
    """Backbone adapter name ``layers.{i}.{sub}`` -> BertModel ``encoder.layer.{i}.{sub}``."""
    _, i, sub = name.split(".", 2)
    return f"encoder.layer.{i}.{sub}"


def _peft_twin(ad: ProteusAdapter, lora_alpha: float):
    """A fresh tiny BERT (same weights) wrapped by peft, carrying ``ad``'s own factors."""
    from peft import LoraConfig, get_peft_model

    twin = BACKBONES.build("tiny-bert", seed=0, adapt_layers=ADAPT)
    names = {_hf_name(n): n for n in ad.shapes}
    cfg = LoraConfig(r=ad.rank, lora_alpha=lora_alpha, lora_dropout=0.0, bias="none",
                     target_modules=sorted(names), init_lora_weights=False)
    model = get_peft_model(twin.model, cfg)
    model.eval()
    lora_layers = {}
    with torch.no_grad():
        for hf_name, name in names.items():
            layer = model.base_model.model.get_submodule(hf_name)
            layer.lora_A["default"].weight.copy_(ad.A(name))
            layer.lora_B["default"].weight.copy_(ad.B(name))
            lora_layers[name] = layer
    return model, lora_layers


@pytest.fixture(scope="module")
def bb():
    return BACKBONES.build("tiny-bert", seed=0, adapt_layers=ADAPT)


@pytest.fixture(scope="module")
def modules(bb):
    """Task 0, and task 1 with ``alpha = 0`` over task 0 (non-zero coefficients)."""
    ad0 = ProteusAdapter.for_backbone(bb, rank=RANK, lora_alpha=LORA_ALPHA, seed=1)
    _randomise(ad0, 0)
    ad1 = ProteusAdapter.for_backbone(bb, rank=RANK, lora_alpha=LORA_ALPHA, seed=2, alpha=0.0,
                                      previous=[ad0], coef_init=0.9)
    _randomise(ad1, 1)
    return ad0, ad1


def _hidden_proteus(bb, ad: ProteusAdapter, batch) -> torch.Tensor:
    with torch.no_grad(), bb.use_adapter(ad):
        return bb.model(**batch).last_hidden_state


def _hidden_peft(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).last_hidden_state


@pytest.mark.parametrize("task", [0, 1])
def test_alpha_zero_equals_peft_lora(bb, modules, task: int) -> None:
    ad = modules[task]
    ids = _ids()
    batch = bb.prepare(ids)
    model, lora_layers = _peft_twin(ad, LORA_ALPHA)
    assert set(lora_layers) == set(bb.adapter_shapes())
    # the update is not a no-op, so agreement below is not vacuous
    assert not torch.allclose(bb.features(ids, ad), bb.features(ids), atol=1e-3)

    # dense updates: same (out, in) matrix, so A/B orientation and scaling agree
    for name, layer in lora_layers.items():
        assert layer.scaling["default"] == pytest.approx(LORA_ALPHA / RANK)
        torch.testing.assert_close(ad.delta_weight(name),
                                   layer.get_delta_weight("default").detach(),
                                   atol=1e-6, rtol=1e-6)
    # token-level hidden states of the full HF forward
    ref = _hidden_peft(model, batch)
    torch.testing.assert_close(_hidden_proteus(bb, ad, batch), ref, atol=1e-5, rtol=1e-5)
    # and the backbone's own split (cached lower layers + adapted upper layers, mean pool)
    m = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(bb.features(ids, ad), (ref * m).sum(1) / m.sum(1),
                               atol=1e-5, rtol=1e-5)


def test_mismatches_are_detected(bb, modules) -> None:
    ad0, ad1 = modules
    batch = bb.prepare(_ids())
    ours = _hidden_proteus(bb, ad0, batch)
    # another lora_alpha (scaling 1 instead of 3): peft's output moves away from ours
    wrong_scale, _ = _peft_twin(ad0, float(RANK))
    assert not torch.allclose(ours, _hidden_peft(wrong_scale, batch), atol=1e-3)
    # alpha > 0 adds the reused earlier factors, which plain LoRA does not have
    reuse = ProteusAdapter.for_backbone(bb, rank=RANK, lora_alpha=LORA_ALPHA, seed=2, alpha=1.0,
                                        previous=[ad0], coef_init=0.9)
    with torch.no_grad():
        for n in reuse.shapes:
            reuse.A(n).copy_(ad1.A(n))
            reuse.B(n).copy_(ad1.B(n))
    plain, _ = _peft_twin(ad1, LORA_ALPHA)
    torch.testing.assert_close(_hidden_proteus(bb, ad1, batch), _hidden_peft(plain, batch),
                               atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_hidden_proteus(bb, reuse, batch), _hidden_peft(plain, batch),
                              atol=1e-3)
