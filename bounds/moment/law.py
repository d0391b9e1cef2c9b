"""The supremum over laws with given mean and covariance, and its attaining law
(docs/theory.md §3.7.1-§3.7.8).

:func:`sup_union_probability` is the certified ``sup P(x in H_1 u ... u H_k)``;
:func:`check_law` verifies an attaining law returned with ``law=True`` (§3.7.8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array
from ..forms import FUNCS
from .drive import BACKENDS, Steps, drive
from .sdp import (
    _EIG_C,
    _EPS,
    _LAW_DELTA,
    _SOLVER_TOL,
    PRUNE_TOL,
    LawCheck,
    MomentCertificate,
    certify_majorant,
)


# ------------------------------------------------------------------ core (normalised)
def _pow2(x: float) -> float:
    """The power of two nearest to x > 0 (exact scaling factor)."""
    return float(np.ldexp(1.0, int(np.round(np.log2(x)))))


def _cantelli_terms(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Cantelli terms v/(v+c^2) for c > 0, inflated for the rounding of v and c^2."""
    v = np.maximum(v, 0.0) * (1.0 + 16 * _EPS)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        p = FUNCS["cantelli"](v, c)
    return np.where((v == 0) & (c > 0), 0.0, np.minimum(1.0, p * (1.0 + 8 * _EPS)))


