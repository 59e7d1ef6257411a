"""Attack-result figures: low-FPR ROC curves, metric bars and knowledge heat maps.

* :func:`roc_loglog`: log-log ROC curves for the low-FPR regime (PAPER.md, "Reporting").
* :func:`attack_bars`: attack AUC (or accuracy, TPR at low FPR) per attack and victim.
* :func:`heatmap`: e.g. attack AUC for victim pruner x shadow pruner (adversary knowledge).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit.plots._axes import (
    CHANCE,
    axes_width_pt,
    category_ticks,
    chance_line,
    legend_above,
    new_axes,
)
from miakit.plots._frame import (
    aggregate,
    error_bars,
    levels,
    numeric,
    panel_levels,
    require_columns,
)
from miakit.plots.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    display_name,
    level_style,
    style_context,
)

__all__ = ["attack_bars", "heatmap", "roc_loglog"]


def roc_loglog(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    aucs: Mapping[str, float] | None = None,
    title: str | None = None,
    floor: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """ROC curves on log-log axes, for the low-FPR regime (PAPER.md, "Reporting").

    Each curve gets its own colour, line style and marker (so they stay distinct in
    greyscale); the dotted diagonal (labelled "chance") is a guessing attack. The axes
    start at ``floor`` (default: the smallest positive FPR of the curves, about
    ``1 / n_nonmembers``, rounded down to a power of ten and at least ``1e-5``); points
    below it, including the ``(0, 0)`` start, are drawn on the axis edge.

    Args:
        curves: legend name -> ``(fpr, tpr)``, e.g. the first two arrays of
            :func:`miakit.metrics.roc_curve`.
        aucs: legend name -> AUC, shown in the legend when given.
        title: a short title.
        floor: the lower end of both axes.
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        ValueError: on no curves, arrays of different lengths, rates outside [0, 1], or
            a ``floor`` outside (0, 1).
    """
    if not curves:
        raise ValueError("roc_loglog needs at least one curve: {name: (fpr, tpr)}")
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, pair in curves.items():
        if len(pair) < 2:
            raise ValueError(f"curve {name!r} must be (fpr, tpr), got {len(pair)} item(s)")
        fpr, tpr = (np.asarray(a, dtype=float) for a in pair[:2])
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
            raise ValueError(
                f"curve {name!r}: fpr and tpr must be 1-D arrays of the same length, "
                f"got shapes {fpr.shape} and {tpr.shape}"
            )
        if not (np.all((fpr >= 0) & (fpr <= 1)) and np.all((tpr >= 0) & (tpr <= 1))):
            raise ValueError(f"curve {name!r}: rates must lie in [0, 1]")
        checked[str(name)] = (fpr, tpr)
    if floor is None:
        positive = [f[f > 0].min() for f, _ in checked.values() if (f > 0).any()]
        low = min(positive) if positive else 1e-4
        floor = max(1e-5, 10.0 ** math.floor(math.log10(low) + 1e-9))
    elif not 0 < floor < 1:
        raise ValueError(f"floor must lie in (0, 1), e.g. 1e-4, got {floor!r}")
    with style_context():
        many = len(checked) > 5 and ax is None  # then a figure legend goes below the axes
        height = COLUMN_WIDTH * 0.85 + (0.12 * math.ceil(len(checked) / 2) + 0.1 if many else 0)
        fig, ax = new_axes(ax, figsize or (COLUMN_WIDTH, height))
        ax.plot([floor, 1.0], [floor, 1.0], zorder=1, gid="chance", **CHANCE)
        # Label the diagonal just below it, where a better-than-chance curve never goes.
        at = floor ** (1 - 0.18)  # 18% of the way along the diagonal, in log space
        ax.annotate(
            "chance",
            (at, at),
            xytext=(2.0, -2.0),
            textcoords="offset points",
            rotation=45,
            rotation_mode="anchor",
            ha="left",
            va="top",
            fontsize=6.0,
            color=CHANCE["color"],
        )
        for i, (name, (fpr, tpr)) in enumerate(checked.items()):
            label = display_name(name)
            if aucs is not None and name in aucs:
                label = f"{label} (AUC {aucs[name]:.3f})"
            ax.plot(
                np.clip(fpr, floor, 1.0),
                np.clip(tpr, floor, 1.0),
                label=label,
                markevery=0.1,
                markersize=3.0,
                **level_style(i).line_kwargs(),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(floor, 1.0)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("false-positive rate (FPR)")
        ax.set_ylabel("true-positive rate (TPR)")
        if title:
            ax.set_title(title)
        if many:
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
        elif len(checked) <= 5 and axes_width_pt(ax) >= 150:
            ax.legend(loc="lower right")  # below the diagonal, where no useful curve goes
        else:
            # A narrow panel of a larger figure: the legend goes under the x-axis label.
            below = mpl.transforms.offset_copy(ax.transAxes, fig=fig, y=-0.36, units="inches")
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                bbox_transform=below,
                borderaxespad=0.0,
                frameon=False,
            )
    return fig


def attack_bars(
    frame: pd.DataFrame,
    *,
    metric: str = "auc",
    by: str = "attack",
    hue: str | None = "victim",
    ylabel: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Grouped bars of an attack metric, e.g. each attack's AUC against each victim.

    Takes a :func:`miakit.metrics.results_frame`-style table (``Experiment.attack_table``
    rows concatenated). Groups follow ``by`` and bars within a group follow ``hue``,
    in order of first appearance; each hue level has its own colour *and* hatch.
    Several rows for one bar (seeds) are averaged, with the 95% interval as error bar
    (:func:`miakit.metrics.intervals.seed_interval`, with the rows' bootstrap errors);
    a summarised table's ``<metric>_low`` / ``_high`` are drawn as they are. For AUC and
    balanced accuracy a dotted line marks chance (0.5).

    Args:
        frame: the results table.
        metric: the column plotted (``"auc"``, ``"balanced_accuracy"``,
            ``"tpr@0.1%fpr"``, ...).
        by: the column along the x axis.
        hue: the column telling bars in a group apart (``None``: one bar per group).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table or a non-numeric metric.
    """
    require_columns(frame, [metric, by, hue], "attack_bars")
    groups = levels(frame, by)
    hues = levels(frame, hue)
    keys = [by] if hue is None else [by, hue]
    stats, spread = aggregate(frame, keys, metric, "attack_bars")
    width = 0.8 / len(hues)
    x = np.arange(len(groups), dtype=float)
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for j, level in enumerate(hues):
            key = (lambda g: g) if hue is None else (lambda g, lv=level: (g, lv))
            mean = np.array([stats["mean"].get(key(g), np.nan) for g in groups], dtype=float)
            lows = [stats["low"].get(key(g), np.nan) for g in groups]
            highs = [stats["high"].get(key(g), np.nan) for g in groups]
            style = level_style(j)
            ax.bar(
                x + (j - (len(hues) - 1) / 2) * width,
                mean,
                width=width,
                yerr=error_bars(mean, lows, highs) if spread else None,
                error_kw={"elinewidth": 0.6, "ecolor": "0.2"},
                label=None if hue is None else display_name(level, hue),
                **style.bar_kwargs(),
            )
        chance_line(ax, metric, difference="baseline_attack" in frame)
        category_ticks(ax, [display_name(g, by) for g in groups])
        ax.set_xlim(-0.6, len(groups) - 0.4)
        if metric in ("auc", "balanced_accuracy") and "baseline_attack" not in frame:
            top = float(np.nanmax(np.fmax(stats["mean"], stats["high"])))
            ax.set_ylim(0.0, max(1.0, top))
        ax.grid(False, axis="x")
        ax.set_xlabel(display_name(by))
        ax.set_ylabel(ylabel or display_name(metric))
        legend_above(ax, title=None if hue is None else display_name(hue))
    return fig


