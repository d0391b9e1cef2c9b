"""Aggregate a sweep directory: Markdown and CSV tables over seeds, and a plot against m.

``python -m cft report DIR [--metrics a,b,...] [--plot a,b,...]``

Cells come from ``DIR/sweep.json`` (:mod:`cft.experiments.sweep_spec`); without a manifest every run
directory below DIR (a folder with ``run.json``) is a cell, grouped by its preset and method.
Only complete cells (``run.json`` status ``complete``) count; the others are listed.

Per group (preset, method, variant) and metric, over the seeds: the mean, the sample
standard deviation (``ddof=1``) and the 95 % Student-t interval
``mean +- t_{0.975, n-1} std / sqrt(n)`` (none with a single seed).  Metrics are the
``summary`` of each cell's ``metrics.json`` (test split, final step; fractions in the CSV,
percentages in the Markdown).

With ``--bounds`` (or where the cells already hold the checker's ``check.json``): the bound
tightness per rule over seeds (:mod:`cft.experiments.tightness`, ``DIR/report-bounds.csv``).

Writes ``DIR/report.md``, ``DIR/report.csv`` (one row per group and metric),
``DIR/report-cost.csv`` (seconds per cell and per task step, peak memory:
:mod:`cft.experiments.cost`, also a section of report.md),
``DIR/report.png`` (each metric against the number of tasks, one line per method and
grid point, task-count grid keys such as ``data.n_tasks`` aside; 95 % intervals as error
bars, cut at 0 and 100) and ``DIR/results.jsonl`` (the results line of every
complete cell, gathered from ``RUN_DIR/results.jsonl``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.experiments.stats import ci95, csv_number
from cft.run.rundir import RunDir, atomic_file, read_json

__all__ = ["METRICS", "Group", "Stat", "ReportResult", "build_report", "ci95", "report"]

#: the metrics of a retrieval mode's (or the merged) summary, with their column titles
MODE_KEYS = (("retrieval_last", "task last"), ("retrieval_aia", "task AIA"),
             ("retrieval_forgetting", "task forget"), ("ci_last", "CIL last"),
             ("ci_aia", "CIL AIA"), ("ci_forgetting", "CIL forget"))
#: metric name -> (summary path, Markdown column title): the parameter-free rules, the
#: merged methods (no task retrieval: summary "retrieval": "n/a") and task-aware; a learned
#: rule eval.rule = R is found in the summaries as mode R (:func:`metric_info`,
#: :func:`csv_metrics`)
METRICS: dict[str, tuple[tuple[str, str], str]] = {
    f"{mode}.{key}": ((mode, key), f"{mode} {title}")
    for mode in ("adapted", "shared", "merged")
    for key, title in MODE_KEYS
    if mode != "merged" or key.startswith("ci_")
}
METRICS["task_aware.last"] = (("task_aware", "last"), "task-aware last")
METRICS["task_aware.aia"] = (("task_aware", "aia"), "task-aware AIA")


def metric_info(name: str) -> tuple[tuple[str, str], str]:
    """``((mode, key), column title)`` of a metric: one of :data:`METRICS`, or
    ``<mode>.<key>`` for a learned rule's mode ``<mode>`` and a key of :data:`MODE_KEYS`."""
    if name in METRICS:
        return METRICS[name]
    mode, _, key = name.rpartition(".")
    titles = dict(MODE_KEYS)
    if not mode or key not in titles:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(METRICS)}, or "
                         f"<rule>.<{'|'.join(titles)}> for a learned rule)")
    return (mode, key), f"{mode} {titles[key]}"


def csv_metrics(groups: Sequence[Group]) -> list[str]:
    """:data:`METRICS` and every metric of a mode the summaries hold beyond them (a learned
    retrieval rule registered under another name)."""
    known = {mode for (mode, _), _ in METRICS.values()}
    extra = sorted({mode for g in groups for summ in g.summaries for mode, v in summ.items()
                    if mode not in known and isinstance(v, dict) and "ci_last" in v})
    return [*METRICS, *(f"{mode}.{key}" for mode in extra for key, _ in MODE_KEYS)]


