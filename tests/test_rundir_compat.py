"""The run-directory loader on files it used to refuse (issue 24, robustness):

* ClusterStats written before ``resid_diag`` existed load, as the isotropic residual they
  meant, and the loaded run says which layout was read (``RunData.schemas``, a warning);
* collapsed clusters (every point on its centroid, msr = 0) whose offset ``mean(z) - mu``
  was computed honestly load: the offset check allows rounding of order eps |mu|, and no
  more.
"""

from __future__ import annotations

import numpy as np
import pytest
from rundir_factory import rewrite_npz, write_run_dir

import bounds
from bounds import rundir_schema as L
from bounds.check import check_run, load_run
from bounds.check.readers import (
    CS_SCHEMA_CURRENT,
    CS_SCHEMA_NO_RESID_DIAG,
    OFFSET_ROUNDING,
    load_cluster_stats,
)
from bounds.check.rundir import RunDirError
from bounds.predict import gauss_proj

EPS = float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------ before resid_diag
@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory):
    """A small run directory in the format written before ``resid_diag``: the factory's
    files with that field deleted from every ClusterStats archive."""
    root = write_run_dir(tmp_path_factory.mktemp("old") / "run", m=3, K=2, d=5,
                         n_train=40, n_cal=30, n_test=30, sep=2.5, sketch_rank=2)
    files = sorted(root.rglob("*clusters-shared.npz"))
    assert len(files) == 5  # 3 train-time files, test and calibration
    for p in files:
        rewrite_npz(p, resid_diag=None)
        with np.load(p) as z:
            assert "resid_diag" not in z.files and "resid" in z.files
    return root


def test_old_run_dir_loads_as_isotropic_and_says_so(old_run) -> None:
    data = load_run(old_run)
    assert set(data.schemas.values()) == {CS_SCHEMA_NO_RESID_DIAG}
    assert len(data.schemas) == 5
    assert data.train_clusters is not None and data.train_clusters.resid_diag is None
    assert data.splits["test"].clusters.resid_diag is None
    assert any("without resid_diag" in w for w in data.warnings)
    pred = gauss_proj(data.train_clusters, n_samples=200)
    assert pred.details["residual"] == "iso"
    report = check_run(data, splits=("test",))  # the whole checker runs on it
    assert any("without resid_diag" in w for w in report.warnings)
    assert not report.violations


def test_mixed_run_dir_and_current_schema(tmp_path) -> None:
    """One task's file in the older layout: that file is reported, and the concatenated
    training statistics fall back to the isotropic residual; a current run reports the
    current layout and no warning."""
    root = write_run_dir(tmp_path / "run", m=3, K=2, d=5, n_train=30, n_cal=20, n_test=20,
                         sketch_rank=2)
    data = load_run(root)
    assert set(data.schemas.values()) == {CS_SCHEMA_CURRENT}
    assert not any("resid_diag" in w for w in data.warnings)
    assert data.train_clusters.resid_diag is not None
    old = L.task_dir(root, 1) / L.TRAIN_CLUSTERS
    rewrite_npz(old, resid_diag=None)
    data = load_run(root)
    rel = str(old.relative_to(root))
    assert data.schemas[rel] == CS_SCHEMA_NO_RESID_DIAG
    assert sum(v == CS_SCHEMA_NO_RESID_DIAG for v in data.schemas.values()) == 1
    assert data.train_clusters.resid_diag is None


def test_a_required_field_is_still_required(tmp_path) -> None:
    root = write_run_dir(tmp_path / "run", m=2, K=1, d=3, n_train=10, n_cal=10, n_test=10)
    p = L.task_dir(root, 0) / L.TRAIN_CLUSTERS
    rewrite_npz(p, msr=None)
    with pytest.raises(RunDirError, match=r"lacks ClusterStats field\(s\) \['msr'\]"):
        load_run(root)


