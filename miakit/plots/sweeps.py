"""Sweep figures: a metric against a setting, and privacy against utility.

* :func:`metric_lines`: a metric against a setting, e.g. attack AUC vs sparsity per pruner.
* :func:`privacy_utility`: test accuracy vs attack success per defense setting.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from miakit.plots._axes import (
    CHANCE,
    chance_label,
    chance_line,
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
from miakit.plots.style import (
    FULL_WIDTH,
    LINESTYLES,
    level_style,
    series_styles,
    style_context,
)

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
    greyscale. An attack as the hue keeps its one style (:func:`~miakit.plots.attack_style`:
    colour, marker and line style; as the ``style`` attacks take line styles in order). Points
    are sorted by ``x``; several rows for one point (seeds) are averaged, with
    95%-interval error bars (as :func:`~miakit.plots.attack_bars`). A dotted line marks
    chance where the metric has one (0.5 for AUC, x% for the TPR at x% FPR); with
    ``dataset`` / ``arch`` columns, the figure names them above the axes.

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
    hue_styles = series_styles(hue, hues)
    dashes = _dashes(style, styles)
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
                kw = hue_styles[i].line_kwargs()
                if style is not None:
                    kw["linestyle"] = dashes[j]
                label = (
                    readable(h, hue)
                    if style is None
                    else f"{readable(h, hue)}, {readable(s, style)}"
                )
                ax.errorbar(
                    rows["_x"].to_numpy(dtype=float),
                    rows["mean"].to_numpy(dtype=float),
                    yerr=error_bars(rows["mean"], rows["low"], rows["high"]) if spread else None,
                    label=label,
                    elinewidth=0.6,
                    **kw,
                )
        chance_line(ax, y, difference="baseline_attack" in frame)
        ax.set_xlabel(xlabel or readable(x))
        ax.set_ylabel(ylabel or readable(y))
        handles: list[Any] = []
        if style is None:
            legend_above(ax, title=readable(hue))
        else:
            # One entry per hue level (colour + marker), one per style level (line style).
            for i, h in enumerate(hues):
                kw = hue_styles[i].line_kwargs()
                kw["linestyle"] = "-"
                handles.append(Line2D([], [], label=readable(h, hue), **kw))
            for j, s in enumerate(styles):
                handles.append(
                    Line2D([], [], color="0.3", linestyle=dashes[j], label=readable(s, style))
                )
            chance = chance_label(y)
            if chance is not None:
                handles.append(Line2D([], [], label=chance, **CHANCE))
            legend_above(ax, handles)
        name_setting(fig, frame)
    return fig


def _dashes(style: str | None, values: list[Any]) -> list[Any]:
    """The line style of each ``style`` level, in order (all different for up to seven).

    Attacks as the ``style`` are told apart by line style alone, so they take the line
    styles in order rather than their own (several attacks share one line style).
    """
    return [LINESTYLES[j % len(LINESTYLES)] for j in range(len(values))]


def privacy_utility(
    frame: pd.DataFrame,
    *,
    x: str = "victim_test_acc",
    y: str = "auc",
    hue: str = "victim_defense",
    label: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    facet: str | None = None,
    epsilon: str = "victim_epsilon",
    delta: str = "victim_delta",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Utility vs attack success per defense setting (PAPER.md, "The defense").

    One marker and line per ``hue`` level (e.g. PPB, AdvReg, DP-SGD, no defense); the
    settings of one defense (e.g. lambda 1, 2, 4, 8, 16) are joined in table order and,
    with ``label``, annotated. A good defense sits right (accurate) and low (private);
    a dotted line marks chance where the metric has one. Several rows of one setting
    (seeds) are averaged into one point with 95%-interval error bars both ways (as
    :func:`~miakit.plots.attack_bars`). With ``dataset`` / ``arch`` columns, the figure
    names them above the axes.

    With ``facet`` (e.g. ``"adaptive"``), one panel per level of that column, side by
    side (``False`` before ``True``, else in order of first appearance), sharing both
    axes, each titled at the right with the level's display name (``adaptive``:
    "non-adaptive attack", "adaptive attack"); only the first panel keeps its legend.
    The undefended model (``hue`` level ``"none"``) is drawn in every panel: without a
    defense the adaptive and the non-adaptive adversary train on the same shadows, so
    :func:`miakit.sweep.defense_grid` keeps one row of it.

    Every DP point is labelled with its epsilon: a row with a value in the ``epsilon``
    column gets ``"ε=9.4"`` beside it (after its ``label`` text), and the legend entry of
    its ``hue`` level names the delta (``"DP-SGD (ε at δ=1e-05)"``) when the ``delta``
    column gives one value for the level (else each point shows its own delta). A
    DP-SGD row (``"dpsgd"`` in ``hue`` or ``victim_defense``) without an epsilon is an
    error: epsilon covers the DP fine-tuning, and a DP point means nothing without it.

    Args:
        frame: one row per defended model x attack, with utility and attack columns
            (e.g. :func:`miakit.sweep.defense_grid` rows of one attack).
        x: the utility column (default ``"victim_test_acc"``).
        y: the attack-success column (default ``"auc"``).
        hue: the column telling defenses apart (default ``"victim_defense"``).
        label: an optional column annotated beside each point (e.g. ``"parameter"``).
        xlabel: the x-axis label (default from :data:`DISPLAY_NAMES`).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        facet: a column giving one panel per level (``None``: one panel).
        epsilon: the column of each row's DP epsilon (NaN/None for non-DP rows).
        delta: the column of the delta each epsilon is at (optional in the table).
        ax: draw into these axes instead of a new figure (not with ``facet``).
        figsize: ``(width, height)`` of a new figure (with ``facet``: of the whole
            figure, default ``FULL_WIDTH`` wide).

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table, non-numeric ``x`` or ``y``, ``facet`` with ``ax``,
            or a DP-SGD row without an epsilon.
    """
    require_columns(frame, [x, y, hue, label, facet], "privacy_utility")
    eps = _dp_epsilon(frame, hue, epsilon)
    if facet is not None:
        if ax is not None:
            raise ValueError(
                "privacy_utility: facet draws its own panels; pass ax or facet, not both"
            )
        panels = panel_levels(frame, facet)
        undefended = frame[hue] == "none"
        with style_context():
            fig, axes = plt.subplots(
                1,
                len(panels),
                figsize=sized(figsize, (FULL_WIDTH, 3.0)),
                squeeze=False,
                sharex=True,
                sharey=True,
            )
            for panel_ax, level in zip(axes[0], panels, strict=True):
                privacy_utility(
                    frame[(frame[facet] == level) | undefended],
                    x=x,
                    y=y,
                    hue=hue,
                    label=label,
                    xlabel=xlabel,
                    ylabel=ylabel,
                    epsilon=epsilon,
                    delta=delta,
                    ax=panel_ax,
                )
                panel_ax.set_title(readable(level, facet), loc="right")
            for panel_ax in axes[0][1:]:
                legend = panel_ax.get_legend()
                if legend is not None:
                    legend.remove()
        return fig
    points, spread = _points(frame, [hue, label], x, y, eps)
    eps = points["_eps"]
    with style_context():
        fig, ax = new_axes(ax, figsize)
        for i, h in enumerate(levels(points, hue)):
            rows = (points[hue] == h).to_numpy()
            kw = level_style(i).line_kwargs()
            mine = points[rows]
            px, py = mine["_x"].to_numpy(dtype=float), mine["_y"].to_numpy(dtype=float)
            texts = _point_texts(mine, label, eps[rows], delta)
            name = readable(h, hue)
            deltas = _deltas(mine, eps[rows], delta)
            if len(deltas) == 1:
                name = f"{name} (ε at δ={deltas[0]:g})"
            ax.plot(px, py, label=name, markersize=4.0, **kw)
            if spread:
                ax.errorbar(
                    px,
                    py,
                    xerr=error_bars(px, mine["_xlo"], mine["_xhi"]),
                    yerr=error_bars(py, mine["_ylo"], mine["_yhi"]),
                    fmt="none",
                    ecolor=kw["color"],
                    elinewidth=0.6,
                    label="_nolegend_",
                )
            for j, (xi, yi, text) in enumerate(zip(px, py, texts, strict=True)):
                if text:  # alternate above / below, so neighbouring points stay legible
                    ax.annotate(
                        text,
                        (xi, yi),
                        xytext=(3, 3) if j % 2 == 0 else (3, -9),
                        textcoords="offset points",
                        fontsize=6.0,
                        color="0.2",
                    )
        chance_line(ax, y)
        ax.set_xlabel(xlabel or readable(x))
        ax.set_ylabel(ylabel or readable(y))
        legend_title = readable(hue)
        if label is not None:
            legend_title = f"{legend_title} (labels: {readable(label)})"
        legend_above(ax, title=legend_title)
        name_setting(fig, frame)
    return fig


