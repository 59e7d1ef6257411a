"""Log-log ROC curves for the low-FPR regime: :func:`roc_loglog` (PAPER.md, "Reporting").

The axes start at one non-member (FPR ``1 / n_nonmembers``, the smallest false-positive
rate a threshold can have), the diagonal of a guessing attack is drawn, each attack has
its own colour and marker in every figure (:func:`~miakit.plots.attack_style`), and a
:func:`miakit.tables.roc_bands` table draws each curve's band over seeds (issue 13, item 7).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from miakit.plots._axes import CHANCE, axes_width_pt, name_setting, new_axes
from miakit.plots._frame import levels, numeric, require_columns
from miakit.plots.names import readable
from miakit.plots.style import COLUMN_WIDTH, series_styles, style_context

__all__ = ["roc_loglog"]

Curve = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


def _checked_pairs(curves: Mapping[str, Any]) -> dict[str, Curve]:
    """``{name: (fpr, tpr, None, None)}`` from ``{name: (fpr, tpr, ...)}``, validated."""
    checked: dict[str, Curve] = {}
    for name, pair in curves.items():
        if len(pair) < 2:
            raise ValueError(f"curve {name!r} must be (fpr, tpr), got {len(pair)} item(s)")
        fpr, tpr = (np.asarray(a, dtype=float) for a in pair[:2])
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
            raise ValueError(
                f"curve {name!r}: fpr and tpr must be 1-D arrays of the same length, "
                f"got shapes {fpr.shape} and {tpr.shape}"
            )
        checked[str(name)] = (fpr, tpr, None, None)
    return checked


def _checked_bands(frame: pd.DataFrame) -> dict[str, Curve]:
    """One curve per attack of a :func:`miakit.tables.roc_bands` table, with its band."""
    require_columns(frame, ["attack", "fpr", "tpr"], "roc_loglog")
    band = "tpr_low" in frame.columns and "tpr_high" in frame.columns
    checked: dict[str, Curve] = {}
    for name in levels(frame, "attack"):
        rows = frame[frame["attack"] == name].sort_values("fpr", kind="stable")
        if rows["fpr"].duplicated().any():
            raise ValueError(
                f"roc_loglog: attack {name!r} has several rows per FPR; pass the bands of "
                "one victim (one tables.roc_bands call), e.g. frame[frame.victim == ...]"
            )
        fpr, tpr = (numeric(rows, c, "roc_loglog").to_numpy() for c in ("fpr", "tpr"))
        low = numeric(rows, "tpr_low", "roc_loglog").to_numpy() if band else None
        high = numeric(rows, "tpr_high", "roc_loglog").to_numpy() if band else None
        checked[str(name)] = (fpr, tpr, low, high)
    return checked


def _floor(checked: Mapping[str, Curve], n: int | None, floor: float | None) -> float:
    """The axes' lower end: ``floor``, else ``1 / n``, else the smallest positive FPR."""
    if floor is not None:
        if not 0 < floor < 1:
            raise ValueError(f"floor must lie in (0, 1), e.g. 1e-4, got {floor!r}")
        return float(floor)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n (the number of non-members) must be an integer >= 2, got {n!r}")
        return 1.0 / int(n)
    # An exact ROC curve's first step is one non-member: its FPR is 1 / n_nonmembers.
    positive = [f[f > 0].min() for f, *_ in checked.values() if (f > 0).any()]
    return float(min(positive)) if positive else 1e-4


def roc_loglog(
    curves: Mapping[str, tuple[Any, Any]] | pd.DataFrame,
    *,
    aucs: Mapping[str, float] | None = None,
    title: str | None = None,
    n: int | None = None,
    floor: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """ROC curves on log-log axes, for the low-FPR regime (PAPER.md, "Reporting").

    Both axes start at one non-member: ``1 / n`` with ``n`` non-members, or (without
    ``n``) the curves' smallest positive FPR, which is ``1 / n`` for an exact ROC curve
    and for a :func:`miakit.tables.roc_bands` grid. Points below it, including the
    ``(0, 0)`` start, are drawn on the axis edge. The dotted diagonal (labelled
    "chance") is a guessing attack. Each attack has its own colour, line style and
    marker, the same in every figure (:func:`~miakit.plots.attack_style`).

    Args:
        curves: legend name (an attack) -> ``(fpr, tpr)``, e.g. :func:`miakit.tables.roc`
            or the first two arrays of :func:`miakit.metrics.roc_curve`; or a
            :func:`miakit.tables.roc_bands` table (columns ``attack``, ``fpr``, ``tpr``,
            and ``tpr_low`` / ``tpr_high``, drawn as a band around each curve).
        aucs: legend name -> AUC, shown in the legend when given.
        title: a short title (a display text, not an id).
        n: the number of non-members (the axes start at ``1 / n``).
        floor: the lower end of both axes, instead of ``1 / n``.
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        ValueError: on no curves, arrays of different lengths, rates outside [0, 1], a
            ``floor`` outside (0, 1), a bad ``n``, or a bands table with several rows
            per attack and FPR.
    """
    if isinstance(curves, pd.DataFrame):
        checked = _checked_bands(curves)
    elif not curves:
        raise ValueError("roc_loglog needs at least one curve: {name: (fpr, tpr)}")
    else:
        checked = _checked_pairs(curves)
    for name, arrays in checked.items():
        rates = [a[~np.isnan(a)] if a is not None else np.zeros(0) for a in arrays]
        if (
            np.isnan(arrays[0]).any()
            or np.isnan(arrays[1]).any()
            or not all(np.all((a >= 0) & (a <= 1)) for a in rates)
        ):
            raise ValueError(f"curve {name!r}: rates must lie in [0, 1]")
    floor = _floor(checked, n, floor)
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
        styles = series_styles("attack", list(checked))
        for style, (name, (fpr, tpr, low, high)) in zip(styles, checked.items(), strict=True):
            label = readable(name, "attack")
            if aucs is not None and name in aucs:
                label = f"{label} (AUC {aucs[name]:.3f})"
            kw = style.line_kwargs()
            ax.plot(
                np.clip(fpr, floor, 1.0),
                np.clip(tpr, floor, 1.0),
                label=label,
                markevery=0.1,
                markersize=3.0,
                gid=f"roc {name}",
                **kw,
            )
            if low is not None and high is not None and np.isfinite(low).any():
                ax.fill_between(
                    np.clip(fpr, floor, 1.0),
                    np.clip(np.nan_to_num(low, nan=floor), floor, 1.0),
                    np.clip(np.nan_to_num(high, nan=floor), floor, 1.0),
                    color=kw["color"],
                    alpha=0.18,
                    linewidth=0,
                    gid=f"band {name}",
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
        if isinstance(curves, pd.DataFrame):
            name_setting(fig, curves)
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
