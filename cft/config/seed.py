"""One seed drives python, numpy, torch and every k-means/GMM; one deriver makes the
seeds of sub-components.

:func:`seed_sequence` is the only derivation: numpy's ``SeedSequence`` over the run seed
and the sub-component's keys (:func:`hash_key`: ints as themselves, strings by a BLAKE2b
digest, stable across processes and Python versions, unlike the salted ``hash``).
:func:`derive_seed` (an int seed, e.g. for torch or scikit-learn) and :func:`child_rng` (a
numpy Generator, e.g. for data splits) are two views of it, so the same keys always give
the same stream.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from cft.config.validation import check_seed

__all__ = ["child_rng", "derive_seed", "hash_key", "seed_everything", "seed_sequence"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator derived from ``seed``."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def hash_key(k: int | str) -> int:
    """A non-negative 64-bit entropy word for a key: ints as themselves, strings by a
    BLAKE2b digest of the whole string."""
    if isinstance(k, bool):
        raise ValueError(f"keys: a key must be an int or a str, got {k!r}")
    if isinstance(k, int | np.integer):
        if k < 0:
            raise ValueError(f"keys: integer keys must be >= 0, got {k}")
        return int(k)
    if not isinstance(k, str):
        raise ValueError(f"keys: a key must be an int or a str, got {k!r}")
    return int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little")


def seed_sequence(seed: int, *keys: int | str) -> np.random.SeedSequence:
    """The entropy of the sub-component named by ``keys`` (distinct keys: independent
    streams)."""
    return np.random.SeedSequence([check_seed(seed), *[hash_key(k) for k in keys]])


def derive_seed(seed: int, *keys: int | str) -> int:
    """A stable child seed (32-bit int) for a sub-component, e.g. task t's k-means."""
    return int(seed_sequence(seed, *keys).generate_state(1)[0])


def child_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A numpy Generator for a sub-component (same derivation as :func:`derive_seed`)."""
    return np.random.default_rng(seed_sequence(seed, *keys))
