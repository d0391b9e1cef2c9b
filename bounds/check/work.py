"""The checker's work items (docs/theory.md §11), evaluated by :mod:`bounds.check.jobs`.

:func:`compute` returns, per item key, what :func:`bounds.check.core.check_run` assembles:

* ``("table", split, mode, kind)``: the :class:`~bounds.check.core.Table` of one score
  matrix with its score and PAC rows;
* ``("clusters", split)`` / ``("clusters", "train")``: the centroid-geometry bounds of a
  split's (or the training-time) cluster statistics, ``moment-opt`` included: its SDPs are
  further items, chunks of the clusters that need one (§14.1), queued as soon as the
  cluster set's plan is ready;
* ``("mixtures",)``: the Gaussian bound; ``("diag",)``: the A.1 diagnostics per split;
* ``("pred", ...)``: the predictions (:func:`bounds.check.ladder.prediction_items`).

Each item reads the run from :data:`bounds.check.jobs.STATE` and is deterministic, so the
assembled report does not depend on how many processes evaluated the items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import REGISTRY, BoundInputs, evaluate
from .. import rundir_schema as L
from ..base import BoundResult
from ..moment.bound import MomentOptBound
from .jobs import STATE, Failed, run_items, value
from .rundir import RunDirError

__all__ = ["compute"]

#: score bounds whose value 1 on a task gets its reason (never a silent 1.0)
_SCORE_NOTES = ("G-emp", "G-cantelli", "corollary")

#: SDP chunks per worker (load balance of the second round; each chunk is one batch of
#: the interior-point solver, which is cheaper per SDP in larger batches)
_CHUNKS_PER_JOB = 2


def _err(what: str, exc: Exception) -> RunDirError:
    return RunDirError(f"{what}: {' '.join(str(exc).split())}")


def inputs(what: str, **kw: Any) -> BoundInputs:
    try:
        return BoundInputs(**kw)
    except ValueError as exc:
        raise _err(what, exc) from None


def evaluate_names(inp: BoundInputs, names: list[str], what: str) -> dict:
    try:
        return evaluate(inp, names=names) if names else {}
    except ValueError as exc:
        raise _err(what, exc) from None


def _cluster_source(which: str) -> tuple[Any, str, str]:
    """(ClusterStats, name for _inputs, name for evaluate) of a cluster set."""
    data = STATE["data"]
    if which == "train":
        what = f"{L.TASKS}/*/{L.TRAIN_CLUSTERS}"
        return data.train_clusters, what, what
    sd = data.splits[which]
    return sd.clusters, sd.clusters_rel or "clusters", sd.clusters_rel


def _cluster_item(which: str, names: list[str], delta: float) -> dict:
    """The bounds of one cluster set; ``moment-opt`` only prepared (its SDPs: round 2)."""
    cs, what_in, what = _cluster_source(which)
    inp = inputs(what_in, clusters=cs, delta=delta)
    staged = [n for n in names if isinstance(REGISTRY[n], MomentOptBound)]
    res = evaluate_names(inp, [n for n in names if n not in staged], what)
    plans = {}
    for n in staged:
        b = REGISTRY[n]
        try:
            plan = b.prepare(inp)
            plan.update(name=n, pi=b._priors(inp), e=inp.unit_exp["clusters"])
        except ValueError as exc:
            raise _err(what, exc) from None
        plans[n] = plan
    return {"res": res, "plans": plans, "names": names}


_PIECE = ("todo", "foreign", "p_rows")  # the per-cluster rows of a plan an SDP chunk needs


def _sdp_item(which: str, name: str, e: int, piece: dict) -> list:
    """The SDPs of a chunk of a plan's ``todo`` clusters (``piece``: its rows of the plan,
    sent to the worker with the item)."""
    cs = _cluster_source(which)[0]
    return REGISTRY[name].solve(cs.scaled(e), piece)


def _moment_result(which: str, plan: dict, parts: list) -> BoundResult:
    """:meth:`Bound.compute`'s result from the staged pieces (the same arithmetic)."""
    b = REGISTRY[plan["name"]]
    cs = _cluster_source(which)[0]
    per, details = b.finish(cs.scaled(plan["e"]), plan, [r for p in parts for r in p])
    per = np.clip(np.asarray(per, dtype=np.float64), 0.0, 1.0)
    pi = plan["pi"]
    return BoundResult(b.name, per, float(np.clip(pi @ per, 0.0, 1.0)),
                       {"section": b.section, "pi": pi, **details})


