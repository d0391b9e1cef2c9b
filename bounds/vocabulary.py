"""One name and one line for every tier, bound and prediction, read from the registry.

``python -m bounds.check --help``, the ladder's header, the JSON and the documents
(README.md, docs/theory.md §11) all take their words from here (docs/theory.md §11).

The ladder has three tiers of guarantees plus two kinds of rows that guarantee nothing on
data:

* **1 sample-exact**: exact on the evaluated sample (its score matrix, or the cluster
  statistics of the evaluated split itself); a violation is a bug;
* **2 PAC**: the population error with probability at least ``1 - delta``, from the held-out
  calibration split;
* **3 training-time**: computed from statistics stored while each task's data was there
  (rows named ``train:NAME``); exact on that task's train sample;
  (a bound that reads scores appears there too, on the training-time score matrices);
* **assumption**: holds when a stated assumption holds (A.1); checked by diagnostics;
* **prediction**: an estimate, scored against the realised error; never a bound.

A registered bound declares, as ``Bound.tier``, what it is exact on: ``sample-exact``
(reads scores), ``training-time`` (reads cluster statistics, the kind a run stores at
training time: exact on the sample they describe, hence tier 1 on the evaluated split's own
statistics and tier 3 as ``train:NAME`` on the stored ones), ``pac``, ``assumption``,
``prediction``.
"""

from __future__ import annotations

__all__ = ["LADDER", "bound_tiers", "help_lines", "markdown"]

#: ladder tier -> (number or None, one line)
LADDER: dict[str, tuple[int | None, str]] = {
    "sample-exact": (1, "exact on the evaluated sample (its scores, or its own cluster "
                        "statistics); a violation is a bug"),
    "PAC": (2, "the population error with probability >= 1 - delta, from the calibration "
               "split"),
    "training-time": (3, "from statistics stored while each task's data was there "
                         "(train:NAME); exact on that train sample"),
    "assumption": (None, "holds when a stated assumption holds (A.1), checked by "
                         "diagnostics; guarantees nothing on data"),
    "prediction": (None, "an estimate from the training-time statistics, scored against "
                         "the realised error; never a bound"),
}

#: a bound's registry tier -> the ladder tiers of its rows
_ROWS = {"sample-exact": ("sample-exact", "training-time"),
         "training-time": ("sample-exact", "training-time"),
         "pac": ("PAC",), "assumption": ("assumption",), "prediction": ("prediction",)}


def bound_tiers(tier: str) -> tuple[str, ...]:
    """The ladder tiers where a bound of registry tier ``tier`` appears."""
    return _ROWS[tier]


def _entries() -> list[tuple[str, str, str]]:
    """(name, ladder tiers, one line) of every registered bound, then every prediction."""
    from . import REGISTRY
    from .predict import PREDICTORS

    out = [(name, " / ".join(bound_tiers(b.tier)), b.title) for name, b in REGISTRY.items()]
    out += [(name, "prediction", f"{rule}: {what}") for name, (rule, what) in
            PREDICTORS.items()]
    return out


def help_lines() -> list[str]:
    """The tiers and then every bound and prediction, one line each (``--help``)."""
    lines = ["tiers:"]
    lines += [f"  {str(n) if n else '-'} {name:<14} {what}" for name, (n, what) in LADDER.items()]
    lines.append("bounds and predictions (name, ladder tiers, what it is):")
    lines += [f"  {name:<20} {tiers:<28} {what}" for name, tiers, what in _entries()]
    return lines


def markdown() -> str:
    """The same as two Markdown tables (the README's vocabulary)."""
    out = ["| tier | what it guarantees |", "|---|---|"]
    out += [f"| {(str(n) + ' ') if n else ''}{name} | {what} |"
            for name, (n, what) in LADDER.items()]
    out += ["", "| name | ladder tier | what it is |", "|---|---|---|"]
    out += [f"| `{name}` | {tiers} | {what} |" for name, tiers, what in _entries()]
    return "\n".join(out) + "\n"
