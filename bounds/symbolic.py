"""Sympy single source of truth for every closed form (docs/theory.md §8).

Each closed-form ingredient of a bound is written once here as a sympy expression.
The numeric code calls their ``lambdify``'d numpy versions ``FUNCS`` (vectorised over
tasks / clusters / pairs; kept as generated source in ``bounds/forms_generated.py``, written
by ``python -m bounds.symbolic``, so that neither ``import bounds`` nor a checker run
imports sympy), and :func:`latex` renders each bound from the same expressions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

__all__ = [
    "EXPR",
    "latex",
    "verify_lemma_identity",
    "verify_corollary_algebra",
    "GUARD",
    "TAIL_GUARD",
]

from .guards import GUARD, NAMES, TAIL_GUARD  # the guards: see bounds.guards

# ---------------------------------------------------------------- symbols
V, a = sp.symbols("V a", real=True)  # variance, gap above the mean
r2, D2, s2 = sp.symbols("r2 D2 s2", nonnegative=True)  # squared radius / separation
g = sp.Symbol("g", nonnegative=True)  # rounding guard
M_t, M_ts = sp.symbols("M_t M_ts", real=True)
V_t, V_ts = sp.symbols("V_t V_ts", nonnegative=True)
delta = sp.Symbol("delta", real=True)
m = sp.Symbol("m", positive=True)  # number of tasks
lam = sp.Symbol("lambda", real=True)
quad, ld_mix, ld_1, ld_2 = sp.symbols("q L_lambda L_1 L_2", real=True)
w_1, w_2 = sp.symbols("w_1 w_2", nonnegative=True)
kexp = sp.Symbol("k", real=True)
dd, smax = sp.symbols("Delta2 sigma2_max", nonnegative=True)
n = sp.Symbol("n", positive=True)
conf = sp.Symbol("delta_conf", positive=True)  # PAC confidence parameter

# ---------------------------------------------------------------- expressions
EXPR: dict[str, sp.Expr] = {}

#: Cantelli upper tail P(X - EX >= a) <= V / (V + a^2) for a > 0, else the trivial 1 (§2.2).
EXPR["cantelli"] = sp.Piecewise((V / (V + a**2), a > 0), (1, True))

#: Clipped Markov term min(1, 4 r^2 / D^2) on the squared radius (§3.3, §3.4); the first
#: branch also covers D = 0. With g = 0 this is exactly min(1, 4 r2 / D2).
EXPR["markov"] = sp.Piecewise((1, 4 * r2 >= (1 - g) * D2), (4 * r2 / D2, True))

#: Margin indicator of bound A: 1[ ||z - mu_c|| >= D_c / 2 ] written on squares (§3.2).
EXPR["margin_indicator"] = sp.Piecewise((1, 4 * r2 >= (1 - g) * D2), (0, True))

#: Separation factor delta_ts = (M_ts - M_t) / (sqrt V_t + sqrt V_ts) (§2.3).
EXPR["separation"] = (M_ts - M_t) / (sp.sqrt(V_t) + sp.sqrt(V_ts))

#: The corollary's threshold r* = M_t + delta sqrt(V_t) (§2.3).
EXPR["corollary_r"] = M_t + delta * sp.sqrt(V_t)

#: Separation-factor corollary: m / (1 + delta^2) if delta > 0, else 1 (§2.3).
EXPR["corollary"] = sp.Piecewise((sp.Min(1, m / (1 + delta**2)), delta > 0), (1, True))

#: Gaussian Chernoff exponent k(lambda) = -log int N1^(1-l) N2^l from its sufficient scalars
#: (§4.3): q = dmu' [l S1 + (1-l) S2]^{-1} dmu, L_lambda = log det(l S1 + (1-l) S2),
#: L_i = log det S_i. NB the mixing weights are (l, 1-l), not (1-l, l) as written in the
#: design note; checked against quadrature in tests/test_bounds_gaussian_pac.py.
EXPR["chernoff_k"] = lam * (1 - lam) / 2 * quad + (ld_mix - lam * ld_1 - (1 - lam) * ld_2) / 2

#: Lower bound on k(lambda) used to prune negligible component pairs (§4.4):
#: the log-det part is >= 0 (concavity of log det) and the quadratic form is
#: >= ||dmu||^2 / sigma2_max.
EXPR["chernoff_k_lb"] = lam * (1 - lam) / 2 * dd / smax

#: One mixture-pair term w1^(1-l) w2^l exp(-k) (§4.2).
EXPR["chernoff_term"] = w_1 ** (1 - lam) * w_2**lam * sp.exp(-kexp)

#: Hoeffding slack with a union over m tasks: sqrt(ln(m / delta) / (2 n)) (§5.1).
EXPR["hoeffding"] = sp.sqrt(sp.log(m / conf) / (2 * n))

_ARGS: dict[str, tuple[sp.Symbol, ...]] = {
    "cantelli": (V, a),
    "markov": (r2, D2, g),
    "margin_indicator": (r2, D2, g),
    "separation": (M_t, M_ts, V_t, V_ts),
    "corollary_r": (M_t, V_t, delta),
    "corollary": (m, delta),
    "chernoff_k": (lam, quad, ld_mix, ld_1, ld_2),
    "chernoff_k_lb": (lam, dd, smax),
    "chernoff_term": (w_1, w_2, lam, kexp),
    "hoeffding": (m, conf, n),
}


def numeric_form(name: str) -> Callable[..., np.ndarray]:
    """A fresh ``lambdify`` of ``EXPR[name]`` in the calling convention of
    ``bounds.forms.FUNCS`` (which runs the same code from the generated module
    ``bounds/forms_generated.py``, without importing sympy; tests/test_bounds_api.py
    compares the two)."""
    from .forms import wrap_form

    raw = sp.lambdify(_ARGS[name], EXPR[name], modules="numpy")
    return wrap_form(name, raw, f"numpy form of EXPR[{name!r}] = {EXPR[name]} with args "
                                f"{_ARGS[name]}")


def generated_source() -> str:
    """The text of ``bounds/forms_generated.py``: every ``EXPR`` lambdified to numpy, as
    source (``python -m bounds.symbolic`` writes it)."""
    import ast
    import inspect
    import re

    defs, used = [], set()
    for name in EXPR:
        raw = sp.lambdify(_ARGS[name], EXPR[name], modules="numpy")
        src = inspect.getsource(raw).replace("_lambdifygenerated", f"_{name}", 1)
        # an argument that is a Python keyword (the symbol 'lambda') is printed as a Dummy:
        # each gets its own symbol's name plus '_'
        printed = [a.arg for a in ast.parse(src).body[0].args.args]
        for arg, sym in zip(printed, _ARGS[name]):
            if arg != str(sym):
                src = re.sub(rf"\b{re.escape(arg)}\b", f"{sym}_", src)
        tree = ast.parse(src)
        args = {a.arg for a in tree.body[0].args.args}
        used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - args
        defs.append(src.rstrip() + "\n")
    np_names = sorted(u for u in used if u not in ("reduce", "True", "False", "None"))
    missing = [u for u in np_names if not hasattr(np, u)]
    if missing:  # another sympy printed something else than numpy names
        raise RuntimeError(f"lambdify printed names that numpy lacks: {missing}")
    head = ['"""The closed forms of :mod:`bounds.symbolic` lambdified to numpy, as source.',
            "",
            "Generated by ``python -m bounds.symbolic``; do not edit. ``bounds.forms`` runs",
            "these without importing sympy; tests/test_bounds_api.py checks that they equal",
            'a fresh ``lambdify`` of every expression."""',
            f"# generated with sympy {sp.__version__}",
            "# ruff: noqa",
            *(["from functools import reduce"] if "reduce" in used else []),
            f"from numpy import {', '.join(np_names)}", ""]
    body = "\n\n".join(defs)
    table = "RAW = {\n" + "".join(f"    {n!r}: _{n},\n" for n in EXPR) + "}\n"
    text = "\n".join(head) + "\n" + body + "\n\n" + table
    exec(compile(text, "forms_generated.py", "exec"), {})  # it must at least import and run
    return text


