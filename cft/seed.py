"""One seed drives python, numpy, torch and every k-means/GMM."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator derived from ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def derive_seed(seed: int, *keys: int | str) -> int:
    """A stable child seed for a sub-component (e.g. task t's k-means)."""
    ss = np.random.SeedSequence([seed, *[abs(hash_key(k)) for k in keys]])
    return int(ss.generate_state(1)[0])


def hash_key(k: int | str) -> int:
    if isinstance(k, int):
        return k
    return int.from_bytes(k.encode()[:8].ljust(8, b"\0"), "little")
