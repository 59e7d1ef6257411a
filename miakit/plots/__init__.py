"""The house style and the figure helpers the notebooks call (DESIGN.md, "Shape").

Every figure in the notebooks is one call here, and every figure is saved with
:func:`save_figure` (PNG + PDF under ``figures/<profile>/``) so that a rerun
rewrites byte-identical files when nothing changed. The figures follow the
paper's analyses (PAPER.md, "Prediction divergence (the analysis)" and
"Reporting"):

* :func:`divergence_histograms`: member vs non-member histograms of the
  ground-truth-class confidence (or sensitivity), original vs pruned model.
* :func:`class_gap_bars`: per-class member - non-member mean gaps, original vs pruned.
* :func:`roc_loglog`: log-log ROC curves for the low-FPR regime.
* :func:`attack_bars`: attack AUC (or accuracy, TPR at low FPR) per attack and victim.
* :func:`metric_lines`: a metric against a setting, e.g. attack AUC vs sparsity per pruner.
* :func:`privacy_utility`: test accuracy vs attack success per defense setting.
* :func:`heatmap`: e.g. attack AUC for victim pruner x shadow pruner (adversary knowledge).
* :func:`finetune_lines`: attack success vs fine-tune epochs, fine-tuned only vs pruned.

The house style (:func:`use_style`, in :mod:`miakit.plots.style`) is sized for a paper
column or page (:data:`COLUMN_WIDTH` 3.3 in, :data:`FULL_WIDTH` 7 in, and no other width:
:func:`figure_width`), uses the Okabe-Ito colour-blind-safe palette, and never tells
series apart by colour alone (:class:`SeriesStyle`), so figures survive greyscale
printing. The rules a reviewer reads at a glance (issue 13, item 7; PAPER.md,
"Reporting"): each attack has one style in every figure (:func:`attack_style`); ROC axes
start at one non-member; metrics with a chance level (AUC 0.5, TPR at x% FPR x%,
:func:`chance_value`) draw it, and heat maps are centred on it; a figure comparing methods
names its dataset and architecture (:func:`setting_text`); every DP point shows its
epsilon; seeds become 95% intervals; no internal id reaches a text (:func:`display_name`,
:func:`readable`; checked by :func:`figure_problems`).

Modules: ``style`` (rc, palette, series and attack styles, widths), ``names`` (display
names), ``save`` (files), ``audit`` (the rules, checked), ``divergence``, ``roc``,
``attacks``, ``sweeps`` and ``finetune`` (the figures).

Example:
    >>> from miakit import plots
    >>> plots.use_style()                                              # doctest: +SKIP
    >>> fig = plots.attack_bars(table, metric="auc")                   # doctest: +SKIP
    >>> plots.save_figure(fig, "attack_auc", profile="quick")          # doctest: +SKIP
    [PosixPath('figures/quick/attack_auc.png'), PosixPath('figures/quick/attack_auc.pdf')]
"""

from __future__ import annotations

# isort: off
# style first: importing it chooses the backend before anything imports matplotlib.pyplot.
from miakit.plots.style import (
    ATTACK_COLUMNS,
    COLUMN_WIDTH,
    DISPLAY_NAMES,
    FULL_WIDTH,
    HATCHES,
    LEVEL_NAMES,
    LINESTYLES,
    MARKERS,
    MEMBER_STYLE,
    NONMEMBER_STYLE,
    ORIGINAL_STYLE,
    PALETTE,
    PNG_DPI,
    PRUNED_STYLE,
    WIDTHS,
    SeriesStyle,
    attack_style,
    display_name,
    figure_width,
    house_rc,
    level_style,
    series_styles,
    style_context,
    use_style,
)

# isort: on
from miakit.plots._axes import chance_value
from miakit.plots.attacks import attack_bars, heatmap
from miakit.plots.audit import figure_problems, figure_texts, internal_ids
from miakit.plots.divergence import class_gap_bars, divergence_histograms
from miakit.plots.finetune import finetune_lines
from miakit.plots.names import ARCH_NAMES, readable, setting_text
from miakit.plots.roc import roc_loglog
from miakit.plots.save import figures_root, png_bytes, save_figure, save_table
from miakit.plots.sweeps import metric_lines, privacy_utility

__all__ = [
    "ARCH_NAMES",
    "ATTACK_COLUMNS",
    "figures_root",
    "COLUMN_WIDTH",
    "DISPLAY_NAMES",
    "FULL_WIDTH",
    "HATCHES",
    "LEVEL_NAMES",
    "LINESTYLES",
    "MARKERS",
    "MEMBER_STYLE",
    "NONMEMBER_STYLE",
    "ORIGINAL_STYLE",
    "PALETTE",
    "PNG_DPI",
    "PRUNED_STYLE",
    "SeriesStyle",
    "WIDTHS",
    "attack_bars",
    "attack_style",
    "chance_value",
    "class_gap_bars",
    "display_name",
    "divergence_histograms",
    "figure_problems",
    "figure_texts",
    "figure_width",
    "finetune_lines",
    "heatmap",
    "house_rc",
    "internal_ids",
    "level_style",
    "metric_lines",
    "privacy_utility",
    "readable",
    "roc_loglog",
    "png_bytes",
    "save_figure",
    "save_table",
    "series_styles",
    "setting_text",
    "style_context",
    "use_style",
]
