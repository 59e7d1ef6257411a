"""Attack-result figures: metric bars and knowledge heat maps.

* :func:`attack_bars`: attack AUC (or accuracy, TPR at low FPR) per attack and victim.
* :func:`heatmap`: e.g. attack AUC for victim pruner x shadow pruner (adversary knowledge),
  coloured on a diverging scale centred on chance.

(The log-log ROC curves are :func:`miakit.plots.roc.roc_loglog`.)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit.plots._axes import (
    category_ticks,
    chance_line,
    chance_value,
    legend_above,
    name_setting,
    new_axes,
    sized,
)
from miakit.plots._frame import (
    aggregate,
    error_bars,
    levels,
    numeric,
    panel_levels,
    require_columns,
)
from miakit.plots.names import readable
from miakit.plots.style import FULL_WIDTH, series_styles, style_context

__all__ = ["attack_bars", "heatmap"]


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
    balanced accuracy a dotted line marks chance (0.5), for the TPR at x% FPR chance (x%).
    Attacks keep their one style (:func:`~miakit.plots.attack_style`) when ``hue`` is the
    attack, or when ``by`` is and there is no hue; other hue columns take
    :func:`~miakit.plots.level_style`. With ``dataset`` / ``arch`` columns, the figure
    names them above the axes.

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
    # Attacks keep their own style: as the hue, or along the x axis when there is no hue.
    hue_styles = series_styles(hue, hues)
    group_styles = series_styles(by, groups) if hue is None else None
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for j, level in enumerate(hues):
            key = (lambda g: g) if hue is None else (lambda g, lv=level: (g, lv))
            mean = np.array([stats["mean"].get(key(g), np.nan) for g in groups], dtype=float)
            lows = [stats["low"].get(key(g), np.nan) for g in groups]
            highs = [stats["high"].get(key(g), np.nan) for g in groups]
            bars = ax.bar(
                x + (j - (len(hues) - 1) / 2) * width,
                mean,
                width=width,
                yerr=error_bars(mean, lows, highs) if spread else None,
                error_kw={"elinewidth": 0.6, "ecolor": "0.2"},
                label=None if hue is None else readable(level, hue),
                **hue_styles[j].bar_kwargs(),
            )
            for patch, style in zip(bars.patches, group_styles or (), strict=False):
                kw = style.bar_kwargs()
                patch.set_facecolor(kw["facecolor"])
                patch.set_edgecolor(kw["edgecolor"])
                patch.set_hatch(kw["hatch"])
        chance_line(ax, metric, difference="baseline_attack" in frame)
        category_ticks(ax, [readable(g, by) for g in groups])
        ax.set_xlim(-0.6, len(groups) - 0.4)
        if metric in ("auc", "balanced_accuracy") and "baseline_attack" not in frame:
            top = float(np.nanmax(np.fmax(stats["mean"], stats["high"])))
            ax.set_ylim(0.0, max(1.0, top))
        ax.grid(False, axis="x")
        ax.set_xlabel(readable(by))
        ax.set_ylabel(ylabel or readable(metric))
        legend_above(ax, title=None if hue is None else readable(hue))
        name_setting(fig, frame)
    return fig


def _scale(
    shown: pd.Series,
    values: str,
    vmin: float | None,
    vmax: float | None,
    center: float | str | None,
    cmap: str | None,
) -> tuple[float | None, float | None, str, str]:
    """The colour scale of a heat map: ``(vmin, vmax, cmap, colour-bar label)``.

    Centred (``center="chance"``: on :func:`chance_value` of ``values``, when it has one),
    the scale is symmetric about the centre and wide enough for every value and for
    ``vmin`` / ``vmax``, on a diverging map whose white is the centre; else ``vmin`` and
    ``vmax`` as given on ``cividis``.
    """
    c = chance_value(values) if center == "chance" else center
    name = readable(values)
    if c is None or isinstance(c, str):
        return vmin, vmax, cmap or "cividis", name
    lo = float(shown.min()) if vmin is None else float(vmin)
    hi = float(shown.max()) if vmax is None else float(vmax)
    r = max(abs(lo - c), abs(hi - c), 1e-3)
    what = "chance" if center == "chance" else "centre"
    return c - r, c + r, cmap or "RdBu_r", f"{name} (white: {what}, {c:g})"


def heatmap(
    frame: pd.DataFrame,
    *,
    index: str,
    columns: str,
    values: str,
    fmt: str = ".2f",
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | str | None = "chance",
    xlabel: str | None = None,
    ylabel: str | None = None,
    facet: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """An annotated heat map, e.g. attack AUC for victim pruner x shadow pruner.

    PAPER.md claim 3 ("SAMIA": adversary knowledge): how the attack fares when the
    shadows are pruned with another method or sparsity than the victim. Rows and columns
    keep their order of first appearance; several rows for a cell (seeds) are averaged.
    Every cell is annotated, so the figure also reads in greyscale.

    The colours are centred on chance (issue 13, item 7): 0.5 for AUC and balanced
    accuracy, x% for the TPR at x% FPR (:func:`~miakit.plots._axes.chance_value`). White
    is chance, red leaks more and blue less, on a scale symmetric about chance that
    holds every value (and ``vmin`` / ``vmax`` when given); the colour bar's label says
    so (``"attack AUC (white: chance, 0.5)"``). A metric without a chance level (or
    ``center=None``) uses the sequential ``cividis`` from ``vmin`` to ``vmax``.

    With ``facet`` (e.g. ``"attack"``), one panel per level of that column, side by side
    in order of first appearance, sharing the rows' axis and titled with the level's
    display name; the panels share one colour scale (from the whole table). With
    ``dataset`` / ``arch`` columns, the figure names them above the panels.

    Args:
        frame: a tidy table.
        index: the column along the rows (e.g. ``"victim_label"``).
        columns: the column along the columns (e.g. ``"shadow_label"``).
        values: the numeric column shown (e.g. ``"auc"``).
        fmt: the annotation format.
        cmap: the colour map (default ``"RdBu_r"`` centred, else ``"cividis"``).
        vmin: a value the colour scale must reach below (default the table's minimum).
        vmax: a value the colour scale must reach above (default the table's maximum).
        center: ``"chance"`` (the metric's chance level), a number, or ``None``.
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
    shown = numeric(frame, values, "heatmap")
    lo, hi, cmap, label = _scale(shown, values, vmin, vmax, center, cmap)
    if facet is not None:
        if ax is not None:
            raise ValueError("heatmap: facet draws its own panels; pass ax or facet, not both")
        panels = panel_levels(frame, facet)
        with style_context():
            fig, axes = plt.subplots(
                1,
                len(panels),
                figsize=sized(figsize, (FULL_WIDTH, 2.9)),
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
                    vmin=shown.min() if lo is None else lo,
                    vmax=shown.max() if hi is None else hi,
                    center=center,
                    xlabel=xlabel,
                    ylabel=ylabel,
                    ax=panel_ax,
                )
                panel_ax.set_title(readable(level, facet))
        return fig
    rows = levels(frame, index)
    cols = levels(frame, columns)
    data = frame.assign(_v=shown)
    grid = data.pivot_table(index=index, columns=columns, values="_v", aggfunc="mean", sort=False)
    grid = grid.reindex(index=rows, columns=cols)
    grid.index = [readable(r, index) for r in rows]
    grid.columns = [readable(c, columns) for c in cols]
    with style_context():
        fig, ax = new_axes(ax, figsize)
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=fmt,
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            linewidths=0.5,
            linecolor="white",
            annot_kws={"fontsize": 7.0},
            cbar_kws={"label": label, "shrink": 0.9},
        )
        ax.set_xlabel(xlabel or readable(columns))
        ax.set_ylabel(ylabel or readable(index))
        ax.tick_params(axis="both", length=0)
        ax.tick_params(axis="y", labelrotation=0)
        category_ticks(ax, list(grid.columns), offset=0.5)
        name_setting(fig, frame)
    return fig
