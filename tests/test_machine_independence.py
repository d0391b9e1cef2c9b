"""The guard: every exact-output test gives the same verdict under other CPU kernels.

CI machines differ from a developer's in CPU and BLAS kernel, and the last bits of a
BLAS/LAPACK result differ between kernels. OpenBLAS picks its kernel from
``OPENBLAS_CORETYPE``, so running the tests marked ``exact_output`` (golden files, pinned
values) in subprocesses under several kernels reproduces, on one machine, what another
CPU would see. Each kernel must pass: a test that pins a digit a kernel does not
reproduce fails here, not on somebody else's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: three OpenBLAS kernel families (SSE3 only, AVX2, AVX-512); a machine without AVX-512
#: falls back to a kernel it has, so the run still tests something
CORETYPES = ("Prescott", "Haswell", "SkylakeX")


def _marked_files() -> list[str]:
    """The test files that hold an ``exact_output`` test (collecting only those keeps the
    three runs cheap)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if "mark.exact_output" in p.read_text(encoding="utf-8"))


def _exact_output_run(coretype: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype, "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "random"}
    env.pop("CFT_REGEN_GOLDEN", None)  # never rewrite the golden files from here
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "exact_output",
         *_marked_files()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_some_tests_are_marked_exact_output() -> None:
    marked = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
         "-m", "exact_output", *_marked_files()],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    names = [ln for ln in marked.stdout.splitlines() if "::" in ln]
    assert any("test_ladder_golden" in n for n in names), marked.stdout[-2000:]
    assert any("test_report_golden" in n for n in names), marked.stdout[-2000:]


@pytest.mark.parametrize("coretype", CORETYPES)
def test_exact_output_tests_pass_under_each_blas_kernel(coretype: str) -> None:
    res = _exact_output_run(coretype)
    tail = (res.stdout + res.stderr)[-3000:]
    assert res.returncode == 0, f"OPENBLAS_CORETYPE={coretype}:\n{tail}"
    assert " passed" in tail and " failed" not in tail, tail
