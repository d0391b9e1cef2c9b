"""Task retrieval: score matrices, argmin retrieval, margins, prediction through LDA heads.

Score matrix ``S`` (n x m): ``S[i, s]`` = score of sample ``i`` under task ``s``'s signature
(smaller = closer); retrieval picks ``argmin_s S[i, s]``.

* mode ``"adapted"`` (PROTEUS): ``S[i, s] = sig_s^adapted.score(h_s(x_i))`` with ``h_s`` the
  backbone carrying task ``s``'s composed module. The frozen lower layers are evaluated
  once per sample (a :class:`cft.backbones.HiddenCache`), only the top ``L`` layers are
  branched per module.
* mode ``"shared"`` (S-Prompts baseline): ``S[i, s] = sig_s^shared.score(f(x_i))`` with the
  frozen pre-trained features ``f``; one forward pass.

Scoring inputs against a fixed set of modules (e.g. a loaded run; the runner itself keeps a
per-(split, task, module) cache of the same ``Backbone.upper_cache`` calls across steps,
because earlier modules never change)::

    sc = ScoreComputer(backbone, adapters[: k + 1], sig_adapted[: k + 1], sig_shared[: k + 1])
    ev = sc.evaluate(cache)               # representations under every module + all scores
    S = ev.scores[("adapted", "centroid")]
    pred_task = retrieve(S)
    pred_label = classify(ev.reps_adapted, pred_task, heads[: k + 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cft.backbones import Backbone, HiddenCache
from cft.composition import ProteusAdapter
from cft.heads import LDAHead
from cft.signatures import KINDS, Signature

MODES = ("adapted", "shared")


def retrieve(S: np.ndarray) -> np.ndarray:  # noqa: N803
    """``argmin_s S[i, s]`` (ties -> lowest task index)."""
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[1] == 0:
        raise ValueError(f"S: expected an (n, m) score matrix, got shape {S.shape}")
    return np.argmin(S, axis=1).astype(np.int64)


def margins(S: np.ndarray, task: np.ndarray) -> np.ndarray:  # noqa: N803
    """Per-sample retrieval margin ``min_{s != t} S_s - S_t`` (``bounds.retrieval_margin``)."""
    import bounds

    return bounds.retrieval_margin(S, task)


def classify(
    reps_adapted: np.ndarray, retrieved: np.ndarray, heads: Sequence[LDAHead]
) -> np.ndarray:
    """Global class predicted by the LDA head of the retrieved task on ``h_t(x)``.

    ``reps_adapted`` is ``(m, n, d)`` (sample ``i`` under every module), ``retrieved`` ``(n,)``.
    """
    reps_adapted = np.asarray(reps_adapted)
    retrieved = np.asarray(retrieved)
    if reps_adapted.ndim != 3 or reps_adapted.shape[0] != len(heads):
        raise ValueError(f"reps_adapted: expected shape ({len(heads)}, n, d), "
                         f"got {reps_adapted.shape}")
    if retrieved.shape != (reps_adapted.shape[1],):
        raise ValueError(f"retrieved: expected shape ({reps_adapted.shape[1]},)")
    out = np.empty(len(retrieved), dtype=np.int64)
    for t, head in enumerate(heads):
        rows = np.flatnonzero(retrieved == t)
        if len(rows):
            out[rows] = head.predict(reps_adapted[t, rows])
    return out


def score_matrix(
    reps: np.ndarray | Sequence[np.ndarray], signatures: Sequence[Signature], kind: str
) -> np.ndarray:
    """``S[i, s] = signatures[s].score(reps_s[i], kind)``.

    ``reps`` is ``(n, d)`` (the same representation for every task: shared mode) or
    ``(m, n, d)`` (per-task representations: adapted mode).
    """
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
    if not signatures:
        raise ValueError("signatures: empty")
    reps = np.asarray(reps)
    per_task = reps.ndim == 3
    if per_task and reps.shape[0] != len(signatures):
        raise ValueError(f"reps: {reps.shape[0]} task representations for "
                         f"{len(signatures)} signatures")
    n = reps.shape[1] if per_task else reps.shape[0]
    S = np.empty((n, len(signatures)), dtype=np.float64)
    for s, sig in enumerate(signatures):
        S[:, s] = sig.score(reps[s] if per_task else reps, kind)
    return S


@dataclass
class Evaluation:
    """Representations of one split and its score matrices ``{(mode, kind): (n, m)}``."""

    reps_adapted: np.ndarray | None = None  # (m, n, d) float32
    reps_shared: np.ndarray | None = None  # (n, d) float32
    scores: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def retrieved(self, mode: str, kind: str) -> np.ndarray:
        return retrieve(self.scores[(mode, kind)])


class ScoreComputer:
    """Representations and score matrices of cached splits for tasks ``0..m-1``.

    Parameters
    ----------
    backbone : the (single, frozen) backbone.
    adapters : ``m`` PROTEUS modules (task order); ``None`` entries mean no module.
    signatures_adapted / signatures_shared : ``m`` fitted signatures each (either may be
        ``None`` when that mode is not evaluated).
    batch_size : rows of the cache per upper-layer pass.
    """

    def __init__(
        self,
        backbone: Backbone,
        adapters: Sequence[ProteusAdapter | None],
        signatures_adapted: Sequence[Signature] | None = None,
        signatures_shared: Sequence[Signature] | None = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> None:
        m = len(adapters)
        for name, sigs in (("signatures_adapted", signatures_adapted),
                           ("signatures_shared", signatures_shared)):
            if sigs is not None and len(sigs) != m:
                raise ValueError(f"{name}: expected {m} signatures, got {len(sigs)}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.backbone = backbone
        self.adapters = list(adapters)
        self.signatures_adapted = None if signatures_adapted is None else list(signatures_adapted)
        self.signatures_shared = None if signatures_shared is None else list(signatures_shared)
        self.batch_size = batch_size
        self.progress = progress

    @property
    def n_tasks(self) -> int:
        return len(self.adapters)

    @torch.inference_mode()
    def shared_representations(self, cache: HiddenCache) -> np.ndarray:
        """Frozen pre-trained representations ``(n, d)``."""
        return self.backbone.upper_cache(cache, None, self.batch_size).numpy()

    @torch.inference_mode()
    def adapted_representations(
        self, cache: HiddenCache, tasks: Sequence[int] | None = None
    ) -> np.ndarray:
        """``(len(tasks), n, d)``: each sample through every module, lower layers shared."""
        tasks = list(range(self.n_tasks)) if tasks is None else list(tasks)
        return np.stack([
            self.backbone.upper_cache(cache, self.adapters[t], self.batch_size,
                                      progress=self.progress).numpy()
            for t in tasks
        ]).astype(np.float32, copy=False)

    def scores(
        self, cache: HiddenCache | None, mode: str, kind: str, reps: np.ndarray | None = None
    ) -> np.ndarray:
        """Score matrix ``(n, m)`` (pass ``reps`` to reuse computed representations)."""
        sigs = self._signatures(mode)
        if reps is None:
            if cache is None:
                raise ValueError("cache: required when reps is not given")
            reps = (self.adapted_representations(cache) if mode == "adapted"
                    else self.shared_representations(cache))
        return score_matrix(reps, sigs, kind)

    def evaluate(
        self,
        cache: HiddenCache,
        modes: Sequence[str] = MODES,
        kinds: Sequence[str] | None = None,
    ) -> Evaluation:
        """Representations (adapted: always; shared if requested) and every score matrix.

        ``kinds=None`` -> every kind supported by all signatures of the mode.
        """
        for mode in modes:
            self._signatures(mode)
        ev = Evaluation(reps_adapted=self.adapted_representations(cache))
        if "shared" in modes:
            ev.reps_shared = self.shared_representations(cache)
        for mode in modes:
            sigs = self._signatures(mode)
            todo = kinds if kinds is not None else [
                k for k in KINDS if all(s.supports(k) for s in sigs)
            ]
            reps = ev.reps_adapted if mode == "adapted" else ev.reps_shared
            for kind in todo:
                ev.scores[(mode, kind)] = score_matrix(reps, sigs, kind)
        return ev

    def _signatures(self, mode: str) -> list[Signature]:
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
        sigs = self.signatures_adapted if mode == "adapted" else self.signatures_shared
        if sigs is None:
            raise ValueError(f"signatures_{mode}: not given")
        return sigs
