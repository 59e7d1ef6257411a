"""Axes helpers shared by the figure helpers (private to ``miakit.plots``).

New axes at the house size (a column or the page wide), category ticks that stay readable
when crowded, a legend above the axes that hides no data, the chance level and line of a
guessing attack, and the dataset / architecture line of a figure that compares methods.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit.plots.names import setting_text
from miakit.plots.style import COLUMN_WIDTH, figure_width

__all__ = [
    "CHANCE",
    "axes_width_pt",
    "category_ticks",
    "chance_label",
    "chance_line",
    "chance_value",
    "legend_above",
    "name_setting",
    "new_axes",
    "sized",
]

CHANCE: dict[str, Any] = {"color": "0.35", "linestyle": ":", "linewidth": 0.8}
"""Line keywords of the chance line (a guessing attack): grey, dotted, thin."""


def sized(figsize: tuple[float, float] | None, default: tuple[float, float]) -> tuple[float, float]:
    """``figsize`` (else ``default``) with its width moved to the nearest allowed width."""
    width, height = figsize or default
    return figure_width(width), float(height)


def new_axes(ax: Axes | None, figsize: tuple[float, float] | None) -> tuple[Figure, Axes]:
    """The given axes and their figure, or a new constrained-layout figure with one axes.

    A new figure is a column or the page wide (:func:`~miakit.plots.figure_width`).
    """
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new = plt.subplots(figsize=sized(figsize, (COLUMN_WIDTH, 2.4)), layout="constrained")
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


_TPR_AT = (
    re.compile(r"tpr@(\d+(?:\.\d+)?)%fpr"),  # results_frame: "tpr@1%fpr"
    re.compile(r"tpr_at_(\d+(?:_\d+)?)pct_fpr"),  # finetune_curve: "tpr_at_0_1pct_fpr"
)


def chance_value(metric: str) -> float | None:
    """What a guessing attack scores on ``metric``, or ``None`` when that is not fixed.

    0.5 for AUC and balanced accuracy; for the TPR at x% FPR, x% (a guess flags
    members and non-members alike, so its TPR equals its FPR; PAPER.md, "Reporting").
    Interval columns (``auc_low``) have their metric's chance level.
    """
    base = re.sub(r"_(?:low|high)$", "", metric)
    if base in ("auc", "balanced_accuracy"):
        return 0.5
    for pattern in _TPR_AT:
        match = pattern.fullmatch(base)
        if match:
            return float(match.group(1).replace("_", ".")) / 100.0
    return None


def chance_label(metric: str) -> str | None:
    """The legend text of the chance line, e.g. ``"chance (0.5)"``, ``"chance (TPR = 1% FPR)"``."""
    value = chance_value(metric)
    if value is None:
        return None
    return "chance (0.5)" if value == 0.5 else f"chance (TPR = {100 * value:g}% FPR)"


def chance_line(
    ax: Axes, metric: str, *, horizontal: bool = True, difference: bool = False
) -> None:
    """The line of a guessing attack (:func:`chance_value`), where ``metric`` has one;
    with ``difference`` (a :func:`miakit.tables.difference` table), the line at 0."""
    if difference:
        value, label = 0.0, "no difference"
    else:
        value, label = chance_value(metric), chance_label(metric)
    if value is None:
        return
    draw = ax.axhline if horizontal else ax.axvline
    draw(value, label=label, zorder=1, gid="chance", **CHANCE)


def name_setting(fig: Figure, frame: pd.DataFrame) -> None:
    """Name the dataset and architecture of ``frame`` above the whole figure.

    Read by :func:`~miakit.plots.names.setting_text` from the ``dataset`` / ``arch``
    columns (nothing happens without them). Several helpers drawing into one figure add
    their setting once each: the same text is not repeated, different ones are joined.
    """
    text = setting_text(frame)
    if not text:
        return
    shown = fig.get_suptitle()
    if shown and text in shown:
        return
    if shown:
        text = f"{shown}; {text}"
    fig.suptitle(text, fontsize=mpl.rcParams["axes.titlesize"])