def _core(Sig: np.ndarray, U: np.ndarray, c: np.ndarray, *, law: bool, tol: float,
          u_err: np.ndarray | float = 0.0) -> Steps[dict]:
    """Certified sup of P(exists j: u_j'y >= c_j) over laws with mean 0, covariance Sig.

    ``U`` (k, r) unit rows, ``c`` (k,) > 0, ``Sig`` (r, r) PSD of order 1 (normalised
    coordinates). Works in the whitened coordinates xi of a factor ``F`` with
    ``Sig <= F F'`` (y = F xi): there the covariance is <= I, the halfspaces are
    ``g_j'xi >= c_j`` with ``g_j = F'u_j`` computed forward (no inverse), and the objective
    of a majorant is exactly ``tr(P) + r0`` (docs/theory.md §3.7, "Certification"). Returns
    the certified value and diagnostics; with ``law`` the attaining law (atoms (N, r) in
    the y coordinates, weights). ``u_err`` bounds |u_j - u_j*|, the error of the given unit
    normals against the exact ones (rounding of their computation).

    A generator (:data:`Steps`): it yields its SDP ``(W, h, tol)`` and is sent the
    solution (or thrown the solver's exception) by :func:`drive` or :func:`drive_all`.
    """
    k, r = U.shape
    # factor: F = chol(Sig + delta I), delta covering a negative eigenvalue of Sig (input
    # rounding) and the Cholesky backward error, so Sig <= F F'. Cholesky (unlike an
    # eigenbasis) is unique and continuous in Sig: equivalent inputs reach the solver in
    # the same coordinates, so the certified values agree to rounding
    Sig = 0.5 * (Sig + Sig.T)
    lam_min = float(np.linalg.eigvalsh(Sig)[0]) if r else 0.0
    delta = 2.0 * (max(0.0, -lam_min) + (_EIG_C * r + 4 * (r + 1) ** 2) * _EPS
                   * float(np.linalg.norm(Sig)))
    # Sig = 0 (a point mass): F = 0, so every halfspace (gap > 0) has probability 0
    F = np.linalg.cholesky(Sig + delta * np.eye(r)) if delta > 0 else np.zeros((r, r))
    G = U @ F  # rows g_j' = u_j'F
    # |g_j - g_j*| <= rounding of F'u_j + ||F||_2 |u_j - u_j*|
    eg = 1.01 * (r * _EPS * np.linalg.norm(np.abs(U) @ np.abs(F), axis=1)
                 + np.asarray(u_err, dtype=np.float64) * float(np.linalg.norm(F)))
    N = np.linalg.norm(G, axis=1)
    Ng = N + eg  # >= |g*_j|: Cantelli in xi-space, Var(g*'xi) <= |g*|^2
    p = _cantelli_terms(Ng * Ng, c)
    cant = float(min(1.0, p.sum() * (1.0 + k * _EPS)))
    keep = (p > PRUNE_TOL) & (N > 0)
    pruned = float(p[~keep].sum() * (1.0 + k * _EPS))
    out: dict[str, Any] = {
        "cantelli": cant, "pruned": pruned, "k_sdp": int(keep.sum()), "r": 0, "primal": np.nan,
        "status": "not solved", "iterations": 0, "solve_time": 0.0, "eps_repair": 0.0,
        "note": "", "atoms": None, "weights": None,
    }
    if not np.any(keep):
        out.update(value=min(1.0, pruned), method="cantelli-union",
                   note="every halfspace has a Cantelli term <= PRUNE_TOL")
        if law:
            out["atoms"], out["weights"] = _law_from_atoms(
                Sig, np.zeros((0, r)), np.zeros(0), U, c)
        return out
    Nk = N[keep]
    Gh = G[keep] / Nk[:, None]  # unit normals in xi-space
    h = c[keep] / Nk
    # data error of the normalised halfspaces against the exact ones (see certify_majorant)
    err_g = eg[keep] / Nk + 2 * _EPS
    err_h = 2 * _EPS * h
    # solve in span{g_j} (any basis: the point is re-verified in xi-space below); the xi
    # coordinates themselves when the normals span them (no arbitrary rotation)
    _, sv, Vt = np.linalg.svd(Gh, full_matrices=False)
    r1 = int(np.sum(sv > 1e-12 * sv[0]))
    Q1 = np.eye(r) if r1 == r else Vt[:r1].T
    W = Q1.T @ Gh.T  # (r1, kk)
    out["r"] = r1
    try:
        sol = yield W, h, tol
    except Exception as exc:  # solver failure: the Cantelli union is still valid
        out.update(value=cant, method="cantelli-fallback",
                   note=f"solver failed ({type(exc).__name__}: {exc}); Cantelli union")
        return out
    out.update(primal=sol["primal"] + pruned, status=sol["status"],
               iterations=sol["iterations"], solve_time=sol["solve_time"])
    P = Q1 @ sol["P"] @ Q1.T
    q = Q1 @ sol["q"]
    val, eps = certify_majorant(P, q, sol["r0"], sol["tau"], Gh, h, None,
                                err_normal=err_g, err_offset=err_h)
    if not np.isfinite(val):
        out.update(value=cant, method="cantelli-fallback",
                   note=f"dual point not repairable (status {sol['status']}); Cantelli union")
        return out
    value = min(1.0, max(0.0, (val + pruned) * (1.0 + 2 * _EPS)))
    out.update(value=value, method="dual-feasible", eps_repair=eps)
    if law:
        lam = np.asarray(sol["lam"], dtype=np.float64)
        # an atom's second moment |z_j|^2 / lam_j amplifies the solver's error by 1/lam_j:
        # atoms below 1e-8 are left to the residual (error mass lost: at most k * 1e-8)
        good = lam > 1e-8
        xi = (sol["z"][good] @ Q1.T) / lam[good, None]  # error atoms in xi-space
        at, w = _law_from_atoms(np.eye(r), xi, lam[good], Gh, h,
                                owner=np.flatnonzero(good))
        out["atoms"], out["weights"] = at @ F.T, w
    return out


