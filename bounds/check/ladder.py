"""The tiers of the checker and the one-screen ladder (docs/theory.md §9-§11).

Tiers (what a number needs, and what it guarantees):

1. **sample-exact**: the evaluated score matrix or the split's own cluster statistics;
   exact on that sample (category ``guaranteed``: a violation is a bug, exit 1).
2. **PAC**: the held-out calibration sample; the population error with probability
   >= 1 - delta.
3. **training-time, distribution-free**: statistics stored while a task's data was there
   (``train:`` rows, the earlier-claimed part of the adapted rule); exact on that task's
   train sample, *compared* with the evaluated split.
4. **prediction**: the same statistics plus a stated modelling assumption; never a bound,
   scored against the realised error (absolute error, Spearman rho over tasks).

:func:`table_claims` is a table's earlier/later claim split (its work item computes it);
:func:`attach` adds the predictions and the claims' training-time bound to the tables of
a report; :func:`ladder` condenses a report into one :class:`Rung` per (split, rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..claims import claim_split, earlier_cantelli, earlier_event, train_score_moments
from ..predict import PREDICTORS, Prediction, gauss_full, gauss_proj, gauss_scores
from ..rank_correlation import spearman
from ..vocabulary import LADDER
from .jobs import STATE, default_jobs, run_items, value

__all__ = ["TIER_NAMES", "PredRow", "Rung", "attach", "ladder", "tier_of"]

#: numbered ladder tier -> its name, from the one vocabulary (bounds/vocabulary.py)
TIER_NAMES = {n: name for name, (n, _) in LADDER.items() if n is not None}


@dataclass
class PredRow:
    """A prediction of one table's per-task error (or of its earlier-claimed part)."""

    key: str
    target: str  # "error" or "earlier" (the earlier-claimed event, docs/theory.md §10)
    per_task: np.ndarray
    overall: float
    se_task: np.ndarray
    se_overall: float
    realised_task: np.ndarray
    realised: float
    assumption: str
    #: Monte-Carlo design: ``n_draws`` draws per ``per`` (task or cluster), ``seed``
    draws: dict[str, Any] = field(default_factory=dict)

    @property
    def abs_err_task(self) -> np.ndarray:
        return np.abs(self.per_task - self.realised_task)

    @property
    def abs_err(self) -> float:
        return abs(self.overall - self.realised)

    @property
    def mae(self) -> float:
        return float(np.mean(self.abs_err_task))

    @property
    def spearman(self) -> float | None:
        return spearman(self.per_task, self.realised_task)


@dataclass
class Rung:
    """One ladder line: a rule's error, the tightest bound of each tier, the prediction."""

    split: str
    rule: str
    error: float
    best: dict[int, tuple[str, float] | None] = field(default_factory=dict)
    pred: PredRow | None = None
    a1: str = "-"
    claims: dict[str, Any] | None = None

    def reference(self, tier: int) -> tuple[float | None, str]:
        """What tier ``tier``'s tightest row bounds: ``(the error, "error")``, or for an
        ``(earlier)`` row ``(the earlier-claimed rate, "earlier")`` (docs/theory.md §10;
        None without the claim split): the denominator of its ratio."""
        if not self.is_earlier(tier):
            return self.error, "error"
        return self.earlier_rate(), "earlier"

    def is_earlier(self, tier: int) -> bool:
        """Whether tier ``tier``'s tightest row bounds only the earlier-claimed part of the
        error (its key ends in ``(earlier)``, docs/theory.md §10)."""
        b = self.best.get(tier)
        return b is not None and b[0].endswith("(earlier)")

    def earlier_rate(self) -> float | None:
        """The rate of the earlier-claimed event on the split (what an ``(earlier)`` bound
        or prediction is about, docs/theory.md §10), or None without the claim split."""
        cl = self.claims
        if cl is None or "earlier_event" not in cl:
            return None
        pi = cl["n_t"] / cl["n_t"].sum()
        return float(pi @ cl["earlier_event"])


def tier_of(row: Any) -> int | None:
    """Tier of a :class:`~bounds.check.core.BoundRow` (None: assumption-dependent)."""
    if row.category == "guaranteed":
        return 1
    if row.category == "pac":
        return 2
    if row.key.startswith("train:"):
        return 3
    return None


def _pred_row(p: Prediction, target: str, realised_t: np.ndarray, n_t: np.ndarray) -> PredRow:
    pi = n_t / n_t.sum()
    realised_t = np.asarray(realised_t, dtype=np.float64)
    return PredRow(p.name, target, p.per_task, float(pi @ p.per_task), p.se_task,
                   float(np.sqrt(pi**2 @ p.se_task**2)), realised_t, float(pi @ realised_t),
                   PREDICTORS[p.name][1], _draws(p))


