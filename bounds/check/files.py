"""Low-level, validating file readers of the checker (JSON, ``.npz`` / ``.npy`` without
pickle, mapped where possible by :mod:`.mapped`; typed arrays) and :class:`RunDirError`:
every problem is a one-line message ``"<relative path>: <what is wrong>"`` (the CLI's
exit code 2).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from .mapped import Float64Arrays, map_npy, read_only, read_stored_npz

__all__ = ["Float64Arrays", "RunDirError"]


class RunDirError(ValueError):
    """Bad input: the run directory does not follow docs/run-dir.md (exit code 2)."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # pragma: no cover - paths are always under root
        return str(path)


def _require(path: Path, rel: str, *, directory: bool = False) -> None:
    """Raise a RunDirError saying what is at ``path`` unless it is a regular file (or a
    directory): missing, a directory, a symbolic link loop, a dangling link, a fifo ..."""
    want = "a directory" if directory else "a file"
    try:
        mode = path.stat().st_mode  # follows symbolic links
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunDirError(f"{rel}: a symbolic link loop, not {want}") from None
        if path.is_symlink():
            raise RunDirError(f"{rel}: a dangling symbolic link (to {os.readlink(path)!r}), "
                              f"not {want}") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise RunDirError(f"{rel}: missing") from None
        raise RunDirError(f"{rel}: unreadable ({_one_line(exc)})") from None
    if directory and stat.S_ISDIR(mode) or not directory and stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode)
            else "a fifo" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    raise RunDirError(f"{rel}: is {kind}, not {want}")


def _present(path: Path) -> bool:
    """Something (even a broken link or a directory) is at ``path``: it is then read and
    any problem reported, rather than silently treated as absent."""
    return os.path.lexists(path)


def _read_json(path: Path, rel: str) -> Any:
    _require(path, rel)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise RunDirError(f"{rel}: invalid JSON: nested too deeply to read") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, huge ints
        raise RunDirError(f"{rel}: unreadable or invalid JSON ({_one_line(exc)})") from None


def _pickle_refused(exc: BaseException) -> bool:
    """numpy's refusal to unpickle an object array under ``allow_pickle=False``."""
    return isinstance(exc, ValueError) and "allow_pickle" in str(exc)


def _pickled_message(rel: str, key: str | None) -> str:
    where = f"{rel}: {key}" if key else rel
    return (f"{where}: holds pickled Python objects (an object array); pickled data is "
            "refused, never loaded (allow_pickle=False)")


def _read_npz(path: Path, rel: str) -> dict[str, np.ndarray]:
    _require(path, rel)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise RunDirError(f"{rel}: unreadable ({_one_line(exc)})") from None
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise RunDirError(f"{rel}: not an .npz (zip) archive: empty, truncated or corrupt")
    fast = read_stored_npz(path)
    if fast is not None:
        return fast
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise RunDirError(f"{rel}: not an .npz archive")
            out = {}
            for k in z.files:
                try:
                    out[k] = read_only(np.asarray(z[k]))
                except ValueError as exc:
                    if _pickle_refused(exc):
                        raise RunDirError(_pickled_message(rel, k)) from None
                    raise
            return out
    except RunDirError:
        raise
    except OSError as exc:  # e.g. no descriptor left (EMFILE): not the archive's fault
        raise RunDirError(f"{rel}: unreadable ({_one_line(exc)})") from None
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError
        raise RunDirError(f"{rel}: truncated or corrupt archive ({_one_line(exc)})") from None


def _read_npy(path: Path, rel: str) -> np.ndarray:
    _require(path, rel)
    arr = map_npy(path)
    if arr is not None:
        return arr
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # truncated header / data, pickled object arrays
        if _pickle_refused(exc):
            raise RunDirError(_pickled_message(rel, None)) from None
        if isinstance(exc, OSError):  # e.g. no descriptor left (EMFILE): not the file's fault
            raise RunDirError(f"{rel}: unreadable ({_one_line(exc)})") from None
        raise RunDirError(f"{rel}: truncated or corrupt array ({_one_line(exc)})") from None
    if not isinstance(arr, np.ndarray):
        raise RunDirError(f"{rel}: not a .npy array")
    return read_only(arr)


