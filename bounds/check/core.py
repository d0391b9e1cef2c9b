"""Evaluate every applicable bound of a loaded run directory and compare with the
empirical retrieval error (docs/theory.md; bound set in ``bounds.REGISTRY``).

One :class:`Table` per (split, mode, kind) score matrix. Its rows are bounds
(:class:`BoundRow`) in three categories:

* ``guaranteed``: ``Bound.guaranteed`` bounds computed from data of the *same* split, which
  hold exactly on the empirical measure: the score bounds on the score matrix, and the
  centroid-geometry bounds (A, Bprime, B, C, D) from ``{split}/clusters-shared.npz``
  compared with the ``shared-centroid`` error. A violation is a bug or a misuse (exit 1).
* ``pac``: the finite-sample PAC bounds from the calibration scores of the same mode/kind,
  compared with the test error; they hold with probability >= 1 - delta.
* ``assumption``: the Gaussian-mixture bound (Assumption A.1, compared with the
  ``shared-nll`` error, with A.1 diagnostics) and the *predictive* centroid bounds from the
  training-time statistics ``tasks/NNN/train-clusters-shared.npz`` (they bound the
  train-split error, not this split's).

A bound holds on task t when ``bound_t >= error_t - TOL``; "overall" values are weighted
by the table's own task frequencies n_t / n so that they compare with the overall error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import REGISTRY, BoundInputs, empirical_error
from .rundir import RunData, RunDirError, ScoreFile

__all__ = ["TOL", "BoundRow", "Table", "Report", "Violation", "check_run", "bound_groups"]

TOL = 1e-9
CATEGORIES = ("guaranteed", "pac", "assumption")


def bound_groups() -> dict[str, list[str]]:
    """Registry names grouped by what they read: scores, clusters, mixtures, pac.

    Prediction-tier entries are never reported as bounds (docs/theory.md §11)."""
    groups: dict[str, list[str]] = {"scores": [], "clusters": [], "mixtures": [], "pac": []}
    for name, b in REGISTRY.items():
        if b.tier == "prediction":
            continue
        reads = set(b.reads)
        if "cal_scores" in reads:
            groups["pac"].append(name)
        elif "mixtures" in reads:
            groups["mixtures"].append(name)
        elif "clusters" in reads:
            groups["clusters"].append(name)
        elif reads <= {"scores", "task"}:
            groups["scores"].append(name)
    return groups


@dataclass
class BoundRow:
    """One bound evaluated against one table's empirical errors."""

    key: str
    name: str
    title: str
    category: str
    source: str
    per_task: np.ndarray
    overall: float
    overall_native: float
    holds_task: np.ndarray
    holds_overall: bool
    assumptions: tuple[str, ...] = ()
    note: str = ""

    @property
    def holds(self) -> bool:
        return bool(self.holds_task.all() and self.holds_overall)


@dataclass
class Table:
    """Empirical errors of one score matrix and the bounds compared with them."""

    split: str
    mode: str
    kind: str
    rel: str
    n: int
    n_t: np.ndarray
    err_t: np.ndarray
    err: float
    delta_t: np.ndarray
    rows: list[BoundRow] = field(default_factory=list)
    diagnostics: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: tier-4 predictions (``bounds.check.ladder.PredRow``) and the earlier/later claim
    #: split with its training-time bound (``bounds.check.ladder.attach``)
    predictions: list[Any] = field(default_factory=list)
    claims: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"{self.split} / {self.mode}-{self.kind}"


@dataclass
class Violation:
    """A bound below the empirical error on one task (task = None: the overall row)."""

    key: str
    category: str
    split: str
    mode: str
    kind: str
    task: int | None
    bound: float
    error: float

    def message(self) -> str:
        where = "overall" if self.task is None else f"task {self.task}"
        return (f"{self.category} bound {self.key} violated on split {self.split}, mode "
                f"{self.mode}, kind {self.kind}, {where}: bound {self.bound:.6g} < empirical "
                f"error {self.error:.6g}")


@dataclass
class Report:
    """Everything the checker found, ready to render as a table, JSON or a plot."""

    data: RunData
    delta: float
    tables: list[Table]
    violations: list[Violation]
    soft_violations: list[Violation]
    warnings: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.violations else 0


