"""The README's "How PROTEUS compares" table from a sweep's ``report.csv``.

    python -m cft report DIR            # writes DIR/report.csv (every metric)
    python scripts/compare_table.py DIR [--from-keys]

A sweep over several presets gets one table per preset, each under its name.

One row per (method, retrieval rule): task retrieval (last, AIA, forgetting),
class-incremental (CIL) accuracy (last, AIA, forgetting), task-aware last; mean ± std over
seeds, in %. Methods with no
task retrieval show ``n/a`` in the retrieval column (their CIL is the merged module's).
``--from-keys``: also give PROTEUS's rows from the ``keys`` cells when the sweep has no
``proteus`` cells (method ``keys`` runs the PROTEUS modules and both parameter-free rules
unchanged, with the same seeds: its adapted / shared metrics are PROTEUS's).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

#: the parameter-free rules; a learned rule's mode (``eval.rule``, e.g. ``keys``) is found
#: in report.csv; ``merged`` = no task retrieval (row label ``n/a``)
PARAMETER_FREE = ("adapted", "shared")
ORDER = ("proteus", "keys", "lora", "seq-lora", "o-lora", "inflora", "sd-lora", "ranpac",
         "joint")


def _cell(stats: dict[str, tuple[float, float, int]], metric: str | None) -> str:
    if metric is None:
        return "n/a"
    if metric not in stats:
        return "-"
    mean, std, n = stats[metric]
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if n > 1 else f"{100 * mean:.1f}"


HEADER = ("| method | retrieval rule | seeds | task retrieval last | task retrieval AIA | "
          "task retrieval forgetting | CIL last | CIL AIA | CIL forgetting | task-aware last |")


def table(rows: list[dict[str, str]], from_keys: bool = False, *,
          methods: tuple[str, ...] | None = None, label: str | None = None,
          header: bool = True) -> str:
    """The Markdown table of ``rows``; ``methods``: only these methods; ``label``: a first
    column with this text on every row (e.g. the backbone); ``header=False``: rows only."""
    by: dict[str, dict[str, tuple[float, float, int]]] = {}
    for r in rows:
        std = float(r["std"]) if r["std"] not in ("", "nan") else 0.0
        by.setdefault(r["method"], {})[r["metric"]] = (float(r["mean"]), std, int(r["n"]))
    if from_keys and "proteus" not in by and "keys" in by:
        by["proteus"] = {k: v for k, v in by["keys"].items()
                         if k.split(".", 1)[0] in (*PARAMETER_FREE, "task_aware")}
    lead = "| " if label is None else f"| {label} | "
    out = [("| backbone " if label is not None else "") + HEADER,
           "|---" * (label is not None) + "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
           ] if header else []
    for m in [x for x in ORDER if x in by] + sorted(set(by) - set(ORDER)):
        if methods is not None and m not in methods:
            continue
        st = by[m]
        modes = sorted({k.rsplit(".", 1)[0] for k in st if k.endswith(".ci_last")})
        learned = [x for x in modes if x not in (*PARAMETER_FREE, "merged")]
        # a learned rule runs on PROTEUS's modules: its method's parameter-free rows repeat
        # proteus's (same seeds), so only the learned rule's rows are shown
        shown = learned or [x for x in (*PARAMETER_FREE, "merged") if x in modes]
        for mode in shown:
            ret = None if mode == "merged" else mode
            n = st[f"{mode}.ci_last"][2]
            rets = " | ".join(_cell(st, ret and f"{ret}.retrieval_{x}")
                              for x in ("last", "aia", "forgetting"))
            out.append(f"{lead}{m} | {ret or 'n/a'} | {n} | {rets} | "
                       f"{_cell(st, f'{mode}.ci_last')} | {_cell(st, f'{mode}.ci_aia')} | "
                       f"{_cell(st, f'{mode}.ci_forgetting')} | {_cell(st, 'task_aware.last')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="sweep directory with report.csv (python -m cft report DIR)")
    p.add_argument("--from-keys", action="store_true",
                   help="PROTEUS rows from the keys cells when there are no proteus cells")
    args = p.parse_args(argv)
    path = Path(args.dir) / "report.csv"
    if not path.is_file():
        print(f"compare_table: error: {path}: missing (run python -m cft report "
              f"{args.dir})", file=sys.stderr)
        return 2
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    presets = list(dict.fromkeys(r.get("preset", "") for r in rows))
    if len(presets) <= 1:  # one preset (or an empty report: the header alone)
        print(table(rows, from_keys=args.from_keys))
        return 0
    for i, preset in enumerate(presets):  # a sweep over several presets: one table each
        print(("\n" if i else "") + f"## {preset}\n")
        print(table([r for r in rows if r.get("preset", "") == preset],
                    from_keys=args.from_keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
