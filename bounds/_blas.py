"""BLAS thread limits for the package's many small products.

:func:`blas_threads` limits every BLAS the process has loaded, numpy's and scipy's (each
wheel ships its own OpenBLAS). A library loaded *inside* a limit is not limited, and
LAPACK's results depend on the thread count (the subset eigensolver of the covariance
sketch returned other last bits on a process's first call, before scipy was imported):
scipy's BLAS is therefore loaded first, so that a computation gives the same bits on its
first call as on any later one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["blas_threads", "load_blas"]


def load_blas() -> None:
    """Load every BLAS the package uses (scipy's own OpenBLAS with ``scipy.linalg``); a
    parent calls it before forking workers so that each does not import it again."""
    import scipy.linalg  # noqa: F401


def blas_threads(limit: int = 1) -> Any:
    """A context manager (``threadpoolctl.threadpool_limits``) limiting every BLAS to
    ``limit`` threads; it can also be kept entered for the life of a worker process."""
    from threadpoolctl import threadpool_limits  # lazily: a cheap `import bounds`

    load_blas()  # before the limit: a BLAS loaded inside it would run unlimited
    return threadpool_limits(limits=limit, user_api="blas")
