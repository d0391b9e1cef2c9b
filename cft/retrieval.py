"""Task retrieval: representations, score matrices, argmin retrieval, margins, prediction.

Score matrix ``S`` (n x m): ``S[i, s]`` = score of sample ``i`` under task ``s``'s signature
(smaller = closer); retrieval picks ``argmin_s S[i, s]`` (the paper's parameter-free,
clustering-based retrieval).

* mode ``"adapted"`` (PROTEUS): ``S[i, s] = sig_s^adapted.score(h_s(x_i))`` with ``h_s`` the
  backbone carrying task ``s``'s composed module. The frozen lower layers are evaluated
  once per sample (a :class:`cft.backbones.HiddenCache`), only the top ``L`` layers are
  branched per module.
* mode ``"shared"`` (S-Prompts baseline): ``S[i, s] = sig_s^shared.score(f(x_i))`` with the
  frozen pre-trained features ``f``; one forward pass.

This is the one evaluation path: the runner (:meth:`cft.runner.Runner._evaluate`) and the
tests call the same two functions. ``representations`` gives ``h_s(x)`` (or ``f(x)``) of a
cache; the caller stacks them per module (the runner keeps them per (split, task, module),
because earlier modules never change), and ``evaluate`` computes every score matrix, the
retrieved tasks and the predicted classes::

    reps_a = np.stack([representations(backbone, cache, adapters[s]) for s in range(m)])
    reps_s = representations(backbone, cache, None)
    ev = evaluate(reps_a, reps_s, sig_adapted, sig_shared, heads, task=true_task)
    ev.scores[("adapted", "nll")], ev.retrieved[...], ev.pred[...], ev.pred_task_aware
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cft.backbones import Backbone, HiddenCache
from cft.composition import ProteusAdapter
from cft.heads import LDAHead
from cft.signatures import KINDS, Signature


def representations(
    backbone: Backbone,
    cache: HiddenCache,
    adapter: ProteusAdapter | None = None,
    batch_size: int = 128,
) -> np.ndarray:
    """Pooled representations ``(n, d)`` float32 of a cache: ``h_s(x)`` under ``adapter``
    (task ``s``'s module), ``f(x)`` (frozen, shared mode) when ``adapter`` is ``None``."""
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    out = backbone.upper_cache(cache, adapter, batch_size=batch_size)
    return out.cpu().numpy().astype(np.float32, copy=False)


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
    """Every ``(mode, kind)`` score matrix of one split with its retrieval and prediction.

    ``scores[(mode, kind)]`` ``(n, m)``; ``retrieved[(mode, kind)]`` = ``argmin`` of it;
    ``pred[(mode, kind)]`` = global class from the retrieved task's LDA head on ``h_t(x)``;
    ``pred_task_aware`` = the same with the true task (when ``task`` was given).
    """

    scores: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    retrieved: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    pred: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    pred_task_aware: np.ndarray | None = None


def evaluate(
    reps_adapted: np.ndarray,
    reps_shared: np.ndarray | None,
    signatures_adapted: Sequence[Signature],
    signatures_shared: Sequence[Signature] | None,
    heads: Sequence[LDAHead],
    kinds: Sequence[str] | None = None,
    task: np.ndarray | None = None,
) -> Evaluation:
    """Scores, retrieval and class predictions of one split in both modes.

    Parameters
    ----------
    reps_adapted : ``(m, n, d)``, ``reps_adapted[s] = h_s(x)`` (sample ``i`` under module ``s``).
    reps_shared : ``(n, d)`` frozen ``f(x)``, or ``None`` to skip shared mode.
    signatures_adapted, signatures_shared : ``m`` fitted signatures each (task order).
    heads : ``m`` LDA heads; prediction always uses ``h_t(x)`` of the retrieved ``t``.
    kinds : score kinds; ``None`` = every kind all signatures of the mode support.
    task : true task ``(n,)`` for the task-aware prediction (optional).
    """
    reps_adapted = np.asarray(reps_adapted)
    m = len(heads)
    if reps_adapted.ndim != 3 or reps_adapted.shape[0] != m:
        raise ValueError(f"reps_adapted: expected shape ({m}, n, d), got {reps_adapted.shape}")
    n = reps_adapted.shape[1]
    todo: list[tuple[str, np.ndarray, Sequence[Signature]]] = [
        ("adapted", reps_adapted, signatures_adapted)]
    if reps_shared is not None:
        if signatures_shared is None:
            raise ValueError("signatures_shared: required with reps_shared")
        reps_shared = np.asarray(reps_shared)
        if reps_shared.ndim != 2 or reps_shared.shape[0] != n:
            raise ValueError(f"reps_shared: expected shape ({n}, d), got {reps_shared.shape}")
        todo.append(("shared", reps_shared, signatures_shared))
    ev = Evaluation()
    for mode, reps, sigs in todo:
        if len(sigs) != m:
            raise ValueError(f"signatures_{mode}: expected {m} signatures, got {len(sigs)}")
        mode_kinds = list(kinds) if kinds is not None else [
            k for k in KINDS if all(s.supports(k) for s in sigs)]
        for kind in mode_kinds:
            S = score_matrix(reps, sigs, kind)
            got = retrieve(S)
            ev.scores[(mode, kind)] = S
            ev.retrieved[(mode, kind)] = got
            ev.pred[(mode, kind)] = classify(reps_adapted, got, heads)
    if task is not None:
        ev.pred_task_aware = classify(reps_adapted, np.asarray(task, dtype=np.int64), heads)
    return ev
