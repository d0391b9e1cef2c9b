"""What a sweep's cells cost: wall time per cell and per task step, and peak memory.

Read from each complete cell's ``run.json`` (``wall_seconds``) and ``tasks/NNN/done.json``
(``seconds``: one task step, wall; ``peak_rss_mib``: the process's peak resident memory so
far, absent in runs made before it was recorded; the local executor runs each cell in its
own process, while a Ray worker may have run other cells before, whose peak it carries).
``python -m cft report DIR`` adds the section to ``report.md`` and writes
``report-cost.csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.experiments.stats import csv_number, mean_std
from cft.run.rundir import read_json

__all__ = ["CostRow", "gather", "render_csv", "render_markdown"]


@dataclass(frozen=True)
class CostRow:
    preset: str
    method: str
    variant: str
    seeds: int
    wall_seconds: list[float]
    step_seconds: list[float]
    peak_rss_mib: float | None
    device: str


def _task_costs(path: Path) -> tuple[list[float], list[float]]:
    """(step seconds, peak RSS MiB) of every ``done.json`` of one run directory."""
    secs, peaks = [], []
    for done in sorted((path / L.TASKS).glob("*/" + L.DONE)):
        d = read_json(done)
        if isinstance(d.get("seconds"), (int, float)):
            secs.append(float(d["seconds"]))
        if isinstance(d.get("peak_rss_mib"), (int, float)):
            peaks.append(float(d["peak_rss_mib"]))
    return secs, peaks


def gather(groups: Sequence[Any]) -> list[CostRow]:
    """One row per report group (:class:`cft.experiments.report.Group`)."""
    rows = []
    for g in groups:
        walls, steps, peaks, devices = [], [], [], []
        for path in g.paths:
            info = read_json(path / L.RUN)
            if isinstance(info.get("wall_seconds"), (int, float)):
                walls.append(float(info["wall_seconds"]))
            devices.append(str(info.get("device", "?")))
            s, p = _task_costs(path)
            steps += s
            peaks += p
        rows.append(CostRow(g.preset, g.method, g.variant, len(g.paths), walls, steps,
                            max(peaks) if peaks else None,
                            "/".join(dict.fromkeys(devices))))
    return rows


def _num(x: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def render_markdown(rows: Sequence[CostRow]) -> str:
    out = ["## Cost", "",
           "Per cell: wall seconds of the whole run (mean over seeds); per task step: wall "
           "seconds of one task's training, fits and evaluation (mean and largest over every "
           "task of every seed); peak RSS: the largest `peak_rss_mib` of the cells' "
           "`done.json` (`-`: not recorded by the runs). From each cell's `run.json` and "
           "`tasks/*/done.json`.", "",
           "| preset | method | variant | seeds | device | s per cell | s per task step "
           "(mean / max) | peak RSS MiB |",
           "|---|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        step_mean = mean_std(r.step_seconds)[0]
        step = (f"{_num(step_mean, '{:.1f}')} / {_num(max(r.step_seconds), '{:.1f}')}"
                if r.step_seconds else "-")
        out.append(f"| {r.preset} | {r.method} | {r.variant} | {r.seeds} | {r.device} | "
                   f"{_num(mean_std(r.wall_seconds)[0])} | {step} | "
                   f"{_num(r.peak_rss_mib)} |")
    return "\n".join(out) + "\n"


def render_csv(rows: Sequence[CostRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["preset", "method", "variant", "seeds", "device", "wall_seconds_mean",
                "step_seconds_mean", "step_seconds_max", "n_steps", "peak_rss_mib"])
    for r in rows:
        w.writerow([r.preset, r.method, r.variant, r.seeds, r.device,
                    csv_number(mean_std(r.wall_seconds)[0]),
                    csv_number(mean_std(r.step_seconds)[0]),
                    csv_number(max(r.step_seconds) if r.step_seconds else None),
                    len(r.step_seconds), csv_number(r.peak_rss_mib)])
    return buf.getvalue()
