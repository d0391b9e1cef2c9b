"""Pairwise Chernoff bounds between Gaussian-mixture task laws (docs/theory.md §4).

For tasks t != s with mixtures p_t = sum_i w_ti N_ti and p_s = sum_j w_sj N_sj,

    P_{x~p_t}(p_s(x) >= p_t(x)) <= g_ts(l) = sum_{i,j} w_ti^(1-l) w_sj^l exp(-k_{ti,sj}(l))

for every l in [0, 1] (§4.1-4.3). ``g_st(l) = g_ts(1 - l)``, so one minimisation serves
both orders. ``log g_ts`` is convex in l (a sum of log-convex terms), so golden-section
search finds its minimum; every evaluated l gives a valid bound and we keep the least.

Cost control (§4.4): ``k(l) >= l(1-l)/2 ||dmu||^2 / sigma2_max`` where sigma2_max is the
larger top eigenvalue of the two covariances (the log-det part is >= 0). Component pairs
whose term with this lower bound is already below ``prune_tol`` at l = 1/2 keep the
(valid, looser) lower-bound exponent; only the others get the exact exponent.
Complexity: O(P^2 d) for the pair distances (BLAS), then per l-evaluation O(R d)
(diagonal) or O(R d^3) (full) for the R refined pairs, P = m K components.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_positive_int
from .base import Bound, BoundInputs
from .distances import _CHUNK_ELEMS, sqdist
from .forms import FUNCS
from .mixture import GaussianMixtures

__all__ = ["pairwise_chernoff", "gaussian_exponent"]

_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def _logdet(cov: np.ndarray) -> np.ndarray:
    """log det of a batch of covariances, diagonal (b, d) or full (b, d, d)."""
    if cov.ndim == 2:
        return np.log(cov).sum(axis=1)
    return 2.0 * np.log(np.diagonal(np.linalg.cholesky(cov), axis1=1, axis2=2)).sum(axis=1)


def gaussian_exponent(
    lam: np.ndarray,
    mu1: np.ndarray,
    cov1: np.ndarray,
    mu2: np.ndarray,
    cov2: np.ndarray,
    *,
    logdet1: np.ndarray | None = None,
    logdet2: np.ndarray | None = None,
) -> np.ndarray:
    """k(l) = -log int N1^(1-l) N2^l for batches of Gaussian pairs (§4.3).

    ``mu*`` (b, d); ``cov*`` (b, d) diagonal or (b, d, d) full; ``lam`` (b,).
    ``logdet1``/``logdet2`` (b,): log det of ``cov1``/``cov2`` if already known
    (computed here otherwise). Evaluates EXPR['chernoff_k'] from its sufficient scalars.
    """
    lam = np.asarray(lam, dtype=np.float64)
    dmu = mu2 - mu1
    l_ = lam[:, None]
    ld1 = _logdet(cov1) if logdet1 is None else logdet1
    ld2 = _logdet(cov2) if logdet2 is None else logdet2
    if cov1.ndim == 2:
        mix = l_ * cov1 + (1.0 - l_) * cov2  # NB weights (l, 1-l): docs/theory.md §4.3
        quad = np.einsum("bd,bd->b", dmu * dmu, 1.0 / mix)
        ld_mix = np.log(mix).sum(axis=1)
    else:
        mix = l_[..., None] * cov1 + (1.0 - l_[..., None]) * cov2
        Lm = np.linalg.cholesky(mix)
        ld_mix = 2.0 * np.log(np.diagonal(Lm, axis1=1, axis2=2)).sum(axis=1)
        import scipy.linalg  # lazily: keeps `import bounds` cheap

        sol = scipy.linalg.cho_solve((Lm, True), dmu[..., None], check_finite=False)[..., 0]
        quad = np.einsum("bd,bd->b", dmu, sol)
    return FUNCS["chernoff_k"](lam, quad, ld_mix, ld1, ld2)


def pairwise_chernoff(
    mix: GaussianMixtures, *, n_iter: int = 10, prune_tol: float = 1e-12
) -> dict[str, np.ndarray | float | int]:
    """Pairwise Chernoff bounds B[t, s] >= P_{x~p_t}(p_s(x) >= p_t(x)) (§4).

    Returns a dict with ``pairwise`` (m, m) (diagonal 0), ``lam`` (m, m) (the minimising
    l for the ordered pair), ``n_pairs`` and ``n_refined`` component pairs.
    """
    n_iter = check_positive_int(n_iter, "n_iter")
    if not (prune_tol >= 0.0):
        raise ValueError(f"prune_tol: must be >= 0, got {prune_tol}")
    m_, K = mix.weights.shape
    d = mix.dim
    P = m_ * K
    w = mix.weights.reshape(P)
    mu = mix.means.reshape(P, d)
    cov = mix.covariances.reshape((P, d) if mix.diagonal else (P, d, d))
    ctask = np.repeat(np.arange(m_), K)
    B = np.zeros((m_, m_))
    LAM = np.full((m_, m_), 0.5)
    if m_ == 1:
        return {"pairwise": B, "lam": LAM, "n_pairs": 0, "n_refined": 0}
    smax = cov.max(axis=1) if mix.diagonal else np.linalg.eigvalsh(cov)[:, -1]
    active = w > 0
    logdet = np.zeros(P)  # once per component, not once per l-evaluation
    logdet[active] = _logdet(cov[active])
    ii, jj = np.nonzero(
        (ctask[:, None] < ctask[None, :]) & active[:, None] & active[None, :]
    )
    DD = sqdist(mu, mu)[ii, jj]
    sm = np.maximum(smax[ii], smax[jj])
    tp = ctask[ii] * m_ + ctask[jj]  # task-pair id (t < s)
    half_lb = FUNCS["chernoff_term"](w[ii], w[jj], 0.5, FUNCS["chernoff_k_lb"](0.5, DD, sm))
    refine = np.flatnonzero(half_lb >= prune_tol)
    step = max(1, _CHUNK_ELEMS // max(1, d if mix.diagonal else 4 * d * d))

    def evaluate(lam_tp: np.ndarray) -> np.ndarray:
        lam = lam_tp[tp]
        k = FUNCS["chernoff_k_lb"](lam, DD, sm)
        for p0 in range(0, refine.size, step):
            sel = refine[p0 : p0 + step]
            a_i, b_j = ii[sel], jj[sel]
            k[sel] = gaussian_exponent(lam[sel], mu[a_i], cov[a_i], mu[b_j], cov[b_j],
                                       logdet1=logdet[a_i], logdet2=logdet[b_j])
        terms = FUNCS["chernoff_term"](w[ii], w[jj], lam, k)
        return np.bincount(tp, weights=terms, minlength=m_ * m_)

    best = np.full(m_ * m_, np.inf)
    best_lam = np.full(m_ * m_, 0.5)

    def record(lam_tp: np.ndarray, val: np.ndarray) -> None:
        better = val < best
        best[better] = val[better]
        best_lam[better] = lam_tp[better]

    lo = np.zeros(m_ * m_)
    hi = np.ones(m_ * m_)
    x1 = hi - _PHI * (hi - lo)
    x2 = lo + _PHI * (hi - lo)
    record(np.full(m_ * m_, 0.5), evaluate(np.full(m_ * m_, 0.5)))
    f1 = evaluate(x1)
    record(x1, f1)
    f2 = evaluate(x2)
    record(x2, f2)
    for _ in range(n_iter):
        left = f1 < f2  # minimum lies in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        nx1 = np.where(left, hi - _PHI * (hi - lo), x2)
        nx2 = np.where(left, x1, lo + _PHI * (hi - lo))
        nf1 = np.where(left, np.nan, f2)
        nf2 = np.where(left, f1, np.nan)
        new_x = np.where(left, nx1, nx2)
        fn = evaluate(new_x)
        record(new_x, fn)
        x1, x2 = nx1, nx2
        f1 = np.where(left, fn, nf1)
        f2 = np.where(left, nf2, fn)
    Bu = best.reshape(m_, m_)
    Lu = best_lam.reshape(m_, m_)
    upper = np.triu(np.ones((m_, m_), dtype=bool), 1)
    B = np.where(upper, Bu, 0.0) + np.where(upper, Bu, 0.0).T
    LAM = np.where(upper, Lu, np.where(upper.T, 1.0 - Lu.T, 0.5))
    return {"pairwise": B, "lam": LAM, "n_pairs": int(ii.size), "n_refined": int(refine.size)}


# ------------------------------------------------------------------ Gaussian bound
class GaussianChernoffBound(Bound):
    """Chernoff / Bhattacharyya bound under Assumption A.1 (§4)."""

    name, title, section = "gaussian-chernoff", "Gaussian mixtures, Chernoff", "docs/theory.md §4"
    assumptions = (
        "Assumption A.1: each task's representations follow its Gaussian mixture exactly",
        "likelihood retrieval argmax_k p_k(h(x)) in one shared space, equal task priors",
        "a population bound: holds for P = the mixture law, not for an empirical sample",
    )
    tier = "assumption"
    continuous = 1e-4  # golden-section search over lambda
    reads = ("mixtures",)

    def __init__(self, n_iter: int = 10, prune_tol: float = 1e-12) -> None:
        self.n_iter = check_positive_int(n_iter, "n_iter")
        self.prune_tol = float(prune_tol)

    def _per_task(self, inputs: BoundInputs) -> tuple[np.ndarray, dict]:
        res = pairwise_chernoff(inputs.mixtures, n_iter=self.n_iter, prune_tol=self.prune_tol)
        per = np.minimum(1.0, res["pairwise"].sum(axis=1))
        return per, dict(res)


