"""The checker's fast paths against their slow references (docs/theory.md §13).

Each fast path (skipped SDPs, the truncated-union screening of ``moment-opt``, the batched
predictions, the parallel checker) is compared with the straightforward computation it
replaces, kept here: deterministic numbers to 1e-9 relative (most are bitwise equal),
Monte-Carlo ones draw for draw where the draws are the same and within a few standard
errors where the random stream changed. Timing goals live in ``bench/``, never here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rundir_factory import write_run_dir

import bounds
from bounds.check import load_run
from bounds.check.cli import main
from bounds.check.ladder import over_steps
from bounds.moment.bound import _cluster_bound
from bounds.predict import (
    _competitors,
    _projected_cov,
    _sample_cluster,
    _sqrt_psd,
    centroid_basis,
    gauss_full,
    gauss_proj,
)


# ------------------------------------------------------------------ fixtures
def _clusters(seed: int = 0, m: int = 16, K: int = 3, d: int = 24, q: int | None = 3,
              n_t: int = 60) -> bounds.ClusterStats:
    """Three groups of tasks: well separated, overlapping, and a tight far group whose
    unions of Cantelli terms exceed 1; one foreign centroid coincides with task 0's."""
    rng = np.random.default_rng(seed)
    spread = np.r_[np.full(5, 3.0), np.full(5, 0.8), np.full(m - 10, 0.05)]
    centre = rng.normal(size=(m, 1, d)) * spread[:, None, None]
    centre[10:] += 40.0
    mu = (centre + rng.normal(size=(m, K, d))
          * np.where(spread < 0.1, 0.05, 0.5)[:, None, None]).reshape(m * K, d)
    mu[-1] = mu[0]
    ct = np.repeat(np.arange(m), K)
    comp = rng.integers(0, m * K, size=m * n_t)
    scale = rng.uniform(0.1, 0.6, size=(m * K, 1)) * rng.uniform(0.3, 1.5, size=(1, d))
    Z = mu[comp] + rng.normal(size=(comp.size, d)) * scale[comp]
    return bounds.cluster_stats(Z, ct[comp], mu, ct, sketch_rank=q)


def _overlapping(seed: int = 3, m: int = 6, K: int = 3, d: int = 10, q: int | None = 4):
    """Overlapping Gaussian tasks (errors of ~15 %) and one far task (no error, screened):
    clusters and diagonal mixtures."""
    rng = np.random.default_rng(seed)
    mu = (rng.normal(size=(m, 1, d)) * 0.4 + rng.normal(size=(m, K, d)) * 0.3)
    mu[-1] += 30.0
    sd = rng.uniform(0.4, 0.9, size=(m, K, d))
    comp = rng.integers(0, K, size=(m, 150))
    Z = np.concatenate([mu[t, comp[t]] + rng.normal(size=(150, d)) * sd[t, comp[t]]
                        for t in range(m)])
    y = np.repeat(np.arange(m), 150)
    cs = bounds.cluster_stats(Z, y, mu.reshape(m * K, d), np.repeat(np.arange(m), K),
                              sketch_rank=q)
    mix = bounds.GaussianMixtures(np.full((m, K), 1.0 / K), mu, sd**2)
    return cs, mix


