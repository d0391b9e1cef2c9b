"""The checker's arrays read without copies where possible: ``.npz`` members stored
uncompressed and ``.npy`` files mapped read-only into memory (issue #21, docs/theory.md
§14.7), under a budget of file descriptors, with the copies that replace a mapping where
it does not apply; and :class:`Float64Arrays`, representations converted per task when
used. Callers get None where a file is not read here (:mod:`.files` then reads it with
np.load, which reports what is wrong)."""

from __future__ import annotations

import functools
import mmap
import os
import struct
import sys
import weakref
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, overload

import numpy as np

__all__ = ["Float64Arrays", "map_npy", "read_only", "read_stored_npz"]


try:  # ISA-L's CRC-32 (carry-less multiplication): the same checksum as zlib's, 7x faster
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib where it has no wheel
    from zlib import crc32 as _crc32


#: mmap objects hold a duplicate of the file's descriptor while they live before Python
#: 3.13 (``trackfd=False`` there), and every mapping is one of the process's limited
#: memory map areas (Linux: ``vm.max_map_count``, 65,530 by default, shared with thread
#: stacks and malloc). The checker maps at most this share of the descriptors the process
#: may open and a quarter of its map areas, and reads the rest (a copy), so that a run of
#: any number of tasks cannot run out of either for what it still opens and allocates.
_MAP_SHARE = 0.5
_TRACKS_FD = sys.version_info < (3, 13)
_LIVE_MAPS = [0]


@functools.cache
def _map_areas() -> int:
    """A quarter of the process's memory map areas (``/proc/sys/vm/max_map_count``;
    65,530 where it cannot be read)."""
    try:
        with open("/proc/sys/vm/max_map_count", encoding="ascii") as fh:
            return int(fh.read().strip()) // 4
    except (OSError, ValueError):
        return 65530 // 4


def _fd_budget() -> int:
    """How many files may be mapped at once: :data:`_MAP_SHARE` of the soft RLIMIT_NOFILE,
    less 64 kept for everything else (before Python 3.13), and at most a quarter of the
    memory map areas (:func:`_map_areas`)."""
    areas = _map_areas()
    if not _TRACKS_FD:  # pragma: no cover - Python >= 3.13: no descriptor held
        return areas
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return min(areas, 256)
    if soft == resource.RLIM_INFINITY:  # pragma: no cover - not on Linux
        return areas
    return min(areas, max(0, int(soft * _MAP_SHARE) - 64))


def _unmapped() -> None:
    """A mapping was released (its last array is gone)."""
    _LIVE_MAPS[0] -= 1


def _map(fh: BinaryIO) -> mmap.mmap | None:
    """The open, non-empty file ``fh`` mapped read-only into memory, or None where it is
    not to be mapped: the descriptor budget is spent (:func:`_fd_budget`) or the system
    refuses (no descriptor or memory left, a file system without mmap). The caller then
    reads the file instead: the same arrays, copied."""
    if _LIVE_MAPS[0] >= _fd_budget():
        return None
    try:
        if _TRACKS_FD:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        else:  # pragma: no cover - Python >= 3.13
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ, trackfd=False)
    except (OSError, ValueError):  # EMFILE, ENFILE, ENOMEM, ENODEV ...
        return None
    _LIVE_MAPS[0] += 1
    weakref.finalize(mm, _unmapped)
    return mm


