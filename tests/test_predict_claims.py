"""Tier-4 predictions, the earlier/later claim split and the checker's ladder (§9-§11)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from golden_compare import assert_json_matches, assert_text_matches
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from rundir_factory import write_run_dir

import bounds
from bounds.check import check_run, load_run
from bounds.check.ladder import ladder
from bounds.check.mcnumbers import fmt_mc
from bounds.check.report import render, to_jsonable
from bounds.claims import claim_split, earlier_cantelli, earlier_event
from bounds.predict import gauss_full, gauss_proj, gauss_scores


# ------------------------------------------------------------------ predictions
def _gauss_tasks(rng: np.random.Generator, m: int, d: int, n: int, sep: float):
    means = rng.normal(size=(m, d)) * sep
    A = rng.normal(size=(m, d, d)) / np.sqrt(d)
    covs = A @ np.transpose(A, (0, 2, 1)) + 0.3 * np.eye(d)  # correlated coordinates
    Z = np.concatenate([rng.multivariate_normal(means[t], covs[t], size=n) for t in range(m)])
    task = np.repeat(np.arange(m), n)
    return means, covs, Z, task


def test_gauss_proj_exact_on_gaussian_data():
    """Really Gaussian clusters: the prediction from the sample moments matches the error of
    a fresh large sample within Monte Carlo error."""
    rng = np.random.default_rng(0)
    m, d = 4, 10
    means, covs, Z, task = _gauss_tasks(rng, m, d, 20000, sep=0.9)
    cs = bounds.cluster_stats(Z, task, means, np.arange(m), sketch_rank=None)
    pr = gauss_proj(cs, n_samples=20000, seed=1)
    _, _, Z2, task2 = _gauss_tasks(np.random.default_rng(0), m, d, 20000, sep=0.9)
    real = bounds.empirical_error(bounds.nearest_centroid_scores(Z2, means, np.arange(m)),
                                  task2)[0]
    assert np.all(real > 0.02) and np.all(real < 0.98)  # a non-trivial case
    tol = 4 * np.sqrt(pr.se_task**2 + real * (1 - real) / 20000) + 0.01
    assert np.all(np.abs(pr.per_task - real) <= tol), (pr.per_task, real)


def test_gauss_proj_sketch_residuals():
    """The diagonal residual recovers a low-rank sketch's accuracy; the isotropic upper
    bound over-states the spread (so it predicts more error)."""
    rng = np.random.default_rng(3)
    m, d = 3, 24
    means, covs, Z, task = _gauss_tasks(rng, m, d, 6000, sep=0.8)
    exact = gauss_proj(bounds.cluster_stats(Z, task, means, np.arange(m)), seed=0)
    cs = bounds.cluster_stats(Z, task, means, np.arange(m), sketch_rank=4)
    diag = gauss_proj(cs, seed=0)
    import dataclasses

    iso = gauss_proj(dataclasses.replace(cs, resid_diag=None), seed=0)
    assert iso.details["residual"] == "iso" and diag.details["residual"] == "diag"
    assert np.mean(np.abs(diag.per_task - exact.per_task)) < np.mean(
        np.abs(iso.per_task - exact.per_task))
    assert iso.overall > exact.overall


def test_gauss_full_exact_on_gaussian_data():
    rng = np.random.default_rng(5)
    m, d = 3, 6
    means, covs, Z, task = _gauss_tasks(rng, m, d, 20000, sep=0.8)
    mix = bounds.GaussianMixtures(np.ones((m, 1)), means[:, None, :], covs[:, None, :, :])
    cs = bounds.cluster_stats(Z, task, means, np.arange(m))
    pr = gauss_full(cs, mix, n_per_task=20000, seed=2)
    _, _, Z2, task2 = _gauss_tasks(np.random.default_rng(5), m, d, 20000, sep=0.8)
    real = bounds.empirical_error(mix.nll(Z2), task2)[0]
    assert np.all(real > 0.02)
    tol = 4 * np.sqrt(pr.se_task**2 + real * (1 - real) / 20000) + 0.01
    assert np.all(np.abs(pr.per_task - real) <= tol), (pr.per_task, real)


def test_gauss_scores_exact_on_gaussian_scores():
    rng = np.random.default_rng(7)
    means, covs = [np.zeros(1)], [np.eye(1)]
    real = [0.0]
    for t in range(1, 4):
        mu = rng.normal(size=t + 1)
        A = rng.normal(size=(t + 1, t + 1))
        C = A @ A.T + 0.1 * np.eye(t + 1)
        X = rng.multivariate_normal(mu, C, size=50000)
        means.append(X.mean(axis=0))
        covs.append(np.cov(X.T, bias=True))
        real.append(float(np.mean(X[:, :t].min(axis=1) <= X[:, t])))
    pr = gauss_scores(means, covs, np.ones(4), n_samples=50000, seed=0)
    assert pr.per_task[0] == 0.0
    assert np.all(np.abs(pr.per_task - real) <= 4 * pr.se_task + 0.01), (pr.per_task, real)


def test_prediction_bad_input():
    cs = bounds.cluster_stats(np.eye(4), np.array([0, 0, 1, 1]), np.eye(4)[[0, 2]],
                              np.array([0, 1]))
    with pytest.raises(ValueError, match="n_samples"):
        gauss_proj(cs, n_samples=0)
    mix = bounds.GaussianMixtures(np.ones((3, 1)), np.zeros((3, 1, 4)), np.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="mixtures"):
        gauss_full(cs, mix)


# ------------------------------------------------------------------ claims
def test_claim_split_hand_computed():
    # task of each row and scores for tasks 0, 1, 2
    S = np.array([
        [1.0, 2.0, 3.0],  # t=0 correct
        [1.0, 0.5, 3.0],  # t=0, claimed by 1 (later)
        [1.0, 2.0, 1.0],  # t=0, tie with task 2: error, later
        [0.5, 1.0, 0.2],  # t=1: winner 2 (0.2 < 0.5): later, although task 0 also wins
        [0.9, 1.0, 3.0],  # t=1: claimed by 0 (earlier)
        [2.0, 2.0, 2.0],  # t=2: ties with 0 and 1: winner 0 (lowest index): earlier
        [3.0, 4.0, 1.0],  # t=2 correct
    ])
    task = np.array([0, 0, 0, 1, 1, 2, 2])
    cl = claim_split(S, task)
    np.testing.assert_array_equal(cl["error"], [2 / 3, 1.0, 0.5])
    np.testing.assert_array_equal(cl["earlier"], [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(cl["later"], [2 / 3, 0.5, 0.0])
    np.testing.assert_array_equal(earlier_event(S, task), [0, 0, 0, 1, 1, 1, 0])
    err = bounds.empirical_error(S, task)[0]
    np.testing.assert_allclose(cl["earlier"] + cl["later"], err, rtol=0, atol=0)


def test_earlier_cantelli_hand_value():
    # f(r) = 1/(1+r^2) + 1/(1+(4-r)^2) is minimal at r = 2: 0.2 + 0.2
    val, r = earlier_cantelli(0.0, 1.0, np.array([4.0]), np.array([1.0]))
    assert val == pytest.approx(0.4, abs=1e-9) and r == pytest.approx(2.0, abs=1e-6)
    assert earlier_cantelli(0.0, 1.0, np.array([]), np.array([]))[0] == 0.0
    assert earlier_cantelli(0.0, 1.0, np.array([-1.0]), np.array([1.0]))[0] == 1.0


@settings(max_examples=60, deadline=None)
@given(t=st.integers(1, 4), n=st.integers(1, 30), scale=st.sampled_from([1e-6, 1.0, 1e6]),
       data=st.data())
def test_earlier_cantelli_exact_on_sample(t, n, scale, data):
    """Fed the sample's own moments, the bound is >= the sample's earlier-event rate."""
    X = data.draw(hnp.arrays(np.float64, (n, t + 1),
                             elements=st.integers(-4, 4).map(float))) * scale
    rate = float(np.mean(earlier_event(X, np.full(n, t))))
    mu, var = X.mean(axis=0), X.var(axis=0)
    val, _ = earlier_cantelli(mu[-1], var[-1], mu[:-1], var[:-1])
    assert val >= rate - 1e-9


# ------------------------------------------------------------------ ladder
def _report(tmp_path, **kw):
    root = write_run_dir(tmp_path / "run", **kw)
    data = load_run(root)
    return check_run(data, splits=("test",))


GOLDEN = Path(__file__).parent / "golden"

#: a Monte-Carlo number may move by this many of its standard errors between machines
MC_SE = 4


def mc_tolerance(where: tuple, parent: dict) -> float | None:
    """Tolerance of a prediction's Monte-Carlo numbers in the checker's JSON (None: a
    deterministic number, 1e-9 relative): ``MC_SE`` standard errors plus two draws."""
    if "prediction" not in where and "predictions" not in where:
        return None
    key = next(k for k in reversed(where) if isinstance(k, str))
    idx = where[-1] if isinstance(where[-1], int) else None
    one = 2.0 / max(1, parent.get("monte_carlo", {}).get("n_draws", 1))
    se_o = parent.get("se_overall", parent.get("se", 0.0)) or 0.0
    if key in ("per_task", "abs_error_per_task"):
        return MC_SE * parent["se_per_task"][idx] + one
    if key in ("overall", "abs_error", "abs_error_overall"):
        return MC_SE * se_o + one
    if key == "mae_over_tasks":
        return MC_SE * max(parent["se_per_task"]) + one
    if key in ("se_per_task", "se_overall", "se"):  # an estimate of p(1-p)/n itself
        return 0.5 * max(se_o, max(parent.get("se_per_task", [0.0]))) + one
    if key == "spearman_rho":  # a rank statistic of Monte-Carlo values: any value in [-1, 1]
        return 2.0
    return None


@pytest.mark.exact_output
def test_ladder_golden(tmp_path):
    """The default output of a small hand-made run: its layout, names, order, tiers and
    verdicts character for character, every number at full precision in the JSON within
    its tolerance (deterministic 1e-9 relative, Monte-Carlo ``MC_SE`` standard errors);
    regenerate with CFT_REGEN_GOLDEN=1 after a deliberate change, and review the diff."""
    rep = _report(tmp_path, m=3, K=2, d=6, sep=0.7, seed=4)
    buf = io.StringIO()
    render(rep, buf)
    text = re.sub(r"run \S+", "run RUN", buf.getvalue())
    assert_text_matches(text, GOLDEN / "ladder.txt", numbers="skip")
    js = to_jsonable(rep)
    js.pop("run_dir")
    assert_json_matches(js, GOLDEN / "ladder.json", tolerance=mc_tolerance)
    # rho is not compared with the golden (a rank of Monte-Carlo values): it must be the
    # rank correlation of the prediction's own per-task values with the realised errors
    from bounds.rank_correlation import spearman

    for p in (p for t in js["tables"] for p in t["predictions"]):
        assert p["spearman_rho"] == spearman(np.asarray(p["per_task"]),
                                             np.asarray(p["realised_per_task"]))
    # and the ladder's numbers are the report's own, Monte-Carlo ones at the digits of their se
    lines = text.splitlines()
    for r in ladder(rep):
        line = next(ln for ln in lines if ln.startswith(r.rule + " "))
        assert f"{r.error:.3f}" in line
        p = r.pred
        assert (f"{fmt_mc(p.overall, p.se_overall)}, {fmt_mc(p.abs_err, p.se_overall, pm=False)}"
                in line), line
    tab = next(t for t in rep.tables if (t.mode, t.kind) == ("shared", "centroid"))
    line = next(ln for ln in lines if ln.startswith("shared-centroid"))
    best1 = min((r for r in tab.rows if r.category == "guaranteed"), key=lambda r: r.overall)
    assert f"{best1.key} {best1.overall:.3f}" in line


def test_mc_digits_follow_the_standard_error():
    """The printed digits are those the standard error justifies; the se and the number of
    draws are in the JSON of every prediction."""
    assert fmt_mc(0.0196, 0.003) == "0.020±0.003" and fmt_mc(0.0196, 0.03) == "0.02±0.03"
    assert fmt_mc(0.0196, 0.0096) == "0.02±0.01"  # the se rounds up to the next place
    assert fmt_mc(0.21, 0.0004, pm=False) == "0.2100" and fmt_mc(0.5, 0.0) == "0.500±0.000"
    assert fmt_mc(0.5, float("nan")) == "0.500±?" and fmt_mc(0.123, 2e-9) == "0.123000±0.000000"


def test_prediction_json_records_se_and_draws(tmp_path):
    js = to_jsonable(_report(tmp_path, m=3, K=2, d=6, sep=0.7, seed=4))
    preds = [p for t in js["tables"] for p in t["predictions"]]
    assert preds and all(p["monte_carlo"]["n_draws"] > 0 and len(p["se_per_task"]) == 3
                         for p in preds)
    by_key = {p["key"]: p["monte_carlo"] for p in preds}
    assert by_key["pred:gauss-proj"] == {"n_draws": 4000, "per": "cluster", "seed": 0}
    assert all(r["prediction"]["se"] >= 0 and "monte_carlo" in r["prediction"]
               for r in js["ladder"] if r["prediction"])


def test_ladder_fits_one_screen_at_100_tasks(tmp_path):
    rep = _report(tmp_path, m=100, K=1, d=4, n_train=12, n_cal=6, n_test=6, sep=2.0, seed=1,
                  clusters=False, reps=False)
    buf = io.StringIO()
    render(rep, buf)
    assert len(buf.getvalue().splitlines()) <= 40


def test_over_steps_uses_the_statistics_of_each_step(tmp_path):
    import dataclasses

    from bounds.check.ladder import over_steps

    root = write_run_dir(tmp_path / "run", m=3, K=2, d=5, sep=0.8, steps="all", seed=2)
    data = load_run(root)
    hist = over_steps(data, split="test")
    assert hist["steps"] == [0, 1, 2]
    for k in range(3):
        parts = [bounds.ClusterStats.load(root / "tasks" / f"{t:03d}" /
                                          "train-clusters-shared.npz", complete=False)
                 for t in range(k + 1)]
        want = bounds.ClusterStats.concat(parts)
        got = data.train_clusters.first_tasks(k)
        for f in dataclasses.fields(bounds.ClusterStats):  # every field, none by hand
            np.testing.assert_array_equal(getattr(got, f.name), getattr(want, f.name))
        assert dict(hist["predicted"]["shared-centroid"])[k] == gauss_proj(want).overall
        with np.load(root / "eval" / f"step-{k:03d}" / "test" / "shared-nll.npz") as z:
            real = bounds.empirical_error(z["scores"], z["task"])[1]
        assert dict(hist["realised"]["shared-nll"])[k] == real


# ------------------------------------------------------------------ scipy.stats, not imported
@settings(max_examples=200, deadline=None)
@given(st.integers(3, 40).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, n, elements=st.sampled_from([-1e300, -2.0, 0.0, 0.0, 1.5, 3.0,
                                                        1e-300])),
    hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6)))))
def test_spearman_equals_scipy_with_ties(ab):
    """The checker's Spearman correlation (numpy average ranks, no scipy.stats import) is
    scipy's to rounding, ties and duplicates included; undefined (constant) inputs give
    None."""
    from scipy.stats import spearmanr

    from bounds.rank_correlation import spearman

    a, b = ab
    got = spearman(a, b)
    assert spearman(np.r_[a, np.nan], np.r_[b, 1.0]) is None  # a NaN: undefined, not ranked
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        assert got is None
        return
    assert abs(got - spearmanr(a, b).statistic) <= 1e-12


def test_clopper_pearson_and_chi2_tail_equal_scipy_stats():
    """The quantile and the tail the checker takes from scipy.special equal scipy.stats'
    beta.ppf (to rounding) and chi2.sf (exactly: chi2.sf calls chdtrc), without the 0.5 s
    import."""
    from scipy import stats
    from scipy.special import betaincinv, chdtrc

    from bounds.pac import _clopper_pearson

    rng = np.random.default_rng(3)
    n = rng.integers(1, 10**6, 500).astype(float)
    k = np.floor(rng.random(500) * n)
    alpha = 10 ** rng.uniform(-12, -0.5, 500)
    # beta.ppf and betaincinv are both Boost's inverse today; scipy does not promise it
    np.testing.assert_allclose(betaincinv(k + 1, n - k, 1 - alpha),
                               stats.beta.ppf(1 - alpha, k + 1, n - k), rtol=1e-14, atol=0)
    assert _clopper_pearson(3.0, 50.0, 0.05) == pytest.approx(stats.beta.ppf(0.95, 4, 47),
                                                              rel=1e-14)
    assert _clopper_pearson(50.0, 50.0, 0.05) == 1.0
    x = np.r_[0.0, 1e-300, rng.exponential(4.0, 500), 1e3]
    np.testing.assert_array_equal(chdtrc(2, x), stats.chi2.sf(x, 2))
