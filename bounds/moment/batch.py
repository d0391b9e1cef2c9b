"""A batched primal-dual interior-point solver for many compact VBC SDPs of one shape
(docs/theory.md §3.7.1, §14.6).

Every problem is the one :func:`.sdp._solve_compact_clarabel` solves,

    max sum_j lam_j  s.t.  S(y) = [[I_{r+1}, B], [B', diag lam]] >= 0,
                           s_j = w_j'z_j - h_j lam_j >= 0,   B = [z_1 .. z_k; lam'],

with the unknowns ``y = (vec Z column-major, lam)`` (Clarabel's order). Its conic dual is
the S-lemma form of :func:`.sdp.certify_majorant`: the dual matrix ``X`` (order r+1+k) has
the leading block ``[[P, q], [q', r0]]`` and the multipliers of the linear constraints are
``tau``; the dual objective is ``tr(P) + r0``.

The method is the HKM (Helmberg-Rendl-Vanderbei-Wolkowicz / Kojima-Shindoh-Hara / Monteiro)
direction with Mehrotra's predictor-corrector from the infeasible start ``X = S = I``,
``x = s = 1``, ``y = 0`` (Todd, Toh & Tütüncü, SIAM J. Optim. 8(3), 1998), run on a stack of
problems at once with numpy: the Schur complement ``M_ab = tr(A_a X A_b S^-1)`` is formed
from the block structure of the constraint matrices (every ``A_a`` is one off-diagonal
pair of the ``B`` block, plus one diagonal entry for ``lam_j``), so an iteration costs a
few batched products of order r+1+k. A problem leaves the stack when its relative gap and
residuals are below ``tol``; one that does not converge is reported so, and the caller
solves it with Clarabel. The solver's numbers are never printed: the caller certifies the
dual point (:func:`.sdp.certify_majorant`) exactly as it does Clarabel's.
"""

from __future__ import annotations

import time

import numpy as np

#: fraction of the step to the boundary of the cone
_STEP = 0.98
#: iterations before a problem is given up (Clarabel takes 10-14 on the bench's SDPs)
MAX_ITER = 60
GAP_FLOOR = 1e-2
_CHUNK = 64


def _sym(G: np.ndarray) -> np.ndarray:
    return 0.5 * (G + np.swapaxes(G, -1, -2))


def _op_A(G: np.ndarray, r: int, k: int) -> np.ndarray:
    """(B, m): tr(A_a G) for every unknown a (A_a the constraint matrix of y_a; G any
    square matrix of order r+1+k, only its symmetric part counts)."""
    t = r + 1
    off = G[:, :t, t:] + np.swapaxes(G[:, t:, :t], 1, 2)  # (B, r+1, k): G12 + G21'
    z = -off[:, :r, :]  # z_ij
    lam = -(off[:, r, :] + np.diagonal(G[:, t:, t:], axis1=1, axis2=2))
    B = G.shape[0]
    return np.concatenate([np.swapaxes(z, 1, 2).reshape(B, r * k), lam], axis=1)


def _op_At(y: np.ndarray, r: int, k: int) -> np.ndarray:
    """sum_a y_a A_a, (B, n, n): minus the variable part [[0, B], [B', diag lam]]."""
    Bn = y.shape[0]
    t = r + 1
    Z = np.swapaxes(y[:, : r * k].reshape(Bn, k, r), 1, 2)  # (B, r, k)
    lam = y[:, r * k:]
    out = np.zeros((Bn, t + k, t + k))
    out[:, :r, t:] = -Z
    out[:, r, t:] = -lam
    out[:, t:, :t] = np.swapaxes(out[:, :t, t:], 1, 2)
    idx = np.arange(t, t + k)
    out[:, idx, idx] = -lam
    return out


def _lin_index(r: int, k: int) -> np.ndarray:
    """(k, r+1): the unknowns of linear constraint j, (z_j, lam_j) (disjoint rows)."""
    idx = np.empty((k, r + 1), dtype=np.int64)
    idx[:, :r] = np.arange(r * k).reshape(k, r)
    idx[:, r] = r * k + np.arange(k)
    return idx


