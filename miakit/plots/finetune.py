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

from miakit.plots._axes import CHANCE, chance_label, chance_line, name_setting, sized
from miakit.plots._frame import levels, numeric, require_columns
from miakit.plots.names import readable
from miakit.plots.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    LINESTYLES,
    MARKERS,
    series_styles,
    style_context,
)

__all__ = ["finetune_lines"]

_VARIANT = ("victim_pruner", "victim_sparsity", "victim_defense")
# The original: a solid grey level, told from the coloured variant lines by its colour
# and from chance (dotted) by its style; the variants are solid unless two kept-weights
# rules share the figure (then the rule sets the style), so no dash means two things.
_ORIGINAL = {"color": "0.45", "linestyle": "-", "linewidth": 1.4, "alpha": 0.8}


def _variant_text(pruner: str, sparsity: float, defense: str) -> str:
    """A victim's legend text from its real columns (never parsed from a label)."""
    text = readable(pruner, "victim_pruner")
    if pruner not in ("none", "finetuned"):
        text += f"@{sparsity:g}"
    return text if defense == "none" else f"{text} + {readable(defense)}"


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

    Each panel's lines are in its attack's colour (:func:`~miakit.plots.attack_style`,
    the same in every figure); each fine-tuned victim variant (the control
    ``victim_pruner == "finetuned"``, each pruned one) has its own marker, the same in
    every panel. The original (``victim_pruner == "none"``) is a solid grey reference
    level, and chance a dotted one (0.5 for AUC, x% for the TPR at
    x% FPR). With ``dataset`` / ``arch`` columns, the figure names them. With the columns
    ``<metric>_low`` and ``<metric>_high`` (an interval, e.g. from a summarised table)
    each line gets a band between them. Several rows per point (e.g. seeds, not
    summarised) are averaged. With both ``finetune_restore_best`` values in the table,
    the line style tells them apart (solid: best-dev epoch kept, dashed: last epoch kept).
    The legend is below the panels, the figure wide.

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
    # best-dev (the paper's rule) first, so it is always the solid style and dashed is
    # always "last epoch kept", whatever order the rows come in
    rules = (
        sorted(levels(data, "finetune_restore_best"), reverse=True)
        if "finetune_restore_best" in data
        else [None]
    )
    width = COLUMN_WIDTH if len(names) == 1 else FULL_WIDTH
    colours = [style.color for style in series_styles("attack", names)]
    with style_context():
        fig, axes = plt.subplots(
            1,
            len(names),
            figsize=sized(figsize, (width, 2.4)),
            sharey=True,
            layout="constrained",
        )
        axes = np.atleast_1d(axes)
        for ax, attack, colour in zip(axes, names, colours, strict=True):
            mine = data[data["attack"] == attack]
            base = mine[mine["victim_pruner"] == "none"]
            if not base.empty:
                ax.axhline(float(base[metric].mean()), label="original", **_ORIGINAL)
            for i, variant in enumerate(variants):
                for j, rule in enumerate(rules):
                    rows = mine[(mine[list(_VARIANT)] == pd.Series(variant, _VARIANT)).all(1)]
                    if rule is not None:
                        rows = rows[rows["finetune_restore_best"] == rule]
                    if rows.empty:
                        continue
                    means = rows.groupby("_x", sort=True)[values].mean()
                    kw: dict[str, Any] = _variant_kwargs(i, j if len(rules) > 1 else None)
                    kw["color"] = colour
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
                            alpha=0.15,
                            linewidth=0,
                        )
            chance_line(ax, metric)
            ax.set_title(readable(attack, "attack"), color=colour)
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel(readable(metric))
        # The colour is the panel's attack: the legend shows the variants in neutral grey.
        handles: list[Any] = []
        if original.any():
            handles.append(Line2D([], [], label="original", **_ORIGINAL))
        for i, variant in enumerate(variants):
            kw = _variant_kwargs(i, 0 if len(rules) > 1 else None)
            handles.append(Line2D([], [], label=_variant_text(*variant), **kw, color="0.3"))
        if len(rules) > 1:
            for j, rule in enumerate(rules):
                text = "best-dev epoch kept" if rule else "last epoch kept"
                handles.append(
                    Line2D(
                        [], [], color="0.3", linestyle=LINESTYLES[j % len(LINESTYLES)], label=text
                    )
                )
        chance = chance_label(metric)
        if chance is not None:
            handles.append(Line2D([], [], label=chance, **CHANCE))
        # below the panels, the whole figure wide: above the first panel it hid its title
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 4 if len(names) > 1 else 2),
            frameon=False,
        )
        name_setting(fig, frame)
    return fig


def _variant_kwargs(i: int, rule: int | None) -> dict[str, Any]:
    """Marker of the ``i``-th variant; line style solid, or the ``rule``'s when given."""
    style = "-" if rule is None else LINESTYLES[rule % len(LINESTYLES)]
    return {"linestyle": style, "marker": MARKERS[i % len(MARKERS)]}
