"""Figure summary of a check (PNG, PDF or SVG, from the file's extension): the ladder,
and predicted against realised error over steps.

Left, one panel per split: for each rule (one row), the empirical error (black bar) and
the tightest bound of each tier (markers: tier 1 sample-exact, tier 2 PAC, tier 3
training-time) with the training-time prediction (red cross), on a linear axis from 0 to
1: the same numbers as the checker's ladder (docs/theory.md §11). A bound or prediction
of the *earlier-claimed* part of a rule's error (docs/theory.md §10) sits on its own,
lighter bar just below the rule's (that part's rate on the split), not on the full error.
Right: the realised overall error of the shared rules after each evaluated step (solid)
against the training-time prediction made for that step (dashed). The separation factors
delta_t are in the JSON, not in the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core import Report
from .files import PLOT_FORMATS, RunDirError
from .ladder import TIER_NAMES, ladder, over_steps

__all__ = ["write_plot"]

_TIER_STYLE = {1: ("o", "tab:blue"), 2: ("s", "tab:green"), 3: ("D", "tab:orange")}


_E = 0.32  # the earlier-claimed part's bar: this far below the rule's


def write_plot(report: Report, path: str | Path) -> None:
    """Write the figure of ``report`` to ``path`` (matplotlib, Agg backend); the format
    is the extension's (``.png``, ``.pdf``, ``.svg``; another one is refused)."""
    fmt = PLOT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise RunDirError(f"--plot {path}: unknown format {Path(path).suffix!r}; use one of "
                          f"{', '.join(PLOT_FORMATS)}")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rungs = ladder(report)
    pred_cache: dict = {}  # predictions per step are the same for every split
    splits = list(dict.fromkeys(r.split for r in rungs))
    fig, axes = plt.subplots(len(splits), 2, figsize=(13, 0.5 + 2.4 * len(splits)),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    for i, split in enumerate(splits):
        ax = axes[i, 0]
        rs = [r for r in rungs if r.split == split]
        y = np.arange(len(rs))
        ax.barh(y, [r.error for r in rs], color="0.25", height=0.35, label="error")
        refs = [r.earlier_rate() for r in rs]
        early = [(j, ref) for j, ref in enumerate(refs) if ref is not None and (
            rs[j].is_earlier(3)
            or (rs[j].pred is not None and rs[j].pred.target != "error"))]
        if early:
            ax.barh([j + _E for j, _ in early], [ref for _, ref in early], color="0.65",
                    height=0.2, label="earlier-claimed part")

        def row_of(j: int, key: str) -> float:
            return j + _E if key.endswith("(earlier)") else j

        for k, (mk, col) in _TIER_STYLE.items():
            pts = [(row_of(j, r.best[k][0]), r.best[k]) for j, r in enumerate(rs)
                   if r.best.get(k)]
            if pts:
                ax.plot([b[1] for _, b in pts], [j for j, _ in pts], mk, color=col, ms=7,
                        label=f"tier {k} {TIER_NAMES[k]}")
                for j, b in pts:
                    ax.annotate(b[0].removeprefix("pac-"), (b[1], j),
                                xytext=(3, {1: 5, 2: -10, 3: 5}[k]),
                                textcoords="offset points", fontsize=6, color=col)
        pred = [(j + (_E if r.pred.target != "error" else 0.0), r.pred)
                for j, r in enumerate(rs) if r.pred is not None]
        if pred:
            ax.plot([p.overall for _, p in pred], [j for j, _ in pred], "x", color="tab:red",
                    ms=8, mew=2, label="prediction")
        ax.set_yticks(y, [r.rule for r in rs], fontsize=8)
        ax.set_xlim(0.0, 1.05)
        ax.invert_yaxis()
        ax.set_xlabel("retrieval error / bound")
        ax.set_title(f"{split} split, step {report.data.step}: error and the tightest bound "
                     "of each tier", fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=5,
                  frameon=False)
        axs = axes[i, 1]
        hist = over_steps(report.data, split=split, seed=0, cache=pred_cache)
        for rule, col in (("shared-centroid", "tab:purple"), ("shared-nll", "tab:brown")):
            if rule in hist["realised"]:
                ks, v = zip(*hist["realised"][rule])
                axs.plot(ks, v, "-o", color=col, ms=3, label=f"{rule} realised")
                ks, v = zip(*hist["predicted"][rule])
                axs.plot(ks, v, "--x", color=col, ms=4, label=f"{rule} predicted")
        axs.set_xlabel("step (tasks seen - 1)")
        axs.set_ylabel("overall error")
        axs.set_ylim(0.0, None)
        axs.xaxis.get_major_locator().set_params(integer=True)
        axs.set_title("training-time prediction vs realised error over steps", fontsize=9)
        if hist["realised"]:
            axs.legend(fontsize=6)
        else:
            axs.text(0.5, 0.5, "no training-time statistics", ha="center",
                     transform=axs.transAxes)
    fig.tight_layout()
    fig.savefig(path, format=fmt, dpi=90)
    plt.close(fig)
