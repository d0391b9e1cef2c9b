"""PROTEUS composition: zero init, alpha = 0, orthogonality, frozen factors, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cft.model.modules.proteus import ProteusAdapter
from cft.model.train import TrainConfig, train_task


def _ids(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 100, size=(n, 10)).astype(np.int64)


def _randomise(ad: ProteusAdapter, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in ad.shapes:
            ad.B(n).copy_(torch.randn(ad.B(n).shape, generator=g))


def test_zero_init_is_frozen_backbone(bb) -> None:
    ad0 = ProteusAdapter.for_backbone(bb, rank=4, seed=1)
    _randomise(ad0, 0)
    ad1 = ProteusAdapter.for_backbone(bb, rank=4, seed=2, alpha=0.0, previous=[ad0], coef_init=0)
    ids = _ids()
    torch.testing.assert_close(bb.features(ids, ProteusAdapter.for_backbone(bb, seed=5)),
                               bb.features(ids))
    torch.testing.assert_close(bb.features(ids, ad1), bb.features(ids))
    assert not torch.allclose(bb.features(ids, ad0), bb.features(ids))


def test_alpha_zero_is_plain_lora(bb) -> None:
    ad0 = ProteusAdapter.for_backbone(bb, rank=4, seed=1)
    _randomise(ad0, 0)
    composed = ProteusAdapter.for_backbone(bb, rank=4, seed=2, alpha=0.0, previous=[ad0])
    _randomise(composed, 1)
    plain = ProteusAdapter.for_backbone(bb, rank=4, seed=2)
    _randomise(plain, 1)
    ids = _ids()
    torch.testing.assert_close(bb.features(ids, composed), bb.features(ids, plain))
    reuse = ProteusAdapter.for_backbone(bb, rank=4, seed=2, alpha=1.0, previous=[ad0])
    _randomise(reuse, 1)
    assert not torch.allclose(bb.features(ids, reuse), bb.features(ids, plain))


def test_delta_matches_dense_update(bb) -> None:
    ads = []
    for k in range(3):
        ad = ProteusAdapter.for_backbone(bb, rank=3, seed=k, alpha=0.7, previous=ads)
        _randomise(ad, 10 + k)
        ads.append(ad)
    x = torch.randn(5, 32)
    for n in bb.adapter_shapes():
        w = ads[2].delta_weight(n)
        manual = ads[2].scaling * ads[2].B(n) @ ads[2].A(n)
        for j in range(2):
            manual = manual + 0.7 * ads[2].c(n)[j] * ads[j].scaling * ads[j].B(n) @ ads[j].A(n)
        torch.testing.assert_close(w, manual)
        torch.testing.assert_close(ads[2].delta(n, x), x @ w.T, atol=1e-5, rtol=1e-5)


def _overlap(ad: ProteusAdapter, prev: ProteusAdapter) -> float:
    return sum(float((ad.A(n) @ prev.A(n).T).detach().norm() ** 2) for n in ad.shapes)


def test_orth_penalty_decreases_overlap(bb) -> None:
    ad0 = ProteusAdapter.for_backbone(bb, rank=4, seed=1)
    ad1 = ProteusAdapter.for_backbone(bb, rank=4, seed=2, previous=[ad0])
    before = _overlap(ad1, ad0)
    assert before > 0
    torch.testing.assert_close(ad1.orth_penalty(), torch.tensor(before), rtol=1e-5, atol=1e-7)
    opt = torch.optim.Adam(ad1.trainable_parameters()["factors"], lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        ad1.orth_penalty().backward()
        opt.step()
    assert _overlap(ad1, ad0) < 0.2 * before


def test_frozen_factors_unchanged_by_training(bb) -> None:
    ids = _ids(16, seed=3)
    y = np.repeat([0, 1], 8)
    ad0 = ProteusAdapter.for_backbone(bb, rank=2, seed=1)
    cache = bb.encode(ids)
    train_task(bb, ad0, cache, y, TrainConfig(epochs=2, batch_size=8, lr=1e-2))
    snap = {n: (ad0.A(n).clone(), ad0.B(n).clone()) for n in ad0.shapes}
    assert any(float(ad0.B(n).detach().abs().sum()) > 0 for n in ad0.shapes)
    ad1 = ProteusAdapter.for_backbone(bb, rank=2, seed=2, previous=[ad0])
    c_before = {n: ad1.c(n).clone() for n in ad1.shapes}
    a_before = {n: ad1.A(n).clone() for n in ad1.shapes}
    train_task(bb, ad1, cache, y + 2, TrainConfig(epochs=2, batch_size=8, lr=1e-2))
    for n in ad0.shapes:
        torch.testing.assert_close(ad0.A(n), snap[n][0], rtol=0, atol=0)
        torch.testing.assert_close(ad0.B(n), snap[n][1], rtol=0, atol=0)
        (a, sb), = ad1.frozen_factors(n)
        torch.testing.assert_close(a, snap[n][0], rtol=0, atol=0)
        torch.testing.assert_close(sb, ad0.scaling * snap[n][1], rtol=0, atol=0)
        assert not torch.equal(ad1.A(n), a_before[n])  # the new factors did train
        assert not torch.equal(ad1.c(n), c_before[n])  # and so did the coefficients


def test_state_dict_round_trip(bb, tmp_path) -> None:
    ad0 = ProteusAdapter.for_backbone(bb, rank=3, lora_alpha=6, seed=1)
    _randomise(ad0, 0)
    ad1 = ProteusAdapter.for_backbone(bb, rank=3, lora_alpha=6, seed=2, alpha=0.5,
                                      previous=[ad0])
    _randomise(ad1, 1)
    with torch.no_grad():
        for n in ad1.shapes:
            ad1.c(n).fill_(0.3)
    for ad in (ad0, ad1):
        save_file(ad.to_state_dict(), str(tmp_path / f"m{ad.task}.safetensors"))
    r0 = ProteusAdapter.from_state_dict(load_file(str(tmp_path / "m0.safetensors")))
    r1 = ProteusAdapter.from_state_dict(load_file(str(tmp_path / "m1.safetensors")), [r0])
    assert (r1.task, r1.rank, r1.alpha, r1.scaling) == (1, 3, 0.5, 2.0)
    ids = _ids()
    torch.testing.assert_close(bb.features(ids, r1), bb.features(ids, ad1))
    torch.testing.assert_close(bb.features(ids, r0), bb.features(ids, ad0))
    with pytest.raises(ValueError, match="previous"):
        ProteusAdapter.from_state_dict(ad1.to_state_dict(), [])
    assert r1.orth == "penalty"
    proj = ProteusAdapter.for_backbone(bb, rank=3, seed=3, previous=[ad0], orth="project")
    back = ProteusAdapter.from_state_dict(proj.to_state_dict(), [r0])
    assert back.orth == "project" and back.reuse_stats()["orth"] == "project"
    old = {k: v for k, v in proj.to_state_dict().items() if k != "meta.orth"}
    assert ProteusAdapter.from_state_dict(old, [r0]).orth == "penalty"  # saved before orth
    with pytest.raises(ValueError, match="meta.orth"):
        ProteusAdapter.from_state_dict({**old, "meta.orth": torch.tensor([-1])}, [r0])


def test_bad_arguments(bb) -> None:
    shapes = bb.adapter_shapes()
    with pytest.raises(ValueError, match="alpha"):
        ProteusAdapter(shapes, alpha=1.5)
    with pytest.raises(ValueError, match="rank"):
        ProteusAdapter(shapes, rank=0)
    with pytest.raises(ValueError, match="previous"):
        ProteusAdapter(shapes, previous=[ProteusAdapter({"x": (2, 2)})])
    with pytest.raises(ValueError, match="adapter"):
        bb.features(_ids(), ProteusAdapter({"x": (2, 2)}))


def test_composed_update_matches_the_formula_with_mixed_ranks() -> None:
    """Delta W_k = alpha sum_j c_j s_j B_j A_j + s_k B_k A_k, factored and dense, for
    earlier modules of different ranks; the penalty is sum_j ||A_k A_j^T||_F^2; the frozen
    factors are buffers that follow dtype conversion."""
    shapes = {"l": (5, 7)}
    mods: list[ProteusAdapter] = []
    for t, r in enumerate([2, 3, 2]):
        m = ProteusAdapter(shapes, rank=r, lora_alpha=2 * r, alpha=0.7, previous=mods, seed=t)
        with torch.no_grad():
            m.B("l").normal_()
            if t:
                m.c("l").copy_(torch.randn(t))
        mods.append(m)
    m = mods[-1]
    w = m.scaling * m.B("l") @ m.A("l")
    for j, p in enumerate(mods[:-1]):
        w = w + 0.7 * m.c("l")[j] * p.scaling * p.B("l") @ p.A("l")
    x = torch.randn(4, 7)
    torch.testing.assert_close(m.delta_weight("l"), w)
    torch.testing.assert_close(m.delta("l", x), x @ w.T)
    pen = sum((m.A("l") @ p.A("l").T).pow(2).sum() for p in mods[:-1])
    torch.testing.assert_close(m.orth_penalty(), pen)
    assert m.double().frozen_factors("l")[1][0].dtype == torch.float64


def test_project_keeps_new_rows_orthogonal(bb) -> None:
    """orth="project": A_k A_j^T = 0 at initialisation and after training (AdamW + weight
    decay would leave the complement without the re-projection); the penalty mode does
    not have that property."""
    ids = _ids(16, seed=3)
    y = np.repeat([0, 1], 8)
    cache = bb.encode(ids)
    ad0 = ProteusAdapter.for_backbone(bb, rank=4, seed=1)
    train_task(bb, ad0, cache, y, TrainConfig(epochs=2, batch_size=8, lr=1e-2))
    hard = ProteusAdapter.for_backbone(bb, rank=4, seed=2, previous=[ad0], orth="project")
    soft = ProteusAdapter.for_backbone(bb, rank=4, seed=2, previous=[ad0])
    assert max(max(v) for v in hard.overlaps().values()) < 1e-6
    assert min(min(v) for v in soft.overlaps().values()) > 1e-2
    a_before = {n: hard.A(n).clone() for n in hard.shapes}
    for ad in (hard, soft):
        train_task(bb, ad, cache, y + 2, TrainConfig(epochs=3, batch_size=8, lr=1e-2,
                                                      lambda_orth=0.0))
    assert any(not torch.equal(hard.A(n), a_before[n]) for n in hard.shapes)
    assert max(max(v) for v in hard.overlaps().values()) < 1e-6
    assert min(min(v) for v in soft.overlaps().values()) > 1e-2
    # projection onto the complement is idempotent and leaves B, c alone
    snap = {n: hard.A(n).clone() for n in hard.shapes}
    hard.project_()
    for n in hard.shapes:
        torch.testing.assert_close(hard.A(n), snap[n], rtol=0, atol=1e-6)


def test_project_needs_room_in_the_complement() -> None:
    shapes = {"l": (4, 6)}
    m0 = ProteusAdapter(shapes, rank=3, seed=0)
    ProteusAdapter(shapes, rank=3, previous=[m0], orth="project")  # 3 + 3 <= 6
    with pytest.raises(ValueError, match="orth: 'project' needs room for 4 new rows"):
        ProteusAdapter(shapes, rank=4, previous=[m0], orth="project")
    with pytest.raises(ValueError, match="orth: must be one of"):
        ProteusAdapter(shapes, orth="hard")


def test_overlaps_and_reuse_stats() -> None:
    """overlap = ||A_k A_j^T||_F / (||A_k||_F ||A_j||_F) per earlier module; sparsity counts
    exact zeros of c."""
    shapes = {"l": (5, 7), "m": (3, 7)}
    mods: list[ProteusAdapter] = []
    for t in range(3):
        mods.append(ProteusAdapter(shapes, rank=2, previous=mods, seed=t))
    m = mods[-1]
    with torch.no_grad():
        m.c("l").copy_(torch.tensor([0.0, 0.5]))
        m.c("m").copy_(torch.tensor([0.0, 0.0]))
    st = m.reuse_stats()
    assert st["coef"] == {"l": [0.0, 0.5], "m": [0.0, 0.0]}
    assert st["coef_sparsity"] == 0.75
    assert st["coef_sparsity_per_layer"] == {"l": 0.5, "m": 1.0}
    assert st["orth"] == "penalty"
    for n in shapes:
        for j in range(2):
            a, b = m.A(n).detach(), mods[j].A(n).detach()
            want = float((a @ b.T).norm() / (a.norm() * b.norm()))
            assert st["overlap"][n][j] == pytest.approx(want, rel=1e-5)
            assert 0.0 < st["overlap"][n][j] < 1.0
    first = mods[0].reuse_stats()
    assert first["coef"] == {} and first["coef_sparsity"] is None and first["overlap"] == {}
