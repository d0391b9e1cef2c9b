"""cft.config.seed: child seeds are stable, and distinct keys give distinct seeds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cft.config.seed import derive_seed


def test_distinct_keys_give_distinct_seeds():
    keys = ["signature-adapted", "signature-shared", "task", "train", "module"]
    seeds = {derive_seed(0, k, t) for k in keys for t in range(4)}
    assert len(seeds) == len(keys) * 4
    assert derive_seed(0, "task", 1) != derive_seed(1, "task", 1)


def test_derived_seed_is_stable_across_processes():
    code = "from cft.config.seed import derive_seed; print(derive_seed(3, 'signature-shared', 2))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert int(out) == derive_seed(3, "signature-shared", 2)


def test_negative_integer_key_is_rejected():
    with pytest.raises(ValueError, match="keys"):
        derive_seed(0, -1)


def test_one_deriver_two_views():
    """derive_seed and child_rng are views of the same SeedSequence (one deriver)."""
    from cft.config.seed import child_rng, derive_seed, seed_sequence

    ss = seed_sequence(7, "split", "noun.animal", 3)
    assert derive_seed(7, "split", "noun.animal", 3) == int(ss.generate_state(1)[0])
    a = child_rng(7, "split", "noun.animal", 3).integers(0, 2**62, size=4)
    b = np.random.default_rng(seed_sequence(7, "split", "noun.animal", 3)).integers(
        0, 2**62, size=4)
    np.testing.assert_array_equal(a, b)
    assert derive_seed(7, np.int64(3)) == derive_seed(7, 3)
    assert derive_seed(7, "a") != derive_seed(7, "b")
    assert derive_seed(7, "ab") != derive_seed(7, "a", "b")


@pytest.mark.parametrize("bad", [True, -1, 1.5, None])
def test_bad_keys_and_seeds_are_refused(bad):
    from cft.config.seed import derive_seed

    with pytest.raises(ValueError, match="keys|seed"):
        derive_seed(0, bad)
    with pytest.raises(ValueError, match="^seed: must be a non-negative int"):
        derive_seed(bad if bad is not None else -3, 1)
