"""Atomic, pickle-free file I/O of the run directory (docs/run-dir.md).

Every file is written to a temporary file ``.tmp-*`` in the *same* directory, flushed and
``fsync``-ed, then ``os.replace``-d onto its name (and the directory is ``fsync``-ed); a
folder is written as a temporary folder and renamed as a whole (:func:`atomic_dir`).
Nothing is pickled: JSON, ``.npz`` / ``.npy`` (read with ``allow_pickle=False``) and
safetensors. Permissions are those ``open()`` / ``mkdir()`` would give: a new file gets
``0o666 & ~umask`` and a new folder ``0o777 & ~umask`` (``mkstemp`` / ``mkdtemp`` alone
would give 0600 / 0700, unreadable to collaborators on a shared file system); a file
written over an existing one keeps that file's mode.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from bounds import npz as bounds_npz
from bounds.rundir_schema import TMP_PREFIX

PathLike = str | os.PathLike[str]


def current_umask() -> int:
    """The process's umask (read from ``/proc/self/status`` where it exists, so that it is
    never changed, not even for an instant, under other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode(target: Path) -> int:
    """The mode ``open(target, "w")`` would leave: the existing file's, else 0666 & ~umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def _fsync_dir(path: Path) -> None:
    """fsync a directory so that a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary binary file next to ``path``; on success fsync + ``os.replace``.

    If the body raises, the temporary file is removed and ``path`` is left untouched (it
    keeps its previous content, or does not exist).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent)
    fh = os.fdopen(fd, "wb")
    try:
        os.chmod(tmp, _file_mode(target))  # mkstemp's 0600 -> what open() would give
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, target)
    except BaseException:
        fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success rename it to ``path``.

    ``path`` must not exist yet.  If the body raises, the temporary folder is deleted.
    """
    target = Path(path)
    if target.exists():
        raise ValueError(f"path: {str(target)!r} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent))
    try:
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 -> what mkdir() would give
        yield tmp
        for sub in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
            _fsync_dir(sub)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Deterministic JSON text; NaN / infinity are refused (use None)."""
    return json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n"


def write_json(path: PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as JSON (no NaN allowed)."""
    data = dumps(obj).encode()
    with atomic_file(path) as fh:
        fh.write(data)


def read_json(path: PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_npz(path: PathLike, arrays: Mapping[str, Any]) -> None:
    """Atomically write an uncompressed, aligned ``.npz`` (:func:`bounds.npz.save_npz`,
    which refuses object arrays: ValueError, ``path`` untouched)."""
    with atomic_file(path) as fh:
        bounds_npz.save_npz(fh, arrays)


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def save_npy(path: PathLike, array: Any) -> None:
    arr = np.asarray(array)
    if arr.dtype.hasobject:  # also structured dtypes with an object field
        raise ValueError("array: object arrays are refused (would need pickle)")
    with atomic_file(path) as fh:
        np.save(fh, arr, allow_pickle=False)


def load_npy(path: PathLike) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def save_safetensors(path: PathLike, tensors: Mapping[str, Any]) -> None:
    """Atomically write torch tensors as safetensors."""
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in tensors.items()})
    with atomic_file(path) as fh:
        fh.write(data)


def load_safetensors(path: PathLike) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def _save_object(path: PathLike, obj: Any) -> None:
    """Atomically save an object with a ``save(path_or_file)`` method writing ``.npz``."""
    with atomic_file(path) as fh:
        obj.save(fh)


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
