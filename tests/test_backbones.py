"""Backbones: lower/upper split equals the HF forward; real MiniLM offline."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cft.config.registry import BACKBONES
from cft.model.backbones import HiddenCache
from cft.model.modules.proteus import ProteusAdapter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _tokens(n: int = 6, length: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, size=(n, length)).astype(np.int64)
    for i in range(n):
        ids[i, rng.integers(3, length + 1):] = 0
    return ids


def _mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)


@pytest.mark.parametrize("adapt_layers", [0, 1, 2])
def test_tiny_bert_split_equals_hf_forward(adapt_layers: int) -> None:
    bb = BACKBONES.build("tiny-bert", seed=0, adapt_layers=adapt_layers)
    assert bb.modality == "tokens" and bb.dim == 32 and bb.n_layers == 2
    batch = bb.prepare(_tokens())
    z = bb.upper(bb.lower(batch), batch)
    assert z.shape == (6, 32)
    ref = _mean(bb.model(**batch).last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(z, ref, atol=1e-5, rtol=1e-5)
    assert len(bb.adapter_shapes()) == 2 * adapt_layers


def test_tiny_bert_seeded() -> None:
    a = BACKBONES.build("tiny-bert", seed=3).features(_tokens())
    b = BACKBONES.build("tiny-bert", seed=3).features(_tokens())
    c = BACKBONES.build("tiny-bert", seed=4).features(_tokens())
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_tiny_vit_split_equals_hf_forward() -> None:
    bb = BACKBONES.build("tiny-vit", seed=0)
    assert bb.modality == "image" and bb.dim == 32
    im = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    batch = bb.prepare(im)
    assert batch["pixel_values"].shape == (3, 3, 16, 16)
    assert float(batch["pixel_values"].min()) >= -1.0 and float(batch["pixel_values"].max()) <= 1
    z = bb.upper(bb.lower(batch), batch)
    assert z.shape == (3, 32)
    torch.testing.assert_close(z, bb.model(**batch).last_hidden_state[:, 0], atol=1e-5,
                               rtol=1e-5)
    assert set(bb.adapter_shapes()) == {"layers.1.attention.q_proj", "layers.1.attention.v_proj"}
    with pytest.raises(ValueError, match="inputs"):
        bb.prepare(np.zeros((1, 8, 8, 3), dtype=np.uint8))


def test_cache_padding_and_batching_invariant() -> None:
    bb = BACKBONES.build("tiny-bert", seed=1)
    ids = _tokens(n=10, length=16, seed=2)
    ad = ProteusAdapter.for_backbone(bb, rank=2, seed=0)
    with torch.no_grad():
        for n in bb.adapter_shapes():
            ad.B(n).normal_()
    full = bb.features(ids, ad, batch_size=10)
    cache = bb.encode(ids, batch_size=3)  # chunks padded differently, then concatenated
    assert len(cache) == 10
    torch.testing.assert_close(bb.upper_cache(cache, ad, batch_size=4), full, atol=1e-5,
                               rtol=1e-5)
    both = HiddenCache.concat([cache.subset([0, 1]), cache.subset(np.arange(2, 10))])
    torch.testing.assert_close(bb.upper_cache(both, ad), full, atol=1e-5, rtol=1e-5)


def test_identity_backbone() -> None:
    bb = BACKBONES.build("identity")
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    z = bb.features(x)
    assert bb.dim == 7 and bb.modality == "features" and bb.adapter_shapes() == {}
    np.testing.assert_allclose(z.numpy(), x)
    with pytest.raises(ValueError, match="inputs"):
        bb.prepare(np.zeros((2, 3), dtype=np.float32))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="adapt_layers"):
        BACKBONES.build("tiny-bert", adapt_layers=3)
    with pytest.raises(ValueError, match="targets"):
        BACKBONES.build("tiny-bert", targets=("nope",))
    bb = BACKBONES.build("tiny-bert")
    with pytest.raises(ValueError, match="inputs"):
        bb.prepare(np.full((2, 3), 500, dtype=np.int64))


def test_minilm_offline_matches_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bb = BACKBONES.build("minilm", max_length=32)
    sents = ["A cat sits on the mat.", "Quantum chromodynamics describes quarks."]
    z = bb.features(sents)
    assert bb.modality == "text" and bb.dim == 384 and bb.n_layers == 6 and z.shape == (2, 384)
    st = pytest.importorskip("sentence_transformers")
    from cft.model.backbones import default_minilm_path

    ref = st.SentenceTransformer(default_minilm_path(), device="cpu").encode(
        sents, convert_to_tensor=True)
    cos = torch.nn.functional.cosine_similarity(z, ref.float().cpu(), dim=1)
    assert float(cos.min()) > 0.999


def test_vit_and_bert_load_from_local_path(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny = BACKBONES.build("tiny-vit", seed=2)
    tiny.model.save_pretrained(str(tmp_path))
    loaded = BACKBONES.build("vit", path=str(tmp_path), adapt_layers=1)
    im = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    torch.testing.assert_close(loaded.features(im), tiny.features(im))
    from cft.model.backbones import default_minilm_path

    bert = BACKBONES.build("bert", path=default_minilm_path(), pooling="cls", max_length=16)
    assert bert.features(["hello world"]).shape == (1, 384)