DEFAULT_TABLE = ("adapted.retrieval_last", "adapted.ci_last", "adapted.ci_aia",
                 "shared.retrieval_last", "shared.ci_last", "task_aware.last")
DEFAULT_PLOT = ("adapted.retrieval_last", "adapted.ci_last", "shared.ci_last")
CSV_FIELDS = ("preset", "dataset", "method", "variant", "n_tasks", "metric", "n", "mean",
              "std", "ci_low", "ci_high", "seeds")


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    std: float | None
    half: float | None
    seeds: tuple[int, ...]

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half


@dataclass
class Group:
    preset: str
    dataset: str
    method: str
    variant: str
    n_tasks: int
    #: grid items that name this group's plot line (task-count items left out)
    line: tuple[str, ...] = ()
    seeds: list[int] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    #: the cells' run directories, in the order of ``seeds``
    paths: list[Path] = field(default_factory=list)

    def stat(self, metric: str) -> Stat | None:
        (mode, key), _ = metric_info(metric)
        pairs = [(s, summ[mode][key]) for s, summ in zip(self.seeds, self.summaries)
                 if summ.get(mode, {}).get(key) is not None]
        if not pairs:
            return None
        mean, std, half = ci95([float(v) for _, v in pairs])
        return Stat(len(pairs), mean, std, half, tuple(s for s, _ in pairs))


@dataclass
class ReportResult:
    groups: list[Group]
    incomplete: list[tuple[str, str]]  # (cell id, state)
    markdown: str
    csv: str
    paths: dict[str, Path]
    #: bound tightness per (group, rule), from the cells' check.json (may be empty)
    tightness: list[Any] = field(default_factory=list)


#: grid keys that only change the number of tasks: such points share one plot line
TASK_COUNT_KEYS = ("data.n_tasks", "data.options.n_tasks")


def _cells(out: Path) -> list[tuple[str, Path, str, str, str, int, tuple[str, ...]]]:
    """``(id, run dir, preset, method, variant, seed, grid point)`` of every cell of DIR."""
    if (out / "sweep.json").is_file():
        from cft.experiments.sweep_spec import manifest_cells

        return [(c.id, out / c.dir, c.preset, c.method, c.variant, c.seed, c.point)
                for c in manifest_cells(out)]
    found = []
    for run_json in sorted(out.rglob(L.RUN)):
        d = run_json.parent
        try:
            cfg = read_json(d / L.CONFIG)
        except (FileNotFoundError, ValueError):
            continue
        found.append((d.relative_to(out).as_posix(), d, str(cfg.get("preset", "?")),
                      str(cfg.get("method", "?")), "base", int(cfg.get("seed", 0)), ()))
    return found


