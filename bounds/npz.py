"""The one ``.npz`` writer of the project: uncompressed, every array's data aligned.

:func:`save_npz` writes what ``np.savez`` writes (a zip of stored ``.npy`` members, no
pickle), readable by ``np.load`` and any zip tool, with one difference: each member's
local header carries an extra field that pads the start of the array's data to a multiple
of :data:`ALIGN` bytes of the file (the field is Android ``zipalign``'s, id ``0xD935``: a
little-endian uint16 alignment, then zeros). ``np.savez`` leaves the data wherever the
headers end, so a float64 array usually starts off an 8-byte boundary.

Aligned data can be mapped instead of read: ``python -m bounds.check`` maps such members
(a page-aligned mapping at an aligned offset is an aligned, read-only array, with no copy;
docs/theory.md §14.7), and copying is what costs where fresh memory is slow.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

__all__ = ["ALIGN", "save_npz"]

#: alignment in bytes of each member's array data in the file
ALIGN = 64

#: zip extra-field id of the padding (Android zipalign's alignment field)
_PAD_ID = 0xD935

#: zip local file header size, and the ZIP64 extra field zipfile appends to it
_LOCAL, _ZIP64 = 30, 20


def _npy_header(arr: np.ndarray) -> bytes:
    """The ``.npy`` magic and header of ``arr``, as ``np.save`` writes them."""
    buf = io.BytesIO()
    d = np.lib.format.header_data_from_array_1_0(arr)
    try:
        np.lib.format.write_array_header_1_0(buf, d)
    except ValueError:  # a header too long for format 1.0
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _member(zf: zipfile.ZipFile, fh: IO[bytes], name: str, arr: np.ndarray) -> None:
    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16
    header = _npy_header(arr)
    # the data starts after: local header, name, our extra field (6 + pad), ZIP64 extra,
    # npy header
    pos = fh.tell() + _LOCAL + len(info.filename.encode()) + 6 + _ZIP64 + len(header)
    pad = (-pos) % ALIGN
    info.extra = struct.pack("<HHH", _PAD_ID, 2 + pad, ALIGN) + bytes(pad)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous  # as the header says
    data = arr if fortran else np.ascontiguousarray(arr)
    with zf.open(info, mode="w", force_zip64=True) as out:
        if (fh.tell() + len(header)) % ALIGN:  # zipfile wrote another local header
            raise RuntimeError(f"save_npz: {name!r}: data not aligned to {ALIGN} bytes")
        out.write(header)
        if data.size:
            out.write(memoryview(data.reshape(-1, order="A").view(np.uint8)))


def save_npz(file: str | os.PathLike[str] | IO[bytes], arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (name -> array) as an uncompressed ``.npz`` to a path or to a
    seekable binary file (a path without the ``.npz`` extension gets it, as with
    ``np.savez``), each member's data aligned to :data:`ALIGN` bytes of the file
    (module docstring). Object arrays are refused (they would need pickle): ValueError."""
    arrs = {str(k): np.asarray(v) for k, v in arrays.items()}
    for k, v in arrs.items():
        if v.dtype.hasobject:
            raise ValueError(f"arrays: {k!r} is an object array (would need pickle)")
    own = not hasattr(file, "write")
    if own:  # as np.savez: a path gets the .npz extension
        file = os.fspath(file)  # type: ignore[arg-type]
        file = file if str(file).endswith(".npz") else f"{file}.npz"
    fh: IO[bytes] = open(file, "wb") if own else file  # type: ignore[assignment, arg-type]
    try:
        with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as zf:
            for name, arr in arrs.items():
                _member(zf, fh, name, arr)
    except BaseException:
        if own:  # no half-written archive left behind at a path (a file object: the caller's)
            fh.close()
            os.unlink(file)  # type: ignore[arg-type]
        raise
    if own:
        fh.close()
