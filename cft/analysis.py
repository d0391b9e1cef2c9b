"""Analysis helpers for the notebooks: read a run directory, tabulate bounds per step.

Each evaluation step of a run directory (docs/run-dir.md) is loaded and validated by the
checker's loader (:func:`bounds.check.rundir.load_run`); signatures, per-task
representations and metrics are read here (JSON / ``.npz`` / ``.npy``, never pickle).
Bounds are evaluated only through the public :mod:`bounds` API
(:func:`bounds.evaluate`, :class:`bounds.BoundInputs`, :class:`bounds.ClusterStats`,
:class:`bounds.GaussianMixtures`). Results are plain dicts of numpy arrays (no pandas).

Typical use::

    from cft.analysis import load_run, bound_table
    run = load_run("runs/wordnet-minilm")
    tab = bound_table(run, mode="shared", kind="centroid")   # every step, every bound
    tab["overall"]["B"], tab["empirical_overall"]

Which inputs a bound sees (docs/theory.md §2-§5):

* score bounds (``G-emp``, ``G-cantelli``, ``corollary``) read the test scores of the
  chosen ``(mode, kind)``;
* PAC bounds read the calibration scores of the same ``(mode, kind)``;
* centroid bounds (``A`` ... ``D``) read ``eval/step-NNN/test/clusters-shared.npz``; they
  concern nearest-centroid retrieval in the shared space, so they are attached only to
  ``mode="shared", kind="centroid"``;
* the Gaussian Chernoff bound reads ``mixtures-shared.npz``; it concerns likelihood
  retrieval in the shared space and is attached only to ``mode="shared", kind="nll"``.

:func:`features_experiment` runs the same bounds on a features-space task stream (e.g.
``DATASETS.build("synthetic", ...)``) without any backbone: class means as centroids,
fitted per-class Gaussians as the mixtures.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

import bounds
from bounds import rundir_schema as L
from bounds.check.rundir import RunData, RunDirError, ScoreFile, read_meta
from bounds.check.rundir import load_run as _check_load_run
from bounds.rundir_schema import KINDS, MODES, SPLITS

__all__ = [
    "SPLITS",
    "MODES",
    "KINDS",
    "class_accuracy",
    "Run",
    "load_run",
    "bound_table",
    "tightness",
    "features_experiment",
    "direction_projections",
    "normality_tests",
    "likelihood_calibration",
    "run_likelihood_inputs",
]

def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def class_accuracy(sf: ScoreFile) -> float | None:
    """Fraction of correct global-class predictions of a score file (``None`` without
    ``label``/``pred``)."""
    if sf.label is None or sf.pred is None:
        return None
    return float(np.mean(np.asarray(sf.label) == np.asarray(sf.pred)))


class Run:
    """Read-only, multi-step view of a run directory (docs/run-dir.md, schema version 1).

    Each evaluation step is loaded and validated by the checker's loader
    (:func:`bounds.check.rundir.load_run`, cached per step); this class adds the step
    sequence, signatures, per-task representations and metrics the notebooks need.

    Parameters
    ----------
    path: the run directory; must contain ``run.json`` with ``schema_version == 1``.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_dir():
            raise ValueError(f"path: {str(p)!r} is not a directory")
        if not (p / L.RUN).is_file():
            raise ValueError(f"path: {str(p)!r} has no run.json (not a run directory)")
        try:  # the checker's rules for run.json (schema version, n_tasks, ...)
            info = read_meta(p)
        except RunDirError as exc:
            raise ValueError(f"path: {exc} (docs/run-dir.md)") from None
        self.path = p
        self.info = info
        self.config = _read_json(p / L.CONFIG) if (p / L.CONFIG).is_file() else {}
        self.tasks_meta = _read_json(p / L.TASKS_META) if (p / L.TASKS_META).is_file() else {}
        self._steps: dict[int, RunData] = {}

    # ------------------------------------------------------------ layout
    @property
    def n_tasks(self) -> int:
        """Number of tasks of the sequence (``run.json`` ``n_tasks``)."""
        return int(self.info["n_tasks"])

    @functools.cached_property
    def steps(self) -> list[int]:
        """Evaluated steps of completed tasks (``eval/step-NNN``), ascending (read once)."""
        ev = self.path / L.EVAL
        if not ev.is_dir():
            return []
        done = int(self.info.get("tasks_complete", self.n_tasks))
        out = [int(m.group(1)) for d in ev.iterdir() if d.is_dir() and
               (m := L.STEP_RE.match(d.name))]
        return sorted(k for k in out if k < done)

    @property
    def tasks(self) -> list[int]:
        """Completed tasks (``tasks/NNN`` folders), ascending."""
        td = self.path / L.TASKS
        if not td.is_dir():
            return []
        return sorted(int(m.group(1)) for d in td.iterdir()
                      if d.is_dir() and (m := L.TASK_RE.match(d.name)))

    def task_names(self) -> list[str]:
        """A short label per task (its first class names from ``tasks.json``, else ``t``)."""
        out = []
        entries = {int(e["id"]): e for e in self.tasks_meta.get("tasks", [])}
        for t in range(self.n_tasks):
            names = entries.get(t, {}).get("names", [])
            label = f"{t}: " + ", ".join(str(x) for x in names[:2]) if names else str(t)
            if len(names) > 2:
                label += ", ..."
            out.append(label)
        return out

    def step_data(self, step: int) -> RunData:
        """The checker's validated view of one step (:func:`bounds.check.rundir.load_run`)."""
        if step not in self.steps:
            raise ValueError(f"step: {step!r} not evaluated (have {self.steps})")
        if step not in self._steps:
            self._steps[step] = _check_load_run(self.path, step=step)
        return self._steps[step]

    def _step_dir(self, step: int) -> Path:
        if step not in self.steps:
            raise ValueError(f"step: {step!r} not evaluated (have {self.steps})")
        return L.step_dir(self.path, step)

    def _task_dir(self, task: int) -> Path:
        if task not in self.tasks:
            raise ValueError(f"task: {task!r} not completed (have {self.tasks})")
        return L.task_dir(self.path, task)

    # ------------------------------------------------------------ scores
    def score_keys(self, step: int) -> list[tuple[str, str, str]]:
        """Every ``(split, mode, kind)`` with a score file at ``step``."""
        sd = self.step_data(step).splits
        return [(s, mo, k) for s in SPLITS for mo in MODES for k in KINDS
                if s in sd and (mo, k) in sd[s].scores]

    def has_scores(self, step: int, split: str = "test", mode: str = "shared",
                   kind: str = "centroid") -> bool:
        """True when ``eval/step-NNN/{split}/{mode}-{kind}.npz`` exists."""
        return (split, mode, kind) in self.score_keys(step)

    def scores(self, step: int, split: str = "test", mode: str = "shared",
               kind: str = "centroid") -> ScoreFile:
        """A score file (``.scores`` (n, k+1), ``.task``, ``.label``, ``.pred``)."""
        for arg, val, allowed in (("split", split, SPLITS), ("mode", mode, MODES),
                                  ("kind", kind, KINDS)):
            if val not in allowed:
                raise ValueError(f"{arg}: must be one of {allowed}, got {val!r}")
        if not self.has_scores(step, split, mode, kind):
            raise ValueError(f"step: no {split}/{mode}-{kind} scores at step {step}")
        return self.step_data(step).splits[split].scores[(mode, kind)]

    def empirical(self, step: int, split: str = "test", mode: str = "shared",
                  kind: str = "centroid") -> tuple[np.ndarray, float]:
        """Empirical retrieval error per task (k+1,) and overall (docs/theory.md §1)."""
        sf = self.scores(step, split, mode, kind)
        per, overall = bounds.empirical_error(sf.scores, sf.task, m=sf.m)
        return np.asarray(per, dtype=np.float64), float(overall)

    # ------------------------------------------------------------ geometry and mixtures
    def clusters(self, step: int, split: str = "test") -> bounds.ClusterStats | None:
        """``eval/step-NNN/{split}/clusters-shared.npz`` or ``None``."""
        sd = self.step_data(step).splits.get(split)
        return None if sd is None else sd.clusters

    def train_clusters(self, step: int) -> bounds.ClusterStats | None:
        """Training-time cluster stats of tasks 0..step (concatenated), or ``None``."""
        return self.step_data(step).train_clusters

    def mixtures(self, step: int) -> bounds.GaussianMixtures | None:
        """``eval/step-NNN/mixtures-shared.npz`` or ``None``."""
        return self.step_data(step).mixtures

    def signature(self, task: int, space: str = "shared") -> dict[str, np.ndarray]:
        """Arrays of ``tasks/NNN/signature-{space}.npz`` (``kind``, ``centroids``, ...)."""
        if space not in MODES:
            raise ValueError(f"space: must be one of {MODES}, got {space!r}")
        f = self._task_dir(task) / L.signature_file(space)
        with np.load(f, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}

    def centroids(self, step: int, space: str = "shared") -> tuple[np.ndarray, np.ndarray]:
        """Stacked signature centroids of tasks 0..step and their task ids."""
        mus, ts = [], []
        for t in range(step + 1):
            c = np.asarray(self.signature(t, space)["centroids"], dtype=np.float64)
            mus.append(c)
            ts.append(np.full(c.shape[0], t, dtype=np.int64))
        return np.concatenate(mus), np.concatenate(ts)

    def reps(self, task: int, split: str = "test") -> np.ndarray:
        """Shared-space representations ``tasks/NNN/reps-shared-{split}.npy`` (float64)."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        self._task_dir(task)  # raises unless the task is completed
        step = next((k for k in self.steps if k >= task), None)
        if step is None:
            raise ValueError(f"task: no evaluation step covers task {task}")
        return self._step_reps(step, split)[task]

    def _step_reps(self, step: int, split: str) -> list[np.ndarray]:
        """The representations ``load_run`` read for ``step`` (one array per task)."""
        sd = self.step_data(step).splits.get(split)
        if sd is None or sd.reps is None:
            note = f" ({sd.reps_note})" if sd is not None and sd.reps_note else ""
            raise ValueError(f"task: no reps-shared-{split}.npy at step {step}{note}")
        return sd.reps

    def stacked_reps(self, step: int, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Representations of tasks 0..step stacked, with their task ids."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
        Z = self._step_reps(step, split)
        y = [np.full(len(z), t, dtype=np.int64) for t, z in enumerate(Z)]
        return np.concatenate(Z), np.concatenate(y)

    # ------------------------------------------------------------ metrics
    def metrics(self, step: int | None = None) -> dict[str, Any]:
        """Final ``metrics.json`` (``step=None``) or the step's one; ``{}`` if absent."""
        f = (self.path / L.METRICS) if step is None else (self._step_dir(step) / L.METRICS)
        return _read_json(f) if f.is_file() else {}

    # ------------------------------------------------------------ bounds
    def inputs(self, step: int, mode: str = "shared", kind: str = "centroid",
               delta: float = 0.05) -> bounds.BoundInputs:
        """:class:`bounds.BoundInputs` for the retrieval rule ``(mode, kind)`` at ``step``."""
        test = self.scores(step, "test", mode, kind)
        cal = (self.scores(step, "calibration", mode, kind)
               if self.has_scores(step, "calibration", mode, kind) else None)
        clusters = self.clusters(step, "test") if (mode, kind) == ("shared", "centroid") \
            else None
        mixtures = self.mixtures(step) if (mode, kind) == ("shared", "nll") else None
        return bounds.BoundInputs(
            scores=test.scores, task=test.task, clusters=clusters, mixtures=mixtures,
            cal_scores=None if cal is None else cal.scores,
            cal_task=None if cal is None else cal.task, delta=delta,
        )

    def evaluate(self, step: int, mode: str = "shared", kind: str = "centroid",
                 delta: float = 0.05) -> dict[str, bounds.BoundResult]:
        """Every applicable bound at ``step`` (:func:`bounds.evaluate`)."""
        return bounds.evaluate(self.inputs(step, mode, kind, delta))

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, n_tasks={self.n_tasks}, steps={self.steps}, "
                f"status={self.info.get('status')!r})")