def _npy_header(fh: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """Shape, Fortran order and dtype from the ``.npy`` header at ``fh``'s position (left
    just after it), or None for a format version this reader does not know."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    return None


def _read_all(fh: BinaryIO, size: int) -> np.ndarray:
    """The whole open file, read into one fresh byte array (where it is not mapped)."""
    buf = np.empty(size, dtype=np.uint8)
    fh.seek(0)
    if fh.readinto(memoryview(buf)) != size:
        raise EOFError("the file changed size while it was read")
    return buf


def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr``, marked read-only (every array the checker reads: mapped or copied alike)."""
    arr.flags.writeable = False
    return arr


def read_stored_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an .npz whose members are all stored uncompressed (``np.savez``,
    :func:`bounds.npz.save_npz`), without np.load's copies (it reads through 256 KiB bytes
    objects: 5x slower on the bench run, issue #21). A member whose data starts at an
    aligned offset of the file (:mod:`bounds.npz` writes them so) is a read-only view of
    the file mapped into memory: nothing is copied, and forked workers share its pages
    (docs/theory.md §14.7); any other member is read into a fresh array with one copy, as
    is every member where the file is not mapped (:func:`_map`). The arrays are read-only
    either way. Every member's CRC-32 and size are checked as zipfile does. None for
    anything else (compressed or encrypted members, a header version or dtype this path
    does not read, any inconsistency): the caller then reads the file with np.load, which
    reports what is wrong."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        if any(info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1
               or not info.filename.endswith(".npy") for info in infos):
            return None  # before mapping or reading the file
        out: dict[str, np.ndarray] = {}
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            mm: Any = _map(fh) if size else None
            if size and mm is None:
                mm = _read_all(fh, size)
            for info in infos:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    return None
                n_name, n_extra = struct.unpack("<HH", local[26:30])
                start = info.header_offset + 30 + n_name + n_extra
                fh.seek(start)
                header = _npy_header(fh)
                if header is None:
                    return None
                shape, fortran, dtype = header
                if dtype.hasobject:
                    return None
                head = fh.tell() - start
                count = int(np.prod(shape, dtype=np.int64))
                nbytes = count * dtype.itemsize
                if head + nbytes != info.file_size or mm is None \
                        or start + head + nbytes > size:
                    return None
                order = "F" if fortran else "C"
                arr = np.frombuffer(mm, dtype=dtype, count=count, offset=start + head) \
                    if count else np.empty(0, dtype=dtype)
                if not arr.flags.aligned:  # np.savez's layout: one copy
                    arr = arr.copy()
                crc = _crc32(arr.view(np.uint8) if count else b"",
                             _crc32(mm[start:start + head]))
                if crc != info.CRC:
                    return None
                out[info.filename[:-4]] = read_only(arr.reshape(shape, order=order))
        return out
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, struct.error):
        return None


def map_npy(path: Path) -> np.ndarray | None:
    """A ``.npy`` file's array as a read-only view of the file mapped into memory (no copy;
    ``np.save`` aligns the data to 64 bytes), or None where that does not apply (an odd
    header, object dtype, a size that does not match, unaligned data, a file not mapped:
    :func:`_map`): np.load then reads the file and reports what is wrong."""
    try:
        with open(path, "rb") as fh:
            header = _npy_header(fh)
            if header is None:
                return None
            shape, fortran, dtype = header
            head = fh.tell()
            size = os.fstat(fh.fileno()).st_size
            count = int(np.prod(shape, dtype=np.int64))
            if dtype.hasobject or head + count * dtype.itemsize != size or count == 0:
                return None
            mm = _map(fh)
        if mm is None:
            return None
        arr = np.frombuffer(mm, dtype=dtype, count=count, offset=head)
        if not arr.flags.aligned:
            return None
        return arr.reshape(shape, order="F" if fortran else "C")
    except (OSError, ValueError, EOFError):
        return None


class Float64Arrays(Sequence[np.ndarray]):
    """A list of numeric arrays as read (e.g. float32 representations, mapped from their
    files), each converted to float64 when indexed (exactly for floats up to float64 and
    integers up to 2^53 in magnitude, as ``astype``): the conversion's fresh
    memory is spent per array, when and where it is used (a forked worker), not for all
    of them at load time (docs/theory.md §14.7)."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self._arrays = arrays

    def __len__(self) -> int:
        return len(self._arrays)

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, i: slice) -> list[np.ndarray]: ...

    def __getitem__(self, i: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(i, slice):
            return [a.astype(np.float64, copy=False) for a in self._arrays[i]]
        return self._arrays[i].astype(np.float64, copy=False)

    def shapes(self) -> list[tuple[int, ...]]:
        """The arrays' shapes (nothing converted)."""
        return [a.shape for a in self._arrays]
