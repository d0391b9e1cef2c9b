"""The checker's direct reader of uncompressed .npz archives (bounds/check/mapped.py,
issue #21): the same arrays as np.load, and every archive it does not read exactly that
way goes to np.load (which reports what is wrong). The project's writer
(bounds/npz.py) aligns every member's data, which the reader then maps (read-only views,
no copy); .npy files are mapped too, and representations are converted to float64 only
when indexed."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bounds.check.files import RunDirError, _read_npy, _read_npz
from bounds.check.mapped import Float64Arrays
from bounds.check.mapped import map_npy as _map_npy
from bounds.check.mapped import read_stored_npz as _read_stored_npz
from bounds.npz import ALIGN, save_npz

DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_,
                          np.complex128, ">f8", "<i2"])


@settings(max_examples=40, deadline=None)
@given(st.lists(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                    max_side=5)), min_size=0, max_size=4),
       st.booleans(), st.booleans())
def test_same_arrays_as_np_load(tmp_path_factory: pytest.TempPathFactory, arrays: list,
                                fortran: bool, ours: bool) -> None:
    """Shapes (0-d, empty), byte orders, dtypes and Fortran order, written by np.savez or
    by bounds.npz.save_npz: bit-identical arrays with the same dtype, shape and memory
    order as np.load's. save_npz's members start at a multiple of ALIGN bytes of the file
    and are read as read-only views of the mapped file (nothing copied)."""
    if fortran:
        arrays = [np.asfortranarray(a) for a in arrays]
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    named = {f"x{i}": a for i, a in enumerate(arrays)}
    if ours:
        save_npz(path, named)
        with zipfile.ZipFile(path) as zf:
            assert not zf.testzip()
        for off in _data_offsets(path):
            assert off % ALIGN == 0
    else:
        np.savez(path, **named)
    got = _read_stored_npz(path)
    assert got is not None
    with np.load(path) as z:
        want = {k: z[k] for k in z.files}
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        assert got[k].tobytes(order="A") == want[k].tobytes(order="A")
        assert got[k].flags.f_contiguous == want[k].flags.f_contiguous
        assert got[k].flags.c_contiguous == want[k].flags.c_contiguous
        assert got[k].flags.aligned
        assert not got[k].flags.writeable  # a view of the mapped file, or read-only


def test_other_archives_go_to_np_load(tmp_path: Path) -> None:
    """Compressed and pickled members are not read here; a flipped data byte fails the
    CRC and np.load then reports the corrupt archive as a one-line error."""
    a = np.arange(1000.0)
    comp = tmp_path / "c.npz"
    np.savez_compressed(comp, a=a)
    assert _read_stored_npz(comp) is None
    np.testing.assert_array_equal(_read_npz(comp, "c.npz")["a"], a)

    obj = tmp_path / "o.npz"
    np.savez(obj, a=np.array([{"x": 1}], dtype=object))
    assert _read_stored_npz(obj) is None
    with pytest.raises(RunDirError, match="pickled"):
        _read_npz(obj, "o.npz")

    bad = tmp_path / "b.npz"
    np.savez(bad, a=a)
    raw = bytearray(bad.read_bytes())
    pos = raw.index(a.tobytes()[8:16]) + 3  # a byte inside a[1]
    raw[pos] ^= 0xFF
    bad.write_bytes(bytes(raw))
    assert _read_stored_npz(bad) is None
    with pytest.raises(RunDirError, match="b.npz: truncated or corrupt archive"):
        _read_npz(bad, "b.npz")

    cut = tmp_path / "t.npz"
    np.savez(cut, a=a)
    cut.write_bytes(cut.read_bytes()[:-200])
    assert _read_stored_npz(cut) is None
    with pytest.raises(RunDirError, match="t.npz: "):
        _read_npz(cut, "t.npz")


def _data_offsets(path: Path) -> list[int]:
    """File offset of each member's array data."""
    out = []
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset)
            n_name, n_extra = struct.unpack("<HH", fh.read(30)[26:30])
            fh.seek(info.header_offset + 30 + n_name + n_extra)
            np.lib.format.read_magic(fh)
            np.lib.format.read_array_header_1_0(fh)
            out.append(fh.tell())
    return out


