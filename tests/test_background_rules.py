"""Adapted retrieval against background text (cft.evaluation.background, docs/theory.md §13):
the stream's background never holds task data, the rules fix the case they are built for
(a later module that pulls every input onto its own cluster), the weight is chosen on the
calibration split only, and a run with a rule resumes to the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from cft.config.registry import DATASETS
from cft.evaluation.background import GRID, BackgroundRatioRule, BackgroundZScoreRule
from cft.evaluation.retrieval import Evaluation, StackedReps, add_rule, choose_weight, retrieve
from cft.run.resolve import resolve
from cft.run.rundir import load_npz
from cft.run.runner import CRASH_ENV, Runner, SimulatedCrash


def _tokens(**kw):
    import cft.data  # noqa: F401

    return DATASETS.build("tokens", seed=3, n_tasks=2, classes_per_task=2, n_per_class=30,
                          vocab_size=60, seq_len=12, **kw)


def test_background_is_never_task_data_and_is_deterministic() -> None:
    s = _tokens(n_background=2)
    assert s.n_tasks == 2 and len(s.background_classes()) == 2
    b = s.background(30)
    assert b.shape == (30, 12)
    task_rows = {tuple(r) for t in range(s.n_tasks) for sp in ("train", "calibration", "test")
                 for r in s.task(t).split(sp).inputs}
    assert not any(tuple(r) in task_rows for r in b)
    np.testing.assert_array_equal(b, _tokens(n_background=2).background(30))
    # round-robin over the free classes: the first two rows come from different classes
    assert len(s.background(1000)) == 2 * len(s._split_index["train"][0])


def test_no_background_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="^background: every class") as e:
        _tokens().background(5)
    assert "\n" not in str(e.value)


def _pulling_case(seed: int = 0):
    """Module 0 keeps task 0's inputs on its cluster; the later module 1 maps EVERY input,
    task 0's and the background included, onto its own cluster (the failure of §13)."""
    rng = np.random.default_rng(seed)
    d, n = 4, 60
    c0, c1 = np.zeros(d), np.full(d, 3.0)
    train = [c0 + rng.normal(size=(n, d)), c1 + rng.normal(size=(n, d))]
    h0 = np.concatenate([c0 + rng.normal(size=(n, d)), c0 + 6 + rng.normal(size=(n, d))])
    h1 = np.concatenate([c1 + 0.3 * rng.normal(size=(n, d)), c1 + rng.normal(size=(n, d))])
    bg = [c0 + 6 + rng.normal(size=(n, d)), c1 + 0.3 * rng.normal(size=(n, d))]
    task = np.repeat([0, 1], n)
    return train, bg, np.stack([h0, h1]), task


def _fit_all(cls):
    train, bg, reps, task = _pulling_case()
    rules = [cls(family="gmm", n_components=1, covariance_type="full", random_state=s).fit(
        train[s], background=bg[s]) for s in range(2)]
    ev = Evaluation()
    w = add_rule(ev, "r", rules, StackedReps(reps), reps[0], heads=_Heads(), task=task)
    plain = np.stack([r.task_.cost(reps[s], "nll") for s, r in enumerate(rules)], axis=1)
    return (float(np.mean(retrieve(plain) == task)),
            float(np.mean(ev.retrieved[("r", "nll")] == task)), w)


def test_the_ratio_undoes_a_module_that_pulls_everything() -> None:
    acc_plain, acc, w = _fit_all(BackgroundRatioRule)
    assert acc_plain <= 0.55 and acc >= 0.95, (acc_plain, acc)
    assert w in GRID and w > 0  # chosen on these (calibration) labels, not the paper's 0


def test_the_zscore_cannot_tell_own_data_from_a_pulled_background() -> None:
    """The z-score's limit (docs/theory.md §13): under a module that pulls the background
    onto its cluster tighter than its own data, its own data look atypical, so it does not
    recover what the ratio recovers."""
    acc_plain, acc, w = _fit_all(BackgroundZScoreRule)
    assert w is None and acc < 0.95 and acc < _fit_all(BackgroundRatioRule)[1]


class _Heads(list):
    """Two stand-in heads: classification is not what these tests look at."""

    def __init__(self) -> None:
        super().__init__([_Head(), _Head()])


class _Head:
    def predict(self, Z):  # noqa: N803
        return np.zeros(len(Z), dtype=np.int64)


def test_weight_zero_is_the_papers_rule_and_arrays_round_trip() -> None:
    train, bg, reps, _ = _pulling_case(1)
    r = BackgroundRatioRule(family="gmm", n_components=1, random_state=0).fit(train[0],
                                                                               background=bg[0])
    np.testing.assert_array_equal(r.cost(reps[0], 0.0), r.task_.cost(reps[0], "nll"))
    back = BackgroundRatioRule.from_arrays(r.to_arrays(), family="gmm", n_components=1)
    np.testing.assert_allclose(back.cost(reps[0], 0.5), r.cost(reps[0], 0.5), rtol=1e-12)
    z = BackgroundZScoreRule(family="gmm", n_components=1).fit(train[0], background=bg[0])
    back = BackgroundZScoreRule.from_arrays(z.to_arrays(), family="gmm", n_components=1)
    np.testing.assert_allclose(back.cost(reps[0]), z.cost(reps[0]), rtol=1e-12)


def test_choose_weight_takes_the_best_and_the_first_of_ties() -> None:
    class R:
        grid = (0.0, 0.5, 1.0)

        @staticmethod
        def combine(parts, lam):
            return parts["a"] - lam * parts["b"]

    a = np.array([[0.0, 1.0], [0.0, 1.0]])
    b = np.array([[0.0, 3.0], [0.0, 0.0]])
    assert choose_weight(R, {"a": a, "b": b}, np.array([1, 0])) == 0.5  # 1.0 ties 0.5
    assert choose_weight(R, {"a": a, "b": b}, np.array([0, 0])) == 0.0


def _run(out, *extra):
    cfg = resolve("tiny", ["data.n_background=2", "eval.rule=bg_ratio",
                           "eval.n_background=40", "eval.family=gmm", "eval.n_components=2",
                           *extra])
    return Runner(cfg, out, echo=lambda s: None).run()


def test_a_run_with_a_background_rule_resumes_to_the_same_scores(tmp_path, monkeypatch) -> None:
    full = tmp_path / "full"
    _run(full)
    monkeypatch.setenv(CRASH_ENV, "1")
    with pytest.raises(SimulatedCrash):
        _run(tmp_path / "crashy")
    monkeypatch.delenv(CRASH_ENV)
    assert _run(tmp_path / "crashy").resumed_from == 1
    for step in range(3):
        for split in ("calibration", "test"):
            rel = f"eval/step-{step:03d}/{split}/bg_ratio-nll.npz"
            a, b = load_npz(full / rel), load_npz(tmp_path / "crashy" / rel)
            np.testing.assert_array_equal(a["scores"], b["scores"])
            assert float(a["weight"]) in GRID
        cal = load_npz(full / f"eval/step-{step:03d}/calibration/bg_ratio-nll.npz")
        test = load_npz(full / f"eval/step-{step:03d}/test/bg_ratio-nll.npz")
        assert float(cal["weight"]) == float(test["weight"])  # the test split never chooses
