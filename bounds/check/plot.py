"""PNG summary of a check: bounds vs. empirical error per task, and delta_t per task.

One figure row per (split, mode, kind) table. Left: every bound per task (solid =
guaranteed, dashed = PAC / assumption-dependent) and the empirical error (black dots) on a
symmetric-log axis (linear below 1e-4, so errors of exactly 0 stay visible). Right: the
separation factor delta_t per task (docs/theory.md §2.3); infinite values are drawn at the
top of the axis with a triangle marker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core import Report

__all__ = ["write_plot"]


def write_plot(report: Report, path: str | Path) -> None:
    """Write the PNG summary of ``report`` to ``path`` (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

    tabs = report.tables
    fig, axes = plt.subplots(len(tabs), 2, figsize=(13, 3.2 * len(tabs)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    for i, tab in enumerate(tabs):
        ax, axd = axes[i]
        x = np.arange(tab.n_t.shape[0])
        for row in tab.rows:
            style = "-" if row.category == "guaranteed" else "--"
            ax.plot(x, row.per_task, style, marker=".", ms=3, lw=1, label=row.key)
        ax.plot(x, tab.err_t, "ko", ms=4, label="empirical error", zorder=5)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_ylim(0.0, 1.5)
        ax.yaxis.set_major_locator(FixedLocator([0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
        ax.set_xlabel("task")
        ax.set_ylabel("retrieval error")
        ax.set_title(f"{tab.title}: bounds vs. empirical error", fontsize=9)
        ax.legend(fontsize=6, ncol=4, loc="lower right")
        dt = np.asarray(tab.delta_t, dtype=np.float64)
        fin = np.isfinite(dt)
        top = float(np.max(np.abs(dt[fin]))) * 1.2 if fin.any() else 1.0
        top = top if top > 0 else 1.0
        axd.bar(x[fin], dt[fin], color="tab:blue")
        if (~fin).any():
            axd.plot(x[~fin], np.where(dt[~fin] > 0, top, -top), "^", color="tab:red",
                     label="inf")
            axd.legend(fontsize=6)
        axd.axhline(0.0, color="k", lw=0.5)
        axd.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        axd.set_xlabel("task")
        axd.set_ylabel("delta_t")
        axd.set_title("separation factor delta_t", fontsize=9)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.6 / fig.get_figheight(),
                        top=1 - 0.4 / fig.get_figheight(), hspace=0.55, wspace=0.18)
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
