"""Generated token sequences for the ``tiny`` preset (``DATASETS.build("tokens")``).

Token 0 is padding; the vocabulary ``1..vocab_size-1`` is cut into ``n_noise`` shared
noise tokens followed by disjoint class-specific subsets of ``tokens_per_class`` tokens.
A sequence of class c has a length drawn uniformly in ``[min_len, seq_len]``; each
position is, with probability ``signal``, a token of c's subset drawn from c's own
(Dirichlet) distribution over it, else a uniform noise token.  The rest is padding.
No downloads; generation takes well under a second for the default sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cft.config.registry import DATASETS
from cft.config.seed import child_rng
from cft.config.validation import check_float, check_int, check_seed

from .base import Size, TaskStream


@DATASETS.register("tokens")
class TokenStream(TaskStream):
    """Tokens stream: int64 (N, seq_len), 0 = padding.

    Parameters
    ----------
    seed: drives the class distributions, the samples, the class order and the splits.
    n_tasks: number of tasks (default 4).
    classes_per_task: classes per task (default 3).
    vocab_size: tokens 0..vocab_size-1 with 0 = padding (default 100).
    seq_len: maximum (padded) length L (default 32).
    min_len: minimum number of non-padding tokens (default 8).
    n_noise: shared noise tokens (default 16).
    tokens_per_class: size of each class-specific token subset (default 6).
    signal: probability that a position carries a class token (default 0.6).
    concentration: Dirichlet concentration of each class distribution (default 1.0).
    n_per_class: sequences generated per class (default 200).
    train_size, calibration_size, test_size: per class (int count or float fraction).
    class_order: ``"seed"`` (default), ``"natural"`` or an explicit list.
    n_background: extra classes generated like the others but in no task (default 0): the
        stream's background text (:meth:`~cft.data.base.TaskStream.background`).

    Attributes: ``class_tokens_`` (C, tokens_per_class) each class's token subset,
    ``class_probs_`` (C, tokens_per_class) its distribution over it, ``noise_tokens_``.
    """

    name = "tokens"
    modality = "tokens"

    def __init__(
        self,
        *,
        seed: int = 0,
        n_tasks: int = 4,
        classes_per_task: int = 3,
        vocab_size: int = 100,
        seq_len: int = 32,
        min_len: int = 8,
        n_noise: int = 16,
        tokens_per_class: int = 6,
        signal: float = 0.6,
        concentration: float = 1.0,
        n_per_class: int = 200,
        train_size: Size = None,
        calibration_size: Size = 0.2,
        test_size: Size = 0.2,
        class_order: str | Sequence[int | str] = "seed",
        n_background: int = 0,
    ) -> None:
        seed = check_seed(seed)
        m = check_int("n_tasks", n_tasks, minimum=1)
        k = check_int("classes_per_task", classes_per_task, minimum=1)
        v = check_int("vocab_size", vocab_size, minimum=3)
        length = check_int("seq_len", seq_len, minimum=1)
        lo = check_int("min_len", min_len, minimum=1)
        n_noise = check_int("n_noise", n_noise, minimum=0)
        tpc = check_int("tokens_per_class", tokens_per_class, minimum=1)
        n = check_int("n_per_class", n_per_class, minimum=3)
        p_sig = check_float("signal", signal, low=0.0, high=1.0)
        conc = check_float("concentration", concentration, low=0.0, strict_low=True)
        assert None not in (m, k, v, length, lo, n_noise, tpc, n)
        if lo > length:
            raise ValueError(f"min_len: {lo} exceeds seq_len {length}")
        nb = check_int("n_background", n_background, minimum=0)
        n_classes = m * k + nb
        need = 1 + n_noise + n_classes * tpc
        if need > v:
            raise ValueError(f"vocab_size: {v} too small for padding + {n_noise} noise + "
                             f"{n_classes} classes x {tpc} tokens = {need}")
        if n_noise == 0 and p_sig < 1.0:
            raise ValueError("n_noise: must be >= 1 unless signal == 1")

        rng = child_rng(seed, "tokens", "parameters")
        self.noise_tokens_ = np.arange(1, 1 + n_noise, dtype=np.int64)
        pool = rng.permutation(np.arange(1 + n_noise, v, dtype=np.int64))
        self.class_tokens_ = pool[: n_classes * tpc].reshape(n_classes, tpc)
        self.class_probs_ = rng.dirichlet(np.full(tpc, conc), size=n_classes)
        self.vocab_size = v
        self.seq_len = length

        srng = child_rng(seed, "tokens", "samples")
        x = np.zeros((n_classes * n, length), dtype=np.int64)
        pos = np.arange(length)
        for c in range(n_classes):
            lens = srng.integers(lo, length + 1, size=n)
            cls = self.class_tokens_[c][
                np.minimum(np.searchsorted(np.cumsum(self.class_probs_[c]),
                                           srng.random((n, length)), side="right"), tpc - 1)
            ]
            noise = (srng.choice(self.noise_tokens_, size=(n, length)) if n_noise
                     else np.zeros((n, length), np.int64))
            seq = np.where(srng.random((n, length)) < p_sig, cls, noise)
            x[c * n:(c + 1) * n] = np.where(pos[None, :] < lens[:, None], seq, 0)
        self._x = x
        labels = np.repeat(np.arange(n_classes, dtype=np.int64), n)
        if nb and isinstance(class_order, str) and class_order in ("seed", "natural"):
            # the tasks take the first m * k classes in that order; the rest is background
            class_order = (child_rng(seed, "class_order").permutation(m * k).tolist()
                           if class_order == "seed" else list(range(m * k)))
        self._build(
            seed=seed, class_names=[f"class{c:03d}" for c in range(n_classes)],
            pool_labels=labels, train_size=train_size, calibration_size=calibration_size,
            test_size=test_size, order=class_order, classes_per_task=k,
        )

    def _take(self, index: np.ndarray) -> np.ndarray:
        return self._x[index]
