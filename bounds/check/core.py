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

import numpy as np

from .. import REGISTRY
from .rundir import RunData, RunDirError

__all__ = ["TOL", "BoundRow", "Table", "Report", "Violation", "check_run", "bound_groups"]

from .rows import (
    TOL,
    BoundRow,
    Report,
    Table,
    Violation,
    _category,
    _row,
    bound_groups,
    skip_note,
)


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
