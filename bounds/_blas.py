"""BLAS thread limits for the package's many small products, and threads over blocks.

:func:`blas_threads` limits every BLAS the process has loaded, numpy's and scipy's (each
wheel ships its own OpenBLAS). A library loaded *inside* a limit is not limited, and
LAPACK's results depend on the thread count (the subset eigensolver of the covariance
sketch returned other last bits on a process's first call, before scipy was imported):
scipy's BLAS is therefore loaded first, so that a computation gives the same bits on its
first call as on any later one.

:func:`thread_map` runs independent blocks of a computation on as many threads as the BLAS
may use here (:func:`blas_width`: the cores, or what a limit allows; ``cores // N`` in each
worker of ``python -m bounds.check --jobs N``, so one at the default N = cores), each block
with one BLAS thread and the caller's numpy error state. The blocks are fixed by the
problem, not by the thread count, and a block computes the same operations on whichever
thread runs it, so the result does not depend on the number of threads (OpenBLAS's own
results can, wherever it splits a product among threads; docs/theory.md §14.8).

The limits are process-wide (threadpoolctl): the package's entry points are not meant to
be called from several user threads at once (their limits would interleave; the package's
own nested use, a block entering a one-thread limit inside a one-thread limit, is
harmless).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["THREAD_MIN_ELEMS", "blas_threads", "blas_width", "block_width", "load_blas",
           "thread_map", "threads_only_in_blocks"]

T = TypeVar("T")
R = TypeVar("R")


def load_blas() -> None:
    """Load every BLAS the package uses (scipy's own OpenBLAS with ``scipy.linalg``); a
    parent calls it before forking workers so that each does not import it again."""
    import scipy.linalg  # noqa: F401


#: elements a computation touches below which :func:`thread_map` stays on one thread
#: (starting threads costs more than such work)
THREAD_MIN_ELEMS = 1 << 20


@functools.cache
def _controller() -> Any:
    """One ``threadpoolctl.ThreadpoolController`` of the loaded BLAS (built once: a scan
    of the process's libraries costs milliseconds), after :func:`load_blas`."""
    from threadpoolctl import ThreadpoolController  # lazily: a cheap `import bounds`

    load_blas()  # first: a BLAS loaded later would be neither seen nor limited
    return ThreadpoolController()


def blas_threads(limit: int = 1) -> Any:
    """A context manager limiting every BLAS to ``limit`` threads (a
    ``threadpoolctl`` limiter); it can also be kept entered for the life of a worker."""
    return _controller().limit(limits=limit, user_api="blas")


def blas_width() -> int:
    """Threads the BLAS may use now: the smallest thread count of the loaded BLAS
    libraries (a ``blas_threads`` limit lowers it), at least 1."""
    n = [lc.num_threads for lc in _controller().lib_controllers if lc.user_api == "blas"]
    return max(1, min(n)) if n else 1


#: the width :func:`threads_only_in_blocks` sets (None: :func:`blas_width`); a context
#: variable, so the pool's own threads (a block calling thread_map) see None: one thread
_WIDTH: contextvars.ContextVar[int | None] = contextvars.ContextVar("bounds_width",
                                                                   default=None)


@contextlib.contextmanager
def threads_only_in_blocks(width: int) -> Iterator[None]:
    """Within: every BLAS on one thread, and :func:`thread_map` on ``width`` threads. A
    caller whose output must not depend on its thread count enters it (the checker, for
    every item, in-process and in each worker): the only parallelism left is that of
    blocks of fixed shape, whose bits do not depend on ``width``."""
    token = _WIDTH.set(max(1, int(width)))
    try:
        with blas_threads(1):
            yield
    finally:
        _WIDTH.reset(token)


def block_width() -> int:
    """Threads :func:`thread_map` uses by default here: the width
    :func:`threads_only_in_blocks` set, else :func:`blas_width`."""
    return _WIDTH.get() or blas_width()


def thread_map(fn: Callable[[T], R], blocks: Sequence[T], width: int | None = None, *,
               elems: int | None = None) -> list[R]:
    """``[fn(b) for b in blocks]``, on ``width`` threads (default :func:`block_width`),
    each block with one BLAS thread. ``fn`` must only read shared inputs and write its own
    block's part of an output (numpy releases the GIL in its loops and in BLAS/LAPACK);
    an exception of a block is raised here, after the blocks already started end.
    ``elems``: the elements the blocks touch together; below :data:`THREAD_MIN_ELEMS`,
    one thread."""
    if elems is not None and elems < THREAD_MIN_ELEMS:
        width = 1
    width = max(1, int(block_width() if width is None else width))
    with blas_threads(1):
        if width == 1 or len(blocks) <= 1:
            return [fn(b) for b in blocks]
        from concurrent.futures import ThreadPoolExecutor  # lazily: a cheap `import bounds`

        # numpy's error state (and its callback) is per thread: the caller's, in every block
        err, call = np.geterr(), np.geterrcall()

        def block(b: T) -> R:
            with np.errstate(call=call, **err):
                return fn(b)

        with ThreadPoolExecutor(min(width, len(blocks))) as ex:
            return list(ex.map(block, blocks))
