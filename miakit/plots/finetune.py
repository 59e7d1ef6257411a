"""Attack success against fine-tune epochs, one line per variant: :func:`finetune_lines`.

The figure of :func:`miakit.finetune_curve.finetune_curve` (beyond the paper, issue 13):
the fine-tune-only control and the pruned model along the fine-tuning length, the
original as a reference level, so a reader sees whether pruning or re-training on the
members drives the leak (PAPER.md, "Pruning", claim 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from miakit.plots._axes import CHANCE, chance_line, legend_above
from miakit.plots._frame import levels, numeric, require_columns
from miakit.plots.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    LINESTYLES,
    ORIGINAL_STYLE,
    display_name,
    level_style,
    style_context,
)

__all__ = ["finetune_lines"]

_VARIANT = ("victim_pruner", "victim_sparsity", "victim_defense")


def _variant_text(pruner: str, sparsity: float, defense: str) -> str:
    """A victim's legend text from its real columns (never parsed from a label)."""
    text = display_name(pruner, "victim_pruner")
    if pruner not in ("none", "finetuned"):
        text += f"@{sparsity:g}"
    return text if defense == "none" else f"{text} + {display_name(defense)}"


def finetune_lines(
    frame: pd.DataFrame,
    *,
    metric: str = "auc",
    attacks: Sequence[str] | None = None,
    x: str = "finetune_epochs",
    xlabel: str = "fine-tune epochs",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A metric against fine-tune epochs: one panel per attack, one line per variant.

    Each fine-tuned victim variant (the control ``victim_pruner == "finetuned"``, each
    pruned one) is a line with markers; the original (``victim_pruner == "none"``) is a
    horizontal reference line, and chance a dotted one for AUC. With the columns
    ``<metric>_low`` and ``<metric>_high`` (an interval, e.g. from a summarised table)
    each line gets a band between them. Several rows per point (e.g. seeds, not
    summarised) are averaged. With both ``finetune_restore_best`` values in the table,
    the line style tells them apart.

    Args:
        frame: a :func:`~miakit.finetune_curve.finetune_curve` table.
        metric: the column plotted (e.g. ``"auc"``, ``"tpr_at_1pct_fpr"``).
        attacks: the attacks (panels), default every attack of the table in order.
        x: the epochs column.
        xlabel: the x-axis label.
        figsize: ``(width, height)``; default a column wide for one panel, else full width.

    Returns:
        The figure.

    Raises:
        KeyError: a column is missing, or an attack is not in the table.
        ValueError: an empty table, or a non-numeric ``metric`` or ``x``.
    """
    require_columns(frame, [x, metric, "attack", *_VARIANT], "finetune_lines")
    names = levels(frame, "attack") if attacks is None else list(attacks)
    unknown = [a for a in names if a not in set(frame["attack"])]
    if unknown:
        raise KeyError(f"finetune_lines: attack(s) {unknown} not in the table; it has {names}")
    band = f"{metric}_low" in frame.columns and f"{metric}_high" in frame.columns
    values = [metric, f"{metric}_low", f"{metric}_high"] if band else [metric]
    data = frame.assign(_x=numeric(frame, x, "finetune_lines"))
    for col in values:
        data[col] = numeric(frame, col, "finetune_lines")
    original = data["victim_pruner"] == "none"
    tuned = data[~original]
    variants = list(dict.fromkeys(zip(*(tuned[c] for c in _VARIANT), strict=True)))
    rules = levels(data, "finetune_restore_best") if "finetune_restore_best" in data else [None]
    width = COLUMN_WIDTH if len(names) == 1 else FULL_WIDTH
    with style_context():
        fig, axes = plt.subplots(
            1, len(names), figsize=figsize or (width, 2.4), sharey=True, layout="constrained"
        )
        axes = np.atleast_1d(axes)
        for ax, attack in zip(axes, names, strict=True):
            mine = data[data["attack"] == attack]
            base = mine[mine["victim_pruner"] == "none"]
            if not base.empty:
                ax.axhline(
                    float(base[metric].mean()),
                    color=ORIGINAL_STYLE.color,
                    linestyle="--",
                    linewidth=1.0,
                    label="original",
                )
            for i, variant in enumerate(variants):
                for j, rule in enumerate(rules):
                    rows = mine[(mine[list(_VARIANT)] == pd.Series(variant, _VARIANT)).all(1)]
                    if rule is not None:
                        rows = rows[rows["finetune_restore_best"] == rule]
                    if rows.empty:
                        continue
                    means = rows.groupby("_x", sort=True)[values].mean()
                    kw: dict[str, Any] = level_style(i).line_kwargs()
                    if len(rules) > 1:
                        kw["linestyle"] = LINESTYLES[j % len(LINESTYLES)]
                    xs = means.index.to_numpy(dtype=float)
                    ax.plot(
                        xs, means[metric].to_numpy(dtype=float), label=_variant_text(*variant), **kw
                    )
                    if band:
                        ax.fill_between(
                            xs,
                            means[f"{metric}_low"].to_numpy(dtype=float),
                            means[f"{metric}_high"].to_numpy(dtype=float),
                            color=kw["color"],
                            alpha=0.2,
                            linewidth=0,
                        )
            chance_line(ax, metric)
            ax.set_title(display_name(attack))
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel(display_name(metric))
        shown, labels = axes[0].get_legend_handles_labels()
        handles = list(dict(zip(labels, shown, strict=True)).values())  # one per label
        if len(rules) > 1:
            for j, rule in enumerate(rules):
                text = "best-dev epoch kept" if rule else "last epoch kept"
                handles.append(
                    Line2D(
                        [], [], color="0.3", linestyle=LINESTYLES[j % len(LINESTYLES)], label=text
                    )
                )
        if metric in ("auc", "balanced_accuracy") and not any(
            h.get_label().startswith("chance") for h in handles
        ):
            handles.append(Line2D([], [], label="chance (0.5)", **CHANCE))
        legend_above(axes[0], handles)
    return fig
