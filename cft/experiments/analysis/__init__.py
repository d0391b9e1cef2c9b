"""Analysis helpers for the notebooks: read a run directory, tabulate bounds per step.

Each evaluation step of a run directory (docs/run-dir.md) is loaded and validated by the
checker's loader (:func:`bounds.check.rundir.load_run`); signatures, per-task
representations and metrics are read here (JSON / ``.npz`` / ``.npy``, never pickle).
Bounds are evaluated only through the public :mod:`bounds` API
(:func:`bounds.evaluate`, :class:`bounds.BoundInputs`, :class:`bounds.ClusterStats`,
:class:`bounds.GaussianMixtures`). Results are plain dicts of numpy arrays (no pandas).

Typical use::

    from cft.experiments.analysis import open_run, bound_table
    run = open_run("runs/wordnet-minilm")
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

Modules: :mod:`cft.experiments.analysis.run` (the run view and per-step bound tables),
:mod:`cft.experiments.analysis.features` (bounds on a features-space stream, no backbone) and
:mod:`cft.experiments.analysis.gaussian` (notebook-level looks at Assumption A.1; the checker's own
A.1 verdict is :mod:`bounds.check.diagnostics`).
"""

from bounds.rundir_schema import KINDS, MODES, SPLITS

from .features import features_experiment
from .gaussian import (
    direction_projections,
    likelihood_calibration,
    normality_tests,
    run_likelihood_inputs,
)
from .pairs import bhattacharyya_diag, pair_table, task_sources
from .run import Run, bound_table, class_accuracy, open_run, ratio_to_error

__all__ = [
    "KINDS",
    "MODES",
    "SPLITS",
    "Run",
    "bhattacharyya_diag",
    "bound_table",
    "class_accuracy",
    "direction_projections",
    "features_experiment",
    "likelihood_calibration",
    "open_run",
    "normality_tests",
    "pair_table",
    "ratio_to_error",
    "run_likelihood_inputs",
    "task_sources",
]