# ------------------------------------------------------------------ helpers
def _row(key: str, name: str, category: str, source: str, per_task: np.ndarray,
         native: float, table: Table, note: str = "") -> BoundRow:
    b = REGISTRY[name]
    per = np.asarray(per_task, dtype=np.float64)
    pi = table.n_t / table.n
    overall = float(pi @ per)
    return BoundRow(
        key=key, name=name, title=b.title, category=category, source=source, per_task=per,
        overall=overall, overall_native=float(native), holds_task=per >= table.err_t - TOL,
        holds_overall=overall >= table.err - TOL, assumptions=tuple(b.assumptions), note=note,
    )


def _category(name: str) -> str:
    return "guaranteed" if REGISTRY[name].guaranteed else "assumption"


def skip_note(name: str, r: Any) -> str:
    """Why a bound reads 1 on some tasks (never a silent 1.0), and which work moment-opt
    skipped (from its details; docs/theory.md §13.1)."""
    det = r.details
    parts = []
    sk = det.get("skipped")
    if sk is not None:
        n_sdp = int(det.get("n_sdp", 0))
        why = {"one": "a Cantelli term is 1", "cap": "largest term + Cantelli rest reach "
               "the union cap", "D": "bound D's truncated union is below the SDP's lower "
               "bound"}
        done = [f"{v} {why[k]}" for k, v in sk.items() if v]
        if done:
            parts.append(f"SDP solved for {n_sdp} cluster(s), skipped for "
                         f"{sum(sk.values())} ({'; '.join(done)})")
        if det.get("from_D"):
            parts.append(f"{det['from_D']} cluster(s) take bound D's value "
                         "(per-cluster minimum, docs/theory.md §13.1)")
    one = np.flatnonzero(r.per_task >= 1.0)
    if one.size:
        parts.append(f"1 on {one.size} task(s) (e.g. task {int(one[0])}): " + _WHY_ONE.get(
            name, "every cluster's term is 1 (its radius reaches half its separation)"))
    return "; ".join(parts)


_UNION = "the union of Cantelli terms over the foreign centroids reaches 1 on every cluster"
#: why a bound is 1 on a task (docs/theory.md §2-§3.7)
_WHY_ONE = {
    "C": _UNION,
    "D": _UNION + ", and no truncation radius brings Markov + truncated union below 1",
    "moment-opt": _UNION + ", bound D is 1, and the SDP over the largest terms plus the "
                  "Cantelli rest reaches 1",
    "corollary": "m / (1 + delta_t^2) < 1 needs the separation factor delta_t > sqrt(m - 1)",
    "G-cantelli": "at every threshold r the own Cantelli term plus the m - 1 foreign ones "
                  "reach 1",
    "G-emp": "at every threshold the own tail plus the m - 1 foreign tails reach 1",
}


def _new_table(sf: ScoreFile, inputs: BoundInputs) -> Table:
    err_t, err = empirical_error(sf.scores, sf.task)
    try:
        st = inputs.score_stats()  # cached on ``inputs``: the score bounds reuse it
    except ValueError as exc:
        raise RunDirError(f"{sf.rel}: {' '.join(str(exc).split())}") from None
    return Table(sf.split, sf.mode, sf.kind, sf.rel, sf.n, st.n_t, err_t, float(err),
                 np.asarray(st.delta_t, dtype=np.float64))


