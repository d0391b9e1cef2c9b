"""The MPNet path of the HF text family: ``tiny-mpnet`` and a tiny sentence-transformers
directory (built here, no download) in every run; the real all-mpnet-base-v2 when
``scripts/ensure-mpnet.sh`` has installed it (skipped, with that reason, otherwise)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cft.config.presets import BACKBONE_TWINS
from cft.config.registry import BACKBONES
from cft.model.backbones.text import default_mpnet_path, st_pooling
from cft.model.modules.proteus import ProteusAdapter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEXTS = [
    "a large carnivorous cat of Africa",
    "a big feline predator living in the savanna",
    "a function that returns the length of a string",
    "x",
    # longer than max_length = 32 tokens: truncated the same way by both sides
    "the act of moving something from one place to another, " * 6,
]


def _tokens(n: int = 6, length: int = 12, seed: int = 0) -> np.ndarray:
    """Token ids in [2, 100) (MPNet numbers positions from its padding id 1), 0 = padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, 100, size=(n, length)).astype(np.int64)
    for i in range(n):
        ids[i, rng.integers(3, length + 1):] = 0
    return ids


def _mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1)


def _random_adapter(bb, seed: int = 0) -> ProteusAdapter:
    ad = ProteusAdapter.for_backbone(bb, rank=2, seed=seed)
    with torch.no_grad():
        for n in bb.adapter_shapes():
            ad.B(n).normal_()
    return ad