#: Columns that, with the hue and label, tell one defended model's point from another.
_SETTING = ("adaptive", "attack", "setting", "parameter", "victim_pruner", "victim_sparsity")


def _points(
    frame: pd.DataFrame, by: list[str | None], x: str, y: str, eps: pd.Series
) -> tuple[pd.DataFrame, bool]:
    """One row per point: seeds of one setting averaged, with 95% intervals.

    With a ``seed`` column, a setting is its hue, label, :data:`_SETTING` and
    ``victim_defense_<option>`` columns, and several rows of one setting are seeds
    (:func:`~miakit.plots._frame.aggregate`, as the error bars of
    :func:`~miakit.plots.attack_bars`). Adds ``_x``, ``_y``, their
    ``_xlo`` / ``_xhi`` / ``_ylo`` / ``_yhi`` and ``_eps`` (the seeds' mean epsilon).
    Without a ``seed`` column every row is a point.
    """
    options = sorted(c for c in frame.columns if c.startswith("victim_defense_"))
    keys = [c for c in dict.fromkeys([*by, *_SETTING, *options]) if c and c in frame.columns]
    data = frame.assign(_eps=eps, _row=np.arange(len(frame)))
    if "seed" not in frame.columns:
        keys.append("_row")  # no seeds: every row is a point of its own
    groups = data.groupby(keys, sort=False, dropna=False)
    first = groups.head(1).reset_index(drop=True)
    xs, x_spread = aggregate(data, keys, x, "privacy_utility")
    ys, y_spread = aggregate(data, keys, y, "privacy_utility")
    out = first.assign(
        _x=xs["mean"].to_numpy(),
        _xlo=xs["low"].to_numpy(),
        _xhi=xs["high"].to_numpy(),
        _y=ys["mean"].to_numpy(),
        _ylo=ys["low"].to_numpy(),
        _yhi=ys["high"].to_numpy(),
        _eps=groups["_eps"].mean().to_numpy(),
    )
    return out, x_spread or y_spread


