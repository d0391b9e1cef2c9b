"""Retrieval (the one evaluation path, ``representations`` + ``evaluate``): planted stream in
shared mode, adapted == shared with zero modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cft.composition import ProteusAdapter
from cft.heads import LDAHead
from cft.registry import BACKBONES, SIGNATURES
from cft.retrieval import classify, evaluate, margins, representations, retrieve, score_matrix


def _stream(m: int = 4, n: int = 50, d: int = 8, seed: int = 0):
    """Task t has two classes around 8*e_t +- e_{t+m} (d >= 2m): the task is recoverable."""
    rng = np.random.default_rng(seed)
    X, task, label = [], [], []
    for t in range(m):
        for c in range(2):
            mu = np.zeros(d)
            mu[t] = 8.0
            mu[m + t] = 2.0 if c else -2.0
            X.append(mu + 0.5 * rng.normal(size=(n, d)))
            task += [t] * n
            label += [2 * t + c] * n
    return np.concatenate(X).astype(np.float32), np.array(task), np.array(label)


@pytest.mark.parametrize("name,kind", [("kmeans", "centroid"), ("gmm", "centroid"),
                                       ("gmm", "nll")])
def test_planted_stream_shared(name: str, kind: str) -> None:
    bb = BACKBONES.build("identity")
    Xtr, ttr, ytr = _stream(seed=0)
    Xte, tte, yte = _stream(seed=1)
    m = 4
    adapters, sigs, heads = [], [], []
    for t in range(m):
        adapters.append(ProteusAdapter.for_backbone(bb, previous=adapters))
        sigs.append(SIGNATURES.build(name, n_components=2, random_state=t).fit(Xtr[ttr == t]))
        heads.append(LDAHead().fit(Xtr[ttr == t], ytr[ttr == t]))
    cache = bb.encode(Xte)
    reps_s = representations(bb, cache, None, batch_size=64)
    reps_a = np.stack([representations(bb, cache, a, batch_size=64) for a in adapters])
    assert reps_a.shape == (m, len(Xte), 8)
    S = score_matrix(reps_s, sigs, kind)
    assert S.shape == (len(Xte), m)
    assert (retrieve(S) != tte).mean() < 0.01
    ev = evaluate(reps_a, reps_s, sigs, sigs, heads, kinds=[kind], task=tte)
    assert set(ev.scores) == {("adapted", kind), ("shared", kind)}
    np.testing.assert_allclose(ev.scores[("shared", kind)], S)
    np.testing.assert_allclose(ev.scores[("adapted", kind)], S, rtol=1e-6)
    np.testing.assert_array_equal(ev.retrieved[("shared", kind)], retrieve(S))
    pred = ev.pred[("shared", kind)]
    np.testing.assert_array_equal(pred, classify(reps_a, retrieve(S), heads))
    assert (pred == yte).mean() > 0.98
    np.testing.assert_array_equal(ev.pred_task_aware, classify(reps_a, tte, heads))


def test_margins_through_bounds() -> None:
    S = np.array([[0.0, 1.0, 3.0], [2.0, 1.0, 1.5], [1.0, 1.0, 0.0]])
    task = np.array([0, 0, 2])
    np.testing.assert_allclose(margins(S, task), [1.0, -1.0, 1.0])
    assert ((margins(S, task) <= 0) == (retrieve(S) != task)).all()


def test_adapted_with_zero_modules_equals_shared() -> None:
    bb = BACKBONES.build("tiny-bert", seed=0, adapt_layers=1)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 100, size=(30, 10)).astype(np.int64)
    cache = bb.encode(ids)
    shared = representations(bb, cache, None, batch_size=7)
    adapters: list[ProteusAdapter] = []
    for t in range(3):
        adapters.append(ProteusAdapter.for_backbone(bb, rank=2, seed=t, previous=adapters))
    sigs = [SIGNATURES.build("gmm", n_components=2, random_state=t).fit(shared[t::3])
            for t in range(3)]
    heads = [LDAHead().fit(shared, np.arange(30) % 2) for _ in range(3)]

    def run() -> dict:
        reps_a = np.stack([representations(bb, cache, a, batch_size=7) for a in adapters])
        return evaluate(reps_a, shared, sigs, sigs, heads).scores

    scores = run()
    assert set(scores) == {(mo, k) for mo in ("adapted", "shared") for k in ("centroid", "nll")}
    for kind in ("centroid", "nll"):
        np.testing.assert_allclose(scores[("adapted", kind)], scores[("shared", kind)],
                                   rtol=1e-5, atol=1e-5)
    # a non-zero module changes the adapted scores of its own column only
    with torch.no_grad():
        for n in adapters[1].shapes:
            adapters[1].B(n).normal_()
    S = run()[("adapted", "centroid")]
    S0 = scores[("adapted", "centroid")]
    np.testing.assert_allclose(S[:, [0, 2]], S0[:, [0, 2]], rtol=1e-5, atol=1e-5)
    assert not np.allclose(S[:, 1], S0[:, 1])
    h1 = bb.features(ids, adapters[1]).numpy()
    np.testing.assert_allclose(sigs[1].score(h1, "centroid"), S[:, 1], rtol=1e-5)


def test_bad_arguments() -> None:
    bb = BACKBONES.build("identity")
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    sig = SIGNATURES.build("kmeans", n_components=1).fit(x)
    head = LDAHead().fit(x, np.arange(6) % 2)
    reps = representations(bb, bb.encode(x))[None]
    with pytest.raises(ValueError, match="reps_adapted"):
        evaluate(reps[0], None, [sig], None, [head])
    with pytest.raises(ValueError, match="signatures_adapted"):
        evaluate(reps, None, [sig, sig], None, [head])
    with pytest.raises(ValueError, match="signatures_shared"):
        evaluate(reps, reps[0], [sig], None, [head])
    with pytest.raises(ValueError, match="reps_shared"):
        evaluate(reps, reps[0, :3], [sig], [sig], [head])
    with pytest.raises(ValueError, match="kind"):
        evaluate(reps, None, [sig], None, [head], kinds=["nll"])
    with pytest.raises(ValueError, match="batch_size"):
        representations(bb, bb.encode(x), batch_size=0)
    with pytest.raises(ValueError, match="S"):
        retrieve(np.zeros(3))
