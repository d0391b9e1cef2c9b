"""Every table and number of README.md and docs/results.md, generated from the committed
files under ``results/`` (one command: ``make docs-results``).

A generated region of a document reads::

    <!-- results:NAME -->
    ...generated, do not edit...
    <!-- /results:NAME -->

and NAME names one renderer below. ``python scripts/docs_results.py`` rewrites every region;
``--check`` only reports regions whose text differs from what the results files give (exit
1), which ``tests/test_docs_results.py`` runs so that the documents cannot go stale.

``collect`` writes a results file from run directories (metrics.json and the test score
files)::

    python scripts/docs_results.py collect results/rules-genres-5.csv RUN_DIR [RUN_DIR ...]

one row per (run, retrieval rule): the stream (preset), seed, the rule, retrieval and
class-incremental accuracy after the last task, and the split of its retrieval errors into
those claimed by an earlier and by a later task (docs/theory.md §10).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
DOCS = (ROOT / "README.md", ROOT / "docs" / "results.md")
REGION = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def _compare_table() -> Callable[..., str]:
    spec = importlib.util.spec_from_file_location("compare_table",
                                                  ROOT / "scripts" / "compare_table.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.table


def _rows(name: str) -> list[dict[str, str]]:
    with open(RESULTS / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def compare(name: str) -> str:
    """``results/NAME.csv`` (``cft report``'s report.csv rows) as the comparison table; a
    sweep without ``proteus`` cells shows PROTEUS's rows from its ``keys`` cells (same
    modules, same seeds)."""
    return _compare_table()(_rows(f"{name}.csv"), from_keys=True) + "\n"


#: how the backbone comparison names each backbone (the presets' ``backbone.name``)
BACKBONE_LABELS = {"minilm": "MiniLM-L6", "mpnet": "all-mpnet-base-v2"}


def backbones(name: str) -> str:
    """``results/NAME.csv`` (``cft report``'s rows with their preset) beside the same
    methods' rows on each preset's MiniLM twin (``cft.config.presets.BACKBONE_TWINS``;
    its comparison is ``results/compare-TWIN.csv``): one table per stream, the backbone
    named in the first column."""
    sys.path.insert(0, str(ROOT))
    from cft.config import preset as make_preset
    from cft.config.presets import BACKBONE_TWINS

    rows = _rows(f"{name}.csv")
    table = _compare_table()
    out = []
    for name_ in dict.fromkeys(r["preset"] for r in rows):
        twin = BACKBONE_TWINS[name_]
        big, small = (BACKBONE_LABELS[make_preset(x).backbone.name] for x in (name_, twin))
        mine = [r for r in rows if r["preset"] == name_]
        methods = tuple(dict.fromkeys(r["method"] for r in mine))
        out += [f"`{name_}` against its MiniLM twin (`compare-{twin}.csv`):", "",
                table(_rows(f"compare-{twin}.csv"), from_keys=True, methods=methods,
                      label=small),
                table(mine, from_keys=True, label=big, header=False), ""]
    return "\n".join(out)


def text(name: str) -> str:
    """``results/NAME.txt`` verbatim, in a code block (a command's own output)."""
    return "```\n" + (RESULTS / f"{name}.txt").read_text(encoding="utf-8").rstrip() + "\n```\n"


def _pm(values: list[float]) -> str:
    v = 100 * np.asarray(values)
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def _unique_rows(name: str) -> list[dict[str, str]]:
    """The rows of ``results/NAME.csv`` (``collect``) in order, a (stream, seed, rule) seen
    twice kept once: the parameter-free rules of two runs that differ only in their learned
    rule are the same."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in _rows(f"{name}.csv"):
        out.setdefault((r["preset"], r["seed"], r["rule"]), r)
    return list(out.values())


def rules(name: str) -> str:
    """``results/NAME.csv`` (written by ``collect``): one row per (stream, rule), mean ± std
    over seeds."""
    rows = _unique_rows(name)
    out = ["| stream | retrieval rule | seeds | task retrieval last | CIL last | errors "
           "claimed by an earlier task | by a later task |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for preset, rule in dict.fromkeys((r["preset"], r["rule"]) for r in rows):
        rs = [r for r in rows if (r["preset"], r["rule"]) == (preset, rule)]
        cells = [_pm([float(r[k]) for r in rs])
                 for k in ("retrieval_last", "ci_last", "earlier", "later")]
        out.append(f"| {preset} | {rule} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


#: the PAC table: level delta and the bound / error ratio a calibration size is sized for
PAC_DELTA, PAC_RATIO = 0.05, 1.25


def _cp(k: float, n: float) -> float:
    """One-sided Clopper-Pearson upper limit at ``PAC_DELTA`` (bounds.pac's pooled bound)."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(1.0 - PAC_DELTA, k + 1, n - k))


def _n_needed(rate: float) -> int:
    """The smallest calibration size whose pooled Clopper-Pearson bound at the same error
    rate is at most ``PAC_RATIO`` times it (doubling, then bisection)."""
    if rate <= 0:
        return 0
    ok = lambda n: _cp(round(rate * n), n) <= PAC_RATIO * rate  # noqa: E731
    hi = 16
    while not ok(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def pac(name: str) -> str:
    """The PAC tier of ``results/NAME.csv`` (``collect``): per (stream, rule, seed), the pooled
    Clopper-Pearson bound from the calibration split, its ratio to the test error, and the
    calibration size the same error rate would need for a ratio of ``PAC_RATIO``."""
    out = [f"| stream | retrieval rule | seed | test error | calibration errors / size | "
           f"pooled Clopper-Pearson (delta {PAC_DELTA}) | bound / test error | calibration "
           f"size for x{PAC_RATIO} at the calibration rate |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in _unique_rows(name):
        k, n, e = int(r["cal_errors"]), int(r["cal_n"]), float(r["test_error"])
        b = _cp(k, n)
        out.append(f"| {r['preset']} | {r['rule']} | {r['seed']} | {e:.3f} | {k} / {n} | "
                   f"{b:.3f} | {b / e:.2f} | {_n_needed(k / n)} |" if e > 0 else
                   f"| {r['preset']} | {r['rule']} | {r['seed']} | 0 | {k} / {n} | {b:.3f} | "
                   f"- | - |")
    return "\n".join(out) + "\n"


def device(name: str) -> str:
    """``results/NAME.json`` (``scripts/device_mpnet.sh``'s output) as a timing table."""
    d = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    env = d["env"]
    out = [f"{d['note']}. Machine: {env['gpu']}, {env['cpu_threads']} CPU threads, torch "
           f"{env['torch']}.", "",
           "| step | cpu fp32 (s) | cuda fp32 (s) | cuda bf16 (s) | speed-up fp32 | "
           "speed-up bf16 |",
           "|---|---:|---:|---:|---:|---:|"]
    mb, sp = d["microbench"], d["speedup_microbench"]
    for key, label in (("encode_lower_s_per_batch64", "lower layers, batch of 64"),
                       ("train_step_s_per_batch32", "one training step, batch of 32"),
                       ("upper_adapted_s_per_batch64", "adapted upper layers, batch of 64")):
        out.append(f"| {label} | {mb['cpu-fp32'][key]:.4f} | {mb['cuda-fp32'][key]:.4f} | "
                   f"{mb['cuda-bf16'][key]:.4f} | {sp['cuda-fp32'][key]:.1f}x | "
                   f"{sp['cuda-bf16'][key]:.1f}x |")
    g, c = d["run_gpu"], d["run_cpu"]
    out += ["", f"Whole `wordnet-mpnet` run, 5 tasks: {sum(g['task_seconds']):.1f} s of task "
                f"steps on the GPU against {sum(c['task_seconds']):.1f} s on the CPU "
                f"(task 0, the first, end to end: {d['speedup_task1_end_to_end']:.2f}x; the "
                f"signature and head fits stay on the CPU); peak GPU memory "
                f"{g['peak_gpu_mib']:.0f} MiB."]
    return "\n".join(out) + "\n"


def vocabulary(name: str) -> str:
    """The tiers, bounds and predictions of the bounds registry, one line each."""
    sys.path.insert(0, str(ROOT))
    from bounds.vocabulary import markdown

    return markdown()


RENDER: dict[str, Callable[[str], str]] = {"compare": compare, "text": text, "rules": rules,
                                            "device": device, "pac": pac, "vocabulary": vocabulary,
                                            "backbones": backbones}


def render(name: str) -> str:
    """The generated text of region ``NAME`` = ``<renderer>.<results file stem>``."""
    kind, _, stem = name.partition(".")
    if kind not in RENDER:
        raise ValueError(f"region {name!r}: unknown renderer {kind!r} (have {sorted(RENDER)})")
    return RENDER[kind](stem)


def update(check: bool = False) -> list[str]:
    """Rewrite (or with ``check`` only compare) every region; the names that differ."""
    stale = []
    for doc in DOCS:
        old = doc.read_text(encoding="utf-8")
        new = REGION.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), old)
        if new != old:
            stale += [f"{doc.relative_to(ROOT)}:{m.group(2)}" for m in REGION.finditer(old)
                      if m.group(3) != render(m.group(2))]
            if not check:
                doc.write_text(new, encoding="utf-8")
    return stale


def collect(out: Path, run_dirs: list[Path]) -> None:
    """Write ``out`` (CSV) from run directories: one row per (run, rule)."""
    sys.path.insert(0, str(ROOT))
    from bounds import empirical_error
    from bounds.claims import claim_split

    rows = []
    for rd in run_dirs:
        cfg = json.loads((rd / "config.json").read_text())
        met = json.loads((rd / "metrics.json").read_text())
        step = rd / "eval" / f"step-{int(met['step']):03d}" / "test"
        for mode, summ in met["summary"].items():
            if mode == "task_aware" or "retrieval_last" not in summ:
                continue
            for f in sorted(step.glob(f"{mode}-*.npz")):
                kind = f.stem.split("-", 1)[1]
                if mode in ("adapted", "shared") and kind != met["kind"]:
                    continue  # the summary's kind
                with np.load(f, allow_pickle=False) as z:
                    cl = claim_split(z["scores"], z["task"])
                    test_err = empirical_error(z["scores"], z["task"])[1]
                with np.load(step.parent / "calibration" / f.name, allow_pickle=False) as z:
                    n_cal = len(z["task"])
                    k_cal = round(empirical_error(z["scores"], z["task"])[1] * n_cal)
                pi = cl["n_t"] / cl["n_t"].sum()
                rows.append({"preset": cfg.get("preset"), "seed": cfg.get("seed"),
                             "rule": f"{mode}-{kind}", "retrieval_last": summ["retrieval_last"],
                             "ci_last": summ["ci_last"], "earlier": float(pi @ cl["earlier"]),
                             "later": float(pi @ cl["later"]), "test_error": test_err,
                             "cal_n": n_cal, "cal_errors": k_cal})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    c = sub.add_parser("collect", help="write a results CSV from run directories")
    c.add_argument("out", type=Path)
    c.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--check", action="store_true", help="report stale regions, change nothing")
    args = p.parse_args(argv)
    if args.cmd == "collect":
        collect(args.out, args.runs)
        return 0
    stale = update(check=args.check)
    for s in stale:
        print(f"{'stale' if args.check else 'updated'}: {s}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    raise SystemExit(main())
