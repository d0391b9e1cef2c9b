"""Per-task training: loss decreases, determinism, identity no-op, orthogonality term,
proximal L1 step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cft.config.registry import BACKBONES
from cft.model.modules.proteus import ProteusAdapter
from cft.model.train import TrainConfig, train_task


def _separable(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 uses tokens 1..49, class 1 tokens 50..99 (global ids 7 and 3)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([7, 3], n // 2)
    ids = np.where(y[:, None] == 7, rng.integers(1, 50, (n, 10)), rng.integers(50, 100, (n, 10)))
    return ids.astype(np.int64), y


@pytest.fixture(scope="module")
def setup():
    bb = BACKBONES.build("tiny-bert", seed=0, adapt_layers=1)
    ids, y = _separable()
    return bb, bb.encode(ids), y


def _run(bb, cache, y, seed: int, **kw):
    ad = ProteusAdapter.for_backbone(bb, rank=4, seed=seed)
    cfg = TrainConfig(epochs=kw.pop("epochs", 4), batch_size=16, lr=kw.pop("lr", 1e-2), **kw)
    return ad, train_task(bb, ad, cache, y, cfg, seed=seed)


def test_loss_decreases(setup) -> None:
    bb, cache, y = setup
    ad, res = _run(bb, cache, y, seed=0, epochs=8, lr=3e-2)
    assert len(res.losses) == 8 and len(res.ce_losses) == 8
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert all(b < a for a, b in zip(res.losses, res.losses[1:]))
    np.testing.assert_array_equal(res.classes, [3, 7])
    with torch.no_grad():
        logits = res.head(bb.upper_cache(cache, ad))
    acc = (res.classes[logits.argmax(1).numpy()] == y).mean()
    assert acc > 0.9


def test_deterministic(setup) -> None:
    bb, cache, y = setup
    _, a = _run(bb, cache, y, seed=5)
    _, b = _run(bb, cache, y, seed=5)
    _, c = _run(bb, cache, y, seed=6)
    assert a.losses == b.losses
    assert a.losses != c.losses


def test_orth_term_reduces_overlap(setup) -> None:
    bb, cache, y = setup
    ad0, _ = _run(bb, cache, y, seed=0, epochs=1)

    def overlap(lam: float) -> float:
        ad = ProteusAdapter.for_backbone(bb, rank=4, seed=1, previous=[ad0])
        cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, lambda_orth=lam)
        train_task(bb, ad, cache, y, cfg, seed=1)
        return float(ad.orth_penalty().detach())

    assert overlap(10.0) < 0.5 * overlap(0.0)


def test_identity_is_noop() -> None:
    bb = BACKBONES.build("identity")
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    cache = bb.encode(x)
    ad = ProteusAdapter.for_backbone(bb)
    res = train_task(bb, ad, cache, np.arange(10) % 2)
    assert res.losses == [] and list(res.classes) == [0, 1]


def test_bad_arguments(setup) -> None:
    bb, cache, y = setup
    ad = ProteusAdapter.for_backbone(bb)
    with pytest.raises(ValueError, match="labels"):
        train_task(bb, ad, cache, y[:-1])
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="^seed: must be a non-negative int"):
        train_task(bb, ad, cache, y, seed=-1)
    from cft.config import Config
    assert type(Config().train) is TrainConfig  # one training-config type


def test_prox_step_is_adam_metric_soft_threshold() -> None:
    """After one AdamW step, c <- sign(c) max(|c| - lr lam / (sqrt(v_hat) + eps), 0)."""
    from cft.model.train import prox_l1_

    c = nn.Parameter(torch.tensor([0.5, -0.5, 0.001, 2.0]))
    opt = torch.optim.AdamW([{"params": [c], "weight_decay": 0.0}], lr=0.1)
    c.grad = torch.tensor([0.2, -0.1, 0.0, 4.0])
    opt.step()
    after_step = c.detach().clone()
    v_hat = opt.state[c]["exp_avg_sq"] / (1 - 0.999)
    thr = 0.1 * 0.3 / (v_hat.sqrt() + 1e-8)
    prox_l1_(opt, [c], 0.3)
    want = torch.sign(after_step) * (after_step.abs() - thr).clamp_min(0.0)
    torch.testing.assert_close(c.detach(), want)
    assert c[2].item() == 0.0 and not torch.signbit(c[2])  # zero gradient: prox sets 0, not -0
    assert c[3].item() != 0.0
    d = nn.Parameter(torch.tensor([0.5]))  # no optimizer state (no gradient yet): untouched
    prox_l1_(torch.optim.AdamW([d]), [d], 10.0)
    assert d.item() == 0.5


def test_l1_prox_gives_exact_zeros(setup) -> None:
    """The proximal L1 step drives reuse coefficients to exact zeros; without it (lambda 0)
    no coefficient is zero."""
    bb, cache, y = setup
    ad0, _ = _run(bb, cache, y, seed=0, epochs=1)

    def coefs(lam: float) -> torch.Tensor:
        ad = ProteusAdapter.for_backbone(bb, rank=4, seed=1, previous=[ad0])
        cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, lambda_l1=lam)
        res = train_task(bb, ad, cache, y, cfg, seed=1)
        assert res.losses[-1] >= res.ce_losses[-1]
        return torch.cat([ad.c(n).detach() for n in ad.shapes])

    assert (coefs(0.0) != 0).all()
    assert (coefs(1.0) == 0).all()
