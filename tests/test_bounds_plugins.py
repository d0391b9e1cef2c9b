"""Registration of bounds: ``bounds.register``, the ``cft_bounds.bounds`` entry point, the
example plug-ins under ``examples/`` and ``python -m bounds.selftest`` (issue 13).

An *installed* plug-in is simulated exactly as pip lays it out: a ``*.dist-info``
directory with ``METADATA`` and ``entry_points.txt`` on the path, beside the plug-in's
package; ``test_pip_installed_plugin`` (slow) installs the example with pip itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rundir_factory import write_minimal_run

import bounds
from bounds.registry import ORIGIN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLUGINS = {  # entry-point name -> (distribution, package dir, object)
    "pairwise-union": ("cft_bounds_pairwise_union", EXAMPLES / "pairwise-union-bound" / "src",
                       "cft_bounds_pairwise_union:PairwiseUnionBound"),
    "half-error": ("cft_bounds_half_error", EXAMPLES / "half-error-bound" / "src",
                   "cft_bounds_half_error:HalfErrorBound"),
}


def fake_install(site: Path, name: str, value: str | None = None) -> list[str]:
    """Lay out an installed distribution in ``site``; returns the PYTHONPATH entries."""
    dist, src, obj = PLUGINS.get(name, (f"cft_bounds_{name.replace('-', '_')}", None, value))
    info = site / f"{dist}-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[cft_bounds.bounds]\n{name} = {value or obj}\n")
    return [str(site)] + ([str(src)] if src is not None else [])


def run_module(module: str, *args: str, path: list[str] = (), timeout: int = 600
               ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *path]),
           "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ register()
class _Good(bounds.Bound):
    name, title, section = "test-good", "a valid bound (1 everywhere)", "tests"
    tier, reads, assumptions = "sample-exact", ("scores", "task"), ("none",)

    def _per_task(self, inputs: bounds.BoundInputs) -> tuple[np.ndarray, dict]:
        return np.ones(inputs.n_tasks), {}


def _variant(**attrs: object) -> type[bounds.Bound]:
    return type("Variant", (_Good,), attrs)


def test_register_evaluate_unregister() -> None:
    b = bounds.register(_Good)  # a subclass is instantiated
    try:
        assert bounds.REGISTRY["test-good"] is b and ORIGIN["test-good"] == "register()"
        S = np.array([[0.0, 1.0], [1.0, 0.0]])
        res = bounds.evaluate(bounds.BoundInputs(scores=S, task=np.array([0, 1])))
        assert list(res)[-1] == "test-good" and res["test-good"].overall == 1.0
    finally:
        bounds.unregister("test-good")
    assert "test-good" not in bounds.REGISTRY


@pytest.mark.parametrize(("bound", "message"), [
    (bounds.REGISTRY["A"].__class__(), "bound 'A': name already registered (built-in)"),
    (_variant(name="bad name"), "name 'bad name' must start with a letter"),
    (_variant(name="x:pooled"), "name 'x:pooled' must start with a letter"),
    (_variant(tier="exact"), "bound 'test-good': tier 'exact' is not one of sample-exact, "
                             "training-time, pac, assumption, prediction"),
    (_variant(reads=("scores", "task", "labels")), "reads unknown input(s) ['labels']"),
    (_variant(reads=("scores",)), "reads must list 'scores' and 'task' together"),
    (_variant(reads=()), "reads must be a non-empty tuple"),
    (_variant(reads=("cal_scores", "cal_task")), "a sample-exact bound reads one of "
                                                 "['clusters', 'scores'] and only"),
    (_variant(tier="training-time"), "a training-time bound reads one of ['clusters']"),
    (_variant(tier="pac"), "a pac bound reads one of ['cal_scores']"),
    (_variant(assumptions=()), "assumptions must be a non-empty tuple"),
    (_variant(title=""), "title must be a non-empty string"),
    (_variant(at_most=("test-good",)), "at_most must be a tuple of other bounds' names"),
    (_variant(continuous=2.0), "continuous must be None or a relative accuracy in (0, 1)"),
    (_variant(guaranteed=True, tier="prediction"), "guaranteed=True contradicts tier "
                                                   "'prediction'"),
    (type("NoCompute", (bounds.Bound,), {"name": "nc", "title": "t", "section": "s",
                                         "tier": "pac", "reads": ("cal_scores", "cal_task"),
                                         "assumptions": ("a",)}),
     "bound 'nc': implements neither _per_task nor compute"),
    (object(), "is not a bounds.Bound"),
])
def test_malformed_or_clashing_bounds_are_refused_with_one_line(bound: object,
                                                                 message: str) -> None:
    before = list(bounds.REGISTRY)
    with pytest.raises(ValueError) as err:
        bounds.register(bound)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert list(bounds.REGISTRY) == before


def test_builtins_cannot_be_unregistered() -> None:
    with pytest.raises(ValueError, match="bound 'B': a built-in bound cannot be unregistered"):
        bounds.unregister("B")


def test_prediction_tier_is_never_evaluated_or_checked_as_a_bound() -> None:
    from bounds.check import bound_groups

    pred = _variant(name="test-pred", tier="prediction", reads=("scores", "task"))
    bounds.register(pred)
    try:
        inp = bounds.BoundInputs(scores=np.array([[0.0, 1.0], [1.0, 0.0]]), task=np.array([0, 1]))
        assert "test-pred" not in bounds.evaluate(inp)
        assert bounds.evaluate(inp, names=["test-pred"])["test-pred"].overall == 1.0
        assert all("test-pred" not in g for g in bound_groups().values())
    finally:
        bounds.unregister("test-pred")


# ------------------------------------------------------------------ installed plug-ins
def test_installed_plugins_appear_in_check(tmp_path: Path) -> None:
    path = fake_install(tmp_path / "site", "pairwise-union")
    path += fake_install(tmp_path / "site", "half-error")
    S = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0], [1.0, 2.0, 0.0]])
    task = np.array([0, 1, 2, 2])
    run = write_minimal_run(tmp_path / "run", S, task)
    p = run_module("bounds.check", "--help", path=path)
    assert p.returncode == 0
    assert ("pairwise-union       sample-exact / training-time union of pairwise errors"
            in p.stdout)
    p = run_module("bounds.check", str(run), "--bounds", "pairwise-union,G-emp",
                   "--per-task", path=path)
    assert p.returncode == 0, p.stderr
    assert "pairwise-union" in p.stdout and "every guaranteed bound holds" in p.stdout
    # the wrong plug-in is a guaranteed bound below the error (task 1: the tie is an
    # error, 1/1), so the checker exits 1 naming it
    p = run_module("bounds.check", str(run), "--bounds", "half-error", path=path)
    assert p.returncode == 1
    assert "guaranteed bound half-error violated on split test" in p.stderr


def test_selftest_catches_the_wrong_plugin_and_passes_the_correct_one(tmp_path: Path
                                                                      ) -> None:
    path = fake_install(tmp_path / "site", "pairwise-union")
    path += fake_install(tmp_path / "site", "half-error")
    p = run_module("bounds.selftest", "--bound", "half-error", "--bound", "pairwise-union",
                   "--examples", "20", path=path)
    assert p.returncode == 1, p.stdout + p.stderr
    out = p.stdout
    assert ("FAIL half-error [sample-exact] exact-on-any-score: task 0: bound 0.5 < "
            "empirical error 1 (tolerance 1e-09)") in out
    assert "2 tasks, 2 score rows\n      S = [[0., 0.], [0., 0.]]" in out
    assert "FAIL half-error [sample-exact] exact-on-sample: task 0: bound 0.5 < " in out
    assert "2 tasks, 2 points (per task [1, 1])" in out
    assert "ok   pairwise-union [sample-exact] exact-on-sample (20 examples" in out
    assert "ok   pairwise-union [sample-exact] exact-on-any-score (20 examples" in out
    assert "2 bound(s), 2 counterexample(s)" in out
    p = run_module("bounds.selftest", "--bound", "pairwise-union", "--examples", "20",
                   path=path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "all properties hold" in p.stdout


def test_selftest_usage_errors_and_refused_plugins(tmp_path: Path) -> None:
    path = fake_install(tmp_path / "site", "not-a-bound", "os.path:join")
    for args, msg in [
        (("--examples", "0"), "argument --examples: must be >= 1, got 0"),
        (("--seed", "x"), "argument --seed: not an integer: 'x'"),
        (("--bound", "nope"), "--bound: unknown bound name(s) ['nope']"),
        (("--bound", "not-a-bound"), "plug-in not-a-bound (cft_bounds_not_a_bound) refused: "
                                     "bound: function"),
    ]:
        p = run_module("bounds.selftest", *args, path=path)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = [ln for ln in p.stderr.splitlines() if "warning" not in ln]
        assert len(lines) == 1 and msg in lines[0], (args, p.stderr)
        assert "Traceback" not in p.stderr
    p = run_module("bounds.selftest", "--bound", "corollary", "--examples", "2", path=path)
    assert p.returncode == 0
    assert ("warning: plug-in not-a-bound (cft_bounds_not_a_bound) refused: bound: "
            "function") in p.stderr


@pytest.mark.slow
def test_pip_installed_plugin(tmp_path: Path) -> None:
    """The example's packaging metadata, installed by pip (into a --target directory,
    leaving the environment alone), registers the bound."""
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--no-index", "--target", str(target),
                        str(EXAMPLES / "pairwise-union-bound")],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0 and "No module named pip" in p.stderr:
        pytest.skip("pip is not available")
    assert p.returncode == 0, p.stderr
    p = run_module("bounds.selftest", "--bound", "pairwise-union", "--examples", "5",
                   path=[str(target)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "entry point pairwise-union = cft_bounds_pairwise_union:PairwiseUnionBound " \
           "(cft-bounds-pairwise-union)" in p.stdout