ARGS = _ARGS
if tuple(EXPR) != NAMES:  # bounds.forms lists the names without importing sympy
    raise RuntimeError("bounds.forms.NAMES must list the keys of EXPR in order")


# ---------------------------------------------------------------- verifications
def verify_lemma_identity(dim: int = 3) -> bool:
    """Check ||z-nu||^2 = ||z-mu||^2 - 2<z-mu, nu-mu> + ||nu-mu||^2 symbolically (§3.1)."""
    z = sp.Matrix(sp.symbols(f"z0:{dim}", real=True))
    mu = sp.Matrix(sp.symbols(f"mu0:{dim}", real=True))
    nu = sp.Matrix(sp.symbols(f"nu0:{dim}", real=True))
    lhs = (z - nu).dot(z - nu)
    rhs = (z - mu).dot(z - mu) - 2 * (z - mu).dot(nu - mu) + (nu - mu).dot(nu - mu)
    return sp.expand(lhs - rhs) == 0


def verify_corollary_algebra() -> bool:
    """Check the algebra of the separation-factor corollary symbolically (§2.3).

    1. own tail at r* = M_t + d sqrt(V_t) equals 1 / (1 + d^2);
    2. a foreign tail at gap d sqrt(V_ts) equals 1 / (1 + d^2);
    3. the Cantelli tail is decreasing in the gap a > 0;
    4. d <= d_ts implies M_ts - r* >= d sqrt(V_ts): the difference factors as
       (d_ts - d)(sqrt V_t + sqrt V_ts);
    5. summing one own and m - 1 foreign terms gives m / (1 + d^2).
    """
    d = sp.Symbol("d", positive=True)
    d_ts = sp.Symbol("d_ts", positive=True)
    vt, vts, aa = sp.symbols("v_t v_ts aa", positive=True)
    tail = V / (V + a**2)
    own = tail.subs({V: vt, a: (EXPR["corollary_r"] - M_t).subs({V_t: vt, delta: d})})
    ok1 = sp.simplify(own - 1 / (1 + d**2)) == 0
    foreign = tail.subs({V: vts, a: d * sp.sqrt(vts)})
    ok2 = sp.simplify(foreign - 1 / (1 + d**2)) == 0
    deriv = sp.diff(tail.subs({V: vt, a: aa}), aa)
    ok3 = sp.simplify(deriv + 2 * aa * vt / (vt + aa**2) ** 2) == 0  # = -2 a V/(V+a^2)^2 < 0
    mts = M_t + d_ts * (sp.sqrt(vt) + sp.sqrt(vts))  # M_ts written through d_ts
    gap = mts - EXPR["corollary_r"].subs({V_t: vt, delta: d}) - d * sp.sqrt(vts)
    ok4 = sp.simplify(gap - (d_ts - d) * (sp.sqrt(vt) + sp.sqrt(vts))) == 0
    total = 1 / (1 + d**2) + (m - 1) / (1 + d**2)
    ok5 = sp.simplify(total - m / (1 + d**2)) == 0
    return bool(ok1 and ok2 and ok3 and ok4 and ok5)


