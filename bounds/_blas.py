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

__all__ = ["blas_threads"]


def blas_threads(limit: int = 1) -> Any:
    """A context manager (``threadpoolctl.threadpool_limits``) limiting every BLAS to
    ``limit`` threads; it can also be kept entered for the life of a worker process."""
    import scipy.linalg  # noqa: F401 - scipy's own OpenBLAS, loaded before the limit
    from threadpoolctl import threadpool_limits  # lazily: a cheap `import bounds`

    return threadpool_limits(limits=limit, user_api="blas")
