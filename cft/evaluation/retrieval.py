"""Task retrieval: representations, score matrices, argmin retrieval, margins, prediction.

Score matrix ``S`` (n x m): ``S[i, s]`` = score of sample ``i`` under task ``s``'s signature
(smaller = closer); retrieval picks ``argmin_s S[i, s]`` (the paper's parameter-free,
clustering-based retrieval).

* mode ``"adapted"`` (PROTEUS): ``S[i, s] = sig_s^adapted.cost(h_s(x_i))`` with ``h_s`` the
  backbone carrying task ``s``'s composed module. The frozen lower layers are evaluated
  once per sample (a :class:`cft.model.backbones.HiddenCache`), only the top ``L`` layers are
  branched per module.
* mode ``"shared"`` (S-Prompts baseline): ``S[i, s] = sig_s^shared.cost(f(x_i))`` with the
  frozen pre-trained features ``f``; one forward pass.

This is the one evaluation path: the runner (:meth:`cft.run.runner.Runner._evaluate`) and the
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bounds.rundir_schema import MODES
from cft.evaluation.heads.lda import LDAHead
from cft.evaluation.signatures import KINDS, Signature
from cft.model.backbones import Backbone, HiddenCache
from cft.model.modules.proteus import ProteusAdapter


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
    reps_adapted: np.ndarray | Sequence[np.ndarray] | ModuleReps, retrieved: np.ndarray,
    heads: Sequence[LDAHead],
) -> np.ndarray:
    """Global class predicted by the LDA head of the retrieved task on ``h_t(x)``.

    ``reps_adapted`` is ``(m, n, d)`` (sample ``i`` under every module) or a
    :class:`ModuleReps` (only ``h_t`` of the samples that retrieved ``t`` is requested);
    ``retrieved`` ``(n,)``.
    """
    A = _as_module_reps(reps_adapted)
    retrieved = np.asarray(retrieved)
    if A.m != len(heads):
        raise ValueError(f"reps_adapted: expected shape ({len(heads)}, n, d), "
                         f"got {A.m} modules")
    if retrieved.shape != (A.n,):
        raise ValueError(f"retrieved: expected shape ({A.n},)")
    out = np.empty(len(retrieved), dtype=np.int64)
    for t, head in enumerate(heads):
        rows = np.flatnonzero(retrieved == t)
        if len(rows):
            out[rows] = head.predict(A.get(t, rows))
    return out


def score_matrix(
    reps: np.ndarray | Sequence[np.ndarray], signatures: Sequence[Signature], kind: str
) -> np.ndarray:
    """``S[i, s] = signatures[s].cost(reps_s[i], kind)``.

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
        S[:, s] = sig.cost(reps[s] if per_task else reps, kind)
    return S


class ModuleReps(Protocol):
    """``h_s(x_i)`` on demand: ``get(s, rows)`` -> ``(len(rows), d)`` (``rows=None``: all
    ``n`` samples); ``m`` modules. :class:`cft.evaluation.store.SplitReps` is one (the runner's)."""

    n: int
    m: int

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray: ...


class StackedReps:
    """:class:`ModuleReps` over an ``(m, n, d)`` array or a sequence of ``m`` ``(n, d)``."""

    def __init__(self, reps: np.ndarray | Sequence[np.ndarray]) -> None:
        self.reps = [np.asarray(r) for r in reps]
        if not self.reps or any(r.ndim != 2 or len(r) != len(self.reps[0]) for r in self.reps):
            shape = np.shape(reps) if isinstance(reps, np.ndarray) else len(self.reps)
            raise ValueError(f"reps_adapted: expected shape (m, n, d), got {shape}")
        self.m, self.n = len(self.reps), len(self.reps[0])

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray:
        return self.reps[s] if rows is None else self.reps[s][rows]


class LazyReps:
    """:class:`ModuleReps` from a function ``get(s, rows)`` (``n`` samples, ``m`` modules)."""

    def __init__(self, n: int, m: int,
                 get: Callable[[int, np.ndarray | None], np.ndarray]) -> None:
        self.n, self.m, self._get = int(n), int(m), get

    def get(self, s: int, rows: np.ndarray | None = None) -> np.ndarray:
        return self._get(s, rows)


