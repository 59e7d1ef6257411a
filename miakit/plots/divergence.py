"""Prediction-divergence figures (PAPER.md, "Prediction divergence (the analysis)").

* :func:`divergence_histograms`: member vs non-member histograms of the
  ground-truth-class confidence (or sensitivity), original vs pruned model.
* :func:`class_gap_bars`: per-class member - non-member mean gaps, original vs pruned.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit._util import check_membership
from miakit.plots._axes import category_ticks, legend_above, new_axes, sized
from miakit.plots._frame import numeric, require_columns
from miakit.plots.names import readable
from miakit.plots.style import (
    COLUMN_WIDTH,
    MEMBER_STYLE,
    NONMEMBER_STYLE,
    ORIGINAL_STYLE,
    PRUNED_STYLE,
    style_context,
)

__all__ = ["class_gap_bars", "divergence_histograms"]


def _membership(values: Any, membership: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite 1-D values and a 0/1 membership of equal length with both groups present."""
    v = np.asarray(values, dtype=float)
    m = np.asarray(membership)
    if v.ndim != 1 or m.ndim != 1 or v.shape != m.shape:
        raise ValueError(
            f"values_{what} and membership_{what} must be 1-D arrays of the same length, got "
            f"shapes {v.shape} and {m.shape}"
        )
    m = check_membership(m, both=True, name=f"membership_{what}").astype(bool)
    if not np.isfinite(v).all():
        raise ValueError(f"values_{what} must be finite; clip or drop NaN/inf first")
    return v, m


def divergence_histograms(
    values_original: Any,
    values_pruned: Any,
    membership_original: Any,
    membership_pruned: Any,
    *,
    xlabel: str = "ground-truth-class confidence",
    log: bool = False,
    bins: int = 30,
    titles: tuple[str, str] = ("original", "pruned"),
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Member vs non-member histograms of a signal, original model | pruned model.

    The paper's "prediction divergence" (PAPER.md, "Prediction divergence (the
    analysis)"): pruning pushes members' ground-truth-class confidence up more than
    non-members' (CIFAR-10 DenseNet121, L1 unstructured at 0.7: means about 0.81 vs
    0.67 before pruning and 0.96 vs 0.73 after). Members are a hatched filled
    histogram, non-members an unfilled dashed outline; solid/dashed vertical lines
    mark each group's mean, also written in each panel. Both panels share bins and
    axes, and show densities so that groups of different sizes compare.

    Args:
        values_original: ``(n,)`` the signal on the original model, e.g.
            ``posteriors[np.arange(n), labels]`` (confidence) or the sensitivity ``s_y``.
        values_pruned: ``(n',)`` the same signal on the pruned model.
        membership_original: ``(n,)`` 0/1, 1 = member.
        membership_pruned: ``(n',)`` 0/1, 1 = member.
        xlabel: the signal's name.
        log: logarithmic density axis (confidences pile up near 1).
        bins: number of shared bins.
        titles: panel titles.
        figsize: ``(width, height)`` in inches; default column width.

    Returns:
        The figure (two axes).

    Raises:
        ValueError: on mismatched shapes, non-0/1 membership, a missing group or
            non-finite values.
    """
    v0, m0 = _membership(values_original, membership_original, "original")
    v1, m1 = _membership(values_pruned, membership_pruned, "pruned")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.histogram_bin_edges(np.concatenate([v0, v1]), bins=bins)
    with style_context():
        fig, axes = plt.subplots(
            1,
            2,
            figsize=sized(figsize, (COLUMN_WIDTH, 2.1)),
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for ax, v, m, title in zip(axes, (v0, v1), (m0, m1), titles, strict=True):
            means = []
            for style, group in ((MEMBER_STYLE, v[m]), (NONMEMBER_STYLE, v[~m])):
                mean = float(group.mean())
                means.append(f"{style.label} {mean:.2f}")
                ax.hist(
                    group,
                    bins=edges,
                    density=True,
                    histtype="stepfilled" if style.filled else "step",
                    log=log,
                    label=style.label,
                    **{
                        **style.bar_kwargs(),
                        "linestyle": style.linestyle,
                        "linewidth": 0.8 if style.filled else 1.2,
                    },
                )
                ax.axvline(
                    mean,
                    color=style.color,
                    linestyle=style.linestyle,
                    linewidth=0.9,
                    zorder=3,
                    gid=f"mean {style.label}",
                )
            # The means go in the upper corner away from most of the data.
            right_heavy = np.mean(v > (edges[0] + edges[-1]) / 2) > 0.5
            ax.text(
                0.03 if right_heavy else 0.97,
                0.97,
                "mean\n" + "\n".join(means),
                transform=ax.transAxes,
                ha="left" if right_heavy else "right",
                va="top",
                fontsize=6.5,
                linespacing=1.15,
                bbox={"boxstyle": "square,pad=0.25", "fc": "white", "ec": "0.85", "lw": 0.4},
                zorder=5,
            )
            ax.set_title(title)
        axes[0].set_ylabel("density (log)" if log else "density")
        fig.supxlabel(xlabel, fontsize=mpl.rcParams["axes.labelsize"])
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, handlelength=2.0)
    return fig


def class_gap_bars(
    gaps: pd.DataFrame,
    *,
    ylabel: str = "member - non-member mean",
    xlabel: str = "class",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Per-class member - non-member mean gaps as grouped bars, original vs pruned.

    The paper's per-class bar charts (PAPER.md, "Prediction divergence (the
    analysis)"): the gap differs from class to class and pruning widens it (CIFAR-10:
    confidence gaps about 0.08-0.18 before pruning, 0.09-0.37 after). Original bars are
    solid, pruned bars hatched.

    Args:
        gaps: columns ``class``, ``original``, ``pruned`` (e.g. from :func:`class_gaps`).
        ylabel: what the gap is of.
        xlabel: the x-axis label.
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
    """
    require_columns(gaps, ["class", "original", "pruned"], "class_gap_bars")
    classes = list(gaps["class"])
    x = np.arange(len(classes), dtype=float)
    width = 0.4
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for k, style in enumerate((ORIGINAL_STYLE, PRUNED_STYLE)):
            ax.bar(
                x + (k - 0.5) * width,
                numeric(gaps, style.label, "class_gap_bars").to_numpy(dtype=float),
                width=width,
                label=style.label,
                **style.bar_kwargs(),
            )
        ax.axhline(0.0, color="0.15", linewidth=0.6, zorder=1)
        category_ticks(ax, [readable(c) for c in classes])
        ax.set_xlim(-0.6, len(classes) - 0.4)
        ax.grid(False, axis="x")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        legend_above(ax)
    return fig