# ------------------------------------------------------------------ main entry
def check_run(
    data: RunData,
    *,
    splits: tuple[str, ...] = ("calibration", "test"),
    names: list[str] | None = None,
    delta: float = 0.05,
    diag_seed: int = 0,
    jobs: int = 1,
) -> Report:
    """Evaluate the bounds of ``data`` for ``splits`` (see the module docstring).

    ``jobs``: processes evaluating the independent parts (:mod:`bounds.check.work`); the
    report is the same for every value."""
    from .jobs import value
    from .work import compute

    groups = bound_groups()
    wanted = set(REGISTRY) if names is None else set(names)
    sel = {g: [n for n in lst if n in wanted] for g, lst in groups.items()}
    warnings = list(data.warnings)
    tables: list[Table] = []
    done = compute(data, splits, sel, delta, diag_seed, jobs)
    train_res = value(done[("clusters", "train")]) if ("clusters", "train") in done else {}
    gauss_res = value(done[("mixtures",)]) if ("mixtures",) in done else {}
    for split in splits:
        sd = data.splits.get(split)
        if sd is None:
            continue
        if sd.clusters is not None and ("shared", "centroid") not in sd.scores:
            warnings.append(f"{sd.clusters_rel}: no shared-centroid.npz to compare with; "
                            "centroid-geometry bounds skipped")
        for (mode, kind), sf in sorted(sd.scores.items()):
            # distribution-free score bounds and PAC bounds (from the calibration split)
            tab = value(done[("table", split, mode, kind)])
            tables.append(tab)
            # centroid geometry ---------------------------------------------------
            if (mode, kind) == ("shared", "centroid") and sel["clusters"]:
                if sd.clusters is not None:
                    sizes = sd.clusters.task_sizes()
                    if not np.array_equal(sizes, tab.n_t):
                        raise RunDirError(
                            f"{sd.clusters_rel}: per-task point counts {sizes.tolist()[:8]} "
                            f"differ from {sf.rel} {tab.n_t.tolist()[:8]}; the statistics must "
                            "summarise the evaluated samples"
                        )
                    # the centroid-geometry bounds read only the cluster statistics
                    for name, r in value(done[("clusters", split)]).items():
                        tab.rows.append(_row(name, name, _category(name), "clusters-shared",
                                             r.per_task, r.overall, tab,
                                             note=skip_note(name, r)))
                else:
                    tab.notes.append(f"no {split}/clusters-shared.npz: guaranteed centroid "
                                     "bounds skipped")
                for name, r in train_res.items():
                    note = ("predictive: from training-time statistics, bounds the "
                            "train-split error, not guaranteed on this split")
                    extra = skip_note(name, r)
                    tab.rows.append(_row(f"train:{name}", name, "assumption", "train-clusters",
                                         r.per_task, r.overall, tab,
                                         note=f"{note}; {extra}" if extra else note))
                if data.train_clusters is None and data.train_note:
                    tab.notes.append(f"predictive centroid bounds skipped: {data.train_note}")
            # Gaussian mixtures ----------------------------------------------------
            if (mode, kind) == ("shared", "nll") and gauss_res:
                for name, r in gauss_res.items():
                    tab.rows.append(_row(name, name, "assumption", "mixtures", r.per_task,
                                         r.overall, tab,
                                         note="population bound under Assumption A.1"))
                if sd.reps is not None:
                    tab.diagnostics = value(value(done[("diag",)])[split])
                else:
                    tab.notes.append(f"A.1 diagnostics skipped: {sd.reps_note}")
    if not tables:
        raise RunDirError("eval: no score matrix for the selected split(s)")
    from .ladder import attach

    warnings.extend(attach(tables, data, seed=diag_seed, computed=done))

    violations, soft = [], []
    for tab in tables:
        for row in tab.rows:
            bad = [Violation(row.key, row.category, tab.split, tab.mode, tab.kind, int(t),
                             float(row.per_task[t]), float(tab.err_t[t]))
                   for t in np.flatnonzero(~row.holds_task)]
            if not row.holds_overall:
                bad.append(Violation(row.key, row.category, tab.split, tab.mode, tab.kind,
                                     None, row.overall, tab.err))
            (violations if row.category == "guaranteed" else soft).extend(bad)
            if bad and row.category != "guaranteed":
                row.note = (row.note + "; " if row.note else "") + _soft_reason(row, tab, bad)
    return Report(data, delta, tables, violations, soft, warnings)


def _soft_reason(row: BoundRow, tab: Table, bad: list[Violation]) -> str:
    tasks = [v.task for v in bad if v.task is not None]
    if row.source == "mixtures":
        flagged = []
        if tab.diagnostics is not None:
            flagged = [t for t in tasks if tab.diagnostics["flag"][t]]
        extra = (f"; A.1 diagnostics flag task(s) {flagged}" if flagged else
                 "" if tab.diagnostics is None else
                 "; diagnostics do not flag these tasks (finite sample or fit mismatch)")
        return f"fails on task(s) {tasks or 'overall'}: Assumption A.1 is the likely reason{extra}"
    if row.source == "train-clusters":
        return (f"fails on task(s) {tasks or 'overall'}: the {tab.split} split is not "
                "distributed like the train split (shift or centroid over-fitting)")
    return (f"fails on task(s) {tasks or 'overall'}: possible with probability <= delta, "
            "or the calibration sample is not independent / representative")