def _as_module_reps(reps: np.ndarray | Sequence[np.ndarray] | ModuleReps) -> ModuleReps:
    if hasattr(reps, "get") and hasattr(reps, "m"):
        return reps  # type: ignore[return-value]
    if isinstance(reps, np.ndarray) and reps.ndim != 3:
        raise ValueError(f"reps_adapted: expected shape (m, n, d), got {reps.shape}")
    return StackedReps(reps)  # type: ignore[arg-type]


def shortlist(S_shared: np.ndarray, k: int) -> np.ndarray:  # noqa: N803
    """``(n, min(k, m))`` task ids per sample, the ``k`` smallest shared scores first
    (stable: ties -> lower task index)."""
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    return np.argsort(S_shared, axis=1, kind="stable")[:, :k].astype(np.int64)


def fill_unscored(S: np.ndarray, scored: np.ndarray) -> np.ndarray:  # noqa: N803
    """Give every unscored cell of each row the smallest float above the row's largest
    scored value (in place; returns ``S``).

    Then ``argmin`` of the row is the argmin over its scored cells, and a sample whose own
    task is unscored is an error of the score matrix (a foreign task scores below it), as
    it is of the shortlist rule; a sample whose own task is scored is an error iff a
    scored foreign task scores at most its own score, as under the rule. So errors and
    margins of a sample whose own task is scored read from the file are the rule's
    (docs/run-dir.md, "Shortlisted retrieval")."""
    hi = np.where(scored, S, -np.inf).max(axis=1)
    if not np.isfinite(hi).all():
        raise ValueError("scored: every row needs at least one finite scored cell")
    fill = np.nextafter(hi, np.inf)
    S[~scored] = np.broadcast_to(fill[:, None], S.shape)[~scored]
    return S


