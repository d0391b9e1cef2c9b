"""Data manager: generic split / order / task logic, synthetic and token streams."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cft.data  # noqa: F401  (registers the streams)
from cft.config.registry import DATASETS
from cft.data import SPLITS, Split, SyntheticStream, TaskStream, TokenStream, task_sizes


def check_stream(s: TaskStream) -> None:
    """Invariants every stream must satisfy."""
    assert s.modality in cft.data.MODALITIES
    order = s.class_order
    assert order.dtype == np.int64
    assert len(set(order.tolist())) == order.size
    assert set(order.tolist()) <= set(range(len(s.class_names)))
    # tasks partition the class order
    assert np.array_equal(np.concatenate(s.task_classes), order)
    seen: dict[int, str] = {}
    for t in range(s.n_tasks):
        td = s.task(t)
        assert td.id == t
        assert np.array_equal(td.classes, s.task_classes[t])
        assert td.class_names == [s.class_names[c] for c in td.classes]
        for split in SPLITS:
            sp = td.split(split)
            assert sp.labels.dtype == np.int64 and len(sp) == len(sp.inputs)
            assert set(sp.labels.tolist()) <= set(td.classes.tolist())
            if split != "calibration":
                assert set(sp.labels.tolist()) == set(td.classes.tolist())
            for i in s.split_index(t, split).tolist():
                assert i not in seen, f"pool example {i} in {seen[i]} and {split}"
                seen[i] = split
    d = s.describe()
    json.dumps(d)
    assert d["class_order"] == order.tolist()
    assert [x["classes"] for x in d["tasks"]] == [c.tolist() for c in s.task_classes]
    for x in d["tasks"]:
        td = s.task(x["id"])
        assert [x[f"n_{sp}"] for sp in SPLITS] == [len(td.split(sp)) for sp in SPLITS]


def same_splits(a: TaskStream, b: TaskStream) -> bool:
    return all(
        np.array_equal(a.split_index(t, sp), b.split_index(t, sp))
        for t in range(a.n_tasks) for sp in SPLITS
    ) and np.array_equal(a.class_order, b.class_order)


# ------------------------------------------------------------------ generic logic
def test_task_sizes() -> None:
    assert task_sizes(10, 3, None) == [4, 3, 3]
    assert task_sizes(10, None, 4) == [4, 4, 2]
    assert task_sizes(10, 2, 4) == [4, 4]
    assert task_sizes(10, None, [2, 3]) == [2, 3]
    for args in [(10, None, None), (3, 4, None), (10, 3, 5), (10, None, 11),
                 (10, None, [6, 6]), (10, 1, [2, 3]), (10, None, True), (10, 0, None)]:
        with pytest.raises(ValueError):
            task_sizes(*args)


def test_split_validation() -> None:
    with pytest.raises(ValueError, match="labels"):
        Split([1, 2], np.array([0, 1], dtype=np.int32))
    with pytest.raises(ValueError, match="inputs"):
        Split(["a"], np.array([0, 1], dtype=np.int64))
    sp = Split(["a", "b", "c"], np.array([0, 1, 2], dtype=np.int64))
    sub = sp.subset([2, 0])
    assert sub.inputs == ["c", "a"] and sub.labels.tolist() == [2, 0]


def test_registry_builds_every_stream() -> None:
    assert {"wordnet", "synthetic", "tokens", "cifar100", "imagefolder"} <= set(DATASETS.names())
    s = DATASETS.build("synthetic", seed=3, n_tasks=2, classes_per_task=2, dim=4,
                       n_per_class=20)
    assert isinstance(s, SyntheticStream) and s.seed == 3


# ------------------------------------------------------------------ synthetic
@pytest.mark.parametrize("distribution", ["gaussian", "student_t"])
def test_synthetic_invariants_and_sizes(distribution: str) -> None:
    s = SyntheticStream(seed=0, n_tasks=3, classes_per_task=2, dim=5, n_per_class=50,
                        distribution=distribution, calibration_size=10, test_size=0.3)
    check_stream(s)
    assert s.modality == "features" and s.n_tasks == 3
    td = s.task(1)
    assert td.train.inputs.dtype == np.float32 and td.train.inputs.shape[1] == 5
    # per class: 15 test (30 % of 50), 10 calibration, 25 train
    for c in td.classes:
        assert [(td.split(sp).labels == c).sum() for sp in SPLITS] == [25, 10, 15]
    assert s.truth_.means.shape == (3, 2, 5) and s.truth_.covariances.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(s.truth_.weights.sum(1), 1.0)


def test_synthetic_matches_truth_and_separation() -> None:
    s = SyntheticStream(seed=1, n_tasks=2, classes_per_task=2, dim=3, n_per_class=4000,
                        anisotropy=4.0, noise=0.5)
    truth = s.truth_
    for t in range(2):
        td = s.task(t)
        x = np.concatenate([td.train.inputs, td.calibration.inputs, td.test.inputs])
        y = np.concatenate([td.train.labels, td.calibration.labels, td.test.labels])
        for j, c in enumerate(td.classes):
            xc = x[y == c].astype(np.float64)
            np.testing.assert_allclose(xc.mean(0), truth.means[t, j], atol=0.1)
            np.testing.assert_allclose(np.cov(xc.T), truth.covariances[t, j], atol=0.05)
    eig = np.linalg.eigvalsh(truth.scales[0, 0])
    assert eig.max() / eig.min() == pytest.approx(4.0)

    def centre_gap(sep: float) -> float:
        st = SyntheticStream(seed=5, n_tasks=8, classes_per_task=2, dim=32, n_per_class=10,
                             task_separation=sep)
        c = st.truth_.task_centers
        return float(np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1)[np.triu_indices(8, 1)]
                             .mean()))

    assert centre_gap(2.0) == pytest.approx(2.0, rel=0.25)
    assert centre_gap(20.0) == pytest.approx(20.0, rel=0.25)


def test_synthetic_student_t_heavier_tails() -> None:
    kw = dict(seed=2, n_tasks=1, classes_per_task=1, dim=2, n_per_class=20000)
    g = SyntheticStream(distribution="gaussian", **kw).task(0).train.inputs
    t = SyntheticStream(distribution="student_t", dof=3.0, **kw).task(0).train.inputs

    def kurt(x: np.ndarray) -> float:
        z = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
        return float((z**4).mean())

    assert abs(kurt(g) - 3.0) < 0.3
    assert kurt(t) > 5.0
    st = SyntheticStream(distribution="student_t", dof=3.0, **kw)
    np.testing.assert_allclose(st.truth_.covariances, 3.0 * st.truth_.scales)


def test_synthetic_determinism() -> None:
    kw = dict(n_tasks=3, classes_per_task=2, dim=4, n_per_class=30)
    a, b, c = (SyntheticStream(seed=s, **kw) for s in (7, 7, 8))
    assert same_splits(a, b)
    np.testing.assert_array_equal(a.task(2).test.inputs, b.task(2).test.inputs)
    assert not np.allclose(a.truth_.means, c.truth_.means)
    sa, sb = (SyntheticStream(seed=s, class_order="seed", **kw) for s in (7, 8))
    check_stream(sa)
    assert not np.array_equal(sa.class_order, sb.class_order)


# ------------------------------------------------------------------ tokens
def test_tokens_stream() -> None:
    s = TokenStream(seed=0)
    check_stream(s)
    assert s.modality == "tokens" and s.n_tasks == 4
    td = s.task(0)
    x = td.train.inputs
    assert x.dtype == np.int64 and x.shape[1] == 32
    assert x.min() >= 0 and x.max() < 100
    nonpad = (x != 0).sum(1)
    assert nonpad.min() >= 8
    # padding only at the end
    assert all((row[n:] == 0).all() and (row[:n] != 0).all() for row, n in zip(x, nonpad))
    # class-specific subsets are disjoint and disjoint from noise
    flat = s.class_tokens_.ravel()
    assert len(set(flat.tolist())) == flat.size
    assert not set(flat.tolist()) & set(s.noise_tokens_.tolist())
    # every class token in a sequence belongs to that sequence's class
    owner = np.full(100, -1)
    for c, toks in enumerate(s.class_tokens_):
        owner[toks] = c
    for row, y in zip(x, td.train.labels):
        o = owner[row[row != 0]]
        assert set(o[o >= 0].tolist()) <= {int(y)}


def test_tokens_tasks_separable_by_bag_of_tokens() -> None:
    s = TokenStream(seed=4, n_per_class=60)

    def bags(x: np.ndarray) -> np.ndarray:
        b = np.zeros((len(x), s.vocab_size))
        np.add.at(b, (np.repeat(np.arange(len(x)), x.shape[1]), x.ravel()), 1.0)
        b[:, 0] = 0
        return b / b.sum(1, keepdims=True)

    cents = [bags(s.task(t).train.inputs).mean(0) for t in range(s.n_tasks)]
    correct = total = 0
    for t in range(s.n_tasks):
        b = bags(s.task(t).test.inputs)
        pred = np.argmin([((b - c) ** 2).sum(1) for c in cents], axis=0)
        correct += int((pred == t).sum())
        total += len(b)
    assert correct / total > 0.9


def test_tokens_determinism_and_seed_order() -> None:
    a, b, c = TokenStream(seed=11), TokenStream(seed=11), TokenStream(seed=12)
    assert same_splits(a, b)
    np.testing.assert_array_equal(a.task(1).train.inputs, b.task(1).train.inputs)
    assert not np.array_equal(a.class_order, c.class_order)
    assert sorted(a.class_order.tolist()) == list(range(12))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("kwargs", [
    dict(seed=-1), dict(seed=1.5), dict(seed=True), dict(n_tasks=0), dict(dim=0),
    dict(distribution="cauchy"), dict(distribution="student_t", dof=0.0), dict(noise=0.0),
    dict(anisotropy=0.5), dict(test_size=1.5), dict(test_size=0), dict(calibration_size=-1),
    dict(train_size=1000), dict(class_order="bogus"), dict(class_order=["t0c0", "t0c0"]),
    dict(class_order=["nope"]), dict(test_size=None), dict(n_per_class=2),
])
def test_synthetic_bad_options(kwargs: dict) -> None:
    kw = dict(n_tasks=2, classes_per_task=2, dim=3, n_per_class=20) | kwargs
    with pytest.raises(ValueError) as err:
        SyntheticStream(**kw)
    assert "\n" not in str(err.value) and ":" in str(err.value)


@pytest.mark.parametrize("kwargs", [
    dict(vocab_size=20), dict(min_len=40), dict(signal=1.5), dict(n_noise=0),
    dict(concentration=0.0),
])
def test_tokens_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError) as err:
        TokenStream(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_task_index_and_split_name() -> None:
    s = TokenStream(seed=0, n_per_class=10)
    for t in (-1, 4, 1.0, True):
        with pytest.raises(ValueError, match="t:"):
            s.task(t)
    with pytest.raises(ValueError, match="split"):
        s.split_index(0, "val")
    with pytest.raises(ValueError, match="name"):
        s.task(0).split("val")


def test_train_size_does_not_move_test_or_calibration() -> None:
    kw = dict(seed=3, n_tasks=2, classes_per_task=2, dim=3, n_per_class=40,
              calibration_size=5, test_size=10)
    full = SyntheticStream(**kw)
    small = SyntheticStream(train_size=6, **kw)
    for t in range(2):
        for sp in ("test", "calibration"):
            assert np.array_equal(full.split_index(t, sp), small.split_index(t, sp))
        assert set(small.split_index(t, "train")) < set(full.split_index(t, "train"))
        assert len(small.task(t).train) == 6 * 2
