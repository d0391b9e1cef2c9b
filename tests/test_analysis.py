"""cft.experiments.analysis helpers that the notebooks call (pinned values)."""

from __future__ import annotations

import numpy as np

from cft.experiments import analysis


def test_ratio_to_error_pins_the_half_sample_floor():
    b = np.array([0.5, 0.2, 0.0, 0.3])
    e = np.array([0.25, 0.0, 0.0, 0.3])
    np.testing.assert_array_equal(analysis.ratio_to_error(b, e, n=10), [2.0, 4.0, 0.0, 1.0])
    got = analysis.ratio_to_error(b, e)
    assert got[0] == 2.0 and np.isinf(got[1]) and np.isnan(got[2]) and got[3] == 1.0
    # per-task sample sizes broadcast
    np.testing.assert_array_equal(
        analysis.ratio_to_error(b[:2], e[:2], n=np.array([10, 4])), [2.0, 1.6])
