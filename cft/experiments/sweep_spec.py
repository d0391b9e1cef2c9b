"""A sweep's specification and manifest (``python -m cft sweep SPEC --out DIR``, README
"Sweeps and reports"): presets x methods x grid variants x seeds, each cell an ordinary run
directory under ``DIR/cells/<preset>/<method>/<variant>/seed-<S>``; ``DIR/sweep.json``
records the spec and the cells, so a rerun resumes the same cells.

Running the cells is :mod:`cft.experiments.sweep`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bounds import rundir_schema as L
from cft.run.atomic import now, read_json, write_json
from cft.run.rundir import RunDir

__all__ = ["CELLS", "LOGS", "MANIFEST", "SPEC_KEYS", "Cell", "Resources", "SweepSpec",
           "cell_state", "load_manifest", "load_spec", "manifest_cells", "parse_spec",
           "write_manifest"]

MANIFEST = "sweep.json"
CELLS = "cells"
LOGS = "logs"
SPEC_KEYS = ("presets", "methods", "seeds", "overrides", "grid", "resources")
_SAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


# ----------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class Resources:
    """What one cell asks of the executor (Ray: ``num_cpus``, ``num_gpus``)."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class SweepSpec:
    presets: tuple[str, ...]
    methods: tuple[str, ...] = ("proteus",)
    seeds: tuple[int, ...] = (0,)
    overrides: tuple[str, ...] = ()
    #: ``(dotted key, (value text, ...))`` in file order
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()
    resources: Resources = field(default_factory=Resources)

    def to_dict(self) -> dict[str, Any]:
        return {"presets": list(self.presets), "methods": list(self.methods),
                "seeds": list(self.seeds), "overrides": list(self.overrides),
                "grid": {k: list(v) for k, v in self.grid},
                "resources": asdict(self.resources)}

    def cells(self) -> list[Cell]:
        """Every cell, in the order preset, method, grid point, seed."""
        keys = [k for k, _ in self.grid]
        points = list(itertools.product(*[v for _, v in self.grid])) if keys else [()]
        out: list[Cell] = []
        for preset, method, point in itertools.product(self.presets, self.methods, points):
            extra = [f"{k}={v}" for k, v in zip(keys, point)]
            variant = _label(",".join(extra)) if extra else "base"
            for seed in self.seeds:
                out.append(Cell(id=f"{preset}/{method}/{variant}/seed-{seed}", preset=preset,
                                method=method, variant=variant, seed=seed,
                                overrides=(f"method={method}", *self.overrides, *extra),
                                point=tuple(extra)))
        return out


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: ``python -m cft run --preset P --seed S <overrides>``."""

    id: str
    preset: str
    method: str
    variant: str
    seed: int
    overrides: tuple[str, ...]
    #: the grid point (``key=value`` items; empty without a grid)
    point: tuple[str, ...] = ()

    @property
    def dir(self) -> str:
        """Run directory relative to the sweep directory."""
        return f"{CELLS}/{self.id}"

    @property
    def log_name(self) -> str:
        return self.id.replace("/", "__") + ".log"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        d["point"] = list(self.point)
        d["dir"] = self.dir
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Cell:
        return Cell(id=str(d["id"]), preset=str(d["preset"]), method=str(d["method"]),
                    variant=str(d["variant"]), seed=int(d["seed"]),
                    overrides=tuple(str(x) for x in d["overrides"]),
                    point=tuple(str(x) for x in d.get("point", ())))

    def resolve(self) -> Any:
        """The cell's resolved :class:`cft.config.Config` (progress bars off)."""
        from cft.run.resolve import resolve

        return resolve(self.preset, [*self.overrides, "output.progress=false"], seed=self.seed)


def _label(text: str) -> str:
    """A folder name for a grid point (``key=value,...``; long ones get a hash)."""
    import hashlib

    safe = _SAFE.sub("_", text)
    if len(safe) > 80:
        safe = safe[:70] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return safe


