"""Sweep figures: a metric against a setting, and privacy against utility.

* :func:`metric_lines`: a metric against a setting, e.g. attack AUC vs sparsity per pruner.
* :func:`privacy_utility`: test accuracy vs attack success per defense setting.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from miakit.plots._axes import CHANCE, chance_line, legend_above, new_axes
from miakit.plots._frame import aggregate, levels, numeric, require_columns
from miakit.plots.style import LINESTYLES, display_name, level_style, style_context

__all__ = ["metric_lines", "privacy_utility"]


def metric_lines(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    hue: str,
    style: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Lines with markers of a metric against a setting, e.g. attack AUC vs sparsity.

    PAPER.md claim 3: the privacy risk depends on the pruning approach and the sparsity.
    Each ``hue`` level (e.g. pruner) gets a colour and a marker; the line style follows
    ``style`` (e.g. attack) when given, else the hue level, so every line differs in
    greyscale. Points are sorted by ``x``; several rows for one point (seeds) are
    averaged, with standard-deviation error bars.

    Args:
        frame: a tidy table.
        x: the numeric column along the x axis (e.g. ``"sparsity"``).
        y: the numeric column plotted (e.g. ``"auc"``).
        hue: the column giving one line (colour and marker) per level.
        style: an optional second column giving line styles.
        xlabel: the x-axis label (default from :data:`DISPLAY_NAMES`).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table or non-numeric ``x`` or ``y``.
    """
    require_columns(frame, [x, y, hue, style], "metric_lines")
    hues = levels(frame, hue)
    styles = levels(frame, style)
    data = frame.assign(_x=numeric(frame, x, "metric_lines"))
    keys = [hue, "_x"] if style is None else [hue, style, "_x"]
    stats, spread = aggregate(data, keys, y, "metric_lines")
    stats = stats.reset_index()
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for i, h in enumerate(hues):
            for j, s in enumerate(styles):
                rows = stats[stats[hue] == h]
                if style is not None:
                    rows = rows[rows[style] == s]
                if rows.empty:
                    continue
                rows = rows.sort_values("_x")
                kw = level_style(i).line_kwargs()
                if style is not None:
                    kw["linestyle"] = LINESTYLES[j % len(LINESTYLES)]
                label = (
                    display_name(h) if style is None else f"{display_name(h)}, {display_name(s)}"
                )
                ax.errorbar(
                    rows["_x"].to_numpy(dtype=float),
                    rows["mean"].to_numpy(dtype=float),
                    yerr=rows["std"].fillna(0.0).to_numpy(dtype=float) if spread else None,
                    label=label,
                    elinewidth=0.6,
                    **kw,
                )
        chance_line(ax, y)
        ax.set_xlabel(xlabel or display_name(x))
        ax.set_ylabel(ylabel or display_name(y))
        handles: list[Any] = []
        if style is None:
            legend_above(ax, title=display_name(hue))
        else:
            # One entry per hue level (colour + marker), one per style level (line style).
            for i, h in enumerate(hues):
                kw = level_style(i).line_kwargs()
                kw["linestyle"] = "-"
                handles.append(Line2D([], [], label=display_name(h), **kw))
            for j, s in enumerate(styles):
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="0.3",
                        linestyle=LINESTYLES[j % len(LINESTYLES)],
                        label=display_name(s),
                    )
                )
            if y in ("auc", "balanced_accuracy"):
                handles.append(Line2D([], [], label="chance (0.5)", **CHANCE))
            legend_above(ax, handles)
    return fig


def privacy_utility(
    frame: pd.DataFrame,
    *,
    x: str = "test_acc",
    y: str = "auc",
    hue: str = "defense",
    label: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Utility vs attack success per defense setting (PAPER.md, "The defense").

    One marker and line per ``hue`` level (e.g. PPB, AdvReg, DP-SGD, no defense); the
    settings of one defense (e.g. lambda 1, 2, 4, 8, 16) are joined in table order and,
    with ``label``, annotated. A good defense sits right (accurate) and low (private);
    for AUC and balanced accuracy a dotted line marks chance.

    Args:
        frame: one row per defended model x attack, with utility and attack columns.
        x: the utility column (default ``"test_acc"``).
        y: the attack-success column (default ``"auc"``).
        hue: the column telling defenses apart.
        label: an optional column annotated beside each point (e.g. ``"lam"``).
        xlabel: the x-axis label (default from :data:`DISPLAY_NAMES`).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table or non-numeric ``x`` or ``y``.
    """
    require_columns(frame, [x, y, hue, label], "privacy_utility")
    xs = numeric(frame, x, "privacy_utility")
    ys = numeric(frame, y, "privacy_utility")
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for i, h in enumerate(levels(frame, hue)):
            rows = (frame[hue] == h).to_numpy()
            kw = level_style(i).line_kwargs()
            px, py = xs[rows].to_numpy(dtype=float), ys[rows].to_numpy(dtype=float)
            ax.plot(px, py, label=display_name(h), markersize=4.0, **kw)
            if label is not None:
                for xi, yi, text in zip(px, py, frame[label][rows], strict=True):
                    if pd.isna(text):
                        continue
                    ax.annotate(
                        display_name(text),
                        (xi, yi),
                        xytext=(3, 3),
                        textcoords="offset points",
                        fontsize=6.0,
                        color="0.2",
                    )
        chance_line(ax, y)
        ax.set_xlabel(xlabel or display_name(x))
        ax.set_ylabel(ylabel or display_name(y))
        legend_title = display_name(hue)
        if label is not None:
            legend_title = f"{legend_title} (labels: {display_name(label)})"
        legend_above(ax, title=legend_title)
    return fig