def load_run(path: str | Path) -> Run:
    """Open a run directory (docs/run-dir.md); raises ``ValueError`` if it is not one."""
    return Run(path)


def bound_table(run: Run, mode: str = "shared", kind: str = "centroid",
                steps: list[int] | None = None, delta: float = 0.05) -> dict[str, Any]:
    """Every applicable bound and the empirical test error after every step.

    Returns ``{"steps": [k...], "names": [bound names, registry order], "n_tasks": m,
    "empirical": (S, m), "empirical_overall": (S,), "per_task": {name: (S, m)},
    "overall": {name: (S,)}, "guaranteed": {name: bool}}``; per-task arrays are NaN for
    tasks not yet seen at a step, and for a bound not applicable at that step.
    """
    chosen = [k for k in (run.steps if steps is None else steps)
              if run.has_scores(k, "test", mode, kind)]
    if not chosen:
        raise ValueError(f"mode: no test {mode}-{kind} scores in {str(run.path)!r}")
    m = max(run.n_tasks, max(chosen) + 1)
    S = len(chosen)
    emp = np.full((S, m), np.nan)
    emp_all = np.full(S, np.nan)
    results = []
    for i, k in enumerate(chosen):
        per, overall = run.empirical(k, "test", mode, kind)
        emp[i, : per.size] = per
        emp_all[i] = overall
        results.append(run.evaluate(k, mode, kind, delta))
    names = [nm for nm in bounds.REGISTRY if any(nm in r for r in results)]
    per_task = {nm: np.full((S, m), np.nan) for nm in names}
    overall = {nm: np.full(S, np.nan) for nm in names}
    for i, r in enumerate(results):
        for nm, res in r.items():
            per_task[nm][i, : res.per_task.size] = res.per_task
            overall[nm][i] = res.overall
    return {
        "steps": chosen, "names": names, "n_tasks": m, "mode": mode, "kind": kind,
        "empirical": emp, "empirical_overall": emp_all, "per_task": per_task,
        "overall": overall,
        "guaranteed": {nm: bounds.REGISTRY[nm].guaranteed for nm in names},
    }


