"""Scale invariance of every bound in ``bounds.REGISTRY`` (issue #11, docs/theory.md §2.4).

Every bound is scale-invariant on paper: multiplying the representations (hence the
centroid scores, the cluster statistics and the Gaussian mixtures) by s > 0 changes no
bound. The code divides its inputs by a power of two before squaring anything, so

* for s = 2**k the bounds agree with the unscaled ones (up to subnormal rounding of
  negligible second moments), for every k with 2**k in [1e-150, 1e150];
* for s = 10**k (rounded data) the guaranteed bounds still dominate the empirical error,
  every value is finite and in [0, 1], and the bounds that are continuous in the data
  agree with the unscaled ones to 1e-6.

The bound set is read from the registry, so a new bound is covered as soon as it is
registered; a bound reading an input this strategy cannot produce is skipped with a reason
(``test_strategy_produces_what_every_bound_reads``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bounds

TOL = 1e-9
#: BoundInputs fields the strategy below fills in
PRODUCED = {"scores", "task", "clusters", "mixtures", "cal_scores", "cal_task"}
coord = st.one_of(st.just(0.0), st.floats(1e-3, 4.0), st.floats(-4.0, -1e-3))
generic = st.one_of(st.floats(1e-2, 4.0), st.floats(-4.0, -1e-2))


@st.composite
def problems(draw: st.DrawFn, tied: bool = True) -> dict:
    """Tasks of K centroids (not cluster means) in d dimensions, points around them.

    ``tied``: arrays mostly of one value (hypothesis' default fill): exact ties, where the
    bounds that count or assign are discontinuous; otherwise every entry is drawn on its
    own (generic data, as for a comparison of rounded data with a tolerance)."""
    fill = {} if tied else {"fill": st.nothing()}
    el = coord if tied else generic
    d = draw(st.integers(1, 4))
    m = draw(st.integers(2, 3))
    K = draw(st.integers(1, 2))
    n_t = draw(st.lists(st.integers(1, 6), min_size=m, max_size=m))
    task = np.repeat(np.arange(m), n_t)
    n = task.size
    centres = draw(hnp.arrays(np.float64, (m, 1, d), elements=el, **fill)) * 2.0
    offsets = draw(hnp.arrays(np.float64, (m, K, d), elements=el, **fill)) * 0.5
    mu = (centres + offsets).reshape(m * K, d)
    ctask = np.repeat(np.arange(m), K)
    comp = draw(hnp.arrays(np.int64, n, elements=st.integers(0, K - 1)))
    noise = draw(hnp.arrays(np.float64, (n, d), elements=el, **fill))
    Z = mu[task * K + comp] + noise * draw(st.sampled_from([0.3, 1.0] if not tied else
                                                           [0.0, 0.3, 1.0]))
    var = draw(hnp.arrays(np.float64, (m, K, d), elements=st.floats(0.2, 2.0)))
    return {"Z": Z, "task": task, "mu": mu, "ctask": ctask, "m": m, "K": K, "var": var}


def inputs_at(p: dict, s: float) -> tuple[bounds.BoundInputs, np.ndarray]:
    """Every input the registry reads, from the data multiplied by ``s``."""
    Z, mu = p["Z"] * s, p["mu"] * s
    S = bounds.nearest_centroid_scores(Z, mu, p["ctask"], m=p["m"])
    cs = bounds.cluster_stats(Z, p["task"], mu, p["ctask"])
    mix = bounds.GaussianMixtures(np.full((p["m"], p["K"]), 1.0 / p["K"]),
                                  mu.reshape(p["m"], p["K"], -1), p["var"] * (s * s))
    inp = bounds.BoundInputs(scores=S, task=p["task"], clusters=cs, mixtures=mix,
                             cal_scores=S, cal_task=p["task"])
    return inp, bounds.empirical_error(S, p["task"])[0]


def evaluate_all(inp: bounds.BoundInputs) -> dict[str, bounds.BoundResult]:
    names = [n for n, b in bounds.REGISTRY.items() if set(b.reads) <= PRODUCED]
    return bounds.evaluate(inp, names=names)


@pytest.mark.parametrize("name", list(bounds.REGISTRY))
def test_strategy_produces_what_every_bound_reads(name: str) -> None:
    missing = set(bounds.REGISTRY[name].reads) - PRODUCED
    if missing:
        pytest.skip(f"{name} reads {sorted(missing)}, which the scale strategy cannot produce")


@given(problems(), st.integers(-498, 498))
def test_power_of_two_scales(p: dict, k: int) -> None:
    """s = 2**k with s in [1e-150, 1e150]: every bound as at s = 1."""
    base = evaluate_all(inputs_at(p, 1.0)[0])
    inp, emp = inputs_at(p, math.ldexp(1.0, k))
    res = evaluate_all(inp)
    assert set(res) == set(base)
    for name, r in res.items():
        np.testing.assert_allclose(r.per_task, base[name].per_task, rtol=1e-12, atol=1e-12,
                                   err_msg=f"{name} at 2**{k}")
        assert r.overall == pytest.approx(base[name].overall, rel=1e-12, abs=1e-12), name
        if bounds.REGISTRY[name].guaranteed:
            assert np.all(r.per_task >= emp - TOL), (name, k, r.per_task, emp)


@given(problems(tied=False), st.integers(-150, 150))
def test_decimal_scales(p: dict, k: int) -> None:
    """s = 10**k (rounded data): valid, finite, in [0, 1]; on generic data (no exact
    ties, whose rounding could flip) the continuous bounds are unchanged to 1e-6."""
    base = evaluate_all(inputs_at(p, 1.0)[0])
    inp, emp = inputs_at(p, 10.0**k)
    res = evaluate_all(inp)
    for name, r in res.items():
        assert np.all(np.isfinite(r.per_task)), (name, k, r.per_task)
        assert np.all((r.per_task >= 0) & (r.per_task <= 1)), (name, k, r.per_task)
        if bounds.REGISTRY[name].guaranteed:
            assert np.all(r.per_task >= emp - TOL), (name, k, r.per_task, emp)
        acc = bounds.REGISTRY[name].continuous  # declared by the bound (Bound.continuous)
        if acc is not None:
            np.testing.assert_allclose(r.per_task, base[name].per_task, rtol=acc,
                                       atol=acc / 10, err_msg=f"{name} at 1e{k}")


def _issue_case() -> dict:
    """The audit's kind of input: 3 tasks, 2 centroids each, some misretrieved points."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(6, 4)) * 3
    ct = np.repeat(np.arange(3), 2)
    Z = mu[rng.integers(0, 6, 60)] + rng.normal(size=(60, 4))
    y = ct[np.argmin(bounds.sqdist(Z, mu), axis=1)]
    y[:5] = (y[:5] + 1) % 3
    return {"Z": Z, "y": y, "mu": mu, "ct": ct}


@pytest.mark.parametrize("s", [1e154, 1e-165])
def test_issue_scores_scaled(s: float) -> None:
    """Scores x 1e154 gave NaN, x 1e-165 gave 0 for G-cantelli and the corollary."""
    c = _issue_case()
    S = bounds.nearest_centroid_scores(c["Z"], c["mu"], c["ct"])
    base = bounds.evaluate(bounds.BoundInputs(scores=S, task=c["y"]))
    res = bounds.evaluate(bounds.BoundInputs(scores=S * s, task=c["y"]))
    for name in ("G-emp", "G-cantelli", "corollary"):
        np.testing.assert_allclose(res[name].per_task, base[name].per_task, rtol=1e-9,
                                   err_msg=name)
    st_ = bounds.score_stats(S * s, c["y"])
    np.testing.assert_allclose(st_.delta_t, bounds.score_stats(S, c["y"]).delta_t,
                               rtol=1e-9)
    r = res["G-cantelli"].details["r"]  # thresholds in the units of the scores
    np.testing.assert_allclose(r[np.isfinite(r)] / s,
                               base["G-cantelli"].details["r"][np.isfinite(r)], rtol=1e-9)


@pytest.mark.parametrize("s", [1e77, 1e-82])
def test_issue_representations_scaled(s: float) -> None:
    """Representations x 1e77 gave NaN, x 1e-82 gave 0 for C and D."""
    c = _issue_case()
    base = bounds.evaluate(bounds.BoundInputs(
        clusters=bounds.cluster_stats(c["Z"], c["y"], c["mu"], c["ct"])))
    res = bounds.evaluate(bounds.BoundInputs(
        clusters=bounds.cluster_stats(c["Z"] * s, c["y"], c["mu"] * s, c["ct"])))
    for name in ("A", "Bprime", "B", "C", "D"):
        np.testing.assert_allclose(res[name].per_task, base[name].per_task, rtol=1e-9,
                                   err_msg=name)
    assert np.all(base["C"].per_task > 0.4)  # not a vacuous 0 = 0 comparison
    np.testing.assert_allclose(res["D"].details["r"] / s, base["D"].details["r"], rtol=1e-9)