# ---------------------------------------------------------------- tiny MPNet, token ids
@pytest.mark.parametrize("adapt_layers", [0, 1, 2])
def test_tiny_mpnet_split_equals_hf_forward(adapt_layers: int) -> None:
    bb = BACKBONES.build("tiny-mpnet", seed=0, adapt_layers=adapt_layers)
    assert bb.modality == "tokens" and bb.dim == 32 and bb.n_layers == 2
    batch = bb.prepare(_tokens())
    z = bb.upper(bb.lower(batch), batch)
    out = bb.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    ref = _mean(out.last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(z, ref, atol=1e-5, rtol=1e-5)
    assert sorted(bb.adapter_shapes()) == sorted(
        f"layers.{i}.attention.attn.{p}" for i in range(2 - adapt_layers, 2) for p in "qv")


def test_tiny_mpnet_needs_its_relative_position_bias() -> None:
    """The split forward equals the full one only with the encoder's position bias: the
    comparison above would catch a split that dropped it."""
    bb = BACKBONES.build("tiny-mpnet", seed=0, adapt_layers=1)
    batch = bb.prepare(_tokens())
    full = _mean(bb.model(input_ids=batch["input_ids"],
                          attention_mask=batch["attention_mask"]).last_hidden_state,
                 batch["attention_mask"])
    bias, bb._position_bias = bb._position_bias, None
    try:
        assert bias is not None
        assert not torch.allclose(bb.upper(bb.lower(batch), batch), full, atol=1e-4)
    finally:
        bb._position_bias = bias


def test_tiny_mpnet_every_target_is_hooked() -> None:
    bb = BACKBONES.build("tiny-mpnet", seed=0, adapt_layers=2,
                         targets=("query", "key", "value", "output"))
    assert sorted(bb.adapter_shapes()) == sorted(
        f"layers.{i}.attention.attn.{p}" for i in range(2) for p in "qkvo")
    assert set(bb.adapter_shapes().values()) == {(32, 32)}


def test_tiny_mpnet_adapter_hooks_and_cache() -> None:
    """An adapter changes the adapted layers only while it is passed; lower-layer caches
    built in differently padded chunks give the features of one pass."""
    bb = BACKBONES.build("tiny-mpnet", seed=1, adapt_layers=1)
    ids = _tokens(n=10, length=16, seed=2)
    ad = _random_adapter(bb)
    plain = bb.features(ids, batch_size=10)
    full = bb.features(ids, ad, batch_size=10)
    assert not torch.allclose(plain, full, atol=1e-3)
    torch.testing.assert_close(bb.features(ids, batch_size=10), plain)
    cache = bb.encode(ids, batch_size=3)
    torch.testing.assert_close(bb.upper_cache(cache, ad, batch_size=4), full, atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(bb.upper_cache(cache, None, batch_size=7), plain, atol=1e-5,
                               rtol=1e-5)
    # gradients reach the adapter through the hooks of MPNet's attn.q / attn.v
    h, b = cache.batch(slice(0, 4))
    bb.upper(h, b, ad).sum().backward()
    grads = [p.grad for p in ad.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


# ------------------------------------------- tiny sentence-transformers directory (text)
_WORDS = ("a the of to in is cat dog big large small feline predator africa savanna living "
          "function returns length string act moving something from one place another , . "
          "carnivorous").split()


def _write_st_dir(root: Path, pooling: dict | None = None, modules: list | None = None,
                  seed: int = 0) -> Path:
    """A sentence-transformers directory holding a random 2-layer MPNet and a word-level
    MPNet tokenizer (a few hundred KB)."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", *_WORDS, "<mask>"]
    tok = MPNetTokenizer(vocab={w: i for i, w in enumerate(vocab)}, unk_token="[UNK]")
    tok.save_pretrained(str(root))
    cfg = MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3,
                      num_attention_heads=2, intermediate_size=64,
                      max_position_embeddings=66, pad_token_id=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MPNetModel(cfg, add_pooling_layer=False)
    model.save_pretrained(str(root))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling or {
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}))
    (root / "modules.json").write_text(json.dumps(modules or [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"}]))
    (root / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 32, "do_lower_case": False}))
    return root


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory) -> Path:
    return _write_st_dir(tmp_path_factory.mktemp("tiny-st") / "model")


def _reference(path: str | Path, texts: list[str], max_length: int = 32,
               cls: bool = False) -> torch.Tensor:
    """Features computed another way: the whole ``AutoModel`` forward, then pooling."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=max_length,
              return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"],
                  attention_mask=enc["attention_mask"]).last_hidden_state
    return h[:, 0] if cls else _mean(h, enc["attention_mask"])


def _st_reference(path: str | Path, texts: list[str], max_length: int = 32
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """sentence-transformers' own pipeline: (Transformer + Pooling, the full encode)."""
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = max_length
    feats = model.tokenize(texts)
    with torch.no_grad():
        pooled = model[1](model[0](dict(feats)))["sentence_embedding"]
    full = model.encode(texts, convert_to_tensor=True, batch_size=len(texts))
    return pooled, full.cpu()


def test_sentence_transformer_dir_pooling_and_fidelity(st_dir: Path) -> None:
    assert st_pooling(st_dir) == "mean"
    bb = BACKBONES.build("sentence-transformer", path=str(st_dir), adapt_layers=2)
    assert bb.modality == "text" and bb.pooling == "mean" and bb.n_layers == 3
    assert sorted(bb.adapter_shapes()) == sorted(
        f"layers.{i}.attention.attn.{p}" for i in (1, 2) for p in "qv")
    z = bb.features(TEXTS, batch_size=2)
    torch.testing.assert_close(z, _reference(st_dir, TEXTS), atol=1e-5, rtol=1e-5)
    pooled, full = _st_reference(st_dir, TEXTS)
    torch.testing.assert_close(z, pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.nn.functional.normalize(z, dim=1), full, atol=1e-5,
                               rtol=1e-5)


def test_sentence_transformer_dir_cls_pooling(tmp_path: Path) -> None:
    root = _write_st_dir(tmp_path / "cls", pooling={"pooling_mode_cls_token": True,
                                                    "pooling_mode_mean_tokens": False})
    bb = BACKBONES.build("sentence-transformer", path=str(root))
    assert bb.pooling == "cls"
    torch.testing.assert_close(bb.features(TEXTS), _reference(root, TEXTS, cls=True),
                               atol=1e-5, rtol=1e-5)


def test_sentence_transformer_dir_with_a_transformer_subfolder(tmp_path: Path,
                                                               st_dir: Path) -> None:
    """Older sentence-transformers layouts keep the encoder in ``0_Transformer/``."""
    root = tmp_path / "nested"
    enc = _write_st_dir(root / "0_Transformer")
    (enc / "1_Pooling").rename(root / "1_Pooling")
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    bb = BACKBONES.build("sentence-transformer", path=str(root))
    torch.testing.assert_close(bb.features(TEXTS), _reference(st_dir, TEXTS), atol=1e-5,
                               rtol=1e-5)


@pytest.mark.parametrize("pooling, modules, match", [
    ({"pooling_mode_max_tokens": True}, None, "pooling .'max_tokens'."),
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True}, None, "pooling"),
    (None, [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}],
     "Dense"),
])
def test_sentence_transformer_dir_refuses_what_it_does_not_compute(tmp_path, pooling,
                                                                   modules, match) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling or {
        "pooling_mode_mean_tokens": True}))
    if modules:
        (root / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=match):
        st_pooling(root)