def score_matrices(
    reps_adapted: np.ndarray | Sequence[np.ndarray] | ModuleReps,
    reps_shared: np.ndarray | None,
    signatures_adapted: Sequence[Signature],
    signatures_shared: Sequence[Signature] | None,
    kinds: Sequence[str],
    shortlist_k: int | None = None,
    kinds_shared: Sequence[str] | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """Every ``(mode, kind)`` score matrix ``(n, m)`` of one split (``kinds`` in adapted
    mode, ``kinds_shared`` (default ``kinds``) in shared mode).

    Without ``shortlist_k`` adapted ``S[:, s]`` is scored for every sample. With it, the
    tasks of sample ``i`` are ranked by the SHARED scores of the same kind and only the
    top ``shortlist_k`` get an adapted score (so ``h_s(x_i)`` is requested only for those
    pairs); the other cells are filled by :func:`fill_unscored`.
    """
    A = _as_module_reps(reps_adapted)
    m = A.m
    for name, sigs in (("adapted", signatures_adapted), ("shared", signatures_shared)):
        if sigs is not None and len(sigs) != m:
            raise ValueError(f"signatures_{name}: expected {m} signatures, got {len(sigs)}")
    kinds_shared = list(kinds if kinds_shared is None else kinds_shared)
    for kind in [*kinds, *kinds_shared]:
        if kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
    out: dict[tuple[str, str], np.ndarray] = {}
    if reps_shared is not None:
        if signatures_shared is None:
            raise ValueError("signatures_shared: required with reps_shared")
        for kind in kinds_shared:
            out[("shared", kind)] = score_matrix(reps_shared, signatures_shared, kind)
    n = A.n
    if shortlist_k is None or shortlist_k >= m:
        S = {kind: np.empty((n, m), dtype=np.float64) for kind in kinds}
        for s, sig in enumerate(signatures_adapted):  # one fetch of h_s per module
            r = A.get(s)
            for kind in kinds:
                S[kind][:, s] = sig.cost(r, kind)
    else:
        if reps_shared is None:
            raise ValueError("shortlist: needs the shared representations and signatures")
        scored = {}
        for kind in kinds:
            if ("shared", kind) not in out:
                raise ValueError(f"shortlist: the shared signatures give no {kind!r} scores")
            top = shortlist(out[("shared", kind)], shortlist_k)
            mask = np.zeros((n, m), dtype=bool)
            np.put_along_axis(mask, top, True, axis=1)
            scored[kind] = mask
        S = {kind: np.zeros((n, m), dtype=np.float64) for kind in kinds}
        for s, sig in enumerate(signatures_adapted):
            rows = np.flatnonzero(np.any([scored[k][:, s] for k in kinds], axis=0))
            if not len(rows):
                continue
            r = A.get(s, rows)
            for kind in kinds:
                sel = scored[kind][rows, s]
                if sel.any():
                    S[kind][rows[sel], s] = sig.cost(r[sel], kind)
        for kind in kinds:
            fill_unscored(S[kind], scored[kind])
    for kind in kinds:
        out[("adapted", kind)] = S[kind]
    return {key: out[key] for key in sorted(out, key=lambda k: (MODES.index(k[0]), k[1]))}


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
    reps_adapted: np.ndarray | Sequence[np.ndarray] | ModuleReps,
    reps_shared: np.ndarray | None,
    signatures_adapted: Sequence[Signature],
    signatures_shared: Sequence[Signature] | None,
    heads: Sequence[LDAHead],
    kinds: Sequence[str] | None = None,
    task: np.ndarray | None = None,
    shortlist_k: int | None = None,
) -> Evaluation:
    """Scores, retrieval and class predictions of one split in both modes.

    Parameters
    ----------
    reps_adapted : ``(m, n, d)`` with ``reps_adapted[s] = h_s(x)`` (sample ``i`` under module
        ``s``), or a :class:`ModuleReps` that computes ``h_s`` of chosen samples on demand.
    reps_shared : ``(n, d)`` frozen ``f(x)``, or ``None`` to skip shared mode.
    signatures_adapted, signatures_shared : ``m`` fitted signatures each (task order).
    heads : ``m`` LDA heads; prediction always uses ``h_t(x)`` of the retrieved ``t``.
    kinds : score kinds; ``None`` = every kind all signatures of the mode support.
    task : true task ``(n,)`` for the task-aware prediction (optional).
    shortlist_k : rank tasks by the shared scores and score only the top ``k`` in adapted
        mode (:func:`score_matrices`; needs ``reps_shared``); ``None`` = every task.
    """
    A = _as_module_reps(reps_adapted)
    m = len(heads)
    if A.m != m:
        raise ValueError(f"reps_adapted: expected shape ({m}, n, d), got {A.m} modules")
    n = A.n
    if reps_shared is not None:
        if signatures_shared is None:
            raise ValueError("signatures_shared: required with reps_shared")
        reps_shared = np.asarray(reps_shared)
        if reps_shared.ndim != 2 or reps_shared.shape[0] != n:
            raise ValueError(f"reps_shared: expected shape ({n}, d), got {reps_shared.shape}")
    if shortlist_k is not None and shortlist_k < 1:
        raise ValueError(f"shortlist_k: must be >= 1 or None, got {shortlist_k}")
    todo = [("adapted", signatures_adapted)]
    if reps_shared is not None:
        todo.append(("shared", signatures_shared))  # type: ignore[arg-type]
    mode_kinds = {}
    for mode, sigs in todo:
        if len(sigs) != m:
            raise ValueError(f"signatures_{mode}: expected {m} signatures, got {len(sigs)}")
        mode_kinds[mode] = list(kinds) if kinds is not None else [
            k for k in KINDS if all(s.supports(k) for s in sigs)]
    S = score_matrices(A, reps_shared, signatures_adapted, signatures_shared,
                       mode_kinds["adapted"], shortlist_k, mode_kinds.get("shared"))
    ev = Evaluation()
    for mode, _ in todo:
        for kind in mode_kinds[mode]:
            got = retrieve(S[(mode, kind)])
            ev.scores[(mode, kind)] = S[(mode, kind)]
            ev.retrieved[(mode, kind)] = got
            ev.pred[(mode, kind)] = classify(A, got, heads)
    if task is not None:
        ev.pred_task_aware = classify(A, np.asarray(task, dtype=np.int64), heads)
    return ev