def test_save_npz_layout(tmp_path: Path) -> None:
    """The padding is one zipalign extra field (id 0xD935, alignment 64); a path gets the
    .npz extension as with np.savez; the same arrays give the same bytes (fixed
    timestamps); object arrays are refused; a mapped member with a flipped data byte
    fails the CRC and goes to np.load, which reports it."""
    a = {"scores": np.arange(12.0).reshape(3, 4), "task": np.arange(3)}
    save_npz(tmp_path / "x", a)
    assert (tmp_path / "x.npz").is_file()
    save_npz(tmp_path / "y.npz", a)
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "x.npz") as zf:
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            head, size, align = struct.unpack("<HHH", info.extra[:6])
            assert (head, align) == (0xD935, ALIGN) and size == len(info.extra) - 4
    with pytest.raises(ValueError, match="object array"):
        save_npz(tmp_path / "o.npz", {"o": np.array([None, 1], dtype=object)})
    raw = bytearray((tmp_path / "x.npz").read_bytes())
    raw[_data_offsets(tmp_path / "x.npz")[0] + 9] ^= 0x01  # inside scores[0, 1]
    (tmp_path / "b.npz").write_bytes(bytes(raw))
    assert _read_stored_npz(tmp_path / "b.npz") is None
    with pytest.raises(RunDirError, match="b.npz: truncated or corrupt archive"):
        _read_npz(tmp_path / "b.npz", "b.npz")


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_mapped(tmp_path: Path, order: str) -> None:
    """A .npy file is a read-only view of the mapped file, equal to np.load's array; a
    truncated one goes to np.load, which reports it (one line)."""
    a = np.asarray(np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32),
                   order=order)
    np.save(tmp_path / "r.npy", a)
    got = _read_npy(tmp_path / "r.npy", "r.npy")
    assert not got.flags.writeable and got.flags.aligned
    assert got.dtype == a.dtype and got.flags.f_contiguous == a.flags.f_contiguous
    np.testing.assert_array_equal(got, np.load(tmp_path / "r.npy"))
    (tmp_path / "t.npy").write_bytes((tmp_path / "r.npy").read_bytes()[:-4])
    assert _map_npy(tmp_path / "t.npy") is None
    with pytest.raises(RunDirError, match="t.npy: truncated or corrupt array"):
        _read_npy(tmp_path / "t.npy", "t.npy")


def test_float64_arrays() -> None:
    """Indexing converts exactly to float64 (a float64 array is returned as is); slicing
    gives the converted list; nothing is converted by len or shapes."""
    f32 = np.array([[0.1, 1e-30], [3e38, -2.5]], dtype=np.float32)
    f64 = np.arange(4.0).reshape(2, 2)
    seq = Float64Arrays([f32, f64])
    assert len(seq) == 2 and seq.shapes() == [(2, 2), (2, 2)]
    assert seq[0].dtype == np.float64 and np.array_equal(seq[0], f32.astype(np.float64))
    assert seq[1] is f64 and seq[-1] is f64
    assert [x.dtype for x in seq[:]] == [np.float64, np.float64]
    assert [x.shape for x in seq] == [(2, 2), (2, 2)]


def test_save_npz_prefix_and_unicode_names(tmp_path: Path) -> None:
    """Written into an open file after other bytes (a zip with prepended data) and with
    non-ASCII member names (UTF-8 in the zip), every member's data still starts at a
    multiple of ALIGN bytes of the file, and the reader maps the same arrays."""
    arrays = {"σ-scores": np.arange(10.0), "τâche": np.arange(3, dtype=np.int32),
              "x": np.ones((2, 3), dtype=np.float32)}
    path = tmp_path / "p.npz"
    for prefix in (b"", b"abc", bytes(61)):
        with open(path, "wb") as fh:
            fh.write(prefix)
            save_npz(fh, arrays)
        assert all(off % ALIGN == 0 for off in _data_offsets(path))
        got = _read_stored_npz(path)
        assert got is not None and list(got) == list(arrays)
        for k, v in arrays.items():
            assert got[k].dtype == v.dtype and np.array_equal(got[k], v)