def _schur(X: np.ndarray, T: np.ndarray, r: int, k: int) -> np.ndarray:
    """(B, m, m): M_ab = tr(A_a X A_b T) of the PSD block, from the block structure.

    With E^{ij} = e_i f_j' + f_j e_i' (top index i <= r, bottom index j < k) and
    g_j = f_j f_j': tr(E^{ij} X E^{IJ} T) = X21[j,I] T21[J,i] + X22[j,J] T11[I,i]
    + X11[i,I] T22[J,j] + X12[i,J] T12[I,j]; tr(E^{ij} X g_J T) = X22[j,J] T21[J,i]
    + X12[i,J] T22[J,j]; tr(g_j X g_J T) = X22[j,J] T22[J,j]. z_ij <-> -E^{ij} (i < r),
    lam_j <-> -(E^{rj} + g_j).

    In chunks of _CHUNK problems (the products stay in cache), each block of M written
    in place: every entry is the same sum of the same products, in the same order, as
    forming K[b, j, i, J, I] for all i, I <= r and copying its blocks (bit-identical,
    twice as fast; tests/test_moment_batch.py)."""
    Bn, t = X.shape[0], r + 1
    m, rk = r * k + k, r * k
    M = np.empty((Bn, m, m))
    tmp = np.empty((min(Bn, _CHUNK), k, r, k, r))
    for b0 in range(0, Bn, _CHUNK):
        sl = slice(b0, min(Bn, b0 + _CHUNK))
        nb = sl.stop - sl.start
        Xc, Tc, Mc, tm = X[sl], T[sl], M[sl], tmp[:nb]
        X11, X12, X22 = Xc[:, :t, :t], Xc[:, :t, t:], Xc[:, t:, t:]
        T11, T21, T22 = Tc[:, :t, :t], Tc[:, t:, :t], Tc[:, t:, t:]
        X21, T12 = np.swapaxes(X12, 1, 2), np.swapaxes(T21, 1, 2)
        # z-z block: K[b, j, i, J, I] for i, I < r, written into M (z_ij at i + j r)
        Mzz = Mc[:, :rk, :rk].reshape(nb, k, r, k, r)
        np.multiply(X21[:, :, None, None, :r], T12[:, None, :r, :, None], out=Mzz)
        np.multiply(X22[:, :, None, :, None], T11[:, None, :r, None, :r], out=tm)
        Mzz += tm
        np.multiply(X11[:, None, :r, None, :r], T22[:, :, None, :, None], out=tm)
        Mzz += tm
        np.multiply(X12[:, None, :r, :, None], T21[:, :, None, None, :r], out=tm)
        Mzz += tm
        # z-lam block: K[b, j, i, J, r] + Kd[b, j, i, J], i < r
        zl = X21[:, :, None, None, r] * T12[:, None, :r, :]
        zl += X22[:, :, None, :] * T11[:, None, :r, r, None]
        zl += X11[:, None, :r, r, None] * T22[:, :, None, :]
        zl += X12[:, None, :r, :] * T21[:, :, None, None, r]
        zl += X22[:, :, None, :] * T12[:, None, :r, :] + X12[:, None, :r, :] * T22[:, :, None, :]
        Mc[:, :rk, rk:] = zl.reshape(nb, rk, k)
        Mc[:, rk:, :rk] = np.swapaxes(Mc[:, :rk, rk:], 1, 2)
        # lam-lam block: K[b, j, r, J, r] + Kd[b, j, r, J] + Kd[b, J, r, j] + X22 T22
        ll = X21[:, :, None, r] * T12[:, None, r, :]
        ll += X22 * T11[:, r, r, None, None]
        ll += X11[:, r, r, None, None] * T22
        ll += X12[:, None, r, :] * T21[:, :, None, r]
        kdr = X22 * T12[:, None, r, :] + X12[:, None, r, :] * T22
        Mc[:, rk:, rk:] = ll + kdr + np.swapaxes(kdr, 1, 2) + X22 * T22
    return M