# ------------------------------------------------------------------ moment-opt
@pytest.mark.parametrize("seed", [0, 1])
def test_moment_opt_equals_reference_or_is_tighter(seed: int) -> None:
    """Reference: the SDP of every cluster (no skip), then D where it is materially smaller
    (§13.1). Every skip reason occurs; the values agree to 1e-9 relative."""
    cs = _clusters(seed)
    inp = bounds.BoundInputs(clusters=cs)
    res = bounds.evaluate(inp, names=["C", "D", "moment-opt"])
    mo, d_c = res["moment-opt"], res["D"].details["per_cluster"]
    sk = mo.details["skipped"]
    assert sk["one"] and sk["cap"] and sk["D"] and mo.details["n_sdp"], sk
    p = np.where(np.isfinite(inp.directional()), inp.directional(), 1.0)
    g = inp.cluster_geometry()
    s = inp.clusters
    ref = np.minimum(1.0, p.sum(axis=1))
    for c in np.flatnonzero(s.count > 0):
        f = np.flatnonzero(g["foreign"][c])
        args = (s.centroid[c], s.centroid[f], s.offset[c], s.eigvecs[c], s.eigvals[c],
                float(s.resid[c]), p[c, f], 8, False)
        old = _cluster_bound(*args, "ipm", skip=False).value
        ref[c] = d_c[c] if d_c[c] < old * (1 - 1e-6) else old
        # Clarabel (the solver before the batched one): the same value to its tolerance
        # (gap 1e-10 absolute on the normalised problem, plus its certification), and
        # moment-opt never looser than it
        clar = _cluster_bound(*args, "clarabel", skip=False).value
        assert old == pytest.approx(clar, abs=5e-10, rel=0)
        assert mo.details["per_cluster"][c] <= clar * (1 + 1e-9) + 1e-15
    # the batch solves each SDP as if alone (tests/test_moment_batch.py): exactly equal
    np.testing.assert_array_equal(mo.details["per_cluster"], ref)
    want = np.bincount(s.task, weights=s.weight * ref, minlength=s.n_tasks)
    np.testing.assert_allclose(mo.per_task, want, rtol=1e-9, atol=1e-15)
    assert np.all(mo.per_task <= res["C"].per_task + 1e-12)
    assert np.all(mo.per_task <= res["D"].per_task + 1e-12)


# ------------------------------------------------------------------ gauss-full
def _gauss_full_reference(cs, mix, n_per_task, seed):
    """The per-task loop of the original pred:gauss-full (one nll call per task)."""
    rng = np.random.default_rng(seed)
    m_ = cs.n_tasks
    p_t = np.zeros(m_)
    for t in range(m_):
        idx = np.flatnonzero((cs.task == t) & (cs.count > 0))
        w = cs.weight[idx] / cs.weight[idx].sum()
        counts = rng.multinomial(n_per_task, w)
        Z = np.concatenate([_sample_cluster(cs, c, k, rng) for c, k in zip(idx, counts)])
        S = mix.nll(Z)
        own = S[:, t].copy()
        S[:, t] = np.inf
        p_t[t] = float(np.mean(S.min(axis=1) <= own))
    return p_t


@pytest.mark.parametrize("full", [False, True])
def test_gauss_full_equals_reference_draw_for_draw(full: bool) -> None:
    cs, mix = _overlapping()
    if full:  # full covariances: the factorisation of the constructor is reused
        cov = mix.full_covariances() + 0.05 * np.eye(mix.dim)
        mix = bounds.GaussianMixtures(mix.weights, mix.means, cov)
    got = gauss_full(cs, mix, n_per_task=3000, seed=5)
    want = _gauss_full_reference(cs, mix, got.details["n_per_task"], 5)
    assert 0.05 < got.overall < 0.5
    np.testing.assert_array_equal(got.per_task, want)


def test_nll_screen_bounds_its_rounding() -> None:
    rng = np.random.default_rng(1)
    cs, mix = _overlapping()
    for scale in (1.0, 1e3):
        m2 = bounds.GaussianMixtures(mix.weights, mix.means * scale + 7.0,
                                     mix.covariances * scale**2)
        Z = (rng.normal(size=(500, mix.dim)) * 2.0) * scale + 7.0
        S, u = m2.nll_screen(Z)
        assert np.all(np.abs(S - m2.nll(Z)) <= u[:, None])


