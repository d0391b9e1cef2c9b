"""Retrieval: planted stream in shared mode, adapted == shared with zero modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cft.composition import ProteusAdapter
from cft.heads import LDAHead
from cft.registry import BACKBONES, SIGNATURES
from cft.retrieval import ScoreComputer, classify, margins, retrieve, score_matrix


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
    sc = ScoreComputer(bb, adapters, sigs, sigs, batch_size=64)
    cache = bb.encode(Xte)
    S = sc.scores(cache, "shared", kind)
    assert S.shape == (len(Xte), m)
    assert (retrieve(S) != tte).mean() < 0.01
    ev = sc.evaluate(cache, kinds=[kind])
    np.testing.assert_allclose(ev.scores[("shared", kind)], S)
    np.testing.assert_allclose(ev.scores[("adapted", kind)], S, rtol=1e-6)
    assert ev.reps_adapted.shape == (m, len(Xte), 8)
    pred = classify(ev.reps_adapted, ev.retrieved("shared", kind), heads)
    assert (pred == yte).mean() > 0.98


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
    shared = bb.upper_cache(cache).numpy()
    adapters: list[ProteusAdapter] = []
    for t in range(3):
        adapters.append(ProteusAdapter.for_backbone(bb, rank=2, seed=t, previous=adapters))
    sigs = [SIGNATURES.build("gmm", n_components=2, random_state=t).fit(shared[t::3])
            for t in range(3)]
    sc = ScoreComputer(bb, adapters, sigs, sigs, batch_size=7)
    ev = sc.evaluate(cache)
    assert set(ev.scores) == {(mo, k) for mo in ("adapted", "shared") for k in ("centroid", "nll")}
    for kind in ("centroid", "nll"):
        np.testing.assert_allclose(ev.scores[("adapted", kind)], ev.scores[("shared", kind)],
                                   rtol=1e-5, atol=1e-5)
    # a non-zero module changes the adapted scores of its own column only
    with torch.no_grad():
        for n in adapters[1].shapes:
            adapters[1].B(n).normal_()
    S = sc.scores(cache, "adapted", "centroid")
    S0 = ev.scores[("adapted", "centroid")]
    np.testing.assert_allclose(S[:, [0, 2]], S0[:, [0, 2]], rtol=1e-5, atol=1e-5)
    assert not np.allclose(S[:, 1], S0[:, 1])
    reps = sc.adapted_representations(cache, tasks=[1])
    np.testing.assert_allclose(score_matrix(reps, sigs[1:2], "centroid")[:, 0], S[:, 1],
                               rtol=1e-6)


def test_bad_arguments() -> None:
    bb = BACKBONES.build("identity")
    sig = SIGNATURES.build("kmeans", n_components=1).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="signatures_adapted"):
        ScoreComputer(bb, [None, None], [sig])
    sc = ScoreComputer(bb, [None], [sig])
    cache = bb.encode(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="mode"):
        sc.scores(cache, "both", "centroid")
    with pytest.raises(ValueError, match="signatures_shared"):
        sc.scores(cache, "shared", "centroid")
    with pytest.raises(ValueError, match="kind"):
        sc.scores(cache, "adapted", "nll")
    with pytest.raises(ValueError, match="S"):
        retrieve(np.zeros(3))
