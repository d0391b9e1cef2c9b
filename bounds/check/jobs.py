"""Parallel evaluation of the checker's independent parts (``python -m bounds.check --jobs``).

The checker splits its work into *items* (docs/theory.md §14.4: the bound tiers of each
split, the predictions, the A.1 diagnostics, chunks of the moment SDPs, the steps of the
plot) that read the loaded run and nothing else. :func:`run_items` evaluates them, in this
process (``jobs = 1``) or in ``jobs`` forked worker processes that inherit the run from
:data:`STATE`; every item is the same deterministic function either way, and the results
are assembled in one fixed order, so the output does not depend on ``jobs``
(``tests/test_check_speed_equivalence.py``). OpenBLAS's bits can depend on its thread
count (wherever it splits a product among threads; docs/theory.md §14.8), so every item
runs with one BLAS thread, in this process and in each worker alike
(``bounds._blas.threads_only_in_blocks``): the only parallelism inside an item is that of
``bounds._blas.thread_map``'s blocks of fixed shape, on ``cores // jobs`` threads (one at
the default jobs = cores), whose bits do not depend on that number.

An item that raises returns its exception (:class:`Failed`); the caller re-raises it where
the sequential checker would have met it, so the first error reported is the same too.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["STATE", "Failed", "cores", "default_jobs", "keep_freed_memory",
           "memory_settings", "no_huge_page_advice", "raise_open_files_limit",
           "set_default_jobs", "run_items", "value"]

#: what the items read (the run, plans of the moment SDPs); inherited by forked workers
STATE: dict[str, Any] = {}

_DEFAULT_JOBS: list[int | None] = [None]


@dataclass
class Failed:
    """An item's exception, re-raised by :func:`value`."""

    exc: BaseException


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep freed memory for reuse in this process (and in the
    workers it forks): no separate mapping per large block (``M_MMAP_MAX = 0``), no
    return of the heap's top to the system (``M_TRIM_THRESHOLD``). By default a block
    above glibc's mmap threshold (128 KiB, raised with the blocks freed up to 32 MiB) is
    a fresh mapping whose pages fault in on first touch (docs/theory.md §14.7: on the
    bench machine 0.35 ms per MiB, up to ~2 ms with numpy's huge-page advice); kept, a
    block is reused without faults. The peak resident memory is then that of the largest
    working set plus what fragmentation keeps (through :func:`memory_settings`).
    Returns False, changing nothing, where the C library is not glibc (macOS, Windows,
    musl); False too where glibc refuses a setting (the first may then be in force)."""
    import ctypes
    import platform
    import sys

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
    except Exception:  # noqa: BLE001 - an optimisation only: never fail the check for it
        return False


def no_huge_page_advice() -> bool:
    """Stop numpy from advising the kernel to back each new large array with huge pages
    (``madvise(MADV_HUGEPAGE)``, numpy's default on Linux; the environment variable
    ``NUMPY_MADVISE_HUGEPAGE=0`` does the same when set before numpy's import). With
    transparent huge pages in ``madvise`` mode, the first touch of such an array may stall
    in memory compaction (measured in docs/theory.md §14.7). The check's arrays are
    short-lived temporaries, which gain little from huge pages. Returns True if the advice
    is now off; False, changing nothing, where the user chose with
    ``NUMPY_MADVISE_HUGEPAGE`` or numpy has no such switch (through
    :func:`memory_settings`)."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:  # the user's choice stands
        return False
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - numpy without the switch
        return False
    try:
        _set_madvise_hugepage(False)
    except Exception:  # noqa: BLE001 - an optimisation only: never fail the check for it
        return False
    return True


def memory_settings() -> None:
    """The memory settings of ``python -m bounds.check``'s process, inherited by its
    forked workers (docs/theory.md §14.7): freed memory kept (:func:`keep_freed_memory`),
    no huge-page advice (:func:`no_huge_page_advice`). Only the command calls it, and
    ``bench/bench_check.py``, to time the tiers as the command runs them."""
    keep_freed_memory()
    no_huge_page_advice()


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (POSIX; nothing
    elsewhere) and return the soft limit now in force (-1 where unknown). The checker maps
    the run's arrays into memory, one descriptor per mapped file before Python 3.13, up
    to half the soft limit (:func:`bounds.check.mapped._fd_budget`); a higher limit maps
    more of a large run instead of copying it. Only ``python -m bounds.check`` calls it."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            for want in (target, min(target, 10240)):  # macOS: at most OPEN_MAX (10240)
                try:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                    break
                except (OSError, ValueError):
                    continue
        return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return -1


def default_jobs() -> int:
    """``--jobs`` of the running checker (set by the command line), else 1."""
    return _DEFAULT_JOBS[0] or 1


def set_default_jobs(n: int | None) -> None:
    _DEFAULT_JOBS[0] = n


def value(res: Any) -> Any:
    """An item's result; re-raises its exception."""
    if isinstance(res, Failed):
        raise res.exc
    return res


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # returned, re-raised in sequential order by the caller
        return Failed(exc)


def _width(jobs: int) -> int:
    """Threads per process for ``jobs`` processes: the cores shared out, never above what
    the caller may use (``OPENBLAS_NUM_THREADS``, or an enclosing check's share)."""
    from .._blas import block_width

    return max(1, min(cores() // max(1, jobs), block_width()))


def _init_worker(width: int) -> None:
    from .._blas import threads_only_in_blocks

    limits = threads_only_in_blocks(width)
    limits.__enter__()  # for the life of the worker
    STATE["_limits"] = limits


def run_items(items: dict[Hashable, tuple[Callable[..., Any], tuple]], jobs: int,
              cost: dict[Hashable, float] | None = None,
              follow: Callable[[Hashable, Any], dict] | None = None) -> dict[Hashable, Any]:
    """``{key: fn(*args)}`` (an exception becomes :class:`Failed`) for ``items``.

    ``follow(key, result)`` may return more items, queued when ``key`` is done (their
    arguments travel to the worker; what every item reads is in :data:`STATE`). ``jobs > 1``
    uses that many forked workers (where fork exists), the items submitted by decreasing
    ``cost`` (a guess, seconds) so that the longest start first. The results are keyed as
    the items, in the order of ``items`` then of the follow-ups."""
    from .._blas import load_blas, threads_only_in_blocks

    follow = follow or (lambda key, res: {})
    jobs = min(int(jobs), len(items))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        queue, out = list(items.items()), {}
        with threads_only_in_blocks(_width(1)):  # as in a worker (module docstring)
            while queue:
                k, (fn, args) = queue.pop(0)
                out[k] = _call(fn, args)
                queue += list(follow(k, out[k]).items())
        return out
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    load_blas()  # here, once: the forked workers inherit it (and limit it, _init_worker)

    order = sorted(items, key=lambda k: -(cost or {}).get(k, 0.0))
    threads = _width(jobs)
    keys: list[Hashable] = list(items)
    res: dict[Hashable, Any] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                             initializer=_init_worker, initargs=(threads,)) as ex:
        running = {ex.submit(_call, *items[k]): k for k in order}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: keys.index(running[f])):
                k = running.pop(f)
                res[k] = f.result()
                for k2, item in follow(k, res[k]).items():
                    keys.append(k2)
                    running[ex.submit(_call, *item)] = k2
    return {k: res[k] for k in keys}