# ---------------------------------------------------------------- LaTeX rendering
def _bound_relations() -> dict[str, sp.Basic]:
    eps = sp.Symbol(r"\varepsilon_t")
    c, nu, s, i, j = sp.symbols("c nu s i j", integer=True)
    wc = sp.Symbol("w_c")
    Kt = sp.Symbol("K_t")
    Pc = sp.Function(r"\Pr_c")
    rad = sp.Symbol(r"\left\Vert z-\mu_{c}\right\Vert")
    Dc = sp.Symbol("D_c")
    msr = sp.Symbol("s_c^2")
    Fc = sp.Symbol(r"N_{c}")  # number of foreign centroids
    v_nu, D_nu, m_nu = sp.symbols(r"v_\nu D_\nu m_\nu")
    cant_nu = EXPR["cantelli"].subs({V: v_nu, a: D_nu / 2 - m_nu})
    markov = EXPR["markov"].subs({g: 0, r2: rad**2, D2: Dc**2})
    rr = sp.Symbol("r")
    out: dict[str, sp.Basic] = {}
    out["A"] = sp.Le(eps, sp.Sum(wc * Pc(sp.Ge(rad, Dc / 2)), (c, 1, Kt)))
    out["Bprime"] = sp.Le(
        eps, sp.Sum(wc * sp.Function(r"\mathbb{E}_c")(markov), (c, 1, Kt))
    )
    out["B"] = sp.Le(eps, sp.Sum(wc * EXPR["markov"].subs({g: 0, r2: msr, D2: Dc**2}),
                                 (c, 1, Kt)))
    out["C"] = sp.Le(eps, sp.Sum(wc * sp.Min(1, sp.Sum(cant_nu, (nu, 1, Fc))), (c, 1, Kt)))
    out["D"] = sp.Le(
        eps,
        sp.Sum(
            wc * sp.Min(1, sp.Min(1, msr / rr**2)
                        + sp.Sum(sp.Piecewise((cant_nu, D_nu < 2 * rr), (0, True)),
                                 (nu, 1, Fc))),
            (c, 1, Kt),
        ),
    )
    # moment-opt (§3.7): nu sorted by decreasing Cantelli term, exact SDP over the first r_max
    rmax = sp.Symbol(r"r_{\max}")
    sdp_c = sp.Function(r"\mathrm{SDP}_c")(rmax)
    out["moment-opt"] = sp.Le(eps, sp.Sum(wc * sp.Min(
        1, sdp_c + sp.Sum(cant_nu, (nu, rmax + 1, Fc)), sp.Sum(cant_nu, (nu, 1, Fc))),
        (c, 1, Kt)))
    Pt = sp.Function(r"\Pr_t")
    St, Ss = sp.symbols("S_t S_s")
    out["G-emp"] = sp.Le(eps, Pt(sp.Ge(St, rr)) + sp.Sum(Pt(sp.Lt(Ss, rr)), (s, 1, m - 1)))
    own = EXPR["cantelli"].subs({V: V_t, a: rr - M_t})
    foreign = EXPR["cantelli"].subs({V: V_ts, a: M_ts - rr})
    out["G-cantelli"] = sp.Le(eps, own + sp.Sum(foreign, (s, 1, m - 1)))
    out["corollary"] = sp.Le(eps, EXPR["corollary"])
    wti, wsj = sp.symbols("w_{ti} w_{sj}")
    kij = sp.Function("k_{ti,sj}")(lam)
    out["gaussian-chernoff"] = sp.Le(
        eps,
        sp.Sum(sp.Sum(EXPR["chernoff_term"].subs({w_1: wti, w_2: wsj, kexp: kij}),
                      (i, 1, sp.Symbol("K_t")), (j, 1, sp.Symbol("K_s"))), (s, 1, m - 1)),
    )
    out["chernoff-exponent"] = sp.Eq(kij, EXPR["chernoff_k"])
    gbar = sp.Symbol(r"\bar{g}_t")
    out["pac-hoeffding"] = sp.Le(eps, gbar + EXPR["hoeffding"])
    kk = sp.Symbol("k_t")
    out["pac-clopper-pearson"] = sp.Le(
        eps, sp.Function(r"\mathrm{BetaInv}")(1 - conf / m, kk + 1, n - kk)
    )
    return out


_RELATIONS: dict[str, sp.Basic] | None = None


def latex(name: str) -> str:
    """LaTeX of bound ``name`` rendered from its sympy expression (docs/theory.md §8)."""
    global _RELATIONS
    if _RELATIONS is None:
        _RELATIONS = _bound_relations()
    if name not in _RELATIONS:
        raise ValueError(f"name: unknown bound {name!r}; known: {sorted(_RELATIONS)}")
    return sp.latex(_RELATIONS[name])


if __name__ == "__main__":  # python -m bounds.symbolic: regenerate bounds/forms_generated.py
    from pathlib import Path

    target = Path(__file__).with_name("forms_generated.py")
    target.write_text(generated_source(), encoding="utf-8")
    print(target)