def _draws(p: Prediction) -> dict[str, Any]:
    """How many Monte-Carlo draws a prediction used, and per what (its ``details``)."""
    d = p.details
    if "n_per_task" in d:
        return {"n_draws": int(d["n_per_task"]), "per": "task", "seed": d.get("seed")}
    per = "cluster" if "per_cluster" in d else "task"
    return {"n_draws": int(d.get("n_samples", 0)), "per": per, "seed": d.get("seed")}


def _pred_centroid(seed: int) -> Prediction:
    return gauss_proj(STATE["data"].train_clusters, seed=seed)


def _pred_nll(seed: int) -> Prediction:
    data = STATE["data"]
    return gauss_full(data.train_clusters, data.mixtures, seed=seed)


def _pred_earlier(seed: int) -> dict:
    """Per (mode, kind) of the training-time scores: the earlier-claimed bound, the train
    rate of the earlier event and its prediction (docs/theory.md §10)."""
    earlier: dict[tuple[str, str], dict[str, Any]] = {}
    for key, mats in STATE["data"].train_scores.items():
        means, covs = train_score_moments(mats)
        n_tr = np.array([T.shape[0] for T in mats], dtype=np.float64)
        bound = np.array([earlier_cantelli(mu[-1], c[-1, -1], mu[:-1], np.diag(c)[:-1])[0]
                          for mu, c in zip(means, covs)])
        train_rate = np.array([
            float(np.mean(earlier_event(T, np.full(T.shape[0], t)))) if t else 0.0
            for t, T in enumerate(mats)])
        earlier[key] = {"bound": bound, "train_rate": train_rate,
                        "pred": gauss_scores(means, covs, n_tr, seed=seed)}
    return earlier


def prediction_items(data: Any, seed: int) -> dict:
    """The predictions of a check as work items (:mod:`bounds.check.jobs`), reading the
    run from ``jobs.STATE["data"]``."""
    items: dict = {}
    if data.train_clusters is not None:
        items[("pred", "shared", "centroid")] = (_pred_centroid, (seed,))
        if data.mixtures is not None:
            items[("pred", "shared", "nll")] = (_pred_nll, (seed,))
    if data.train_scores:
        items[("pred", "earlier")] = (_pred_earlier, (seed,))
    return items


def table_claims(sf: Any, n_t: np.ndarray) -> dict[str, np.ndarray]:
    """The claim split of a score file (:func:`bounds.claims.claim_split`) and, per task,
    the fraction of samples in the earlier event (:func:`bounds.claims.earlier_event`):
    what :func:`attach` adds to its table, computed by the table's work item
    (``bounds.check.work``) so that it runs in parallel with the others."""
    cl = claim_split(sf.scores, sf.task)
    ev = earlier_event(sf.scores, sf.task)
    cl["earlier_event"] = np.bincount(sf.task, weights=ev.astype(np.float64),
                                      minlength=n_t.shape[0]) / n_t
    return cl


def attach(tables: list[Any], data: Any, *, seed: int = 0,
           computed: dict | None = None) -> list[str]:
    """Add ``predictions`` and ``claims`` to every table; returns notes for the report.

    Predictions are computed once from the training-time statistics and compared with
    each split's realised errors (the prediction's seed is fixed: ``seed``); ``computed``:
    the results of :func:`prediction_items` (computed here when not given)."""
    if computed is None:
        STATE["data"] = data
        try:
            computed = run_items(prediction_items(data, seed), 1)
        finally:
            STATE.pop("data", None)
    notes: list[str] = []
    preds: dict[tuple[str, str], Prediction] = {
        k[1:]: value(v) for k, v in computed.items() if k[0] == "pred" and len(k) == 3}
    if data.train_clusters is None:
        notes.append(f"no training-time predictions: {data.train_note}")
    earlier = value(computed[("pred", "earlier")]) if ("pred", "earlier") in computed else {}
    if not data.train_scores and data.train_scores_note:
        notes.append(f"no earlier-claimed bounds/predictions: {data.train_scores_note}")
    for tab in tables:
        key = (tab.mode, tab.kind)
        # the claim split of the table's scores (its work item's, else computed here)
        cl = getattr(tab, "claims", None)
        if cl is None:
            cl = table_claims(data.splits[tab.split].scores[key], tab.n_t)
        tab.predictions = []
        if key in preds:
            tab.predictions.append(_pred_row(preds[key], "error", tab.err_t, tab.n_t))
        if key in earlier:
            e = earlier[key]
            cl["train_bound"] = e["bound"]
            cl["train_rate"] = e["train_rate"]
            tab.predictions.append(_pred_row(e["pred"], "earlier", cl["earlier_event"],
                                             tab.n_t))
        tab.claims = cl
    return notes