def test_not_mapped_reads_the_same_arrays(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the system refuses a mapping (no descriptor left: EMFILE), the archive and
    the .npy file are read instead (copies): the same arrays, read-only, no error."""
    import errno
    import mmap

    import bounds.check.mapped as mapped

    a = {"scores": np.arange(12.0).reshape(3, 4), "task": np.arange(3)}
    save_npz(tmp_path / "x.npz", a)
    np.save(tmp_path / "r.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    want_r = np.load(tmp_path / "r.npy")

    def refuse(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(mapped.mmap, "mmap", refuse)
    got = _read_npz(tmp_path / "x.npz", "x.npz")
    for k, v in a.items():
        assert np.array_equal(got[k], v) and got[k].dtype == v.dtype
        assert not got[k].flags.writeable and got[k].flags.aligned
    assert _map_npy(tmp_path / "r.npy") is None
    r = _read_npy(tmp_path / "r.npy", "r.npy")
    assert np.array_equal(r, want_r) and not r.flags.writeable


_BUDGET_SCRIPT = r"""
import gc, os, resource, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from bounds.check import files, mapped
from bounds.npz import save_npz
d = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (160, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
budget = mapped._fd_budget()
assert budget == 160 // 2 - 64, budget
kept = []
for i in range(300):  # more files than descriptors: mapped up to the budget, then read
    if i % 2:
        save_npz(f"{d}/{i}.npz", {"a": np.full(1000, float(i))})
        kept.append(files._read_npz(__import__("pathlib").Path(f"{d}/{i}.npz"), "x")["a"])
    else:
        np.save(f"{d}/{i}.npy", np.full(1000, float(i)))
        kept.append(files._read_npy(__import__("pathlib").Path(f"{d}/{i}.npy"), "x"))
    assert mapped._LIVE_MAPS[0] <= budget
assert all(float(k[0]) == i and not k.flags.writeable for i, k in enumerate(kept))
assert mapped._LIVE_MAPS[0] == budget, mapped._LIVE_MAPS[0]
assert len(os.listdir("/proc/self/fd")) < 160 - 32
del kept
gc.collect()
assert mapped._LIVE_MAPS[0] == 0, mapped._LIVE_MAPS[0]
print("ok")
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_descriptor_budget(tmp_path: Path) -> None:
    """Before Python 3.13 a mapping holds a descriptor while it lives: with a soft limit
    of 160 open files, 300 files are read (the first 16 mapped, the rest copied), all
    kept alive, the process never near the limit, and the mappings released when the
    arrays are."""
    import subprocess
    import sys

    if sys.version_info >= (3, 13):
        pytest.skip("trackfd=False: a mapping holds no descriptor")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _BUDGET_SCRIPT, str(tmp_path), str(root)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_out_of_descriptors_is_not_corruption(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no descriptor is left even for np.load (EMFILE), the file is reported as
    unreadable with the system's reason, not as truncated or corrupt; a compressed
    archive is handed to np.load without being mapped or read first."""
    import errno

    import bounds.check.mapped as mapped

    np.save(tmp_path / "r.npy", np.arange(4.0))
    np.savez_compressed(tmp_path / "c.npz", a=np.arange(4.0))
    save_npz(tmp_path / "x.npz", {"a": np.arange(4.0)})

    def no_fd(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("mapped or read before its members were checked")

    monkeypatch.setattr(mapped, "_map", never)
    monkeypatch.setattr(mapped, "_read_all", never)
    assert _read_stored_npz(tmp_path / "c.npz") is None
    monkeypatch.setattr(mapped, "_map", lambda fh: None)
    monkeypatch.setattr(mapped, "read_stored_npz", lambda path: None)
    monkeypatch.setattr(np, "load", no_fd)
    with pytest.raises(RunDirError, match=r"^r.npy: unreadable \(OSError: .*Too many open"):
        _read_npy(tmp_path / "r.npy", "r.npy")
    import bounds.check.files as files

    monkeypatch.setattr(files, "read_stored_npz", lambda path: None)
    with pytest.raises(RunDirError, match=r"^x.npz: unreadable \(OSError: .*Too many open"):
        _read_npz(tmp_path / "x.npz", "x.npz")


def test_save_npz_leaves_no_partial_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails midway (here: the second member) removes the file it created."""
    import bounds.npz as npz

    real = npz._member
    calls = []

    def second_fails(zf: object, fh: object, name: str, arr: np.ndarray) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(zf, fh, name, arr)  # type: ignore[arg-type]

    monkeypatch.setattr(npz, "_member", second_fails)
    with pytest.raises(RuntimeError, match="disk full"):
        save_npz(tmp_path / "p.npz", {"a": np.arange(3), "b": np.arange(4)})
    assert not (tmp_path / "p.npz").exists()