def tightness(bound: np.ndarray, error: np.ndarray, n: np.ndarray | int | None = None
              ) -> np.ndarray:
    """Ratio bound / empirical error; a zero error is replaced by ``1 / (2 n)`` if ``n``
    is given (half a sample), else the ratio is ``inf`` (``nan`` when both are zero)."""
    b = np.asarray(bound, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    if n is not None:
        e = np.where(e > 0, e, 0.5 / np.asarray(n, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return b / e


# ------------------------------------------------------------------ features experiments
def _class_gaussians(X: np.ndarray, y: np.ndarray, ridge: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = np.unique(y)
    d = X.shape[1]
    w = np.array([np.mean(y == c) for c in classes])
    mu = np.stack([X[y == c].mean(axis=0) for c in classes])
    cov = np.stack([np.cov(X[y == c], rowvar=False, bias=False).reshape(d, d)
                    + ridge * np.eye(d) for c in classes])
    return w, mu, cov


def features_experiment(stream: Any, *, delta: float = 0.05, ridge: float = 1e-6,
                        sketch_rank: int | None = None) -> dict[str, Any]:
    """All bounds for a features-space stream, without any backbone (notebooks 03/04).

    For each task the train split gives per-class means (the task's centroids, as a
    class-wise signature) and per-class Gaussians (sample mean, unbiased covariance +
    ``ridge`` I, class frequencies as weights) = fitted Gaussian mixture of the task.
    Two retrieval rules are evaluated on the test split:

    * ``"centroid"``: nearest stored centroid (score bounds, centroid bounds A-D on the test
      ClusterStats, PAC bounds on the calibration split);
    * ``"nll"``: likelihood under the fitted mixtures (score bounds, PAC bounds and the
      Gaussian Chernoff bound, docs/theory.md §4).

    Returns ``{"centroid": {...}, "nll": {...}, "n_test": (m,), "mixtures": GaussianMixtures}``
    where each rule maps to ``{"empirical": (m,), "empirical_overall": float,
    "bounds": {name: BoundResult}}``.
    """
    if getattr(stream, "modality", None) != "features":
        raise ValueError("stream: must be a features-space task stream")
    m = int(stream.n_tasks)
    parts: dict[str, list] = {"ctask": [], "w": [], "mu": [], "cov": []}
    data: dict[str, tuple[list, list]] = {"test": ([], []), "calibration": ([], [])}
    for t in range(m):
        td = stream.task(t)
        X = np.asarray(td.train.inputs, dtype=np.float64)
        w, mu, cov = _class_gaussians(X, td.train.labels, ridge)
        parts["ctask"].append(np.full(len(mu), t, dtype=np.int64))
        parts["w"].append(w)
        parts["mu"].append(mu)
        parts["cov"].append(cov)
        for split, (zs, ys) in data.items():
            Z = np.asarray(td.split(split).inputs, dtype=np.float64)
            zs.append(Z)
            ys.append(np.full(len(Z), t, dtype=np.int64))
    K = max(len(w) for w in parts["w"])
    d = parts["mu"][0].shape[1]
    W = np.zeros((m, K))
    MU = np.zeros((m, K, d))
    COV = np.tile(np.eye(d), (m, K, 1, 1))
    for t in range(m):
        k = len(parts["w"][t])
        W[t, :k], MU[t, :k], COV[t, :k] = parts["w"][t], parts["mu"][t], parts["cov"][t]
    mix = bounds.GaussianMixtures(W, MU, COV)
    cent = np.concatenate(parts["mu"])  # class means double as centroids
    ctask = np.concatenate(parts["ctask"])
    Zte, yte = (np.concatenate(a) for a in data["test"])
    Zca, yca = (np.concatenate(a) for a in data["calibration"])
    out: dict[str, Any] = {"n_test": np.bincount(yte, minlength=m), "mixtures": mix,
                           "centroids": cent, "centroid_task": ctask}
    rules = {
        "centroid": (bounds.nearest_centroid_scores(Zte, cent, ctask, m),
                     bounds.nearest_centroid_scores(Zca, cent, ctask, m)),
        "nll": (mix.nll(Zte), mix.nll(Zca)),
    }
    for rule, (S, Scal) in rules.items():
        inp = bounds.BoundInputs(
            scores=S, task=yte, cal_scores=Scal, cal_task=yca, delta=delta,
            clusters=bounds.cluster_stats(Zte, yte, cent, ctask, sketch_rank=sketch_rank)
            if rule == "centroid" else None,
            mixtures=mix if rule == "nll" else None,
        )
        per, overall = bounds.empirical_error(S, yte, m=m)
        out[rule] = {"empirical": np.asarray(per, dtype=np.float64),
                     "empirical_overall": float(overall), "bounds": bounds.evaluate(inp)}
    return out


# ------------------------------------------------------------------ Assumption A.1 diagnostics
def direction_projections(Z: np.ndarray, task: np.ndarray, centroids: np.ndarray,
                          centroid_task: np.ndarray, min_points: int = 8
                          ) -> list[dict[str, Any]]:
    """Projections of each cluster onto its nearest foreign-centroid direction (§3.4, §4).

    Points are assigned to their nearest own centroid ``mu_c`` (as in
    :func:`bounds.cluster_stats`); for each cluster with at least ``min_points`` points the
    unit direction ``u = (nu - mu_c) / ||nu - mu_c||`` to the nearest foreign centroid ``nu``
    is taken and ``<z - mu_c, u>`` returned. Under Assumption A.1 (Gaussian clusters) each
    projection is exactly normal. Returns one dict per cluster: ``task``, ``cluster``,
    ``foreign``, ``distance`` (= ||nu - mu_c||), ``proj`` (n_c,); sorted by task, then
    by decreasing size.
    """
    cs = bounds.cluster_stats(Z, task, centroids, centroid_task)
    D2, foreign = cs.foreign_sqdist()
    if not foreign.any():
        return []
    D2f = np.where(foreign, D2, np.inf)
    out = []
    Z = np.asarray(Z, dtype=np.float64)
    for c in np.flatnonzero(cs.count >= min_points):
        nu = int(np.argmin(D2f[c]))
        diff = cs.centroid[nu] - cs.centroid[c]
        dist = float(np.linalg.norm(diff))
        if dist == 0.0:
            continue
        pts = np.flatnonzero(cs.point_cluster == c)
        proj = (Z[pts] - cs.centroid[c]) @ (diff / dist)
        out.append({"task": int(cs.task[c]), "cluster": int(c), "foreign": nu,
                    "distance": dist, "proj": proj})
    out.sort(key=lambda r: (r["task"], -r["proj"].size))
    return out


def normality_tests(x: np.ndarray) -> dict[str, float]:
    """Skewness, excess kurtosis and normality p-values of a 1-d sample (scipy.stats).

    ``shapiro_p`` (Shapiro-Wilk, n >= 3) and ``dagostino_p`` (D'Agostino-Pearson K^2,
    n >= 20; NaN below).
    """
    from scipy import stats as sps

    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 3:
        raise ValueError(f"x: need at least 3 values, got {x.size}")
    if np.ptp(x) == 0:
        return {"n": float(x.size), "skew": 0.0, "excess_kurtosis": 0.0,
                "shapiro_p": 0.0, "dagostino_p": float("nan")}
    return {
        "n": float(x.size),
        "skew": float(sps.skew(x)),
        "excess_kurtosis": float(sps.kurtosis(x)),
        "shapiro_p": float(sps.shapiro(x[:5000]).pvalue),
        "dagostino_p": float(sps.normaltest(x).pvalue) if x.size >= 20 else float("nan"),
    }


def likelihood_calibration(mixtures: bounds.GaussianMixtures, Z: np.ndarray,
                           task: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out calibration of each task's fitted mixture (Assumption A.1, §4).

    For every point ``z`` of task ``t``: its own-task negative log-likelihood
    ``-log p_t(z)``; and the probability integral transform ``u = F_chi2_d(q)`` of its
    squared Mahalanobis distance ``q`` to the most responsible component of ``p_t``.
    Under A.1 (and a correct fit) ``u`` is uniform on [0, 1]. Also returns the same NLL for
    an equal number of points sampled from the mixtures themselves (the model's own NLL
    distribution; a calibrated model has matching held-out and sampled NLLs).
    """
    from scipy import stats as sps

    Z = np.asarray(Z, dtype=np.float64)
    task = np.asarray(task, dtype=np.int64)
    if Z.ndim != 2 or task.shape != (Z.shape[0],):
        raise ValueError("Z: expected (n, d) with task (n,)")
    d = mixtures.dim
    rows = np.arange(len(Z))
    lp = mixtures.component_logpdf(Z)[rows, task]  # (n, K)
    with np.errstate(divide="ignore"):
        post = lp + np.log(mixtures.weights[task])
    pmax = post.max(axis=1, keepdims=True)  # -log p_t(z), as GaussianMixtures.nll
    nll = -(pmax[:, 0] + np.log(np.exp(post - pmax).sum(axis=1)))
    k = np.argmax(post, axis=1)
    # log N = -(q + logdet + d log 2 pi) / 2 -> q from the log-density and log-det
    cov = mixtures.full_covariances()[task, k]
    logdet = np.linalg.slogdet(cov)[1]
    q = np.maximum(-2.0 * lp[rows, k] - logdet - d * np.log(2 * np.pi), 0.0)
    u = sps.chi2.cdf(q, df=d)
    counts = np.bincount(task, minlength=mixtures.n_tasks)
    Zs, ts = mixtures.sample(counts, np.random.default_rng(0))
    nll_model = mixtures.nll(Zs)[np.arange(len(Zs)), ts]
    return {"task": task, "nll": nll, "pit": u, "mahalanobis_sq": q,
            "model_task": ts, "model_nll": nll_model}


def run_likelihood_inputs(run: Run, step: int, delta: float = 0.05
                          ) -> tuple[bounds.BoundInputs | None, str]:
    """Inputs for likelihood retrieval in the shared space at ``step`` (Gaussian bound).

    Uses the run's ``shared-nll`` score files when present; otherwise, if
    ``mixtures-shared.npz`` exists, scores the stored shared representations with
    :meth:`bounds.GaussianMixtures.nll`. Returns ``(None, reason)`` when the run has no
    mixtures (e.g. k-means signatures).
    """
    mix = run.mixtures(step)
    if mix is None:
        return None, "no mixtures-shared.npz at this step (non-mixture signatures)"
    if run.has_scores(step, "test", "shared", "nll"):
        return run.inputs(step, "shared", "nll", delta), "shared-nll score files"
    Zt, yt = run.stacked_reps(step, "test")
    Zc, yc = run.stacked_reps(step, "calibration")
    return bounds.BoundInputs(scores=mix.nll(Zt), task=yt, cal_scores=mix.nll(Zc),
                              cal_task=yc, mixtures=mix, delta=delta), \
        "mixtures-shared.npz applied to reps-shared-*.npy"