def _best(rows: list[Any], tier: int) -> tuple[str, float] | None:
    cand = [(r.key, r.overall) for r in rows if tier_of(r) == tier]
    return min(cand, key=lambda kv: kv[1]) if cand else None


def ladder(report: Any) -> list[Rung]:
    """One :class:`Rung` per table (split, rule), test split first."""
    rungs = []
    order = {"test": 0, "calibration": 1}
    for tab in sorted(report.tables, key=lambda t: (order.get(t.split, 2), t.mode, t.kind)):
        rung = Rung(tab.split, f"{tab.mode}-{tab.kind}", tab.err,
                    {k: _best(tab.rows, k) for k in TIER_NAMES})
        cl = getattr(tab, "claims", None)
        if rung.best[3] is None and cl is not None and "train_bound" in cl:
            pi = tab.n_t / tab.n
            rung.best[3] = ("train:G-cantelli (earlier)", float(pi @ cl["train_bound"]))
        preds = [p for p in getattr(tab, "predictions", []) if p.target == "error"]
        preds = preds or list(getattr(tab, "predictions", []))
        rung.pred = preds[0] if preds else None
        if tab.diagnostics is not None:
            nf = int(tab.diagnostics["n_flagged"])
            rung.a1 = f"fails ({nf}/{tab.n_t.shape[0]} tasks)" if nf else "holds"
        rung.claims = cl
        rungs.append(rung)
    return rungs


def over_steps(data: Any, *, split: str = "test", seed: int = 0, max_steps: int = 8,
               cache: dict | None = None, jobs: int | None = None) -> dict[str, Any]:
    """Predicted against realised overall error after each evaluated step (at most
    ``max_steps``, evenly spaced, always the checked one) for the shared rules.

    The predictions do not depend on the split: pass the same ``cache`` dict for several
    splits and each (step, rule) is computed once. ``jobs``: processes for the steps
    (default: the checker's ``--jobs``); the result does not depend on it."""
    cache = {} if cache is None else cache
    from .. import rundir_schema as L
    from ..empirical import empirical_error
    from .rundir import RunDirError, _read_mixtures, _read_scores

    root = data.root
    steps = [k for k in range(data.step + 1)
             if (L.step_dir(root, k) / split).is_dir()]
    if len(steps) > max_steps:
        idx = np.unique(np.linspace(0, len(steps) - 1, max_steps).round().astype(int))
        steps = [steps[i] for i in idx]
    out: dict[str, Any] = {"steps": [], "realised": {}, "predicted": {}}
    cs = data.train_clusters
    if cs is None:
        return out
    todo: dict = {}
    got: dict[int, dict] = {}
    for k in steps:  # read every step first (a step with an unreadable file is left out)
        sdir = L.step_dir(root, k)
        got_k, todo_k = {}, {}
        try:
            for kind in L.KINDS:
                p = sdir / L.scores_file(split, "shared", kind)
                if not p.is_file():
                    continue
                sf = _read_scores(p, str(p.relative_to(root)), split, "shared", kind, k + 1)
                real = empirical_error(sf.scores, sf.task)[1]
                mp = sdir / L.MIXTURES
                if kind == "nll" and not mp.is_file():
                    continue
                if (k, kind, seed) not in cache and (k, kind, seed) not in todo:
                    todo_k[(k, kind, seed)] = (_step_pred, (k, kind, seed)) if kind == \
                        "centroid" else (_step_pred, (k, kind, seed, _read_mixtures(
                            mp, str(mp.relative_to(root)), k + 1)))
                got_k[f"shared-{kind}"] = (real, (k, kind, seed))
        except RunDirError:
            continue
        got[k] = got_k
        todo.update(todo_k)
    # the predictions of the steps, in parallel (step t's clusters extend step t-1's: the
    # per-cluster estimates of gauss_proj are reused, STATE["proj_cache"]; theory §14.3)
    STATE.update(data=data, proj_cache=cache.setdefault("proj_clusters", {}))
    try:
        res = run_items(todo, default_jobs() if jobs is None else jobs)
    finally:
        STATE.pop("data", None)
        STATE.pop("proj_cache", None)
    cache.update({key: value(v) for key, v in res.items()})
    for k, got_k in got.items():
        out["steps"].append(k)
        for rule, (real, key) in got_k.items():
            out["realised"].setdefault(rule, []).append((k, real))
            out["predicted"].setdefault(rule, []).append((k, cache[key]))
    return out


def _step_pred(k: int, kind: str, seed: int, mixtures: Any = None) -> float:
    """Overall prediction of step k (tasks 0..k) for the shared ``kind`` rule."""
    sub = STATE["data"].train_clusters.first_tasks(k)
    if kind == "centroid":
        return gauss_proj(sub, seed=seed, cache=STATE.get("proj_cache")).overall
    return gauss_full(sub, mixtures, seed=seed).overall
