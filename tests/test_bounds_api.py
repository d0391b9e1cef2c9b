"""Symbolic layer (design note §6.6), robustness and error messages (§6.7), IO, API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import bounds
from bounds.forms import FUNCS
from bounds.symbolic import ARGS, EXPR, verify_corollary_algebra, verify_lemma_identity

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
pos = st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False)


def test_sympy_verifies_lemma_and_corollary() -> None:
    assert verify_lemma_identity(3)
    assert verify_lemma_identity(1)
    assert verify_corollary_algebra()


@given(pos, finite)
def test_cantelli_numeric_equals_sympy_and_hand(V: float, a: float) -> None:
    sym = EXPR["cantelli"].subs({ARGS["cantelli"][0]: V, ARGS["cantelli"][1]: a})
    num = float(FUNCS["cantelli"](V, a))
    hand = V / (V + a * a) if a > 0 else 1.0
    assert num == pytest.approx(float(sym), rel=1e-12)
    assert num == pytest.approx(hand, rel=1e-12)


@given(pos, pos)
def test_markov_and_corollary_numeric_equal_sympy(r2: float, D2: float) -> None:
    num = float(FUNCS["markov"](r2, D2, 0.0))
    sym = float(EXPR["markov"].subs(dict(zip(ARGS["markov"], (r2, D2, 0)))))
    assert num == pytest.approx(sym, rel=1e-12)
    assert num == pytest.approx(min(1.0, 4 * r2 / D2), rel=1e-12)
    delta = np.sqrt(D2) - 3.0
    cor = float(FUNCS["corollary"](5.0, delta))
    assert cor == pytest.approx(min(1.0, 5 / (1 + delta**2)) if delta > 0 else 1.0)


@given(st.floats(0, 1), pos, finite, finite, finite)
def test_chernoff_k_numeric_equals_sympy(lam: float, q: float, L: float, L1: float,
                                         L2: float) -> None:
    vals = (lam, q, L, L1, L2)
    sym = float(EXPR["chernoff_k"].subs(dict(zip(ARGS["chernoff_k"], vals))))
    assert float(FUNCS["chernoff_k"](*vals)) == pytest.approx(sym, rel=1e-9, abs=1e-9)


def test_every_expression_lambdifies_like_sympy() -> None:
    rng = np.random.default_rng(0)
    for name, expr in EXPR.items():
        args = ARGS[name]
        vals = [float(rng.uniform(0.1, 2.0)) for _ in args]
        if name == "hoeffding":  # domain: m / delta > 1
            vals = [3.0, 0.05, 40.0]
        sym = complex(expr.subs(dict(zip(args, vals))).evalf())
        assert float(FUNCS[name](*vals)) == pytest.approx(sym.real, rel=1e-10), name


def test_generated_forms_equal_a_fresh_lambdify() -> None:
    """bounds/forms_generated.py (what FUNCS runs, without sympy) is the lambdify output of
    today's EXPR: the same names and arguments, and bit-for-bit the same values on inputs
    spanning every branch (signs, zeros, infinities, extreme scales). It fails after an
    edit of EXPR until ``python -m bounds.symbolic`` regenerates the module."""
    import bounds.forms_generated as gen
    from bounds.symbolic import generated_source, numeric_form

    assert tuple(gen.RAW) == tuple(EXPR) == tuple(FUNCS)
    text = Path(gen.__file__).read_text(encoding="utf-8")
    same_sympy = f"# generated with sympy {sp.__version__}\n" in text
    for name, fn in gen.RAW.items():
        want = [str(a) + "_" * (str(a) == "lambda") for a in ARGS[name]]
        assert list(fn.__code__.co_varnames[: fn.__code__.co_argcount]) == want, name
    rng = np.random.default_rng(7)
    pool = np.array([0.0, -0.0, 1e-300, -1e-300, 1e-12, 0.25, 0.5, 1.0, 2.0, -3.0, 1e12,
                     1e300, np.inf, -np.inf])
    for name in EXPR:
        k = len(ARGS[name])
        vals = [np.concatenate([rng.choice(pool, 400), rng.normal(size=400) * 10.0 **
                                rng.integers(-8, 9, 400)]) for _ in range(k)]
        if name == "hoeffding":  # domain m / delta > 1, n > 0
            vals = [np.abs(v) + 1.5 for v in vals[:1]] + [np.full(800, 0.05),
                                                          np.abs(vals[2]) + 1.0]
        if same_sympy:  # the same printer: the same operations, bit for bit
            np.testing.assert_array_equal(FUNCS[name](*vals), numeric_form(name)(*vals),
                                          err_msg=name)
        else:  # another sympy may order the operations differently: moderate inputs
            mod = [np.abs(v) % 7.0 + 0.5 for v in vals]
            np.testing.assert_allclose(FUNCS[name](*mod), numeric_form(name)(*mod),
                                       rtol=1e-12, atol=1e-12, err_msg=name)
    # and the module text is what the generator writes now, with the sympy that wrote it
    if same_sympy:
        assert text == generated_source(), (
            "bounds/forms_generated.py is stale: run python -m bounds.symbolic")


def test_a_checker_run_imports_neither_sympy_nor_scipy_stats(tmp_path: Path) -> None:
    """The closed forms come from the generated module and the statistics from
    scipy.special, so a full checker run loads neither sympy nor scipy.stats
    (each costs 0.3-0.6 s, bench/bench_check.py)."""
    import subprocess
    import sys

    from rundir_factory import write_run_dir

    run = write_run_dir(tmp_path / "run")
    code = ("import sys, io, contextlib\n"
            "from bounds.check.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main([{str(run)!r}, '--jobs', '1'])\n"  # imports in this process
            "print(rc, [m for m in ('sympy', 'scipy.stats') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")[-2]
    assert out.endswith(" []"), out


def test_bounds_use_the_closed_forms() -> None:
    """B and the corollary from the registry equal independent hand formulas."""
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(6, 4)) * 3
    ct = np.repeat(np.arange(3), 2)
    Z = mu[rng.integers(0, 6, 90)] + rng.normal(size=(90, 4))
    y = ct[np.argmin(bounds.sqdist(Z, mu), axis=1)]
    S = bounds.nearest_centroid_scores(Z, mu, ct)
    cs = bounds.cluster_stats(Z, y, mu, ct)
    res = bounds.evaluate(bounds.BoundInputs(scores=S, task=y, clusters=cs))
    D2 = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    Dc2 = np.where(ct[:, None] != ct[None], D2, np.inf).min(1)
    hand_B = np.zeros(3)
    for c in range(6):
        pts = Z[(cs.point_cluster == c)]
        if len(pts):
            msr = ((pts - mu[c]) ** 2).sum(1).mean()
            hand_B[ct[c]] += len(pts) / np.sum(y == ct[c]) * min(1, 4 * msr / Dc2[c])
    np.testing.assert_allclose(res["B"].per_task, hand_B, rtol=1e-10)
    M = np.array([S[y == t, t].mean() for t in range(3)])
    V = np.array([S[y == t, t].var() for t in range(3)])
    dt = np.array([min((S[y == t, s].mean() - M[t]) / (np.sqrt(V[t]) + S[y == t, s].std())
                       for s in range(3) if s != t) for t in range(3)])
    hand_cor = np.where(dt > 0, np.minimum(1, 3 / (1 + dt**2)), 1.0)
    np.testing.assert_allclose(res["corollary"].per_task, hand_cor, rtol=1e-10)
    np.testing.assert_allclose(res["corollary"].details["delta_t"], dt, rtol=1e-10)


def test_latex_renders_every_bound() -> None:
    for name in bounds.REGISTRY:
        tex = bounds.latex(name)
        assert tex.startswith(r"\varepsilon_{t} \leq"), name
    assert r"\frac{m}{\delta^{2} + 1}" in bounds.latex("corollary")
    with pytest.raises(ValueError, match="name: unknown bound"):
        bounds.latex("nope")


def test_registry_metadata_and_evaluate() -> None:
    names = list(bounds.REGISTRY)
    assert names == ["A", "Bprime", "B", "C", "D", "moment-opt", "G-emp", "G-cantelli",
                     "corollary", "gaussian-chernoff", "pac-hoeffding", "pac-clopper-pearson"]
    for b in bounds.REGISTRY.values():
        assert b.title and b.assumptions and b.reads
    guaranteed = {n for n, b in bounds.REGISTRY.items() if b.guaranteed}
    assert guaranteed == {"A", "Bprime", "B", "C", "D", "moment-opt", "G-emp", "G-cantelli",
                          "corollary"}
    S = np.array([[0.0, 1.0], [1.0, 0.5]])
    y = np.array([0, 1])
    out = bounds.evaluate(bounds.BoundInputs(scores=S, task=y))
    assert list(out) == ["G-emp", "G-cantelli", "corollary"]
    with pytest.raises(ValueError, match="names: unknown"):
        bounds.evaluate(bounds.BoundInputs(scores=S, task=y), names=["zzz"])
    with pytest.raises(ValueError, match="needs"):
        bounds.evaluate(bounds.BoundInputs(scores=S, task=y), names=["A"])


def _small():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(4, 3))
    ct = np.array([0, 0, 1, 1])
    Z = rng.normal(size=(20, 3))
    y = np.repeat([0, 1], 10)
    return Z, y, mu, ct


def test_cluster_stats_concat_save_load(tmp_path) -> None:
    Z, y, mu, ct = _small()
    full = bounds.cluster_stats(Z, y, mu, ct, sketch_rank=2)
    parts = [bounds.cluster_stats(Z[y == t], y[y == t], mu[ct == t], ct[ct == t],
                                  sketch_rank=2) for t in (0, 1)]
    cat = bounds.ClusterStats.concat(parts)
    for f in ("count", "weight", "msr", "max_radius", "offset", "eigvals", "resid",
              "point_radius"):
        np.testing.assert_allclose(getattr(cat, f), getattr(full, f), err_msg=f)
    a = bounds.evaluate(bounds.BoundInputs(clusters=cat))
    b = bounds.evaluate(bounds.BoundInputs(clusters=full))
    for k in a:
        np.testing.assert_allclose(a[k].per_task, b[k].per_task, rtol=1e-9)
    cat.save(tmp_path / "cs.npz")
    back = bounds.ClusterStats.load(tmp_path / "cs.npz")
    np.testing.assert_array_equal(back.eigvecs, cat.eigvecs)
    gm = bounds.GaussianMixtures(np.array([[0.5, 0.5]]), np.zeros((1, 2, 3)), np.ones((1, 2, 3)))
    gm.save(tmp_path / "gm.npz")
    np.testing.assert_array_equal(bounds.GaussianMixtures.load(tmp_path / "gm.npz").means,
                                  gm.means)


def test_sketch_is_a_valid_upper_bound() -> None:
    """u' Sigma u <= u' U L U' u + resid ||(I-UU')u||^2 for random u, both sketch paths."""
    rng = np.random.default_rng(4)
    for n_pts, d in ((6, 10), (40, 5)):  # Gram path (n <= d) and covariance path
        Z = rng.normal(size=(n_pts, d)) * rng.uniform(0.1, 3, size=d)
        cs = bounds.cluster_stats(Z, np.zeros(n_pts, int), Z.mean(0, keepdims=True) + 0.1,
                                  np.array([0]), sketch_rank=2)
        X = Z - Z.mean(0)
        Sig = X.T @ X / n_pts
        U, L, R = cs.eigvecs[0], cs.eigvals[0], cs.resid[0]
        for _ in range(50):
            u = rng.normal(size=d)
            u /= np.linalg.norm(u)
            pu = U.T @ u
            assert u @ Sig @ u <= pu @ (L * pu) + R * max(0, 1 - pu @ pu) + 1e-10
        np.testing.assert_allclose(L, np.linalg.eigvalsh(Sig)[::-1][:2], rtol=1e-8)


def test_sqdist_blas_path_matches_direct() -> None:
    rng = np.random.default_rng(6)
    A = rng.normal(size=(300, 64)) + 50.0
    B = np.concatenate([rng.normal(size=(250, 64)) + 50.0, A[:3]])
    direct = bounds.sqdist(A, B, direct=True)
    blas = bounds.sqdist(A, B, direct=False)
    np.testing.assert_allclose(blas, direct, rtol=1e-9)
    assert blas[0, 250] == 0.0 and blas[2, 252] == 0.0  # coincident points exactly 0


def test_single_task_gives_zero_bounds() -> None:
    """m = 1 (§6.7): a single task is never misretrieved; every bound is defined and 0
    (PAC bounds: 0 + slack)."""
    Z = np.random.default_rng(0).normal(size=(7, 2))
    y = np.zeros(7, int)
    mu = np.zeros((2, 2))
    ct = np.zeros(2, int)
    S = bounds.nearest_centroid_scores(Z, mu, ct)
    gm = bounds.GaussianMixtures(np.ones((1, 1)), np.zeros((1, 1, 2)), np.ones((1, 1, 2)))
    res = bounds.evaluate(bounds.BoundInputs(scores=S, task=y, cal_scores=S, cal_task=y,
                                             clusters=bounds.cluster_stats(Z, y, mu, ct),
                                             mixtures=gm))
    assert len(res) == len(bounds.REGISTRY)
    for name, r in res.items():
        assert np.all(np.isfinite(r.per_task)) and 0 <= r.overall <= 1
        if not name.startswith("pac"):
            assert np.all(r.per_task == 0.0), name
    assert np.all(bounds.retrieval_margin(S, y) == np.inf)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bounds.empirical_error(np.array([[0.0, np.nan]]), [0]), "S: contains 1 NaN"),
        (lambda: bounds.empirical_error(np.array([[0.0, np.inf]]), [0]), "S: contains"),
        (lambda: bounds.empirical_error(np.zeros((2, 2)), [0]), "task: expected length 2"),
        (lambda: bounds.empirical_error(np.zeros((2, 2)), [0, 0]), r"task: task\(s\) \[1\]"),
        (lambda: bounds.empirical_error(np.zeros((2, 2)), [0, 2]), "task: id 2 out of range"),
        (lambda: bounds.empirical_error(np.zeros((2, 2)), [0, -1]), "task: ids must be non"),
        (lambda: bounds.empirical_error(np.zeros(3), [0, 1, 0]), "S: expected 2 dim"),
        (lambda: bounds.empirical_error(np.zeros((2, 2)), [0, 1], m=3), "m: got 3"),
        (lambda: bounds.score_stats(np.zeros((0, 2)), []), "S: is empty"),
        (lambda: bounds.cluster_stats(*_small(), sketch_rank=-2), "sketch_rank: must be a pos"),
        (lambda: bounds.cluster_stats(*_small(), sketch_rank=0), "sketch_rank: must be a pos"),
        (lambda: bounds.cluster_stats(_small()[0][:, :2], *_small()[1:]), "centroids: dim"),
        (lambda: bounds.cluster_stats(*_small()[:3], np.array([0, 0, 0, 0])),
         r"task: task\(s\) \[1\] have points but no centroid"),
        (lambda: bounds.nearest_centroid_scores(np.zeros((2, 2)), np.zeros((2, 2)), [0, 2]),
         r"centroid_task: task\(s\) \[1\] have no centroid"),
        (lambda: bounds.GaussianMixtures(np.array([[0.3, 0.3]]), np.zeros((1, 2, 1)),
                                         np.ones((1, 2, 1))), "weights: each task"),
        (lambda: bounds.GaussianMixtures(np.array([[1.0]]), np.zeros((1, 1, 2)),
                                         np.array([[[[1.0, 2.0], [2.0, 1.0]]]])),
         "covariances: must be positive definite"),
        (lambda: bounds.GaussianMixtures(np.array([[1.0]]), np.zeros((1, 1, 2)),
                                         np.ones((1, 1, 3))), "covariances: shape"),
        (lambda: bounds.BoundInputs(scores=np.zeros((2, 2)), task=[0, 1], delta=1.5),
         "delta: must lie in"),
        (lambda: bounds.BoundInputs(scores=np.zeros((2, 2))), "scores: scores and task"),
        (lambda: bounds.BoundInputs(scores=np.zeros((2, 3)), task=[0, 1],
                                    cal_scores=np.zeros((2, 2)), cal_task=[0, 1]),
         "inconsistent numbers of tasks"),
        (lambda: bounds.pairwise_chernoff(
            bounds.GaussianMixtures(np.ones((1, 1)), np.zeros((1, 1, 1)), np.ones((1, 1, 1))),
            n_iter=-1), "n_iter: must be a positive integer"),
    ],
)
def test_error_messages(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_sympy_expressions_are_sympy() -> None:
    for expr in EXPR.values():
        assert isinstance(expr, sp.Basic)


def test_gcantelli_memory_is_quadratic_not_cubic() -> None:
    """Issue #11: the threshold search held an (m, G, m) array, G ~ m + 133 (m^3 memory;
    m = 1000 needed 8.4 GiB per temporary). Now O(m^2): at m = 250 with one sample per
    task the peak stays far below one (m, G, m) float64 array (~180 MiB)."""
    import tracemalloc

    m = 250
    rng = np.random.default_rng(0)
    S = rng.normal(size=(m, m))
    task = np.arange(m)
    S[task, task] -= 2.0
    inp = bounds.BoundInputs(scores=S, task=task)
    tracemalloc.start()
    res = bounds.REGISTRY["G-cantelli"].compute(inp)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2**20, peak / 2**20
    assert np.all(res.per_task >= bounds.empirical_error(S, task)[0])


def test_gcantelli_blocks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of one task (the smallest chunk) give exactly the one-block result."""
    import bounds.threshold as reg

    rng = np.random.default_rng(1)
    S = rng.normal(size=(40, 5)) * rng.uniform(0.1, 3, size=5)
    y = np.arange(40) % 5
    one = bounds.REGISTRY["G-cantelli"].compute(bounds.BoundInputs(scores=S, task=y))
    monkeypatch.setattr(reg, "_OBJ_CHUNK", 1)
    many = bounds.REGISTRY["G-cantelli"].compute(bounds.BoundInputs(scores=S, task=y))
    np.testing.assert_array_equal(many.per_task, one.per_task)
    np.testing.assert_array_equal(many.details["r"], one.details["r"])


def test_cantelli_inplace_equals_the_sympy_form() -> None:
    """The hot-loop Cantelli tail equals EXPR['cantelli'] (with the V = 0 < a value 0)
    bit for bit, edge cases included."""
    from bounds.threshold import _cantelli_inplace
    from bounds.threshold import cantelli_tail as _cantelli

    V = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1e-300, 2.5, 0.0, 3.0, 1e-320])
    a = np.array([1.0, 0.0, -1.0, 0.0, np.inf, 1e-170, -np.inf, 1e-170, 1e200, 1e-160])
    V = np.concatenate([V, np.random.default_rng(2).uniform(0, 3, 200)])
    a = np.concatenate([a, np.random.default_rng(3).normal(size=200)])
    want = _cantelli(V, a)
    got = _cantelli_inplace(V, a.copy())
    np.testing.assert_array_equal(got, want)
    assert np.all(np.isfinite(got))
