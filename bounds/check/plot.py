"""PNG summary of a check: the ladder, and predicted against realised error over steps.

Left, one panel per split: for each rule (one row), the empirical error (black bar) and
the tightest bound of each tier (markers: tier 1 sample-exact, tier 2 PAC, tier 3
training-time) with the training-time prediction (red cross), on a linear axis from 0 to
1: the same numbers as the checker's ladder (docs/theory.md §11). Right: the realised
overall error of the shared rules after each evaluated step (solid) against the
training-time prediction made for that step (dashed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core import Report
from .ladder import TIER_NAMES, ladder, over_steps

__all__ = ["write_plot"]

_TIER_STYLE = {1: ("o", "tab:blue"), 2: ("s", "tab:green"), 3: ("D", "tab:orange")}


def write_plot(report: Report, path: str | Path) -> None:
    """Write the PNG summary of ``report`` to ``path`` (matplotlib, Agg backend)."""
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
        for k, (mk, col) in _TIER_STYLE.items():
            pts = [(j, r.best[k]) for j, r in enumerate(rs) if r.best.get(k)]
            if pts:
                ax.plot([b[1] for _, b in pts], [j for j, _ in pts], mk, color=col, ms=7,
                        label=f"tier {k} {TIER_NAMES[k]}")
                for j, b in pts:
                    ax.annotate(b[0].removeprefix("pac-"), (b[1], j),
                                xytext=(3, {1: 5, 2: -10, 3: 5}[k]),
                                textcoords="offset points", fontsize=6, color=col)
        pred = [(j, r.pred) for j, r in enumerate(rs) if r.pred is not None]
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
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
