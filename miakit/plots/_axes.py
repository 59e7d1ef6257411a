"""Axes helpers shared by the figure helpers (private to ``miakit.plots``).

New axes at the house size, category ticks that stay readable when crowded, a legend
above the axes that hides no data, and the chance line of a guessing attack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit.plots.style import COLUMN_WIDTH

__all__ = [
    "CHANCE",
    "axes_width_pt",
    "category_ticks",
    "chance_line",
    "legend_above",
    "new_axes",
]

CHANCE: dict[str, Any] = {"color": "0.35", "linestyle": ":", "linewidth": 0.8}
"""Line keywords of the chance line (a guessing attack): grey, dotted, thin."""


def new_axes(ax: Axes | None, figsize: tuple[float, float] | None) -> tuple[Figure, Axes]:
    """The given axes and their figure, or a new constrained-layout figure with one axes."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new = plt.subplots(figsize=figsize or (COLUMN_WIDTH, 2.4), layout="constrained")
    return fig, new


def axes_width_pt(ax: Axes) -> float:
    """Roughly the axes' width in points once constrained layout has run (0.85 of its share)."""
    return 72.0 * ax.figure.get_figwidth() * ax.get_position().width / 0.775 * 0.85


def category_ticks(ax: Axes, labels: Sequence[str], *, offset: float = 0.0) -> None:
    """Category tick labels at ``offset + 0, 1, ...``: level, else slanted, else every k-th.

    Estimated from the label lengths and the axes width, so a crowded axis (11 attacks in a
    column, 100 classes: every 5th or 10th) stays readable.
    """
    n = len(labels)
    positions = np.arange(n, dtype=float) + offset
    font = mpl.font_manager.FontProperties(size=mpl.rcParams["xtick.labelsize"])
    size = font.get_size_in_points()
    slot = axes_width_pt(ax) / max(n, 1)
    longest = 0.56 * size * max((len(str(label)) for label in labels), default=0)
    step, slant = 1, False
    if longest > 0.9 * slot:
        if 1.3 * size <= slot:
            slant = True
        else:
            step = next(k for k in (2, 5, 10, 20, 50, 100, 200, 500, n) if 1.3 * size <= slot * k)
            slant = longest > 0.9 * slot * step
    ax.set_xticks(positions[::step], [str(label) for label in labels][::step])
    if slant:
        ax.tick_params(axis="x", labelrotation=40)
        for text in ax.get_xticklabels():
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")


def legend_above(
    ax: Axes,
    handles: Sequence[Any] | None = None,
    *,
    title: str | None = None,
) -> None:
    """A frameless legend above the axes, in as many columns as fit, so it hides no data."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    else:
        labels = [h.get_label() for h in handles]
    if not handles:
        return
    # The chance line (drawn last, but listed first as a line among patches) goes last.
    order = sorted(range(len(labels)), key=lambda k: str(labels[k]).startswith("chance"))
    handles, labels = [handles[k] for k in order], [labels[k] for k in order]
    rc = mpl.rcParams
    font = mpl.font_manager.FontProperties(size=rc["legend.fontsize"]).get_size_in_points()
    # A rough width in points of one entry (handle, padding, text) and of the column gap.
    pad = font * (rc["legend.handlelength"] + rc["legend.handletextpad"])
    entry = pad + font * 0.56 * max(len(str(label)) for label in labels)
    gap = font * rc["legend.columnspacing"]
    width = axes_width_pt(ax)
    ncols = max(1, min(len(handles), int((width + gap) // (entry + gap))))
    ax.legend(
        handles,
        labels,
        title=title,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.02),
        borderaxespad=0.0,
        ncols=ncols,
        frameon=False,
        alignment="left",
    )


def chance_line(
    ax: Axes, metric: str, *, horizontal: bool = True, difference: bool = False
) -> None:
    """The 0.5 line of a guessing attack, for AUC and balanced accuracy; with
    ``difference`` (a :func:`miakit.tables.difference` table), the line at 0 instead."""
    if difference:
        if horizontal:
            ax.axhline(0.0, label="no difference", zorder=1, **CHANCE)
        else:
            ax.axvline(0.0, label="no difference", zorder=1, **CHANCE)
        return
    if metric in ("auc", "balanced_accuracy"):
        if horizontal:
            ax.axhline(0.5, label="chance (0.5)", zorder=1, **CHANCE)
        else:
            ax.axvline(0.5, label="chance (0.5)", zorder=1, **CHANCE)
