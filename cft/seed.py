"""One seed drives python, numpy, torch and every k-means/GMM."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator derived from ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def derive_seed(seed: int, *keys: int | str) -> int:
    """A stable child seed for a sub-component (e.g. task t's k-means): distinct keys give
    independent streams (numpy ``SeedSequence`` over the seed and the hashed keys)."""
    ss = np.random.SeedSequence([seed, *[hash_key(k) for k in keys]])
    return int(ss.generate_state(1)[0])


def hash_key(k: int | str) -> int:
    """A non-negative 64-bit entropy word for a key: ints as themselves, strings by a
    BLAKE2b digest of the whole string (stable across processes, unlike ``hash``)."""
    if isinstance(k, int):
        if k < 0:
            raise ValueError(f"keys: integer keys must be >= 0, got {k}")
        return k
    return int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little")