def build_report(out: str | os.PathLike[str], metrics: Sequence[str] = DEFAULT_TABLE
                 ) -> tuple[list[Group], list[tuple[str, str]], list[str]]:
    """Groups of complete cells, incomplete cells, and the gathered results lines."""
    outp = Path(out)
    if not outp.is_dir():
        raise ValueError(f"DIR: {str(outp)!r} is not a directory")
    for m in metrics:
        try:
            metric_info(m)
        except ValueError as e:
            raise ValueError(f"--metrics: {e}") from None
    cells = _cells(outp)
    if not cells:
        raise ValueError(f"DIR: no sweep.json and no run directory below {str(outp)!r}")
    groups: dict[tuple[str, str, str], Group] = {}
    incomplete: list[tuple[str, str]] = []
    lines: list[str] = []
    for cid, path, preset, method, variant, seed, point in cells:
        rd = RunDir(path)
        if not rd.exists():
            incomplete.append((cid, "not started"))
            continue
        info = rd.info()
        if info.get("status") != "complete" or not (path / L.METRICS).is_file():
            incomplete.append((cid, f"{info.get('status', '?')}, "
                                    f"{info.get('tasks_complete', 0)}/{info.get('n_tasks', '?')} "
                                    f"tasks"))
            continue
        met = read_json(path / L.METRICS)
        cfg = read_json(path / L.CONFIG)
        key = (preset, method, variant)
        g = groups.get(key)
        if g is None:
            line = tuple(x for x in point if x.split("=", 1)[0].strip() not in TASK_COUNT_KEYS)
            g = groups[key] = Group(preset, str(cfg.get("data", {}).get("name", "?")), method,
                                    variant, int(met["n_tasks"]), line=line)
        g.seeds.append(seed)
        g.summaries.append(met["summary"])
        g.paths.append(path)
        res = path / L.RESULTS
        if res.is_file():
            lines += [x for x in res.read_text(encoding="utf-8").splitlines() if x.strip()]
    ordered = sorted(groups.values(), key=lambda g: (g.dataset, g.n_tasks, g.preset, g.method,
                                                     g.variant))
    for g in ordered:
        trip = sorted(zip(g.seeds, g.summaries, g.paths), key=lambda p: p[0])
        g.seeds = [s for s, _, _ in trip]
        g.summaries = [m for _, m, _ in trip]
        g.paths = [p for _, _, p in trip]
    return ordered, incomplete, lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _cell_text(st: Stat | None) -> str:
    if st is None:
        return "-"
    if st.std is None:
        return _pct(st.mean)
    return f"{_pct(st.mean)} ± {_pct(st.std)} [{_pct(st.low)}, {_pct(st.high)}]"


def render_markdown(title: str, groups: list[Group], incomplete: list[tuple[str, str]],
                    metrics: Sequence[str] = DEFAULT_TABLE) -> str:
    n_cells = sum(len(g.seeds) for g in groups) + len(incomplete)
    out = [f"# Sweep report: {title}", "",
           f"{n_cells} cells: {n_cells - len(incomplete)} complete, {len(incomplete)} "
           f"incomplete. Test split after the last task, %: mean ± std over seeds "
           f"[95 % t-interval]; task = task-retrieval accuracy, CIL = class-incremental "
           f"accuracy.", ""]
    presets: list[str] = []
    for g in groups:
        if g.preset not in presets:
            presets.append(g.preset)
    for p in presets:
        gs = [g for g in groups if g.preset == p]
        out += [f"## {p} ({gs[0].dataset})", ""]
        heads = ["method", "variant", "tasks", "seeds", *[metric_info(m)[1] for m in metrics]]
        out.append("| " + " | ".join(heads) + " |")
        out.append("|" + "|".join(["---"] * 2 + ["---:"] * (2 + len(metrics))) + "|")
        for g in gs:
            row = [g.method, g.variant, str(g.n_tasks), str(len(g.seeds)),
                   *[_cell_text(g.stat(m)) for m in metrics]]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    if incomplete:
        out += ["## Incomplete cells", ""]
        out += [f"- `{cid}`: {state}" for cid, state in incomplete]
        out.append("")
    return "\n".join(out)


def render_csv(groups: list[Group], metrics: Sequence[str] | None = None) -> str:
    """Every metric of every group, one row each (``metrics``: default
    :func:`csv_metrics`)."""
    metrics = csv_metrics(groups) if metrics is None else metrics
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for g in groups:
        for m in metrics:
            st = g.stat(m)
            if st is None:
                continue
            w.writerow([g.preset, g.dataset, g.method, g.variant, g.n_tasks, m, st.n,
                        *map(csv_number, (st.mean, st.std, st.low, st.high)),
                        " ".join(map(str, st.seeds))])
    return buf.getvalue()