def _chol(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched Cholesky factors and a mask of the matrices where it failed (their factor
    is the identity)."""
    try:
        return np.linalg.cholesky(A), np.zeros(A.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        L = np.tile(np.eye(A.shape[-1]), (A.shape[0], 1, 1))
        bad = np.zeros(A.shape[0], dtype=bool)
        for i in range(A.shape[0]):
            try:
                L[i] = np.linalg.cholesky(A[i])
            except np.linalg.LinAlgError:
                bad[i] = True
        return L, bad


def _min_eig(A: np.ndarray) -> np.ndarray:
    """(B,): the smallest eigenvalue of each symmetric matrix (-inf where it fails)."""
    try:
        return np.linalg.eigvalsh(A)[:, 0]
    except np.linalg.LinAlgError:
        out = np.full(A.shape[0], -np.inf)
        for i in range(A.shape[0]):
            try:
                out[i] = np.linalg.eigvalsh(A[i])[0]
            except np.linalg.LinAlgError:
                pass
        return out


def _max_step(Li: np.ndarray, dX: np.ndarray) -> np.ndarray:
    """(B,): the largest alpha <= 1 with X + alpha dX >= 0, from Li = L^-1 (X = L L');
    0 where it cannot be computed."""
    lam = _min_eig(Li @ dX @ np.swapaxes(Li, 1, 2))
    with np.errstate(divide="ignore"):
        return np.where(lam < 0, np.minimum(1.0, -1.0 / lam), 1.0)


def _max_step_lin(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(dx < 0, -x / dx, np.inf)
    return np.minimum(1.0, a.min(axis=1, initial=np.inf))


class _Lin:
    """The linear constraints of a batch: rows a_j (B, k, r+1) on (z_j, lam_j), with
    s_j = -(a_j'y) = w_j'z_j - h_j lam_j."""

    def __init__(self, V: np.ndarray, idx: np.ndarray, m: int) -> None:
        self.V, self.idx, self.m = V, idx, m

    def take(self, keep: np.ndarray) -> _Lin:
        return _Lin(self.V[keep], self.idx, self.m)

    def op(self, x: np.ndarray) -> np.ndarray:
        """A_lin(x) = sum_j x_j a_j, (B, m)."""
        o = np.empty((x.shape[0], self.m))
        o[:, self.idx.ravel()] = (x[:, :, None] * self.V).reshape(x.shape[0], -1)
        return o

    def op_t(self, y: np.ndarray) -> np.ndarray:
        """(a_j'y)_j, (B, k)."""
        return np.einsum("bji,bji->bj", self.V, y[:, self.idx])

    def schur(self, w: np.ndarray, M: np.ndarray) -> None:
        """M += sum_j w_j a_j a_j' (the rows are disjoint: one block per j)."""
        V = self.V
        M[:, self.idx[:, :, None], self.idx[:, None, :]] += \
            w[:, :, None, None] * V[:, :, :, None] * V[:, :, None, :]


class _Newton:
    """The Newton systems of one iteration at (X, x, y, S, s): the HKM direction for a
    target ``sigma mu`` and Mehrotra's corrector terms (module docstring)."""

    def __init__(self, X: np.ndarray, x: np.ndarray, S: np.ndarray, s: np.ndarray,
                 T: np.ndarray, Rd: np.ndarray, rd: np.ndarray, lin: _Lin, bvec: np.ndarray,
                 r: int, k: int) -> None:
        self.X, self.x, self.S, self.s, self.T = X, x, S, s, T
        self.Rd, self.rd, self.lin, self.bvec, self.r, self.k = Rd, rd, lin, bvec, r, k
        self.M = _schur(X, T, r, k)
        lin.schur(x / s, self.M)
        self.XRdT = X @ Rd @ T
        self.xrd = x * rd / s
        self.failed = np.zeros(X.shape[0], dtype=bool)

    def direction(self, sig_mu: np.ndarray, cX: np.ndarray | float, cx: np.ndarray | float
                  ) -> tuple[np.ndarray, ...]:
        """(dX, dx, dy, dS, ds) for X S -> sig_mu I, plus the corrector terms cX, cx."""
        r, k, lin = self.r, self.k, self.lin
        G = sig_mu[:, None, None] * self.T + cX
        g = sig_mu[:, None] / self.s + cx
        rhs = self.bvec[None, :] - _op_A(G - self.XRdT, r, k) - lin.op(g - self.xrd)
        dy = _solve(self.M, rhs)
        dS = self.Rd - _op_At(dy, r, k)
        ds = self.rd - lin.op_t(dy)
        dX = _sym(G - self.X - self.X @ dS @ self.T)
        dx = g - self.x - self.x * ds / self.s
        out = (dX, dx, dy, dS, ds)
        bad = ~np.all(np.isfinite(np.concatenate([a.reshape(a.shape[0], -1) for a in out],
                                                 axis=1)), axis=1)
        if np.any(bad):  # a singular system: no step, and the problem leaves (to Clarabel)
            self.failed |= bad
            for a in out:
                a[bad] = 0.0
        return out


def _solve(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched M dy = rhs; a singular M gives dy = nan (its problem then leaves)."""
    try:
        return np.linalg.solve(M, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(rhs.shape, np.nan)
        for i in range(M.shape[0]):
            try:
                out[i] = np.linalg.solve(M[i], rhs[i])
            except np.linalg.LinAlgError:
                pass
        return out


def solve_compact_batch(W: np.ndarray, h: np.ndarray, tol: float) -> list[dict | None]:
    """Solve the problems ``(W[b] (r, k), h[b] (k,))`` of one shape; per problem the dict
    of :func:`.sdp._solve_compact_clarabel` (status ``"Solved"``) or None where the method
    did not reach ``tol`` in MAX_ITER iterations, or a factorisation failed (the caller
    solves those with Clarabel). Converged: primal and dual residuals <= tol (relative to
    1 + the data norms: sqrt(k) + max h_j and sqrt(r + 1)) and |tr(X11) - sum lam| <=
    tol (GAP_FLOOR + |tr(X11)| + |sum lam|).
    ``solve_time``: the batch's time divided by its size."""
    W = np.asarray(W, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    Ball, r, k = W.shape
    t0 = time.perf_counter()
    n, m, t = r + 1 + k, r * k + k, r + 1
    nn = n + k  # order of the complementarity (PSD + linear)
    diag_t = np.arange(t)
    bvec = np.zeros(m)
    bvec[r * k:] = 1.0
    lin_all = _Lin(np.concatenate([-np.swapaxes(W, 1, 2), h[:, :, None]], axis=2),
                   _lin_index(r, k), m)
    # the primal residual holds the terms x_j h_j: relative to the largest offset
    pscale = 1.0 + np.sqrt(k) + np.abs(h).max(axis=1)
    live = np.arange(Ball)
    X = np.tile(np.eye(n), (Ball, 1, 1))
    S = X.copy()
    x = np.ones((Ball, k))
    s = np.ones((Ball, k))
    y = np.zeros((Ball, m))
    iters = np.zeros(Ball, dtype=np.int64)
    solved = np.zeros(Ball, dtype=bool)
    for it in range(MAX_ITER + 1):
        lin = lin_all.take(live)
        Xl, Sl, xl, sl, yl = X[live], S[live], x[live], s[live], y[live]
        Rp = bvec[None, :] - _op_A(Xl, r, k) - lin.op(xl)
        Rd = -Sl - _op_At(yl, r, k)
        Rd[:, diag_t, diag_t] += 1.0  # C = diag(I_{r+1}, 0)
        rd = -sl - lin.op_t(yl)  # C_lin = 0
        pobj = np.trace(Xl[:, :t, :t], axis1=1, axis2=2)
        dobj = yl[:, r * k:].sum(axis=1)
        gap = np.abs(pobj - dobj) / (GAP_FLOOR + np.abs(pobj) + np.abs(dobj))
        pinf = np.linalg.norm(Rp, axis=1) / pscale[live]
        dinf = (np.sqrt(np.einsum("bij,bij->b", Rd, Rd)) + np.linalg.norm(rd, axis=1)) \
            / (1.0 + np.sqrt(t))
        done = (gap <= tol) & (pinf <= tol) & (dinf <= tol)
        solved[live[done]] = True
        # a problem whose iterate is not finite, or whose X or S is not positive definite
        # in floating point, leaves (to Clarabel)
        finite = np.isfinite(pobj) & np.isfinite(dobj) & np.isfinite(pinf) & np.isfinite(dinf)
        go = np.flatnonzero(~done & finite)
        if go.size == 0 or it == MAX_ITER:
            break
        Lx, bad_x = _chol(Xl[go])
        Ls, bad_s = _chol(Sl[go])
        ok = ~bad_x & ~bad_s
        keep = go[ok]
        if keep.size == 0:
            break
        Lx, Ls = Lx[ok], Ls[ok]
        if keep.size < live.size:
            live, lin, Xl, Sl, xl, sl, yl, Rd, rd = (
                a.take(keep) if isinstance(a, _Lin) else a[keep]
                for a in (live, lin, Xl, Sl, xl, sl, yl, Rd, rd))
        Lxi = np.linalg.inv(Lx)
        Lsi = np.linalg.inv(Ls)
        T = np.swapaxes(Lsi, 1, 2) @ Lsi  # S^-1
        nt = _Newton(Xl, xl, Sl, sl, T, Rd, rd, lin, bvec, r, k)
        mu = (np.einsum("bij,bji->b", Xl, Sl) + np.einsum("bk,bk->b", xl, sl)) / nn
        # predictor (sigma = 0), then Mehrotra's sigma and the corrector
        dXp, dxp, _dy, dSp, dsp = nt.direction(np.zeros(live.size), 0.0, 0.0)
        ap = np.minimum(_max_step(Lxi, dXp), _max_step_lin(xl, dxp))
        ad = np.minimum(_max_step(Lsi, dSp), _max_step_lin(sl, dsp))
        mu_aff = (np.einsum("bij,bji->b", Xl + ap[:, None, None] * dXp,
                            Sl + ad[:, None, None] * dSp)
                  + np.einsum("bk,bk->b", xl + ap[:, None] * dxp, sl + ad[:, None] * dsp)) / nn
        sigma = np.clip((mu_aff / mu) ** 3, 0.0, 1.0)
        dX, dx, dy, dS, ds = nt.direction(sigma * mu, -(dXp @ dSp @ T), -(dxp * dsp) / sl)
        ap = _STEP * np.minimum(_max_step(Lxi, dX), _max_step_lin(xl, dx))
        ad = _STEP * np.minimum(_max_step(Lsi, dS), _max_step_lin(sl, ds))
        X[live] = _sym(Xl + ap[:, None, None] * dX)
        x[live] = xl + ap[:, None] * dx
        S[live] = _sym(Sl + ad[:, None, None] * dS)
        s[live] = sl + ad[:, None] * ds
        y[live] = yl + ad[:, None] * dy
        X[live[nt.failed]] = np.nan  # leaves at the next check
        iters[live] += 1
    share = (time.perf_counter() - t0) / Ball
    return [_result(X[b], x[b], y[b], r, k, int(iters[b]), share) if solved[b] else None
            for b in range(Ball)]


def _result(X: np.ndarray, x: np.ndarray, y: np.ndarray, r: int, k: int, iterations: int,
            solve_time: float) -> dict:
    """One problem's solution in the form of :func:`.sdp._solve_compact_clarabel`."""
    lam = y[r * k:].copy()
    return {
        "P": X[:r, :r].copy(), "q": X[:r, r].copy(), "r0": float(X[r, r]), "tau": x.copy(),
        "z": y[: r * k].reshape(k, r).copy(), "lam": lam, "primal": float(lam.sum()),
        "status": "Solved", "iterations": iterations,
        "solve_time": solve_time,
    }