def test_sentence_transformer_dir_needs_its_pooling_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1_Pooling"):
        st_pooling(tmp_path)


def test_mpnet_path_from_env_and_one_line_error(st_dir: Path, tmp_path: Path,
                                                monkeypatch) -> None:
    monkeypatch.setenv("CFT_MPNET_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="scripts/ensure-mpnet.sh") as err:
        BACKBONES.build("mpnet")
    assert "\n" not in str(err.value)
    monkeypatch.delenv("CFT_MPNET_DIR")
    monkeypatch.setenv("CFT_MODELS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=str(tmp_path / "all-mpnet-base-v2")):
        default_mpnet_path()
    # the directory layout the installer leaves (config, weights, tokenizer, 1_Pooling)
    monkeypatch.setenv("CFT_MPNET_DIR", str(st_dir))
    assert default_mpnet_path() == str(st_dir)
    bb = BACKBONES.build("mpnet", adapt_layers=1)
    assert bb.pooling == "mean" and bb.dim == 32


# -------------------------------------------------------------- the real all-mpnet-base-v2
def _real_mpnet() -> str:
    try:
        return default_mpnet_path()
    except ValueError as e:
        pytest.skip(str(e))  # names scripts/ensure-mpnet.sh


@pytest.fixture(scope="module")
def mpnet():
    path = _real_mpnet()
    return path, BACKBONES.build("mpnet", adapt_layers=2)


def test_real_mpnet_features_match_references(mpnet) -> None:
    path, bb = mpnet
    assert bb.dim == 768 and bb.n_layers == 12 and bb.pooling == "mean"
    assert sum(p.numel() for p in bb.model.parameters()) == pytest.approx(109.5e6, rel=2e-3)
    z = bb.features(TEXTS, batch_size=3)
    torch.testing.assert_close(z, _reference(path, TEXTS), atol=1e-5, rtol=1e-5)
    pooled, full = _st_reference(path, TEXTS)
    torch.testing.assert_close(z, pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.nn.functional.normalize(z, dim=1), full, atol=1e-5,
                               rtol=1e-5)


def test_real_mpnet_similarities(mpnet) -> None:
    _, bb = mpnet
    z = torch.nn.functional.normalize(bb.features(TEXTS[:3]), dim=1)
    sim = z @ z.T
    assert float(sim[0, 1]) == pytest.approx(0.758, abs=2e-3)
    assert float(sim[0, 2]) <= 0.106 and float(sim[1, 2]) <= 0.106


def test_real_mpnet_split_cache_and_adapter(mpnet) -> None:
    """Lower layers cached in chunks + the adapted top layers = one full pass, with and
    without an adapter on MPNet's attn.q / attn.v."""
    _, bb = mpnet
    assert sorted(bb.adapter_shapes()) == sorted(
        f"layers.{i}.attention.attn.{p}" for i in (10, 11) for p in "qv")
    ad = _random_adapter(bb)
    cache = bb.encode(TEXTS, batch_size=2)
    for adapter in (None, ad):
        torch.testing.assert_close(bb.upper_cache(cache, adapter, batch_size=3),
                                   bb.features(TEXTS, adapter, batch_size=5),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mp,twin", sorted(BACKBONE_TWINS.items()))
def test_mpnet_presets_differ_from_their_twin_in_the_backbone_only(mp: str, twin: str) -> None:
    """The preset carries all that differs: stream, training, signatures and rules are the
    MiniLM twin's; the backbone is mpnet with the twin's max_length."""
    from dataclasses import asdict

    from cft.config import preset

    a, b = asdict(preset(mp)), asdict(preset(twin))
    assert a["backbone"]["name"] == "mpnet"
    assert a["backbone"]["options"]["max_length"] == b["backbone"]["options"]["max_length"]
    for key in set(a) - {"backbone", "preset"}:
        assert a[key] == b[key], key
