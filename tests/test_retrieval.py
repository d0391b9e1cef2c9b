"""Retrieval (the one evaluation path, ``representations`` + ``evaluate``): planted stream in
shared mode, adapted == shared with zero modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cft.config.registry import BACKBONES, SIGNATURES
from cft.evaluation.heads.lda import LDAHead
from cft.evaluation.retrieval import (
    classify,
    evaluate,
    margins,
    representations,
    retrieve,
    score_matrix,
)
from cft.model.modules.proteus import ProteusAdapter


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
    np.testing.assert_allclose(sigs[1].cost(h1, "centroid"), S[:, 1], rtol=1e-5)


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


# ----------------------------------------------------------------------------- shortlist
def _rule(S_shared: np.ndarray, S_adapted: np.ndarray, k: int) -> np.ndarray:
    """The shortlist rule written out per sample: the k tasks of smallest shared score
    (ties -> lower index), then the smallest adapted score among them (ties -> lower)."""
    out = np.empty(len(S_shared), dtype=np.int64)
    for i in range(len(S_shared)):
        top = sorted(range(S_shared.shape[1]), key=lambda s: (S_shared[i, s], s))[:k]
        out[i] = min(top, key=lambda s: (S_adapted[i, s], s))
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_filled_matrix_has_the_rules_argmin_and_errors(k: int) -> None:
    import bounds
    from cft.evaluation.retrieval import fill_unscored, shortlist

    rng = np.random.default_rng(k)
    n, m = 400, 6
    S_sh = rng.normal(size=(n, m)).round(1)  # rounded: ties occur
    S_ad = rng.normal(size=(n, m)) * 50
    task = rng.integers(0, m, size=n)
    top = shortlist(S_sh, k)
    assert top.shape == (n, k)
    scored = np.zeros((n, m), dtype=bool)
    np.put_along_axis(scored, top, True, axis=1)
    S = np.where(scored, S_ad, np.nan)
    fill_unscored(S, scored)
    assert np.isfinite(S).all()
    got = _rule(S_sh, S_ad, k)
    np.testing.assert_array_equal(retrieve(S), got)
    # the checker's error event (ties count as errors) is the rule's: own task outside
    # the shortlist, or a shortlisted foreign task scoring at most the own task
    own_in = scored[np.arange(n), task]
    foreign = np.where(scored & (np.arange(m) != task[:, None]), S_ad, np.inf).min(1)
    want_err = ~own_in | (foreign <= S_ad[np.arange(n), task])
    np.testing.assert_array_equal(bounds.retrieval_errors(S, task), want_err)
    if k >= 2:  # margins of a sample whose task is shortlisted are the rule's margins
        mg = margins(S, task)
        np.testing.assert_array_equal(mg[own_in], (foreign - S_ad[np.arange(n), task])[own_in])
    # the filled value lies above every scored value of the row, by one ulp
    hi = np.where(scored, S, -np.inf).max(1)
    assert np.all(S[~scored] == np.broadcast_to(np.nextafter(hi, np.inf)[:, None],
                                                S.shape)[~scored])


class _Counting:
    """ModuleReps over a (m, n, d) array that records which (module, row) pairs were read."""

    def __init__(self, reps: np.ndarray) -> None:
        self.reps, self.m, self.n, self.read = reps, reps.shape[0], reps.shape[1], set()

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(self.n) if rows is None else np.asarray(rows)
        self.read |= {(s, int(r)) for r in rows}
        return self.reps[s][rows]


def _fitted(m: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    Xtr, ttr, ytr = _stream(m=m, d=2 * m, seed=seed)
    Xte, tte, yte = _stream(m=m, d=2 * m, seed=seed + 1)
    # adapted spaces: a different random rotation per module (fitted on its own space)
    rot = [np.linalg.qr(rng.normal(size=(Xtr.shape[1],) * 2))[0].astype(np.float32)
           for _ in range(m)]
    sig_a = [SIGNATURES.build("gmm", n_components=2, random_state=t).fit(Xtr[ttr == t] @ rot[t])
             for t in range(m)]
    sig_s = [SIGNATURES.build("gmm", n_components=2, random_state=t).fit(Xtr[ttr == t])
             for t in range(m)]
    heads = [LDAHead().fit(Xtr[ttr == t] @ rot[t], ytr[ttr == t]) for t in range(m)]
    reps_a = np.stack([Xte @ r for r in rot])
    # noise on the shared space so that shared retrieval makes errors
    reps_s = Xte + rng.normal(scale=3.0, size=Xte.shape).astype(np.float32)
    return reps_a, reps_s, sig_a, sig_s, heads, tte


@pytest.mark.parametrize("k", [1, 2, 4, 5, 9])
def test_evaluate_with_a_shortlist(k: int) -> None:
    reps_a, reps_s, sig_a, sig_s, heads, tte = _fitted()
    m, n = reps_a.shape[:2]
    full = evaluate(reps_a, reps_s, sig_a, sig_s, heads, task=tte)
    reader = _Counting(reps_a)
    ev = evaluate(reader, reps_s, sig_a, sig_s, heads, task=tte, shortlist_k=k)
    for kind in ("centroid", "nll"):
        S_sh = ev.scores[("shared", kind)]
        np.testing.assert_array_equal(S_sh, full.scores[("shared", kind)])
        got = ev.retrieved[("adapted", kind)]
        np.testing.assert_array_equal(got, _rule(S_sh, full.scores[("adapted", kind)], k))
        S = ev.scores[("adapted", kind)]
        top = np.argsort(S_sh, axis=1, kind="stable")[:, :k]
        for i in range(0, n, 7):  # shortlisted cells hold the adapted scores
            np.testing.assert_allclose(S[i, top[i]], full.scores[("adapted", kind)][i, top[i]],
                                       rtol=1e-12)
        if k == 1:
            np.testing.assert_array_equal(got, ev.retrieved[("shared", kind)])
        if k >= m:
            np.testing.assert_array_equal(S, full.scores[("adapted", kind)])
        # pred = retrieved task's head on that task's representation
        np.testing.assert_array_equal(ev.pred[("adapted", kind)],
                                      classify(reps_a, got, heads))
    # only shortlisted pairs (either kind) and the true-task pairs were read
    need = {(int(s), i) for kind in ("centroid", "nll")
            for i, row in enumerate(np.argsort(ev.scores[("shared", kind)], axis=1,
                                               kind="stable")[:, :k]) for s in row}
    need |= {(int(t), i) for i, t in enumerate(tte)}
    assert reader.read == need
    if k < m:
        assert len(reader.read) < m * n
    a_full = (full.retrieved[("adapted", "nll")] == tte).mean()
    a_short = (ev.retrieved[("adapted", "nll")] == tte).mean()
    a_shared = (full.retrieved[("shared", "nll")] == tte).mean()
    assert a_shared < a_full  # the fixture makes the shortlist matter
    if k == 1:
        assert a_short == a_shared


def test_shortlist_bad_arguments() -> None:
    reps_a, reps_s, sig_a, sig_s, heads, tte = _fitted(m=3)
    with pytest.raises(ValueError, match="shortlist_k"):
        evaluate(reps_a, reps_s, sig_a, sig_s, heads, shortlist_k=0)
    with pytest.raises(ValueError, match="shortlist: needs the shared"):
        evaluate(reps_a, None, sig_a, None, heads, shortlist_k=2)