def _law_from_atoms(Sig: np.ndarray, Y: np.ndarray, lam: np.ndarray, U: np.ndarray,
                    c: np.ndarray, owner: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A discrete law with mean 0 and covariance Sig that puts mass ~lam_j on error atoms.

    Error atom j is nudged onto the closed side of its halfspace ``owner[j]``. The residual
    moment matrix [[Sig, 0], [0, 1]] - (1 - theta) sum_j lam_j [y_j; 1][y_j; 1]' (theta >= 0
    the smallest value found that makes it PSD) is realised by a symmetric set of atoms
    around its mean (docs/theory.md §3.7, "The attaining law"). If no error atom is given,
    the Cantelli-extremal atom of the halfspace with the largest Cantelli term is used.
    """
    r = Sig.shape[0]
    Y = np.array(Y, dtype=np.float64).reshape(-1, r)
    lam = np.array(lam, dtype=np.float64)
    if owner is None:
        owner = np.arange(Y.shape[0])
    if Y.shape[0] == 0 and U.shape[0] > 0:
        v = np.einsum("ki,ij,kj->k", U, Sig, U)
        p = np.where(c > 0, v / np.maximum(v + c * c, 1e-300), 1.0)
        j = int(np.argmax(p))
        if p[j] > 0:
            y = (Sig @ U[j]) * (c[j] / v[j]) if c[j] > 0 else np.zeros(r)
            Y, lam, owner = y[None, :], np.array([p[j]]), np.array([j])
    # nudge onto the closed error side (relative 1e-9 beyond the boundary)
    for i in range(Y.shape[0]):
        j = owner[i]
        deficit = c[j] + 1e-9 * abs(c[j]) + 1e-300 - U[j] @ Y[i]
        if deficit > 0:
            Y[i] = Y[i] + deficit * U[j]
    Mt = np.zeros((r + 1, r + 1))
    Mt[:r, :r] = Sig
    Mt[r, r] = 1.0
    scale = max(float(np.abs(Mt).max()), 1e-300)
    Ev = np.zeros((r + 1, r + 1))
    if Y.shape[0]:
        Ya = np.hstack([Y, np.ones((Y.shape[0], 1))])
        Ev = (Ya * lam[:, None]).T @ Ya
    # the solver's primal point and the nudges violate R >= 0 by ~1e-9: accept a negative
    # part up to tol (clipped below, a moment mismatch of at most ~tol)
    tol = 1e-8 * scale

    def ok(theta: float) -> bool:
        R = Mt - (1.0 - theta) * Ev
        return bool(np.linalg.eigvalsh(R)[0] >= -tol) and R[r, r] > 0

    theta = 0.0
    if not ok(theta):
        theta = 1e-15
        while theta < 1.0 and not ok(theta):
            theta *= 4.0
        hi = min(theta, 1.0)
        lo = hi / 4.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if ok(mid):
                hi = mid
            else:
                lo = mid
        theta = hi
    R = Mt - (1.0 - theta) * Ev
    rho = float(R[r, r])
    if rho < _LAW_DELTA and theta < _LAW_DELTA:
        # (almost) all mass on error atoms: leave ~_LAW_DELTA for the residual atoms
        # (raising theta adds theta * Ev >= 0, so R stays PSD)
        theta = _LAW_DELTA
        R = Mt - (1.0 - theta) * Ev
        rho = float(R[r, r])
    m0 = R[:r, r] / rho
    C0 = R[:r, :r] / rho - np.outer(m0, m0)
    mu_e, V_e = np.linalg.eigh(0.5 * (C0 + C0.T))
    pos = mu_e > 1e-15 * max(float(mu_e[-1]), 0.0) if mu_e.size else np.zeros(0, bool)
    pos &= mu_e > 0
    npos = int(pos.sum())
    atoms = [Y]
    weights = [(1.0 - theta) * lam]
    if npos == 0:
        atoms.append(m0[None, :])
        weights.append(np.array([rho]))
    else:
        D = V_e[:, pos] * np.sqrt(mu_e[pos] * npos)
        atoms += [m0[None, :] + D.T, m0[None, :] - D.T]
        weights += [np.full(npos, rho / (2 * npos))] * 2
    return np.vstack(atoms), np.concatenate(weights)


# ------------------------------------------------------------------ public: general
def _check_cov(cov: object, r: int) -> np.ndarray:
    cov = as_float_array(cov, "cov", ndim=2)
    if cov.shape != (r, r):
        raise ValueError(f"cov: shape {cov.shape}, expected ({r}, {r})")
    big = float(np.abs(cov).max())
    if np.any(np.abs(cov - cov.T) > 1e-10 * big):
        raise ValueError("cov: must be symmetric")
    cov = 0.5 * (cov + cov.T)
    if big > 0:
        s = _pow2(big)
        w = np.linalg.eigvalsh(cov / s)
        if w[0] < -1e-9 * max(w[-1], 0.0) - 1e-300:
            raise ValueError(f"cov: not positive semidefinite (eigenvalue {w[0] * s:.3g})")
    return cov


def sup_union_probability(mean: object, cov: object, A: object, b: object, *,
                          law: bool = False, backend: str = "ipm",
                          tol: float = _SOLVER_TOL) -> MomentCertificate:
    """Certified sup of P(exists j: a_j'x >= b_j) over laws with this mean and covariance.

    ``mean`` (r,), ``cov`` (r, r) PSD, ``A`` (k, r), ``b`` (k,); closed halfspaces (ties
    count as errors). Coordinates are normalised (shift to the mean, halfspaces to unit
    normals, scale by a power of two) before solving, so the value is invariant under
    translation, rotation and scaling (docs/theory.md §3.7). A zero row ``a_j = 0`` is the
    whole space if ``b_j <= 0`` (value 1) and empty otherwise. ``law=True`` also returns
    the attaining discrete law (``atoms`` (N, r), ``weights`` (N,)); see :func:`check_law`.
    ``backend``: ``"ipm"`` (default: the batched interior point of :mod:`.batch` on the
    compact VBC primal, Clarabel where it does not converge), ``"clarabel"`` (the compact
    primal through Clarabel) or ``"cvxpy"`` (the S-lemma dual); the value is certified the
    same way whatever solved it.
    """
    mean = as_float_array(mean, "mean", ndim=1)
    r = mean.size
    cov = _check_cov(cov, r)
    A = as_float_array(A, "A", ndim=2)
    if A.shape[1] != r:
        raise ValueError(f"A: shape {A.shape}, expected (k, {r})")
    k = A.shape[0]
    b = as_float_array(b, "b", ndim=1)
    if b.shape != (k,):
        raise ValueError(f"b: shape {b.shape}, expected ({k},)")
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if not (isinstance(tol, float) and 0 < tol < 1e-3):
        raise ValueError(f"tol: must be a float in (0, 1e-3), got {tol!r}")
    return drive(_sup_union(mean, cov, A, b, law=law, tol=tol), backend)


def _sup_union(mean: np.ndarray, cov: np.ndarray, A: np.ndarray, b: np.ndarray, *,
               law: bool, tol: float, normal_err: np.ndarray | float = 0.0,
               gap_err: np.ndarray | float = 0.0) -> Steps[MomentCertificate]:
    """:func:`sup_union_probability` on validated input.

    ``normal_err`` (relative, per row) and ``gap_err`` (absolute, in units of x) bound the
    error of the rows' directions and of ``b_j / |a_j|`` against the exact halfspaces when
    the caller computed them with rounding (the cluster projection, §3.7.9 step 7).
    """
    r = mean.size
    k = A.shape[0]
    amax = np.abs(A).max(axis=1)
    zero = amax == 0
    base = dict(primal=np.nan, gap=np.nan, status="not solved", k=k, k_sdp=0, r=0,
                pruned=0.0, eps_repair=0.0, solve_time=0.0, iterations=0)

    def finish(y_atoms: np.ndarray | None, w: np.ndarray | None, s: float,
               **kw: Any) -> MomentCertificate:
        atoms = None if y_atoms is None else mean[None, :] + s * y_atoms
        return MomentCertificate(**{**base, **kw}, atoms=atoms, weights=w)

    # halfspaces with zero normal: everything (b <= 0) or nothing (b > 0)
    if np.any(zero & (b <= 0)):
        at = w = None
        s0 = _pow2(np.sqrt(np.abs(np.diag(cov)).max())) if np.any(cov) else 1.0
        if law:  # every point is an error: mass 1 - _LAW_DELTA at the mean
            at, w = _law_from_atoms(cov / s0 / s0, np.zeros((1, r)), np.ones(1),
                                    np.zeros((1, r)), np.array([-1.0]))
        return finish(at, w, s0, value=1.0, cantelli=1.0, method="trivial",
                      note="a halfspace with zero normal covers the space")
    A_, b_ = A[~zero], b[~zero]
    amx = amax[~zero]
    An = A_ / amx[:, None]
    nrm = np.linalg.norm(An, axis=1)
    U = An / nrm[:, None]
    na = amx * nrm
    bn = b_ / na
    um = U @ mean
    g = bn - um
    # rounding of g (dot product of length r, two divisions) and the callers' data errors:
    # shrink the gap (enlarges the error set, so the bound stays valid)
    nerr = np.broadcast_to(np.asarray(normal_err, dtype=np.float64), zero.shape)[~zero]
    gerr = np.broadcast_to(np.asarray(gap_err, dtype=np.float64), zero.shape)[~zero]
    g = g - 4.0 * (r + 4) * _EPS * (np.abs(bn) + np.abs(U) @ np.abs(mean)) \
        - nerr * float(np.linalg.norm(mean)) - gerr
    sd = float(np.sqrt(np.abs(np.diag(cov)).max())) if cov.size else 0.0
    if sd > 0:
        s = _pow2(sd)
    elif np.any(g > 0):
        s = _pow2(float(g[g > 0].min()))
    else:
        s = 1.0
    Sig = cov / s / s
    c = g / s
    if U.shape[0] == 0:
        at = w = None
        if law:
            at, w = _law_from_atoms(Sig, np.zeros((0, r)), np.zeros(0), U, c)
        return finish(at, w, s, value=0.0, cantelli=0.0, method="trivial",
                      note="every halfspace is empty")
    if np.any(c <= 0):
        at = w = None
        if law:
            j = int(np.argmin(c))
            at, w = _law_from_atoms(Sig, np.zeros((1, r)), np.ones(1), U[j:j + 1],
                                    c[j:j + 1])
        return finish(at, w, s, value=1.0, cantelli=1.0, method="trivial",
                      note="the mean lies in a closed error halfspace")
    # |u - a/|a|| <= 3 eps from the two scalings and the division
    res = yield from _core(Sig, U, c, law=law, tol=tol, u_err=3.03 * _EPS + nerr)
    value = float(res["value"])
    gap = value - res["primal"] if np.isfinite(res["primal"]) else np.nan
    return finish(res["atoms"], res["weights"], s, value=value, primal=float(res["primal"]),
                  gap=float(gap), cantelli=float(res["cantelli"]), method=res["method"],
                  status=res["status"], k_sdp=res["k_sdp"], r=res["r"],
                  pruned=float(res["pruned"]), eps_repair=float(res["eps_repair"]),
                  solve_time=float(res["solve_time"]), iterations=int(res["iterations"]),
                  note=res["note"])


def check_law(atoms: object, weights: object, mean: object, cov: object, A: object,
              b: object) -> LawCheck:
    """Total mass, relative mean / covariance mismatch and error fraction of a law.

    ``mean_error = |m_hat - mean| / (|mean| + sqrt(tr cov))``, ``cov_error = ||C_hat -
    cov||_F / ||cov||_F`` (absolute if cov = 0), ``error_fraction`` = weight of the atoms
    with some ``a_j'x >= b_j`` (docs/theory.md §3.7).
    """
    X = as_float_array(atoms, "atoms", ndim=2)
    w = as_float_array(weights, "weights", ndim=1)
    if w.shape != (X.shape[0],):
        raise ValueError(f"weights: shape {w.shape}, expected ({X.shape[0]},)")
    mean = as_float_array(mean, "mean", ndim=1)
    cov = as_float_array(cov, "cov", ndim=2)
    A = as_float_array(A, "A", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    if X.shape[1] != mean.size or cov.shape != (mean.size, mean.size) or \
            A.shape != (b.size, mean.size):
        raise ValueError("atoms: dimensions of atoms, mean, cov, A, b do not match")
    tot = float(w.sum())
    # moments in units of a power of two (no overflow at scales up to ~1e150)
    spread = max(float(np.abs(X - mean[None, :]).max()),
                 float(np.sqrt(np.abs(np.diag(cov)).max())))
    s = _pow2(spread) if spread > 0 else 1.0
    D = (X - mean[None, :]) / s
    dm = w @ D
    C_hat = (D * w[:, None]).T @ D - np.outer(dm, dm)
    covs = cov / s / s
    ref = float(np.linalg.norm(mean / s) + np.sqrt(max(np.trace(covs), 0.0)))
    mean_err = float(np.linalg.norm(dm) / ref) if ref > 0 else float(np.linalg.norm(dm))
    cref = float(np.linalg.norm(covs))
    cov_err = float(np.linalg.norm(C_hat - covs) / cref) if cref > 0 else float(
        np.linalg.norm(C_hat))
    err = np.any(X @ A.T >= b[None, :], axis=1)
    return LawCheck(total_mass=tot, mean_error=mean_err, cov_error=cov_err,
                    error_fraction=float(w[err].sum()), min_weight=float(w.min()))


