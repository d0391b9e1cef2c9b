"""Sweeps: presets x methods x override grid x seeds, every cell a resumable run directory.

``python -m cft sweep SPEC --out DIR [--executor local|ray] [--workers N] [--address ADDR]``

SPEC is a small TOML file::

    presets = ["wordnet-fine-5", "wordnet-fine-10"]   # required
    methods = ["proteus", "lora"]                      # default ["proteus"]
    seeds = [0, 1, 2]                                  # or a count: seeds = 3 (0, 1, 2)
    overrides = ["train.epochs=2"]                     # applied to every cell
    [grid]                                             # optional: every combination
    "signature.family" = ["dpgmm", "kmeans"]
    [resources]                                        # per cell (ray executor)
    cpus = 1
    gpus = 0

A cell is ``preset x method x grid point x seed``; its configuration is resolved exactly as
``python -m cft run --preset P --seed S method=M <overrides> <grid point>`` would, and its
run directory is ``DIR/cells/<preset>/<method>/<variant>/seed-<S>`` (``variant`` is
``base`` without a grid, else ``key=value,...``).  DIR also holds:

* ``sweep.json``: the manifest (the latest spec and every cell ever declared in DIR);
* ``logs/<cell id with / as __>.log``: the output of every attempt of a cell;
* ``results.jsonl``, ``report.md``, ``report.csv``, ``report.png``: :mod:`cft.experiments.report`.

Rerunning the same command skips complete cells and resumes unfinished ones (each cell is
an ordinary ``cft run`` directory).  Executors:

* ``local`` (default): ``--workers N`` cells at a time, each in its own process
  (``python -m cft.experiments.sweep cell DIR CELL``); a crashed or killed cell does not stop
  the others.
* ``ray``: each cell is one Ray task (``num_cpus`` / ``num_gpus`` from ``[resources]``,
  a fresh worker process per cell).  A task whose worker or node is lost is retried
  (``--retries``) and resumes from its run directory, so DIR must be on a filesystem every
  node sees.  Without ``--address`` a local Ray runtime with ``--workers`` CPUs is started.

Test hook: ``CFT_SWEEP_KILL=CELL_ID@T`` makes the first attempt of that cell kill its own
process (SIGKILL) right after task ``T``'s training, like a lost node.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cft.config.validation import check_int
from cft.experiments.cell import KILL_ENV, _cell_main, run_cell
from cft.experiments.executors import EXECUTORS, CellOutcome, run_local, run_ray
from cft.experiments.sweep_spec import (
    LOGS,
    Cell,
    Resources,
    SweepSpec,
    cell_state,
    load_manifest,
    load_spec,
    manifest_cells,
    parse_spec,
    write_manifest,
)

__all__ = [
    "KILL_ENV",
    "Cell",
    "CellOutcome",
    "Resources",
    "SweepSpec",
    "cell_state",
    "load_manifest",
    "load_spec",
    "manifest_cells",
    "parse_spec",
    "run_cell",
    "run_sweep",
    "write_manifest",
]

Echo = Callable[[str], None]


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out: Path
    cells: list[Cell]
    outcomes: list[CellOutcome]

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def run_sweep(spec: SweepSpec, out: str | os.PathLike[str], *, executor: str = "local",
              workers: int = 1, retries: int | None = None, address: str | None = None,
              echo: Echo | None = None) -> SweepResult:
    """Run (or resume) every cell of ``spec`` under ``out``; see the module docstring.

    ``retries``: extra attempts of a cell whose process died (default 0 local, 3 ray).
    """
    echo = echo or (lambda s: print(s, flush=True))
    if executor not in EXECUTORS:
        raise ValueError(f"--executor: must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    check_int("--workers", workers, minimum=1)
    if retries is None:
        retries = 3 if executor == "ray" else 0
    if retries < 0:
        raise ValueError(f"--retries: must be >= 0, got {retries}")
    if address is not None and executor != "ray":
        raise ValueError("--address: only with --executor ray")
    outp = Path(out)
    cells = write_manifest(outp, spec)
    states = {c.id: cell_state(outp, c) for c in cells}
    todo = [c for c in cells if states[c.id][0] != "complete"]
    n_resume = sum(states[c.id][0] == "partial" for c in todo)
    echo(f"sweep {outp}: {len(cells)} cells, {len(cells) - len(todo)} already complete, "
         f"{len(todo)} to run ({n_resume} resuming); executor {executor}, "
         f"{workers} worker{'s' if workers != 1 else ''}")
    outcomes = [CellOutcome(c.id, "skipped") for c in cells if states[c.id][0] == "complete"]
    lock = threading.Lock()
    counter = {"started": 0, "finished": 0}
    total = len(todo)

    def start(cell: Cell) -> None:
        state, done, m = states[cell.id]
        with lock:
            counter["started"] += 1
            how = "new" if state == "new" else f"resuming at task {done} ({done} of {m} done)"
            echo(f"[{counter['started']}/{total}] start {cell.id} ({how})")

    def report(cell: Cell, oc: CellOutcome) -> None:
        with lock:
            counter["finished"] += 1
            head = f"[{counter['finished']}/{total}] {cell.id}:"
            if oc.status == "complete":
                s = oc.summary or {}
                extra = ""
                modes = [m for m, v in s.items()
                         if m != "task_aware" and isinstance(v, dict) and "ci_last" in v]
                if modes:  # adapted / shared (/ a learned rule), or merged (no retrieval)
                    extra = " | CIL last " + " ".join(f"{m} {s[m]['ci_last']:.3f}"
                                                      for m in modes)
                echo(f"{head} complete in {oc.seconds:.1f}s{extra}")
            else:
                echo(f"{head} FAILED after {oc.attempts} attempt(s): {oc.message}")

    if todo:
        if executor == "local":
            outcomes += run_local(outp, todo, workers, retries, report, start)
        else:
            outcomes += run_ray(outp, todo, workers, retries, address, spec.resources,
                                 report, start)
    order = {c.id: i for i, c in enumerate(cells)}
    outcomes.sort(key=lambda o: order[o.id])
    res = SweepResult(outp, cells, outcomes)
    n_ok = sum(o.status != "failed" for o in outcomes)
    echo(f"sweep {outp}: {n_ok}/{len(cells)} cells complete"
         + (f", {len(res.failed)} failed (rerun the same command to resume them; logs in "
            f"{outp / LOGS})" if res.failed else ""))
    return res


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "cell":
        raise SystemExit(_cell_main(sys.argv[2:]))
    print("usage: python -m cft.experiments.sweep cell DIR CELL_ID (use `python -m cft sweep`)",
          file=sys.stderr)
    raise SystemExit(2)
