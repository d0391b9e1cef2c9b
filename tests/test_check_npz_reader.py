"""The checker's direct reader of uncompressed .npz archives (bounds/check/files.py,
issue #21): the same arrays as np.load, and every archive it does not read exactly that
way goes to np.load (which reports what is wrong)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bounds.check.files import RunDirError, _read_npz, _read_stored_npz

DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_,
                          np.complex128, ">f8", "<i2"])


@settings(max_examples=40, deadline=None)
@given(st.lists(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                    max_side=5)), min_size=0, max_size=4),
       st.booleans(), st.data())
def test_same_arrays_as_np_load(tmp_path_factory: pytest.TempPathFactory, arrays: list,
                                fortran: bool, data: st.DataObject) -> None:
    """Shapes (0-d, empty), byte orders, dtypes and Fortran order: bit-identical arrays
    with the same dtype, shape and memory order as np.load's."""
    if fortran:
        arrays = [np.asfortranarray(a) for a in arrays]
    path = tmp_path_factory.mktemp("npz") / "a.npz"
    np.savez(path, **{f"x{i}": a for i, a in enumerate(arrays)})
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