def test_component_logpdf_equals_reference() -> None:
    """Cache-sized blocks (diagonal) and one factorisation per object (full): the same
    numbers, bit for bit, as the one-block computation."""
    rng = np.random.default_rng(0)
    for m, K, d, full in [(1, 10, 300, False), (7, 3, 12, False), (4, 3, 12, True)]:
        w = rng.uniform(0.1, 1, size=(m, K))
        w /= w.sum(axis=1, keepdims=True)
        mu = rng.normal(size=(m, K, d))
        Z = rng.normal(size=(900, d))
        if full:
            G = rng.normal(size=(m, K, d, 3))
            cov = G @ np.swapaxes(G, -1, -2) * 0.1 + np.eye(d)
            L = np.linalg.cholesky(cov.reshape(m * K, d, d))
            W = np.linalg.inv(L)
            y = ((Z @ W.reshape(m * K * d, d).T).reshape(-1, m * K, d)
                 - np.einsum("pij,pj->pi", W, mu.reshape(m * K, d))[None])
            logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        else:
            cov = rng.uniform(0.1, 2.0, size=(m, K, d))
            var = cov.reshape(m * K, d)
            y = (Z[:, None, :] - mu.reshape(m * K, d)[None]) * (1.0 / np.sqrt(var))[None]
            logdet = np.log(var).sum(axis=1)
        want = -0.5 * (np.einsum("npd,npd->np", y, y) + logdet[None] + d * np.log(2 * np.pi))
        got = bounds.GaussianMixtures(w, mu, cov).component_logpdf(Z)
        np.testing.assert_array_equal(got, want.reshape(-1, m, K))


def test_cholesky_factors_reused_across_objects() -> None:
    _, mix = _overlapping()
    cov = mix.full_covariances() + 0.05 * np.eye(mix.dim)
    a = bounds.GaussianMixtures(mix.weights, mix.means, cov)
    b = bounds.GaussianMixtures(mix.weights[:4], mix.means[:4], cov[:4].copy())
    Z = np.random.default_rng(2).normal(size=(40, mix.dim))
    np.testing.assert_array_equal(b._chol, a._chol[:4])
    np.testing.assert_array_equal(b.component_logpdf(Z), a.component_logpdf(Z)[:, :4])
    c = bounds.GaussianMixtures(mix.weights, mix.means, cov * 2.0)  # changed: recomputed
    np.testing.assert_array_equal(c._chol, np.linalg.cholesky(cov * 2.0))


# ------------------------------------------------------------------ gauss-proj
def _select_reference(cs, c, n):
    mean_c = cs.centroid[c] + cs.offset[c]
    own = np.flatnonzero(cs.task == cs.task[c])
    foreign = np.flatnonzero(cs.task != cs.task[c])
    if foreign.size > n:
        X = cs.centroid[foreign] - mean_c
        foreign = foreign[np.argsort(np.einsum("fd,fd->f", X, X), kind="stable")[:n]]
    return np.concatenate([own, foreign])


def _gauss_proj_reference(cs, n_samples, seed, n_comp, streams="cluster"):
    """The per-cluster loop of pred:gauss-proj: one SVD, one eigh, one draw per cluster;
    ``streams="global"`` is the original single random stream."""
    p_c = np.zeros(cs.n_clusters)
    glob = np.random.default_rng(seed)
    for c in range(cs.n_clusters):
        if cs.count[c] == 0:
            continue
        comp = _select_reference(cs, c, n_comp)
        g0, U = centroid_basis(cs.centroid[comp])
        P = (cs.centroid[comp] - g0) @ U
        Pn = np.einsum("cr,cr->c", P, P)
        F = _sqrt_psd(_projected_cov(cs, c, U))
        rng = glob if streams == "global" else np.random.default_rng([seed, c])
        Y = ((cs.centroid[c] + cs.offset[c] - g0) @ U)[None, :] + rng.standard_normal(
            (n_samples, F.shape[1])) @ F.T
        D2 = Pn[None, :] - 2.0 * (Y @ P.T)
        n_own = int(np.sum(cs.task[comp] == cs.task[c]))
        p_c[c] = np.mean(D2[:, n_own:].min(axis=1, initial=np.inf) <= D2[:, :n_own].min(axis=1))
    return p_c