def _dp_epsilon(frame: pd.DataFrame, hue: str, epsilon: str) -> pd.Series:
    """Each row's DP epsilon (NaN off DP); a DP-SGD row without one is an error."""
    from miakit.defenses import DPSGDParams

    eps = (
        numeric(frame, epsilon, "privacy_utility")
        if epsilon in frame.columns
        else pd.Series(np.nan, index=frame.index)
    )
    dp = frame[hue] == DPSGDParams.name
    if "victim_defense" in frame.columns:
        dp |= frame["victim_defense"] == DPSGDParams.name
    if (dp & eps.isna()).any():
        raise ValueError(
            f"privacy_utility: DP-SGD points need their epsilon, but column {epsilon!r} is "
            f"{'missing' if epsilon not in frame.columns else 'empty on some of them'}; "
            "keep the victim_epsilon column of miakit.tables / miakit.sweep tables, or "
            "pass epsilon=<column>"
        )
    return eps


def _deltas(rows: pd.DataFrame, eps: pd.Series, delta: str) -> list[float]:
    """The distinct deltas of a level's DP rows (``[]``: no DP row or no delta column)."""
    if delta not in rows.columns or not eps.notna().any():
        return []
    return sorted(set(pd.to_numeric(rows[delta][eps.notna()], errors="coerce").dropna()))


def _point_texts(rows: pd.DataFrame, label: str | None, eps: pd.Series, delta: str) -> list[str]:
    """The annotation of each point: its ``label`` text, then ``ε=...`` on DP points."""
    several = len(_deltas(rows, eps, delta)) > 1
    texts = []
    for i, e in enumerate(eps):
        parts = []
        if label is not None and not pd.isna(rows[label].iloc[i]):
            parts.append(readable(rows[label].iloc[i], label))
        if not pd.isna(e):
            value = f"{e:.0f}" if e >= 100 else f"{e:.3g}"
            parts.append(f"ε={value}" + (f", δ={rows[delta].iloc[i]:g}" if several else ""))
        texts.append(", ".join(parts))
    return texts