def heatmap(
    frame: pd.DataFrame,
    *,
    index: str,
    columns: str,
    values: str,
    fmt: str = ".2f",
    cmap: str = "cividis",
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    facet: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """An annotated heat map, e.g. attack AUC for victim pruner x shadow pruner.

    PAPER.md claim 3 ("SAMIA": adversary knowledge): how the attack fares when the
    shadows are pruned with another method or sparsity than the victim. Rows and columns
    keep their order of first appearance; several rows for a cell are averaged. Every
    cell is annotated, and the default ``cividis`` map is colour-blind safe with
    monotone lightness, so it reads in greyscale.

    With ``facet`` (e.g. ``"attack"``), one panel per level of that column, side by side
    in order of first appearance, sharing the rows' axis and titled with the level's
    :func:`display_name`; the panels share one colour scale (``vmin`` and ``vmax``
    default to the whole table's extremes).

    Args:
        frame: a tidy table.
        index: the column along the rows (e.g. ``"victim_label"``).
        columns: the column along the columns (e.g. ``"shadow_label"``).
        values: the numeric column shown (e.g. ``"auc"``).
        fmt: the annotation format.
        cmap: the colour map.
        vmin: the lower end of the colour scale.
        vmax: the upper end of the colour scale.
        xlabel: the x-axis label (default from :data:`DISPLAY_NAMES`).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        facet: a column giving one panel per level (``None``: one heat map).
        ax: draw into these axes instead of a new figure (not with ``facet``).
        figsize: ``(width, height)`` of a new figure (with ``facet``: of the whole
            figure, default ``FULL_WIDTH`` wide).

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table, non-numeric values, or ``facet`` with ``ax``.
    """
    require_columns(frame, [index, columns, values, facet], "heatmap")
    if facet is not None:
        if ax is not None:
            raise ValueError("heatmap: facet draws its own panels; pass ax or facet, not both")
        shown = numeric(frame, values, "heatmap")
        panels = panel_levels(frame, facet)
        with style_context():
            fig, axes = plt.subplots(
                1,
                len(panels),
                figsize=figsize or (FULL_WIDTH, 2.9),
                squeeze=False,
                sharey=True,
            )
            for panel_ax, level in zip(axes[0], panels, strict=True):
                heatmap(
                    frame[frame[facet] == level],
                    index=index,
                    columns=columns,
                    values=values,
                    fmt=fmt,
                    cmap=cmap,
                    vmin=shown.min() if vmin is None else vmin,
                    vmax=shown.max() if vmax is None else vmax,
                    xlabel=xlabel,
                    ylabel=ylabel,
                    ax=panel_ax,
                )
                panel_ax.set_title(display_name(level, facet))
        return fig
    rows = levels(frame, index)
    cols = levels(frame, columns)
    data = frame.assign(_v=numeric(frame, values, "heatmap"))
    grid = data.pivot_table(index=index, columns=columns, values="_v", aggfunc="mean", sort=False)
    grid = grid.reindex(index=rows, columns=cols)
    grid.index = [display_name(r, index) for r in rows]
    grid.columns = [display_name(c, columns) for c in cols]
    with style_context():
        fig, ax = new_axes(ax, figsize)
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=fmt,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            linewidths=0.5,
            linecolor="white",
            annot_kws={"fontsize": 7.0},
            cbar_kws={"label": display_name(values), "shrink": 0.9},
        )
        ax.set_xlabel(xlabel or display_name(columns))
        ax.set_ylabel(ylabel or display_name(index))
        ax.tick_params(axis="both", length=0)
        ax.tick_params(axis="y", labelrotation=0)
        category_ticks(ax, list(grid.columns), offset=0.5)
    return fig
