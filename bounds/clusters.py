"""Cluster statistics the centroid-geometry bounds read (docs/theory.md §3).

:class:`ClusterStats` (computed from points by :func:`bounds.cluster_fit.cluster_stats`):
per stored centroid the weight, mean squared radius about the *stored* centroid, max
radius, mean offset, a top-q covariance eigen-sketch with a valid residual bound
(:mod:`bounds.sketch`), and per point its cluster and radius. Separations are computed at
bound time so that statistics gathered task by task can be concatenated
(:meth:`ClusterStats.concat`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ._validate import fmt_list
from .distances import sqdist, unit_exponent
from .npz import save_npz

__all__ = ["ClusterStats"]


_CS_FIELDS = (
    "task", "centroid", "count", "weight", "msr", "max_radius", "offset",
    "eigvecs", "eigvals", "resid", "point_cluster", "point_radius",
)
#: physical dimension of the ClusterStats fields: 1 = a length, 2 = a squared length
#: (other fields are scale-free: ids, counts, weights, unit eigenvectors)
_CS_POWER = {"centroid": 1, "max_radius": 1, "offset": 1, "point_radius": 1,
             "msr": 2, "eigvals": 2, "resid": 2, "resid_diag": 2}


@dataclass
class ClusterStats:
    """Per-cluster geometry for the centroid bounds (docs/theory.md §3).

    Cluster c = (task[c], stored centroid centroid[c]). ``weight[c] = count[c] / n_t``,
    ``msr[c]`` = mean ||z - mu_c||^2 about the stored centroid, ``offset[c]`` = cluster
    mean - centroid, covariance sketch ``eigvecs`` (C, d, q), ``eigvals`` (C, q), ``resid``
    (C,) >= every remaining eigenvalue. Per point: ``point_cluster`` (n,), ``point_radius``
    (n,) = ||z - mu_{point_cluster}||.
    """

    task: np.ndarray
    centroid: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    msr: np.ndarray
    max_radius: np.ndarray
    offset: np.ndarray
    eigvecs: np.ndarray
    eigvals: np.ndarray
    resid: np.ndarray
    point_cluster: np.ndarray
    point_radius: np.ndarray
    #: optional (C, d): diagonal of Sigma_c - V diag(L) V' (>= 0), the part of each
    #: coordinate's variance the sketch misses. Used only by the predictions
    #: (docs/theory.md §9); the bounds use the PSD upper bound ``resid``.
    resid_diag: np.ndarray | None = None

    # ------------------------------------------------------------ basic properties
    @property
    def n_clusters(self) -> int:
        return int(self.task.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroid.shape[1])

    @property
    def rank(self) -> int:
        return int(self.eigvals.shape[1])

    @property
    def n_tasks(self) -> int:
        return int(self.task.max()) + 1

    @property
    def point_task(self) -> np.ndarray:
        return self.task[self.point_cluster]

    def task_sizes(self) -> np.ndarray:
        """n_t per task (sum of cluster counts)."""
        return np.bincount(self.task, weights=self.count,
                           minlength=self.n_tasks).astype(np.int64)

    def validate(self, name: str = "clusters", *, complete: bool = True) -> ClusterStats:
        """Check shapes and finiteness; raises ``ValueError(name: ...)``.

        ``complete=False`` accepts a part of a run (e.g. the training-time statistics of
        task t alone, whose ids are global): every other check still applies.
        """
        C = self.task.shape[0]
        if C == 0:
            raise ValueError(f"{name}: has no clusters")
        d = self.centroid.shape[1] if self.centroid.ndim == 2 else -1
        expect = {"task": (C,), "centroid": (C, d), "count": (C,), "weight": (C,), "msr": (C,),
                  "max_radius": (C,), "offset": (C, d), "resid": (C,)}
        for key, shp in expect.items():
            arr = getattr(self, key)
            if arr.shape != shp:
                raise ValueError(f"{name}: field {key} has shape {arr.shape}, expected {shp}")
        q = self.eigvals.shape[1] if self.eigvals.ndim == 2 else -1
        if self.eigvals.shape != (C, q) or self.eigvecs.shape != (C, d, q):
            raise ValueError(f"{name}: sketch shapes eigvecs {self.eigvecs.shape} / eigvals "
                             f"{self.eigvals.shape} do not match {C} clusters of dimension {d}")
        for f in _CS_FIELDS:
            arr = getattr(self, f)
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: field {f} contains NaN or infinite values")
        if self.point_cluster.shape != self.point_radius.shape:
            raise ValueError(f"{name}: point_cluster and point_radius lengths differ")
        if self.resid_diag is not None:
            if self.resid_diag.shape != (C, d):
                raise ValueError(f"{name}: field resid_diag has shape {self.resid_diag.shape}, "
                                 f"expected {(C, d)}")
            if not np.all(np.isfinite(self.resid_diag)) or np.any(self.resid_diag < 0):
                raise ValueError(f"{name}: field resid_diag must be finite and >= 0")
        pc = self.point_cluster
        if pc.size and (pc.min() < 0 or pc.max() >= C):
            raise ValueError(f"{name}: point_cluster ids out of range")
        for f in ("count", "weight", "msr", "max_radius", "point_radius", "eigvals", "resid"):
            arr = getattr(self, f)
            if arr.size and arr.min() < 0:
                raise ValueError(f"{name}: {f}: negative value(s) (min {arr.min():.6g}); "
                                 "counts, weights, radii and second moments are >= 0")
        if self.task.min() < 0:
            raise ValueError(f"{name}: negative task id")
        missing = np.setdiff1d(np.arange(self.n_tasks), self.task)
        if complete and missing.size:
            raise ValueError(f"{name}: task(s) {fmt_list(missing)} have no centroid")
        if not np.array_equal(np.bincount(self.point_cluster, minlength=C), self.count):
            raise ValueError(f"{name}: count disagrees with point_cluster")
        e = self.unit_exponent()
        self.scaled(e)._check_consistency(name, e)
        return self

    def _check_consistency(self, name: str, e: int = 0) -> None:
        """Cross-field checks (on statistics normalised by 2**e, so tolerances are
        relative): weights = count / task size, msr and max_radius = mean and max of the
        point radii (squared), |offset|^2 <= msr, orthonormal sketch eigenvectors (a zero
        column only with eigenvalue 0), and a sketch that covers the spread: trace Sigma_c
        = msr - |offset|^2 <= sum(eigvals) + (d - rank) * resid (docs/theory.md §3.5).
        ``q2``: the absolute rounding of a squared length stored at scale 2**e. A square
        below the float64 normal range (data at ~1e-155 or below) keeps few or no digits:
        such a file cannot carry the bounds' second moments and is refused as such."""
        C, d = self.centroid.shape
        q2 = np.ldexp(4.0, -1074 - 2 * e) + np.ldexp(4.0, -1074 - e)

        def refuse(field: str, bad: np.ndarray, gap: np.ndarray, tol: np.ndarray,
                   what: str) -> None:
            if np.all(gap[bad] <= tol[bad] + q2):
                raise ValueError(
                    f"{name}: {field}: cluster(s) {fmt_list(bad)} have squared lengths below "
                    f"the float64 range at this scale (2**{e}): they underflow; rescale the "
                    "representations (e.g. by a power of two) before gathering statistics")
            raise ValueError(f"{name}: {field}: cluster(s) {fmt_list(bad)} {what}")
        n_t = np.bincount(self.task, weights=self.count, minlength=self.n_tasks)[self.task]
        want = np.where(n_t > 0, self.count / np.where(n_t > 0, n_t, 1.0), 0.0)
        bad = np.flatnonzero(np.abs(self.weight - want) > 1e-9 * want + 1e-12)
        if bad.size:
            c = int(bad[0])
            raise ValueError(
                f"{name}: weight: {bad.size} cluster(s) {fmt_list(bad)} disagree with count "
                f"/ task size, e.g. cluster {c} (task {int(self.task[c])}): weight "
                f"{self.weight[c]:.6g} != {int(self.count[c])}/{int(n_t[c])}")
        pc, pr = self.point_cluster, self.point_radius
        has = self.count > 0
        mean_r2 = np.bincount(pc, weights=pr * pr, minlength=C) / np.maximum(self.count, 1)
        gap = np.abs(self.msr - mean_r2)
        tol = 1e-9 * np.maximum(self.msr, mean_r2) + 1e-200
        bad = np.flatnonzero(has & (gap > tol))
        if bad.size:
            refuse("msr", bad, gap, tol,
                   "disagree with the mean squared point_radius of their points")
        rmax = np.zeros(C)
        np.maximum.at(rmax, pc, pr)
        bad = np.flatnonzero(has & (np.abs(self.max_radius - rmax) > 1e-9 * rmax + 1e-200))
        if bad.size:
            raise ValueError(f"{name}: max_radius: cluster(s) {fmt_list(bad)} disagree with "
                             "the largest point_radius of their points")
        b2 = np.einsum("cd,cd->c", self.offset, self.offset)
        tol = self.msr * 1e-9 + 1e-200
        bad = np.flatnonzero(b2 - self.msr > tol)
        if bad.size:
            refuse("offset", bad, b2 - self.msr, tol,
                   "have a mean offset longer than their root mean squared radius")
        U, L = self.eigvecs, self.eigvals
        if L.shape[1]:
            G = np.matmul(np.swapaxes(U, 1, 2), U)  # U_c' U_c, batched BLAS
            nz = np.einsum("cqq->cq", G) > 0.5
            dev = np.abs(G - nz[:, :, None] * np.eye(L.shape[1]))
            lmax = np.maximum(L.max(axis=1), self.resid)[:, None, None]
            weighted = dev * np.minimum(L[:, :, None], L[:, None, :])
            bad = np.flatnonzero(np.any((dev > 1e-2) | (weighted > 1e-8 * lmax), axis=(1, 2)))
            if bad.size:
                raise ValueError(f"{name}: eigvecs: the sketch eigenvectors of cluster(s) "
                                 f"{fmt_list(bad)} are not orthonormal (eigvecs[c]' eigvecs[c] "
                                 "must be the identity, up to zero columns)")
            bad = np.flatnonzero(np.any(~nz & (L > 0), axis=1))
            if bad.size:
                raise ValueError(f"{name}: eigvecs: cluster(s) {fmt_list(bad)} have a zero "
                                 "eigenvector with a positive eigenvalue")
            rank = nz.sum(axis=1)
        else:
            rank = np.zeros(C, dtype=np.int64)
        spread = self.msr - b2
        cover = L.sum(axis=1) + (d - rank) * self.resid
        tol = 1e-9 * self.msr + 1e-200
        bad = np.flatnonzero(spread - cover > tol)
        if bad.size:
            refuse("eigvals", bad, (spread - cover) / (d + L.shape[1] + 2), tol,
                   "have a covariance sketch (eigvals, resid) smaller than their spread msr "
                   "- |offset|^2: it must bound every eigenvalue")

    # ------------------------------------------------------------ scale
    def unit_exponent(self) -> int:
        """e with the largest length (centroid coordinate, radius, offset, square root of
        a second moment) / 2**e in [0.5, 1); 0 when every length is 0."""
        return unit_exponent(
            *(getattr(self, f) for f, p in _CS_POWER.items() if p == 1),
            squared=tuple(getattr(self, f) for f, p in _CS_POWER.items()
                          if p == 2 and getattr(self, f, None) is not None))

    def scaled(self, e: int) -> ClusterStats:
        """The same statistics with every length divided by 2**e (exact; the bounds are
        scale-invariant, docs/theory.md §3.5). ``e = 0`` returns ``self``."""
        if e == 0:
            return self
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return type(self)(**{k: np.ldexp(v, -_CS_POWER[k] * e) if _CS_POWER.get(k) and v is not
                             None else v for k, v in kw.items()})

    # ------------------------------------------------------------ composition / IO
    @classmethod
    def concat(cls, parts: list[ClusterStats]) -> ClusterStats:
        """Concatenate stats gathered task by task; weights are recomputed from counts."""
        parts = list(parts)
        if not parts:
            raise ValueError("parts: need at least one ClusterStats")
        d, q = {p.dim for p in parts}, {p.rank for p in parts}
        if len(d) != 1 or len(q) != 1:
            raise ValueError(f"parts: dimensions differ {sorted(d)}" if len(d) != 1 else
                             f"parts: sketch ranks differ {sorted(q)}")
        offs = np.cumsum([0] + [p.n_clusters for p in parts[:-1]])
        kw = {}
        if all(p.resid_diag is not None for p in parts):
            kw["resid_diag"] = np.concatenate([p.resid_diag for p in parts], axis=0)
        for f in _CS_FIELDS:
            if f == "point_cluster":
                kw[f] = np.concatenate([p.point_cluster + o for p, o in zip(parts, offs)])
            else:
                kw[f] = np.concatenate([getattr(p, f) for p in parts], axis=0)
        out = cls(**kw)
        sizes = np.bincount(out.task, weights=out.count, minlength=out.n_tasks)
        denom = sizes[out.task]
        out.weight = np.where(denom > 0, out.count / np.where(denom > 0, denom, 1), 0.0)
        return out

    def first_tasks(self, k: int) -> ClusterStats:
        """The statistics of tasks 0..k only: their clusters and points (weights are per
        task, so they are unchanged). Used for the state of a run after step k."""
        keep = self.task <= k
        new_id = np.cumsum(keep) - 1
        pts = keep[self.point_cluster]
        kw = {f: getattr(self, f)[keep] for f in _CS_FIELDS if not f.startswith("point_")}
        return type(self)(
            **kw, point_cluster=new_id[self.point_cluster[pts]],
            point_radius=self.point_radius[pts],
            resid_diag=None if self.resid_diag is None else self.resid_diag[keep])

    def save(self, path: str | Path) -> None:
        """Write every field to an ``.npz`` archive (no pickle; :mod:`bounds.npz`)."""
        save_npz(path, {f.name: getattr(self, f.name) for f in fields(self)
                        if getattr(self, f.name) is not None})

    @classmethod
    def load(cls, path: str | Path, *, complete: bool = True) -> ClusterStats:
        """Read an archive written by :meth:`save` (``allow_pickle=False``);
        ``complete=False`` loads one task's part (see :meth:`validate`)."""
        with np.load(path, allow_pickle=False) as z:
            missing = [f for f in _CS_FIELDS if f not in z.files]
            if missing:
                raise ValueError(f"path: archive lacks fields {missing}")
            extra = {"resid_diag": z["resid_diag"]} if "resid_diag" in z.files else {}
            return cls(**{f: z[f] for f in _CS_FIELDS}, **extra).validate(
                "path", complete=complete)

    # ------------------------------------------------------------ bound-time geometry
    def foreign_sqdist(self) -> tuple[np.ndarray, np.ndarray]:
        """(D2 (C, C) squared centroid distances, foreign mask task[c] != task[nu])."""
        D2 = sqdist(self.centroid, self.centroid)
        np.fill_diagonal(D2, 0.0)
        foreign = self.task[:, None] != self.task[None, :]
        return D2, foreign

    def separation_sq(self, *, geometry: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> np.ndarray:
        """D_c^2 = min over foreign centroids of ||nu - mu_c||^2 (+inf if none), (C,);
        ``geometry``: a result of :meth:`foreign_sqdist` to reuse (saves recomputing it)."""
        D2, foreign = self.foreign_sqdist() if geometry is None else geometry
        return np.where(foreign, D2, np.inf).min(axis=1)