def _table_item(split: str, mode: str, kind: str, sel: dict, delta: float) -> Any:
    from .ladder import table_claims
    from .rows import TOL, _new_table, _row, skip_note

    data = STATE["data"]
    sf = data.splits[split].scores[(mode, kind)]
    inp = inputs(sf.rel, scores=sf.scores, task=sf.task, delta=delta)
    tab = _new_table(sf, inp)
    tab.claims = table_claims(sf, tab.n_t)  # read by ladder.attach
    for name, r in evaluate_names(inp, sel["scores"], sf.rel).items():
        cat = "guaranteed" if REGISTRY[name].guaranteed else "assumption"
        tab.rows.append(_row(name, name, cat, "scores", r.per_task, r.overall, tab,
                             note=skip_note(name, r) if name in _SCORE_NOTES else ""))
    cal = data.splits.get("calibration")
    if split == "test" and sel["pac"]:
        csf = cal.scores.get((mode, kind)) if cal is not None else None
        if csf is None:
            tab.notes.append(f"PAC bounds skipped: no calibration scores for {mode}-{kind}")
        else:  # the PAC bounds read only the calibration sample
            inp = inputs(csf.rel, cal_scores=csf.scores, cal_task=csf.task, delta=delta)
            for name, r in evaluate_names(inp, sel["pac"], csf.rel).items():
                tab.rows.append(_row(
                    name, name, "pac", "calibration-scores", r.per_task, r.overall, tab,
                    note=f"holds with probability >= 1 - delta = {1 - delta:g} over the "
                    "calibration draw"))
                if "pooled" in r.details:  # overall: no union over tasks needed
                    row = _row(f"{name}:pooled", name, "pac", "calibration-scores",
                               r.per_task, r.details["pooled"], tab,
                               note="overall = one bound on the pooled calibration sample "
                               "at level delta (calibration task weights)")
                    row.overall = row.overall_native
                    row.holds_overall = row.overall >= tab.err - TOL
                    tab.rows.append(row)
    return tab


def _mixture_item(names: list[str], delta: float) -> dict:
    data = STATE["data"]
    what = data.mixtures_rel or L.MIXTURES
    return evaluate_names(inputs(what, mixtures=data.mixtures, delta=delta), names, what)


def _diag_item(splits: list[str], seed: int) -> dict:
    from .diagnostics import A1Expectation, a1_diagnostics

    data = STATE["data"]
    expectation = A1Expectation(data.mixtures, seed=seed)  # shared by the splits
    out: dict[str, Any] = {}
    for split in splits:
        try:
            out[split] = a1_diagnostics(data.mixtures, data.splits[split].reps,
                                        expectation=expectation)
        except Exception as exc:
            out[split] = Failed(exc)
    return out


def compute(data: Any, splits: tuple[str, ...], sel: dict, delta: float, seed: int,
            jobs: int) -> dict:
    """Every item of a check (module docstring); ``jobs`` processes (1: this one)."""
    from .ladder import prediction_items

    items: dict[Any, tuple] = {}
    cost: dict[Any, float] = {}
    if data.train_clusters is not None and sel["clusters"]:
        items[("clusters", "train")] = (_cluster_item, ("train", sel["clusters"], delta))
    if data.mixtures is not None and sel["mixtures"]:
        items[("mixtures",)] = (_mixture_item, (sel["mixtures"], delta))
    diag = []
    for split in splits:
        sd = data.splits.get(split)
        if sd is None:
            continue
        for mode, kind in sorted(sd.scores):
            items[("table", split, mode, kind)] = (_table_item, (split, mode, kind, sel, delta))
        if sd.clusters is not None and ("shared", "centroid") in sd.scores and sel["clusters"]:
            items[("clusters", split)] = (_cluster_item, (split, sel["clusters"], delta))
        if (("shared", "nll") in sd.scores and data.mixtures is not None and sel["mixtures"]
                and sd.reps is not None):
            diag.append(split)
    if diag:
        items[("diag",)] = (_diag_item, (diag, seed))
    items.update(prediction_items(data, seed))
    for k in items:  # longest first: cluster sets (moment-opt), predictions, diagnostics
        cost[k] = {"clusters": 3.0, "pred": 2.0, "diag": 2.0, "mixtures": 1.0}.get(k[0], 0.5)
    STATE["data"] = data
    n_chunks = max(1, _CHUNKS_PER_JOB * jobs)

    def follow(key: Any, res: Any) -> dict:
        """The SDP chunks of a cluster set, queued as soon as its plan is ready."""
        if key[0] != "clusters" or isinstance(res, Failed):
            return {}
        out = {}
        for name, plan in res["plans"].items():
            for j, rows in enumerate(np.array_split(np.arange(plan["todo"].size), n_chunks)):
                if rows.size or j == 0:
                    piece = {f: plan[f][rows] for f in _PIECE}
                    out[("sdp", key[1], name, j)] = (_sdp_item, (key[1], name, plan["e"],
                                                                 piece))
        return out

    try:
        done = run_items(items, jobs, cost, follow=follow)
        _assemble_moment(done)
    finally:
        STATE.clear()
    return done


def _assemble_moment(done: dict) -> None:
    """Replace each cluster item by its bounds, ``moment-opt`` finished from its SDP
    chunks (in the registry order of the bounds); drop the chunks."""
    sdp = {k: done.pop(k) for k in [k for k in done if k[0] == "sdp"]}
    for key, res in done.items():
        if key[0] != "clusters" or isinstance(res, Failed):
            continue
        try:
            mo = {n: _moment_result(key[1], plan, [value(v) for k, v in sdp.items()
                                                   if k[1:3] == (key[1], n)])
                  for n, plan in res["plans"].items()}
        except ValueError as exc:
            done[key] = Failed(_err(_cluster_source(key[1])[2], exc))
            continue
        except Exception as exc:
            done[key] = Failed(exc)
            continue
        done[key] = {n: mo[n] if n in mo else res["res"][n] for n in res["names"]}
