"""Execute every analysis notebook on a real ``tiny`` run directory (nbclient).

A ``tiny`` run is generated once per module with ``python -m cft run --preset tiny``, and
a tiny sweep (notebook 05's grid shrunk to reuse_weight {0, 1} x {kmeans, dpgmm} x 1 seed of
``tiny``) with ``python -m cft sweep``; each notebook then runs in a fresh ``python3`` kernel
(the venv's ipykernel) with ``CFT_RUN_DIR`` / ``CFT_SWEEP_DIR`` pointing at them and
``CFT_SWEEP_SIZE=2``. A cell error fails the test, and
each notebook must produce at least one PNG figure. Also checks the committed notebooks
carry no outputs and that :mod:`cft.experiments.analysis` reads the run consistently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bounds
from bounds.check.core import TOL
from cft.experiments import analysis

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = {"01_bounds_vs_empirical.ipynb", "02_cluster_geometry.ipynb",
            "03_gaussian_assumption.ipynb", "04_separation_sweep.ipynb",
            "05_what_predicts_retrieval_error.ipynb", "06_when_does_task_retrieval_work.ipynb"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    # the kernel's cwd is notebooks/: make the repository importable whatever the install
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    return env


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "cft", "run", "--preset", "tiny", "--out", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"cft run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


#: notebook 05's grid (notebooks/05_sweep.toml) shrunk for CI: 4 tiny runs
TINY_SWEEP = """presets = ["tiny"]
methods = ["proteus"]
seeds = [0]
[grid]
"module.reuse_weight" = [0.0, 1.0]
"signature.family" = ["kmeans", "dpgmm"]
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nbsweep")
    (root / "sweep.toml").write_text(TINY_SWEEP)
    proc = subprocess.run(
        [sys.executable, "-m", "cft", "sweep", str(root / "sweep.toml"), "--out",
         str(root / "sweep"), "--workers", "2", "--no-report"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"cft sweep failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return root / "sweep"


def test_notebook05_sweep_spec_resolves() -> None:
    from cft.experiments.sweep import load_spec

    spec = load_spec(NB_DIR / "05_sweep.toml")  # every cell's configuration resolves
    assert len(spec.cells()) == 12 and spec.presets == ("wordnet-minilm",)


def test_missing_run_dir_names_cft_run_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory; set CFT_RUN_DIR"):
        analysis.open_run(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no run.json.*set CFT_RUN_DIR"):
        analysis.open_run(tmp_path)


def test_notebooks_present_and_stripped() -> None:
    assert {p.name for p in NOTEBOOKS} == EXPECTED
    proc = subprocess.run([sys.executable, "-m", "nbstripout", "--verify",
                           *map(str, NOTEBOOKS)], capture_output=True, text=True)
    assert proc.returncode == 0, (f"notebooks committed with outputs (run `python -m "
                                  f"nbstripout notebooks/*.ipynb`):\n{proc.stdout}"
                                  f"{proc.stderr}")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0] if nb.cells[0].cell_type == "code" else nb.cells[1]
        assert 'RUN_DIR = os.environ.get("CFT_RUN_DIR", "../runs/wordnet-minilm")' in first.source


def test_analysis_reads_tiny_run(tiny_run: Path) -> None:
    run = analysis.open_run(tiny_run)
    assert run.steps and run.steps[-1] == run.n_tasks - 1
    k = run.steps[-1]
    tab = analysis.bound_table(run, "shared", "centroid")
    assert tab["steps"] == run.steps
    sf = run.scores(k, "test", "shared", "centroid")
    for i, step in enumerate(tab["steps"]):  # independent recomputation from the raw npz
        with np.load(tiny_run / "eval" / f"step-{step:03d}" / "test" / "shared-centroid.npz",
                     allow_pickle=False) as z:
            S, task = z["scores"], z["task"]
        own = S[np.arange(len(task)), task]
        foreign = np.where(np.arange(S.shape[1]) == task[:, None], np.inf, S).min(axis=1)
        wrong = foreign <= own
        per = np.array([wrong[task == t].mean() for t in range(step + 1)])
        assert tab["empirical_overall"][i] == pytest.approx(wrong.mean(), abs=1e-15)
        np.testing.assert_allclose(tab["empirical"][i, : step + 1], per, rtol=0, atol=1e-15)
    emp = tab["empirical"]
    for name in tab["names"]:  # every guaranteed bound holds on the empirical measure
        if tab["guaranteed"][name]:
            per_task = tab["per_task"][name]
            ok = np.isnan(per_task) | np.isnan(emp) | (per_task >= emp - TOL)
            assert ok.all(), (name, per_task, emp)
            tot = tab["overall"][name]
            assert np.all(np.isnan(tot) | (tot >= tab["empirical_overall"] - TOL)), name
    Z, y = run.stacked_reps(k, "test")
    assert len(Z) == len(sf.task)
    mu, ct = run.centroids(k)
    assert mu.shape[1] == Z.shape[1] and set(ct.tolist()) == set(range(k + 1))
    with pytest.raises(ValueError, match="step"):
        run.scores(k + 1)
    with pytest.raises(ValueError, match="path"):
        analysis.open_run(tiny_run / "tasks")


def test_features_experiment_guaranteed_bounds_hold() -> None:
    import cft.data  # noqa: F401  (registers the streams)
    from cft.config.registry import DATASETS

    stream = DATASETS.build("synthetic", seed=1, n_tasks=3, classes_per_task=2, dim=4,
                            n_per_class=60, task_separation=4.0)
    res = analysis.features_experiment(stream)
    for rule in ("centroid", "nll"):
        emp = res[rule]["empirical_overall"]
        emp_t = res[rule]["empirical"]
        for name, b in res[rule]["bounds"].items():
            if bounds.REGISTRY[name].guaranteed:
                assert b.overall >= emp - TOL, (rule, name)
                per = np.asarray(b.per_task)
                ok = np.isnan(per) | (per >= np.asarray(emp_t) - TOL)
                assert ok.all(), (rule, name, per, emp_t)
    assert "gaussian-chernoff" in res["nll"]["bounds"]
    assert "A" in res["centroid"]["bounds"]
    with pytest.raises(ValueError, match="stream"):
        analysis.features_experiment(object())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tiny_run: Path, request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    for key, val in _env().items():
        monkeypatch.setenv(key, val)
    monkeypatch.setenv("CFT_RUN_DIR", str(tiny_run))
    monkeypatch.setenv("CFT_SWEEP_SIZE", "2")
    if path.name.startswith("05_"):  # notebook 05 reads a sweep (built only for it)
        monkeypatch.setenv("CFT_SWEEP_DIR", str(request.getfixturevalue("tiny_sweep")))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3",
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    client.execute()  # raises CellExecutionError on any cell error
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{path.name} produced no figure"


def test_heavy_tailed_stream_breaks_gaussian_bound_only() -> None:
    """The notebook-03 setting: Student-t (nu = 3) at large separation."""
    import cft.data  # noqa: F401
    from cft.config.registry import DATASETS

    stream = DATASETS.build("synthetic", seed=0, n_tasks=4, classes_per_task=2, dim=8,
                            cluster_spread=1.0, n_per_class=1000, distribution="student_t",
                            dof=3.0, task_separation=24.0)
    res = analysis.features_experiment(stream)["nll"]
    emp = res["empirical_overall"]
    assert emp > 0
    assert res["bounds"]["gaussian-chernoff"].overall < emp  # the Gaussian bound fails
    for name in ("G-emp", "G-cantelli", "corollary", "pac-clopper-pearson", "pac-hoeffding"):
        assert res["bounds"][name].overall >= emp, name