def plot(groups: list[Group], path: str | os.PathLike[str],
         metrics: Sequence[str] = DEFAULT_PLOT) -> None:
    """Each metric against the number of tasks; one line per (dataset,) method, variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({g.dataset for g in groups})
    lines: dict[tuple[str, str, tuple[str, ...]], list[Group]] = {}
    for g in groups:
        lines.setdefault((g.dataset, g.method, g.line), []).append(g)
    xs = sorted({g.n_tasks for g in groups})
    log_x = len(xs) > 1 and xs[-1] / max(xs[0], 1) >= 4
    n_lines = len(lines)

    def dodge(x: float, i: int) -> float:  # lines side by side, so equal points stay visible
        step = 0.015 * (i - (n_lines - 1) / 2)
        if log_x:
            return x * math.exp(step * math.log(xs[-1] / xs[0]))
        return x + step * max(xs[-1] - xs[0], 1)

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6),
                             squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, ((ds, method, line), gs) in enumerate(sorted(lines.items())):
            pts = sorted(((g.n_tasks, g.stat(m)) for g in gs), key=lambda p: p[0])
            pts = [(x, s) for x, s in pts if s is not None]
            if not pts:
                continue
            label = method + (f" [{', '.join(line)}]" if line else "")
            if len(datasets) > 1:
                label += f" ({ds})"
            ax.errorbar([dodge(x, i) for x, _ in pts], [100 * s.mean for _, s in pts],
                        yerr=[100 * (s.half or 0.0) for _, s in pts], marker="o",
                        capsize=3, label=label)
        ax.set_title(metric_info(m)[1])
        ax.set_xlabel("number of tasks")
        ax.set_ylabel("% (test)")
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.minorticks_off()
        lo, hi = ax.get_ylim()  # accuracies: intervals are cut at 0 and 100
        ax.set_ylim(max(lo, 0.0), min(hi, 100.0))
        ax.grid(alpha=0.3)
    if axes[0][0].get_legend_handles_labels()[0]:  # no line: a metric no cell holds
        axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
    with atomic_file(path) as fh:
        fh.write(buf.getvalue())


def report(out: str | os.PathLike[str], *, metrics: Sequence[str] = DEFAULT_TABLE,
           plot_metrics: Sequence[str] = DEFAULT_PLOT, write: bool = True,
           bounds: bool = False) -> ReportResult:
    """Aggregate DIR and write ``report.md``, ``report.csv``, ``report.png``, ``results.jsonl``
    and, where cells hold the checker's ``check.json`` (``bounds``: run the checker where it
    is missing), ``report-bounds.csv`` and the bound-tightness section of ``report.md``
    (:mod:`cft.experiments.tightness`)."""
    from cft.experiments import cost, tightness

    for m in plot_metrics:
        try:
            metric_info(m)
        except ValueError as e:
            raise ValueError(f"--plot: {e}") from None
    outp = Path(out)
    groups, incomplete, lines = build_report(outp, metrics)
    if not groups:
        raise ValueError(f"DIR: no complete cell in {str(outp)!r} yet "
                         f"({len(incomplete)} incomplete)")
    md = render_markdown(outp.resolve().name, groups, incomplete, metrics)
    text = render_csv(groups)
    paths = {"markdown": outp / "report.md", "csv": outp / "report.csv",
             "plot": outp / "report.png", "results": outp / "results.jsonl"}
    rows, missing = tightness.gather(
        groups, ensure=bounds and write,
        progress=lambda msg: print(f"cft report: {msg}", file=sys.stderr, flush=True))
    costs = cost.gather(groups)
    paths["cost"] = outp / "report-cost.csv"
    files = {"csv": text, "results": "".join(x + "\n" for x in lines),
             "cost": cost.render_csv(costs)}
    if rows or (bounds and write):
        md += "\n" + tightness.render_markdown(rows, missing)
        paths["bounds"] = outp / "report-bounds.csv"
        files["bounds"] = tightness.render_csv(rows)
    md += "\n" + cost.render_markdown(costs)  # the last section
    files["markdown"] = md
    if write:
        for key, content in files.items():
            with atomic_file(paths[key]) as fh:
                fh.write(content.encode("utf-8"))
        plot(groups, paths["plot"], plot_metrics)
    return ReportResult(groups, incomplete, md, text, paths, rows)
