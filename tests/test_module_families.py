"""Module families (cft.model.modules): each family's defining mechanism, checked independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cft.config import ModuleConfig
from cft.config.registry import MODULE_FAMILIES
from cft.model.modules import BuildContext
from cft.model.modules.inflora import InfLoRAAdapter, _complement_top, gpm_update, input_covariance
from cft.model.modules.proteus import ProteusAdapter
from cft.model.modules.summed import SDLoRAAdapter, SummedLoRA
from cft.model.train import TrainConfig, train_task


def _ids(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 100, size=(n, 10)).astype(np.int64)


def _randomise(ad: ProteusAdapter, seed: int) -> ProteusAdapter:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in ad.shapes:
            ad.B(n).copy_(torch.randn(ad.B(n).shape, generator=g))
    return ad


def _ctx(bb, previous, task=0, cache=None, seed=0, rank=4):
    return BuildContext(bb, ModuleConfig(rank=rank), list(previous), task, 3, seed, cache, 16)


def test_capabilities_are_declared():
    caps = {n: (MODULE_FAMILIES.build(n).inference, MODULE_FAMILIES.build(n).cumulative)
            for n in MODULE_FAMILIES.names()}
    assert caps == {"proteus": ("retrieval", False), "sequential": ("merged", False),
                    "joint": ("merged", True), "frozen": ("merged", False),
                    "summed": ("merged", False), "sd-lora": ("merged", False),
                    "inflora": ("merged", False)}


def test_sequential_continues_the_previous_factors(bb):
    fam = MODULE_FAMILIES.build("sequential")
    m0 = _randomise(fam.build(_ctx(bb, [], seed=1)), 3)
    m1 = fam.build(_ctx(bb, [m0], task=1, seed=2))
    fresh = MODULE_FAMILIES.build("joint").build(_ctx(bb, [m0], task=1, seed=2))
    for n in m0.shapes:
        torch.testing.assert_close(m1.A(n), m0.A(n))
        torch.testing.assert_close(m1.B(n), m0.B(n))
        assert not torch.equal(fresh.A(n), m0.A(n)) and not fresh.B(n).any()
    assert m1.task == 0 and not m1.trainable_parameters()["coef"]  # one module, no reuse
    back = fam.load(m1.to_state_dict(), previous=[m0])
    torch.testing.assert_close(back.delta_weight(n), m1.delta_weight(n))


def test_summed_is_the_sum_of_every_module_and_fixes_the_coefficients(bb):
    m0 = _randomise(SummedLoRA.for_backbone(bb, rank=4, seed=1), 1)
    m1 = _randomise(SummedLoRA.for_backbone(bb, rank=4, seed=2, previous=[m0]), 2)
    m2 = _randomise(SummedLoRA.for_backbone(bb, rank=4, seed=3, previous=[m0, m1]), 3)
    for n in m2.shapes:
        want = sum(m.scaling * m.B(n) @ m.A(n) for m in (m0, m1, m2))
        torch.testing.assert_close(m2.delta_weight(n), want)
        assert torch.equal(m2.c(n), torch.ones(2)) and not m2.c(n).requires_grad
    assert m2.trainable_parameters()["coef"] == []
    ids = _ids(6)
    x = bb.features(ids, m2)
    h, b = bb.lower(bb.prepare(ids)), bb.prepare(ids)
    assert torch.allclose(x, bb.upper(h, b, m2), atol=1e-6)


def test_o_lora_penalty_reduces_overlap(bb):
    """The o-lora bundle's orthogonality penalty (lambda_orth = 0.5) keeps the new rows far
    more orthogonal to the earlier ones than the same training without it."""
    cache = bb.encode(_ids(48, 1))
    y = np.repeat([0, 1], 24)
    m0 = _randomise(SummedLoRA.for_backbone(bb, rank=4, seed=1), 1)
    over = {}
    for lam in (0.0, 0.5):
        m1 = SummedLoRA.for_backbone(bb, rank=4, seed=2, previous=[m0])
        with torch.no_grad():  # start from a strongly overlapping A
            for n in m1.shapes:
                m1.A(n).copy_(m0.A(n) + 0.1 * m1.A(n))
        train_task(bb, m1, cache, y, TrainConfig(epochs=10, batch_size=16, lr=1e-2,
                                                 lambda_orth=lam, lambda_l1=0.0))
        over[lam] = np.mean([v for vals in m1.overlaps().values() for v in vals])
    assert over[0.5] < 0.5 * over[0.0]


def test_sd_lora_normalised_directions_and_continuity(bb):
    m0 = _randomise(SDLoRAAdapter.for_backbone(bb, rank=4, seed=1), 1)
    m1 = SDLoRAAdapter.for_backbone(bb, rank=4, seed=2, previous=[m0])
    for n in m1.shapes:  # at the start of task 1 the model is task 0's
        torch.testing.assert_close(m1.delta_weight(n), m0.scaling * m0.B(n) @ m0.A(n))
        d0 = m0.scaling * m0.B(n) @ m0.A(n)
        assert float(m1.c(n)[0].detach()) == pytest.approx(float(d0.norm().detach()), rel=1e-5)
    _randomise(m1, 2)
    with torch.no_grad():
        for n in m1.shapes:
            m1.c(n).copy_(torch.tensor([0.7]))
    m2 = SDLoRAAdapter.for_backbone(bb, rank=4, seed=3, previous=[m0, m1])
    for n in m2.shapes:
        w = 0.0
        for j, m in enumerate((m0, m1)):
            d = m.scaling * m.B(n) @ m.A(n)
            mag = 0.7 if j == 0 else float(d.norm())
            w = w + mag * d / d.norm()
        torch.testing.assert_close(m2.delta_weight(n), w, rtol=1e-5, atol=1e-6)
        assert m2.c(n).requires_grad  # magnitudes are learned ...
    params = m2.trainable_parameters()
    assert len(params["coef"]) == len(m2.shapes)
    frozen = [t.clone() for n in m2.shapes for t in m2._stacked(n)]
    cache = bb.encode(_ids(32, 2))
    train_task(bb, m2, cache, np.repeat([0, 1], 16),
               TrainConfig(epochs=3, batch_size=16, lr=1e-2, lambda_orth=0.0, lambda_l1=0.0))
    after = [t for n in m2.shapes for t in m2._stacked(n)]
    assert all(torch.equal(a, b) for a, b in zip(frozen, after, strict=True))  # ... not dirs
    assert any(not torch.allclose(m2.c(n), torch.tensor([0.7, float(m2.c(n)[1])]))
               for n in m2.shapes)
    back = SDLoRAAdapter.from_state_dict(m2.to_state_dict(), previous=[m0, m1])
    for n in m2.shapes:
        torch.testing.assert_close(back.delta_weight(n), m2.delta_weight(n))


def test_gpm_update_energy_criterion():
    cov = torch.diag(torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5, 0.25], dtype=torch.float64))
    empty = torch.zeros(6, 0)
    # 8 / 15.75 = 0.51, 12 / 15.75 = 0.76, 14 / 15.75 = 0.89, 15 / 15.75 = 0.95
    assert gpm_update(empty, cov, 0.75, cap=5).shape[1] == 2
    assert gpm_update(empty, cov, 0.9, cap=5).shape[1] == 4
    assert gpm_update(empty, cov, 0.9, cap=3).shape[1] == 3  # room left for the next task
    m = gpm_update(empty, cov, 0.75, cap=5)
    torch.testing.assert_close(m.T @ m, torch.eye(2), atol=1e-6, rtol=0)
    assert {int(i) for i in m.abs().argmax(0)} == {0, 1}  # the two largest directions
    grown = gpm_update(m, cov, 0.9, cap=5)  # the kept energy counts toward the threshold
    assert grown.shape[1] == 4 and torch.equal(grown[:, :2], m)
    top = _complement_top(cov.float().double(), m.double(), 2)
    assert {int(i) for i in top.abs().argmax(1)} == {2, 3}  # best rows outside the memory
    assert float((top.double() @ m.double()).abs().max()) < 1e-6


def test_inflora_a_is_orthogonal_to_earlier_inputs_and_fixed(bb):
    fam = MODULE_FAMILIES.build("inflora", threshold=0.9, threshold_end=0.95)
    c0, c1 = bb.encode(_ids(40, 3)), bb.encode(_ids(40, 4))
    y = np.repeat([0, 1], 20)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, lambda_orth=0.0, lambda_l1=0.0)
    ctx0 = _ctx(bb, [], 0, c0, seed=1)
    m0 = fam.build(ctx0)
    train_task(bb, m0, c0, y, cfg)
    fam.after_train(m0, ctx0)
    ctx1 = _ctx(bb, [m0], 1, c1, seed=2)
    m1 = fam.build(ctx1)
    a_init = {n: m1.A(n).clone() for n in m1.shapes}
    train_task(bb, m1, c1, y, cfg)
    fam.after_train(m1, ctx1)
    for n in m1.shapes:
        mem = m0.gpm[n]  # task 0's input subspace, under the trained task-0 model
        assert 0 < mem.shape[1] <= mem.shape[0] - 4
        assert float((m1.A(n) @ mem).abs().max()) < 1e-5  # A_1 orthogonal to it
        assert torch.equal(m1.A(n), a_init[n]) and m1.B(n).abs().sum() > 0  # only B trained
        torch.testing.assert_close(m1.A(n) @ m1.A(n).T, torch.eye(4), atol=1e-5, rtol=0)
        assert m1.gpm[n].shape[1] >= mem.shape[1]
        torch.testing.assert_close(m1.gpm[n][:, : mem.shape[1]], mem)
    # the memory holds task 0's input energy: its complement holds < 1 - threshold of it
    cov = input_covariance(bb, c0, m0, 16)
    for n in m0.shapes:
        q = m0.gpm[n].double()
        kept = float(torch.trace(q.T @ cov[n] @ q)) / float(torch.trace(cov[n]))
        assert kept >= 0.9
    assert isinstance(m1, InfLoRAAdapter) and m1.trainable_parameters()["coef"] == []
    back = fam.load(m1.to_state_dict(), previous=[m0])
    for n in m1.shapes:
        torch.testing.assert_close(back.gpm[n], m1.gpm[n])
        torch.testing.assert_close(back.delta_weight(n), m1.delta_weight(n))


def test_inflora_options_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        MODULE_FAMILIES.build("inflora", threshold=1.5)