# ------------------------------------------------------------------ collapsed clusters
def _collapsed(tmp_path, offset_scale: float | None = None):
    """Task 0: a collapsed cluster of 7 points exactly on its centroid at |mu| ~ 1e3 and a
    spread cluster; task 1 one spread cluster. The collapsed cluster's offset is the
    honest ``sum(z) / 7 - mu`` (about 1e-13 here), or ``offset_scale * |mu|`` along a unit
    vector when given."""
    rng = np.random.default_rng(0)
    mu = np.array([946.1590365998354, -311.5, 0.1253, 12.0])
    for _ in range(1000):  # a point whose mean over 7 copies does not round back to it
        total = mu.copy()
        for _ in range(6):  # summed one by one: IEEE rounding, the same on every CPU
            total = total + mu
        honest = total / 7.0 - mu
        if np.any(honest != 0):
            break
        mu = mu + rng.normal(size=4)
    assert np.any(honest != 0)
    Zc = np.repeat(mu[None, :], 7, axis=0)
    cents = np.vstack([mu, mu + [5.0, 0, 0, 0], mu + [0, 9.0, 0, 0]])
    Z = np.vstack([Zc, cents[1] + rng.normal(size=(6, 4)), cents[2] + rng.normal(size=(5, 4))])
    task = np.array([0] * 13 + [1] * 5)
    cs = bounds.cluster_stats(Z, task, cents, np.array([0, 0, 1]))
    c = int(np.flatnonzero(np.all(cs.centroid == mu, axis=1))[0])
    assert cs.msr[c] == 0.0 and cs.count[c] == 7
    off = cs.offset.copy()
    if offset_scale is None:
        off[c] = honest
    else:
        u = rng.normal(size=4)
        off[c] = offset_scale * np.linalg.norm(mu) * u / np.linalg.norm(u)
    cs.offset = off
    path = tmp_path / "clusters.npz"
    cs.save(path)
    return path, c, mu, Z, task, cents


def test_collapsed_cluster_with_honest_offset_loads(tmp_path) -> None:
    path, c, mu, Z, task, cents = _collapsed(tmp_path)
    with np.load(path) as z:
        b = float(np.linalg.norm(z["offset"][c]))
    assert 0 < b <= 4 * EPS * float(np.linalg.norm(mu))  # rounding of the mean only
    with pytest.raises(ValueError, match="offset"):  # the strict check refuses it
        bounds.ClusterStats.load(path)
    notes: list[str] = []
    cs = load_cluster_stats(path, "clusters.npz", notes=notes)
    assert np.all(cs.offset[c] == 0.0)  # on the sphere |offset| = sqrt(msr) = 0
    assert len(notes) == 1 and "offset" in notes[0] and f"[{c}]" in notes[0]
    # the bounds read it and stay exact on the sample it summarises
    err = bounds.empirical_error(bounds.nearest_centroid_scores(Z, cents, np.array([0, 0, 1])),
                                 task)[0]
    for name, res in bounds.evaluate(bounds.BoundInputs(clusters=cs)).items():
        assert np.all(res.per_task >= err - 1e-9), name


@pytest.mark.parametrize("scale", [1e-6, 256 * EPS])
def test_offset_allowance_is_of_order_eps_mu(tmp_path, scale: float) -> None:
    """An offset of a collapsed cluster beyond the allowance (64 eps |mu|) is still
    refused: the allowance covers rounding, not a wrong file."""
    assert OFFSET_ROUNDING == 64.0  # the documented allowance
    path, *_ = _collapsed(tmp_path, offset_scale=scale)
    with pytest.raises(RunDirError, match="offset"):
        load_cluster_stats(path, "clusters.npz")


def test_offset_within_allowance_at_one_eps_scale_loads(tmp_path) -> None:
    path, c, *_ = _collapsed(tmp_path, offset_scale=16 * EPS)
    cs = load_cluster_stats(path, "clusters.npz")
    assert np.all(cs.offset[c] == 0.0)