def _value_text(value: Any, where: str) -> str:
    """A TOML value as override text (what one would type after ``key=``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    raise ValueError(f"{where}: unsupported value {value!r}")


def _str_list(data: Mapping[str, Any], key: str, default: Sequence[str] | None) -> tuple[str, ...]:
    if key not in data:
        if default is None:
            raise ValueError(f"{key}: missing (a list of names)")
        return tuple(default)
    v = data[key]
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"{key}: must be a non-empty list of strings, got {v!r}")
    if len(set(v)) != len(v):
        raise ValueError(f"{key}: repeated entry in {v!r}")
    return tuple(v)


def parse_spec(data: Mapping[str, Any], *, check: bool = True) -> SweepSpec:
    """Validate a SPEC mapping (parsed TOML); every error is a one-line ``ValueError``.

    ``check`` also resolves every cell's configuration (unknown presets, methods, keys or
    options are reported here, before anything runs).
    """
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(SPEC_KEYS)})")
    presets = _str_list(data, "presets", None)
    methods = _str_list(data, "methods", ("proteus",))
    seeds_v = data.get("seeds", [0])
    if isinstance(seeds_v, int) and not isinstance(seeds_v, bool):
        if seeds_v < 1:
            raise ValueError(f"seeds: a count must be >= 1, got {seeds_v}")
        seeds = tuple(range(seeds_v))
    elif (isinstance(seeds_v, list) and seeds_v
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_v)):
        if len(set(seeds_v)) != len(seeds_v):
            raise ValueError(f"seeds: repeated seed in {seeds_v!r}")
        seeds = tuple(seeds_v)
    else:
        raise ValueError(f"seeds: must be a count or a non-empty list of ints >= 0, "
                         f"got {seeds_v!r}")
    ov = data.get("overrides", [])
    if not isinstance(ov, list) or not all(isinstance(x, str) and "=" in x for x in ov):
        raise ValueError(f"overrides: must be a list of 'key=value' strings, got {ov!r}")
    if any(x.split("=", 1)[0].strip() in ("method", "seed", "preset") for x in ov):
        raise ValueError("overrides: set method, seed and preset with the methods, seeds "
                         "and presets keys")
    grid_v = data.get("grid", {})
    if not isinstance(grid_v, dict):
        raise ValueError(f"grid: must be a table of key = [values], got {grid_v!r}")
    grid: list[tuple[str, tuple[str, ...]]] = []
    for k, vals in grid_v.items():
        if k in ("method", "seed", "preset"):
            raise ValueError(f"grid: {k!r} has its own key ({k}s)")
        if isinstance(vals, dict) or not isinstance(vals, list) or not vals:
            raise ValueError(f"grid.{k}: must be a non-empty list of values, got {vals!r}")
        texts = tuple(_value_text(v, f"grid.{k}") for v in vals)
        if len(set(texts)) != len(texts):
            raise ValueError(f"grid.{k}: repeated value in {vals!r}")
        grid.append((str(k), texts))
    res_v = data.get("resources", {})
    if not isinstance(res_v, dict) or any(k not in ("cpus", "gpus") for k in res_v):
        raise ValueError(f"resources: must be a table with cpus and/or gpus, got {res_v!r}")
    res = {}
    for k, v in res_v.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ValueError(f"resources.{k}: must be a number >= 0, got {v!r}")
        res[k] = float(v)
    spec = SweepSpec(presets=presets, methods=methods, seeds=seeds, overrides=tuple(ov),
                     grid=tuple(grid), resources=Resources(**res))
    cells = spec.cells()
    if len({c.id for c in cells}) != len(cells):
        raise ValueError("grid: two grid points map to the same folder name; rename values")
    if check:
        from cft.run.resolve import validate_backbone

        checked: set[tuple[str, ...]] = set()
        for c in cells:
            key = (c.preset, *c.overrides)
            if key in checked:
                continue
            checked.add(key)
            try:
                cfg = c.resolve()
                validate_backbone(cfg)
            except ValueError as e:
                raise ValueError(f"cell {c.id}: {e}") from None
    return spec


def load_spec(path: str | os.PathLike[str], *, check: bool = True) -> SweepSpec:
    """Read and validate a SPEC file; errors read ``SPEC <path>: <what>`` (one line)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"SPEC {str(p)!r}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"SPEC {str(p)!r}: is a directory") from None
    except tomllib.TOMLDecodeError as e:
        msg = " ".join(str(e).split())
        raise ValueError(f"SPEC {str(p)!r}: invalid TOML: {msg}") from None
    except UnicodeDecodeError:
        raise ValueError(f"SPEC {str(p)!r}: not UTF-8 text") from None
    try:
        return parse_spec(data, check=check)
    except ValueError as e:
        raise ValueError(f"SPEC {str(p)!r}: {e}") from None


# ----------------------------------------------------------------------------- manifest
def load_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    try:
        m = read_json(path)
    except FileNotFoundError:
        raise ValueError(f"DIR: {str(out)!r} is not a sweep directory (no {MANIFEST})") from None
    except json.JSONDecodeError:
        raise ValueError(f"DIR: {str(path)!r} is not valid JSON") from None
    if not isinstance(m, dict) or m.get("kind") != "cft-sweep" or m.get("schema_version") != 1:
        raise ValueError(f"DIR: {str(path)!r} is not a cft sweep manifest (schema 1)")
    return m


def manifest_cells(out: str | os.PathLike[str]) -> list[Cell]:
    return [Cell.from_dict(c) for c in load_manifest(out)["cells"]]


def write_manifest(out: Path, spec: SweepSpec) -> list[Cell]:
    """Create or update ``sweep.json``: the new spec, the union of old and new cells."""
    cells = spec.cells()
    created = now()
    old: list[Cell] = []
    if (out / MANIFEST).exists():
        m = load_manifest(out)
        created = m.get("created", created)
        old = [Cell.from_dict(c) for c in m["cells"]]
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"--out: {str(out)!r} exists and is not a sweep directory "
                         f"(no {MANIFEST}); choose an empty or new folder")
    new_ids = {c.id for c in cells}
    merged = [c for c in old if c.id not in new_ids] + cells
    write_json(out / MANIFEST, {"schema_version": 1, "kind": "cft-sweep", "created": created,
                                "updated": now(), "spec": spec.to_dict(),
                                "cells": [c.to_dict() for c in merged]})
    return cells


def cell_state(out: str | os.PathLike[str], cell: Cell) -> tuple[str, int, int]:
    """``(state, tasks_complete, n_tasks)``; state is ``new``, ``partial`` or ``complete``."""
    rd = RunDir(Path(out) / cell.dir)
    if not rd.exists():
        return "new", 0, 0
    try:
        info = rd.info()
    except (ValueError, json.JSONDecodeError):
        return "partial", 0, 0
    done = int(info.get("tasks_complete", 0))
    m = int(info.get("n_tasks", 0))
    if info.get("status") == "complete" and (rd.path / L.METRICS).is_file():
        return "complete", done, m
    return "partial", done, m