def _int_field(meta: dict, key: str, rel: str, *, minimum: int) -> int:
    val = meta.get(key)
    if isinstance(val, bool) or not isinstance(val, int):
        raise RunDirError(f"{rel}: {key} must be an integer, got {val!r}")
    if val < minimum:
        raise RunDirError(f"{rel}: {key} must be >= {minimum}, got {val}")
    return val


def _float_array(arr: np.ndarray, rel: str, key: str, ndim: int, *,
                 convert: bool = True) -> np.ndarray:
    """``arr`` checked (numeric, ``ndim`` dimensions, finite), as float64 (``convert``)
    or as read."""
    if arr.dtype.kind not in "fiu":
        raise RunDirError(f"{rel}: {key} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise RunDirError(f"{rel}: {key} must have {ndim} dimensions, got shape {arr.shape}")
    out = arr.astype(np.float64, copy=False) if convert else arr
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        raise RunDirError(f"{rel}: {key} contains {bad} NaN or infinite value(s)")
    return out


def _int64(arr: np.ndarray, rel: str, key: str) -> np.ndarray:
    """An integer array as int64; a uint64 value beyond int64 is refused (not wrapped)."""
    if arr.dtype.kind not in "iu":
        raise RunDirError(f"{rel}: {key} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise RunDirError(f"{rel}: {key}: value {int(arr.max())} out of range (beyond int64)")
    return arr.astype(np.int64, copy=False)


def _index_array(arr: np.ndarray, rel: str, key: str, n: int) -> np.ndarray:
    arr = _int64(arr, rel, key)
    if arr.shape != (n,):
        raise RunDirError(f"{rel}: {key} has shape {arr.shape}, expected ({n},)")
    return arr


#: the formats ``--plot`` writes, by file extension (matplotlib's names)
PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def check_output_path(path: str | os.PathLike[str], option: str) -> Path:
    """Validate an output file of the checker (``--json``, ``--csv``, ``--plot``) before
    anything is computed: its folder exists and is writable and the path is not a folder.
    A one-line :class:`RunDirError` otherwise (exit 2)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if os.path.isdir(p):
        raise RunDirError(f"{option} {path}: is a directory, not a file")
    if not os.path.isdir(parent):
        what = "does not exist" if not os.path.lexists(parent) else "is not a directory"
        raise RunDirError(f"{option} {path}: the folder {parent} {what}; nothing was computed")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(p)
                                                    and not os.access(p, os.W_OK)):
        raise RunDirError(f"{option} {path}: not writable; nothing was computed")
    if option == "--plot" and p.suffix.lower() not in PLOT_FORMATS:
        raise RunDirError(f"{option} {path}: unknown format {p.suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(PLOT_FORMATS)}")
    return p


def checker_version() -> str:
    """``cft-bounds 0.2.0 (git 387285b-dirty)``: the installed version of the checker and
    ``git describe --always --dirty`` of its source tree ("unknown" outside a checkout)."""
    import subprocess
    from importlib import metadata

    root = Path(__file__).resolve().parents[2]
    ver = None
    try:  # a source checkout: its pyproject.toml (an editable install's metadata can lag)
        import tomllib

        proj = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        if proj.get("name") == "cft-bounds":
            ver = str(proj["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if ver is None:
        try:
            ver = metadata.version("cft-bounds")
        except metadata.PackageNotFoundError:
            ver = "unknown"
    git = "unknown"
    if (root / ".git").exists():  # never describe an enclosing repository
        try:
            proc = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                                  capture_output=True, text=True, timeout=20, check=False)
            if proc.returncode == 0 and proc.stdout.strip():
                git = proc.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return f"cft-bounds {ver} (git {git})"


def checker_code() -> str:
    """A digest of the checker's code (sha256 of every ``bounds/**/*.py``, path and bytes,
    12 hex digits): it changes with the code the bounds are computed by, and only then
    (``cft report --bounds`` re-checks a cell whose ``check.json`` has another)."""
    import hashlib

    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def run_provenance(root: Path) -> str | None:
    """What produced the run, from its ``env.json`` (``cft_version``, ``git``; optional,
    never an error): ``cft 0.2.0 (git 387285b)``, or None when not recorded."""
    try:
        env = json.loads((root / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(env, dict) or not ({"cft_version", "git"} & set(env)):
        return None
    return f"cft {env.get('cft_version', 'unknown')} (git {env.get('git', 'unknown')})"
