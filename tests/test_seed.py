"""cft.seed: child seeds are stable, and distinct keys give distinct seeds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cft.seed import derive_seed


def test_distinct_keys_give_distinct_seeds():
    keys = ["signature-adapted", "signature-shared", "task", "train", "module"]
    seeds = {derive_seed(0, k, t) for k in keys for t in range(4)}
    assert len(seeds) == len(keys) * 4
    assert derive_seed(0, "task", 1) != derive_seed(1, "task", 1)


def test_derived_seed_is_stable_across_processes():
    code = "from cft.seed import derive_seed; print(derive_seed(3, 'signature-shared', 2))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert int(out) == derive_seed(3, "signature-shared", 2)


def test_negative_integer_key_is_rejected():
    with pytest.raises(ValueError, match="keys"):
        derive_seed(0, -1)
