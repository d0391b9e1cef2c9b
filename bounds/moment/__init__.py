"""The optimal two-moment bound: a certified generalized Chebyshev SDP (docs/theory.md §3.7).

For a law of ``x`` with mean ``mu`` and covariance ``Sigma`` and closed halfspaces
``H_j = {x : a_j'x >= b_j}``, :func:`sup_union_probability` returns a *certified* upper
bound on

    sup { P(x in H_1 u ... u H_k) : E x = mu, Cov x = Sigma },

which equals the supremum up to the solver tolerance (Vandenberghe, Boyd & Comanor,
"Generalized Chebyshev bounds via semidefinite programming", SIAM Review 49(1), 2007;
Boyd & Vandenberghe, *Convex Optimization*, §7.4.3). The printed value is never the
solver's number: it is the objective ``E f(x)`` of a quadratic majorant ``f`` of the
indicator of the union whose feasibility is verified in floating point with rigorous
margins (docs/theory.md §3.7, "Certification").

:func:`centroid_moment_bound` applies it to one cluster of the shared nearest-centroid rule
(misretrieval = some foreign centroid at least as close as the own one), in the subspace
spanned by the ``r_max`` foreign directions with the largest directional Cantelli terms,
plus the Cantelli union of the others; :class:`MomentOptBound` is the registered bound
``moment-opt``.

Solver: the VBC primal with the ``Z_j`` eliminated, one LMI of size ``r + 1 + k``, by a
batched numpy interior point (:mod:`.batch`, docs/theory.md §14.6: ``moment-opt`` solves
all its clusters' SDPs together), Clarabel where that does not converge
(``backend="clarabel"``: Clarabel only); ``backend="cvxpy"`` solves the S-lemma dual
(k + 1 LMIs of size ``r + 1``) through cvxpy instead, an independent formulation used as a
cross-check. Clarabel and cvxpy are imported lazily.
"""

from .bound import MomentOptBound, centroid_moment_bound
from .law import check_law, sup_union_probability
from .sdp import (
    DEFAULT_R_MAX,
    PRUNE_TOL,
    ClusterMomentResult,
    LawCheck,
    MomentCertificate,
    _solve_compact_clarabel,  # noqa: F401  (tests/test_bounds_moment.py)
    certify_majorant,
)

__all__ = [
    "DEFAULT_R_MAX",
    "PRUNE_TOL",
    "MomentCertificate",
    "ClusterMomentResult",
    "LawCheck",
    "sup_union_probability",
    "centroid_moment_bound",
    "check_law",
    "certify_majorant",
    "MomentOptBound",
]
