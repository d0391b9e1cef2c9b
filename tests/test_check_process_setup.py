"""What ``python -m bounds.check`` sets up for its own process (bounds/check/jobs.py,
issue #21): glibc keeps freed memory for reuse, numpy gives the kernel no huge-page advice,
and the soft limit of open files is raised to the hard one. All are optimisations: where
they do not apply they change nothing and never fail the check."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from bounds.check import jobs

ROOT = Path(__file__).resolve().parents[1]


def _in_subprocess(code: str) -> str:
    """Run ``code`` in a fresh interpreter (the settings are per process): its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux")
                    or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_on_glibc() -> None:
    assert _in_subprocess("from bounds.check.jobs import keep_freed_memory as k; "
                          "print(k())") == "True"


def test_keep_freed_memory_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not glibc (macOS, musl, Windows, where ctypes.CDLL(None) raises TypeError): False,
    nothing raised."""
    import ctypes

    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("musl", "1.2"))
    assert jobs.keep_freed_memory() is False
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("glibc", "2.36"))
    monkeypatch.setattr(sys, "platform", "linux")

    def no_cdll(*args: object, **kwargs: object) -> None:
        raise TypeError("LoadLibrary() argument 1 must be str, not None")

    monkeypatch.setattr(ctypes, "CDLL", no_cdll)
    assert jobs.keep_freed_memory() is False
    monkeypatch.setattr(sys, "platform", "win32")
    assert jobs.keep_freed_memory() is False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_raise_open_files_limit() -> None:
    """A soft limit below the hard one is raised to it; the value in force is returned."""
    out = _in_subprocess(
        "import resource\n"
        "from bounds.check.jobs import raise_open_files_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, soft), hard))\n"
        "got = raise_open_files_limit()\n"
        "now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
        "print(got == now, now == hard or hard == resource.RLIM_INFINITY, now >= 64)\n")
    assert out == "True True True"


def test_no_huge_page_advice() -> None:
    """numpy's huge-page advice is turned off (it is on by default on Linux), unless the
    user chose with NUMPY_MADVISE_HUGEPAGE; ``python -m bounds.check`` turns it off in
    its own process before it runs."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}

    def run(code: str, **extra: str) -> str:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, check=False, cwd=ROOT, env={**env, **extra})
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.strip()

    probe = ("from numpy._core.multiarray import _get_madvise_hugepage as g, "
             "_set_madvise_hugepage as s\n"
             "s(True)\n"
             "from bounds.check.jobs import no_huge_page_advice as f\n"
             "print(f(), g())\n")
    assert run(probe) == "True False"
    assert run(probe, NUMPY_MADVISE_HUGEPAGE="1") == "False True"
    command = ("import runpy, sys\n"
               "from numpy._core.multiarray import _get_madvise_hugepage as g\n"
               "before = g()\n"
               "sys.argv = ['bounds.check', '--version']\n"
               "try:\n    runpy.run_module('bounds.check', run_name='__main__')\n"
               "except SystemExit:\n    pass\n"
               "print(before, g())\n")
    assert run(command).splitlines()[-1] == "True False"  # after the version line
