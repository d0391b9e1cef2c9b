"""cft.run.metrics against a 3x3 example computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cft.run import metrics as M

# a[i][j]: accuracy on task j after step i (None above the diagonal)
A = [
    [0.90, None, None],
    [0.95, 0.80, None],
    [0.60, 0.60, 0.90],
]


def test_step_accuracy_equal_weights():
    # A_0 = .9 ; A_1 = (.95 + .8) / 2 = .875 ; A_2 = (.6 + .6 + .9) / 3 = .7
    assert M.step_accuracy(A) == pytest.approx([0.9, 0.875, 0.7])
    assert M.average_incremental(A) == pytest.approx((0.9 + 0.875 + 0.7) / 3)  # 0.825
    assert M.last_accuracy(A) == pytest.approx(0.7)


def test_step_accuracy_sample_weighted():
    sizes = [100, 50, 50]
    # A_1 = (95 + 40) / 150 = .9 ; A_2 = (60 + 30 + 45) / 200 = .675
    assert M.step_accuracy(A, sizes) == pytest.approx([0.9, 0.9, 0.675])
    assert M.average_incremental(A, sizes) == pytest.approx((0.9 + 0.9 + 0.675) / 3)


def test_forgetting_uses_best_earlier_value():
    # task 0: max(.9, .95) - .6 = .35 ; task 1: .8 - .6 = .2 ; mean = .275
    assert M.forgetting(A) == pytest.approx(0.275)


def test_backward_transfer():
    # ((.6 - .9) + (.6 - .8)) / 2 = -.25
    assert M.backward_transfer(A) == pytest.approx(-0.25)


def test_single_step_has_no_forgetting_or_bwt():
    one = [[0.5, None]]
    assert M.forgetting(one) is None
    assert M.backward_transfer(one) is None
    assert M.step_accuracy(one) == [0.5]


def test_partial_matrix_prefix():
    # after two steps only (rows 0..1 of a 3-task run)
    two = A[:2]
    # max over earlier steps l < T-1 only: .9 - .95 = -.05 (an improvement)
    assert M.forgetting(two) == pytest.approx(-0.05)
    assert M.backward_transfer(two) == pytest.approx(0.05)


def test_summarize_is_json_and_nan_free():
    s = M.summarize(A, [100, 50, 50])
    text = json.dumps(s, allow_nan=False)
    back = json.loads(text)
    assert back["matrix"][0] == [0.9, None, None]
    assert back["last"] == pytest.approx(0.675)
    assert back["forgetting"] == pytest.approx(0.275)
    assert back["bwt"] == pytest.approx(-0.25)
    assert back["average_incremental"] == pytest.approx(0.825)


@pytest.mark.parametrize("bad", [
    [[0.9, 0.1]],                      # value above the diagonal
    [[0.9, None], [None, 0.8]],        # missing value below the diagonal
    [[1.2]],                           # not an accuracy
    [[float("nan")]],
    [],
    [[0.5], [0.5]],                    # more steps than tasks
])
def test_bad_matrices(bad):
    with pytest.raises(ValueError, match="matrix"):
        M.summarize(bad)


def test_bad_sizes():
    with pytest.raises(ValueError, match="sizes"):
        M.step_accuracy(A, [1, 2])
    with pytest.raises(ValueError, match="sizes"):
        M.step_accuracy(A, [1, 0, 2])


def test_per_task_accuracy():
    correct = np.array([1, 0, 1, 1, 0, 0], bool)
    task = np.array([0, 0, 1, 1, 2, 2])
    assert M.per_task_accuracy(correct, task, 3) == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError, match="task"):
        M.per_task_accuracy(correct, task, 4)  # task 3 has no samples
    with pytest.raises(ValueError, match="task"):
        M.per_task_accuracy(correct, task, 2)  # id out of range