@pytest.mark.parametrize("iso", [False, True])
def test_gauss_proj_equals_reference_draw_for_draw(iso: bool) -> None:
    import dataclasses

    cs, _ = _overlapping()
    cs = dataclasses.replace(cs, resid_diag=None) if iso else cs
    got = gauss_proj(cs, n_samples=3000, seed=2, n_competitors=7)
    want = _gauss_proj_reference(cs, 3000, 2, 7)
    assert got.details["screened"].any() or iso  # separated clusters are not sampled
    np.testing.assert_array_equal(got.details["per_cluster"], want)
    # the original single stream: the same estimator, other draws (within 4 se)
    old = _gauss_proj_reference(cs, 3000, 2, 7, streams="global")
    w = cs.weight
    pt_old = np.bincount(cs.task, weights=w * old, minlength=cs.n_tasks)
    se = np.sqrt(np.bincount(cs.task, weights=w**2 * (old * (1 - old) + want * (1 - want))
                             / 3000, minlength=cs.n_tasks))
    assert np.all(np.abs(got.per_task - pt_old) <= 4 * se + 1e-12)


def test_gauss_proj_cache_across_steps() -> None:
    cs, _ = _overlapping()
    cache: dict = {}
    for k in range(cs.n_tasks):
        sub = cs.first_tasks(k)
        a = gauss_proj(sub, seed=1, n_samples=500, cache=cache)
        b = gauss_proj(sub, seed=1, n_samples=500)
        np.testing.assert_array_equal(a.per_task, b.per_task)
    assert cache


def test_competitor_selection_exact_with_ties() -> None:
    """Integer-grid centroids (many equal distances): the BLAS pre-selection keeps the
    choice of the exact stable sort."""
    rng = np.random.default_rng(4)
    m, K, d = 12, 2, 3
    mu = rng.integers(-2, 3, size=(m * K, d)).astype(float)
    ct = np.repeat(np.arange(m), K)
    Z = mu[rng.integers(0, m * K, 400)] + np.round(rng.normal(size=(400, d)))
    y = ct[np.argmin(((Z[:, None] - mu[None]) ** 2).sum(-1), axis=1)]
    cs = bounds.cluster_stats(Z, y, mu, ct)
    live = np.flatnonzero(cs.count > 0)
    got = _competitors(cs, cs.centroid + cs.offset, live, 5)
    for j, c in enumerate(live):
        np.testing.assert_array_equal(got[j], _select_reference(cs, c, 5))


# ------------------------------------------------------------------ --jobs
def test_jobs_output_identical(tmp_path, capsys) -> None:
    root = write_run_dir(tmp_path / "run", m=4, K=3, d=6, sep=0.7, seed=4, steps="all",
                         sketch_rank=3)
    out = {}
    for j in (1, 2):
        js = tmp_path / f"j{j}.json"
        assert main([str(root), "--json", str(js), "--per-task", "--jobs", str(j)]) == 0
        out[j] = (capsys.readouterr().out, js.read_text())
    assert out[1] == out[2]
    data = load_run(root)
    assert over_steps(data, jobs=1) == over_steps(data, jobs=2)
    with pytest.raises(SystemExit) as exc:  # refused: one line, exit 2
        main([str(root), "--jobs", "0"])
    assert exc.value.code == 2 and "--jobs" in capsys.readouterr().err


def test_skip_reasons_are_printed(tmp_path) -> None:
    """Never a silent 1.0: a cluster bound that reads 1 on a task, or that took bound D's
    value instead of an SDP's, says so in its note (JSON)."""
    root = write_run_dir(tmp_path / "run", m=6, K=3, d=12, sep=2.0, seed=1, sketch_rank=2,
                         n_train=300)
    js = tmp_path / "r.json"
    assert main([str(root), "--json", str(js), "--jobs", "1"]) == 0
    rows = [r for t in json.loads(js.read_text())["tables"] for r in t["bounds"]]
    ones = [r for r in rows if r["name"] in ("A", "Bprime", "B", "C", "D", "moment-opt",
                                             "corollary", "G-cantelli", "G-emp")
            and max(r["per_task"]) >= 1.0]
    assert ones and all("1 on " in r["note"] for r in ones)
    assert any("bound D's value" in r["note"] for r in rows if r["name"] == "moment-opt")
    cs = _clusters(0)  # every kind of skip, in the details and the note
    from bounds.check.rows import skip_note

    r = bounds.evaluate(bounds.BoundInputs(clusters=cs), names=["moment-opt"])["moment-opt"]
    note = skip_note("moment-opt", r)
    assert "a Cantelli term is 1" in note and "union cap" in note and "lower bound" in note
