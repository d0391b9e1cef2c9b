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

from .. import REGISTRY, BoundInputs, empirical_error, evaluate
from .. import rundir_schema as L
from .diagnostics import A1Expectation, a1_diagnostics
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


def _evaluate(inputs: BoundInputs, names: list[str], what: str) -> dict:
    try:
        return evaluate(inputs, names=names) if names else {}
    except ValueError as exc:
        raise RunDirError(f"{what}: {' '.join(str(exc).split())}") from None


def _inputs(what: str, **kw: Any) -> BoundInputs:
    try:
        return BoundInputs(**kw)
    except ValueError as exc:
        raise RunDirError(f"{what}: {' '.join(str(exc).split())}") from None


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
) -> Report:
    """Evaluate the bounds of ``data`` for ``splits`` (see the module docstring)."""
    groups = bound_groups()
    wanted = set(REGISTRY) if names is None else set(names)
    sel = {g: [n for n in lst if n in wanted] for g, lst in groups.items()}
    warnings = list(data.warnings)
    tables: list[Table] = []

    train_res: dict = {}
    if data.train_clusters is not None and sel["clusters"]:
        what = f"{L.TASKS}/*/{L.TRAIN_CLUSTERS}"
        train_res = _evaluate(_inputs(what, clusters=data.train_clusters, delta=delta),
                              sel["clusters"], what)
    gauss_res: dict = {}
    expectation = None
    if data.mixtures is not None and sel["mixtures"]:
        what = data.mixtures_rel or L.MIXTURES
        gauss_res = _evaluate(_inputs(what, mixtures=data.mixtures, delta=delta),
                              sel["mixtures"], what)
        expectation = A1Expectation(data.mixtures, seed=diag_seed)

    for split in splits:
        sd = data.splits.get(split)
        if sd is None:
            continue
        if sd.clusters is not None and ("shared", "centroid") not in sd.scores:
            warnings.append(f"{sd.clusters_rel}: no shared-centroid.npz to compare with; "
                            "centroid-geometry bounds skipped")
        for (mode, kind), sf in sorted(sd.scores.items()):
            inputs = _inputs(sf.rel, scores=sf.scores, task=sf.task, delta=delta)
            tab = _new_table(sf, inputs)
            tables.append(tab)
            # distribution-free score bounds -------------------------------------
            res = _evaluate(inputs, sel["scores"], sf.rel)
            for name, r in res.items():
                tab.rows.append(_row(name, name, _category(name), "scores", r.per_task,
                                     r.overall, tab))
            # PAC bounds from the calibration split -------------------------------
            cal = data.splits.get("calibration")
            if split == "test" and sel["pac"]:
                csf = cal.scores.get((mode, kind)) if cal is not None else None
                if csf is None:
                    tab.notes.append("PAC bounds skipped: no calibration scores for "
                                     f"{mode}-{kind}")
                else:
                    # the PAC bounds read only the calibration sample
                    inp = _inputs(csf.rel, cal_scores=csf.scores, cal_task=csf.task,
                                  delta=delta)
                    for name, r in _evaluate(inp, sel["pac"], csf.rel).items():
                        tab.rows.append(_row(
                            name, name, "pac", "calibration-scores", r.per_task, r.overall,
                            tab, note=f"holds with probability >= 1 - delta = {1 - delta:g} "
                            "over the calibration draw"))
                        if "pooled" in r.details:  # overall: no union over tasks needed
                            row = _row(f"{name}:pooled", name, "pac", "calibration-scores",
                                       r.per_task, r.details["pooled"], tab,
                                       note="overall = one bound on the pooled calibration "
                                       "sample at level delta (calibration task weights)")
                            row.overall = row.overall_native
                            row.holds_overall = row.overall >= tab.err - TOL
                            tab.rows.append(row)
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
                    inp = _inputs(sd.clusters_rel or "clusters", clusters=sd.clusters,
                                  delta=delta)
                    for name, r in _evaluate(inp, sel["clusters"], sd.clusters_rel).items():
                        tab.rows.append(_row(name, name, _category(name), "clusters-shared",
                                             r.per_task, r.overall, tab))
                else:
                    tab.notes.append(f"no {split}/clusters-shared.npz: guaranteed centroid "
                                     "bounds skipped")
                for name, r in train_res.items():
                    tab.rows.append(_row(
                        f"train:{name}", name, "assumption", "train-clusters", r.per_task,
                        r.overall, tab,
                        note="predictive: from training-time statistics, bounds the "
                             "train-split error, not guaranteed on this split"))
                if data.train_clusters is None and data.train_note:
                    tab.notes.append(f"predictive centroid bounds skipped: {data.train_note}")
            # Gaussian mixtures ----------------------------------------------------
            if (mode, kind) == ("shared", "nll") and gauss_res:
                for name, r in gauss_res.items():
                    tab.rows.append(_row(name, name, "assumption", "mixtures", r.per_task,
                                         r.overall, tab,
                                         note="population bound under Assumption A.1"))
                if sd.reps is not None and expectation is not None:
                    tab.diagnostics = a1_diagnostics(data.mixtures, sd.reps,
                                                     expectation=expectation)
                else:
                    tab.notes.append(f"A.1 diagnostics skipped: {sd.reps_note}")
    if not tables:
        raise RunDirError("eval: no score matrix for the selected split(s)")
    from .ladder import attach

    warnings.extend(attach(tables, data, seed=diag_seed))

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
