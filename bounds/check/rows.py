"""The checker's rows and tables (:class:`BoundRow`, :class:`Table`, :class:`Report`,
:class:`Violation`), the tolerance, and the notes that say why a bound is 1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import REGISTRY, BoundInputs, empirical_error
from .rundir import RunData, RunDirError, ScoreFile

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
    #: tier-4 predictions (``bounds.check.ladder.PredRow``, added by
    #: ``bounds.check.ladder.attach``) and the earlier/later claim split
    #: (``ladder.table_claims``, computed by the table's work item; ``attach`` adds its
    #: training-time bound)
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
    skipped (from its details; docs/theory.md §14.1)."""
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
                         "(per-cluster minimum, docs/theory.md §14.1)")
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