def rule_scores(rules: Sequence[Any], Q: np.ndarray) -> np.ndarray:  # noqa: N803
    """``S[i, s] = rules[s].cost(Q[i])`` ``(n, m)``: the score matrix of a learned rule."""
    return np.stack([np.asarray(r.cost(Q), dtype=np.float64) for r in rules], axis=1)


def rule_parts(rules: Sequence[Any], reps_adapted: ModuleReps) -> dict[str, np.ndarray]:
    """The parts ``(n, m)`` of an adapted-space rule: ``parts[p][i, s]`` is part ``p`` of
    ``rules[s]`` on ``h_s(x_i)`` (one fetch of ``h_s`` per module)."""
    out: dict[str, np.ndarray] = {}
    for s, r in enumerate(rules):
        for name, v in r.parts(reps_adapted.get(s)).items():
            out.setdefault(name, np.empty((reps_adapted.n, len(rules))))[:, s] = v
    return out


def choose_weight(rule: Any, parts: dict[str, np.ndarray], task: np.ndarray) -> float | None:
    """The weight in ``rule.grid`` with the best retrieval accuracy on ``parts`` (a
    calibration split; ties -> the first in the grid), or None for a rule without a grid."""
    if not rule.grid:
        return None
    acc = [float(np.mean(retrieve(rule.combine(parts, lam)) == task)) for lam in rule.grid]
    return float(rule.grid[int(np.argmax(acc))])


def add_rule(ev: Evaluation, mode: str, rules: Sequence[Any],
             reps_adapted: np.ndarray | Sequence[np.ndarray] | ModuleReps,
             reps_shared: np.ndarray, heads: Sequence[LDAHead], *,
             task: np.ndarray | None = None, weight: float | None = None) -> float | None:
    """Add a learned retrieval rule (``cft.config.registry.RULES``, config ``eval.rule``) to
    ``ev`` under ``(mode, kind)``, next to the parameter-free modes; returns the weight it
    used. A rule declares its one score ``kind`` in ``kinds`` and the space of its queries
    in ``space``:

    * ``"shared"``: ``S[i, s] = rules[s].cost(f(x_i))`` on the frozen ``f(x)``;
    * ``"adapted"``: ``S[i, s] = rules[s].combine(parts, w)`` of ``rules[s].parts(h_s(x_i))``
      (:mod:`cft.evaluation.background`). A rule with a ``grid`` of weights takes ``weight``
      when given (the test split: the calibration split's choice), else chooses it on
      ``task`` (the calibration split, :func:`choose_weight`).

    Retrieval is ``argmin_s``, the class prediction that of the retrieved task's head on
    ``h_t(x)``, as for the other rules."""
    if not rules:
        raise ValueError("rules: expected one fitted rule per task, got none")
    spaces = {getattr(r, "space", None) for r in rules}
    if len(spaces) != 1 or spaces - {"shared", "adapted"}:
        raise ValueError(f"rules: one space, 'shared' or 'adapted', expected; got "
                         f"{sorted(map(str, spaces))}")
    (kind,) = rules[0].kinds
    A = _as_module_reps(reps_adapted)
    if spaces == {"shared"}:
        S = rule_scores(rules, reps_shared)
    else:
        parts = rule_parts(rules, A)
        if weight is None and task is not None:
            weight = choose_weight(rules[0], parts, np.asarray(task))
        if weight is None and rules[0].grid:
            raise ValueError("add_rule: a tuned rule needs the calibration task or a weight")
        S = rules[0].combine(parts, weight)
    got = retrieve(S)
    ev.scores[(mode, kind)] = S
    ev.retrieved[(mode, kind)] = got
    ev.pred[(mode, kind)] = classify(A, got, heads)
    return weight
