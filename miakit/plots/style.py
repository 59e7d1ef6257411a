"""The house style: rc parameters, palette, series styles, sizes and display names.

Figures are sized for a paper column (:data:`COLUMN_WIDTH`, :data:`FULL_WIDTH`), use the
Okabe-Ito colour-blind-safe palette, and never tell series apart by colour alone: members
and non-members, original and pruned models, and the levels of every legend also differ by
hatch, line style or marker (:class:`SeriesStyle`), so figures survive greyscale printing
(DESIGN.md, "Shape"; PAPER.md, "Reporting"). The helpers draw inside :func:`style_context`,
so their output does not depend on whether :func:`use_style` was called.

Importing this module chooses the Agg backend when there is no display and no backend was
chosen, before seaborn (and so ``matplotlib.pyplot``) is imported; ``miakit.plots`` imports
it first.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from cycler import cycler


def _select_backend() -> None:
    """Use the non-interactive Agg backend when there is no display and none was chosen.

    A backend set by the user (``MPLBACKEND``, ``matplotlib.use``, Jupyter's inline
    backend) is left alone.
    """
    if os.environ.get("MPLBACKEND"):
        return
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        get = getattr(mpl.rcParams, "_get_backend_or_none", None)
        if get is None or get() is None:
            mpl.use("Agg")


_select_backend()


import seaborn as sns  # noqa: E402  (after the backend choice: seaborn imports pyplot)

__all__ = [
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
    "display_name",
    "house_rc",
    "level_style",
    "style_context",
    "use_style",
]

COLUMN_WIDTH: float = 3.4
"""Width in inches of a single-column figure (a two-column paper's column)."""

FULL_WIDTH: float = 7.0
"""Width in inches of a figure spanning both columns."""

PNG_DPI: int = 150
"""Resolution of the PNG files: sharp on screen, small in the repository."""

PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)
"""The Okabe-Ito colour-blind-safe palette, in the order levels are coloured."""

LINESTYLES: tuple[str | tuple[float, tuple[float, ...]], ...] = (
    "-",
    "--",
    ":",
    "-.",
    (0, (5.0, 1.0, 1.0, 1.0, 1.0, 1.0)),  # dash-dot-dot
    (0, (9.0, 2.5)),  # long dash
    (0, (1.0, 1.0, 3.0, 1.0, 3.0, 1.0)),  # dot-dash-dash
)
"""Line styles of successive levels; with :data:`MARKERS` they tell series apart in greyscale.

Seven styles, eight colours and nine markers: the cycles never line up for the first 63
levels, so no two of those share both a line style and a marker.
"""

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<")
"""Markers of successive levels."""

HATCHES: tuple[str, ...] = ("", "////", "xxxx", "\\\\\\\\", "....", "++++", "oo", "||||")
"""Bar hatches of successive levels; the first level is a solid fill."""

_TINT = 0.3  # how much colour a hatched face keeps (the rest is white), so the hatch stays visible

DISPLAY_NAMES: dict[str, str] = {
    # Column names of results_frame and the Experiment tables (the paper's words).
    "auc": "attack AUC",
    "balanced_accuracy": "attack accuracy",
    "tpr@0.1%fpr": "TPR at 0.1% FPR",
    "tpr@1%fpr": "TPR at 1% FPR",
    "test_acc": "test accuracy",
    "train_acc": "train accuracy",
    "sparsity": "sparsity",
    "epsilon": "ε (DP-SGD)",
    "lam": "λ",
    "lambda": "λ",
    "theta": "θ",
    "noise_multiplier": "noise multiplier",
    "pruner": "pruning method",
    "defense": "defense",
    "attack": "attack",
    "victim": "victim",
    "shadows": "shadows",
    # The structured columns of the miakit.tables / miakit.sweep frames.
    "victim_pruner": "pruning method",
    "victim_sparsity": "sparsity",
    "victim_realised_sparsity": "realised sparsity",
    "victim_defense": "defense",
    "victim_train_acc": "train accuracy",
    "victim_test_acc": "test accuracy",
    "victim_epsilon": "ε (DP-SGD)",
    "victim_delta": "δ (DP-SGD)",
    "victim_label": "victim",
    "shadow_pruner": "shadow pruning method",
    "shadow_sparsity": "shadow sparsity",
    "shadow_defense": "shadow defense",
    "shadow_label": "shadows",
}
"""Names shown on axes and legends for column names (the paper's words).

Column titles only: attacks, pruning methods, defenses and datasets take their text from
the ``title`` of their registry entry (:func:`display_name`). Unknown values are shown as
they are; a notebook may add entries.
"""


LEVEL_NAMES: dict[str, dict[Any, str]] = {
    "victim_pruner": {"none": "original", "finetuned": "fine-tuned only"},
    "shadow_pruner": {"none": "original", "finetuned": "fine-tuned only"},
    "adaptive": {False: "non-adaptive attack", True: "adaptive attack"},
}
"""Texts of particular values of particular columns: ``display_name(value, column)``.

A pruner column's ``"none"`` is the original (unpruned) model, not the defense of that
name; ``adaptive`` tells the two adversaries of PAPER.md, "The defense" apart.
"""


def _registry_title(key: str) -> str | None:
    """The ``title`` of the registry entry called ``key``, if any registry has one.

    The registries are imported here, not at module level: they sit in lower layers
    (attacks, pruning, defenses, data) and pull in torch, and only their titles are
    needed. Attacks come first, then pruning methods, defenses and datasets.
    """
    from miakit.attacks import ATTACKS
    from miakit.data import DATASETS
    from miakit.defenses import DEFENSES
    from miakit.prune import PRUNERS

    registries: tuple[Mapping[str, Any], ...] = (ATTACKS, PRUNERS, DEFENSES, DATASETS)
    for registry in registries:
        title = getattr(registry.get(key), "title", None)
        if isinstance(title, str) and title:
            return title
    return None


def _title(key: str) -> str | None:
    """A registry entry's title, else the column title in :data:`DISPLAY_NAMES`, else ``None``."""
    title = _registry_title(key)
    return title if title is not None else DISPLAY_NAMES.get(key)


def display_name(value: Any, column: str | None = None) -> str:
    """The text shown for a column name or a category level.

    Args:
        value: a column name (``"auc"``), a registry key (an attack ``"samia"``, a pruning
            method ``"l1_unstructured"``, a defense ``"ppb"``, a dataset ``"cifar10"``) or
            a number.
        column: the column ``value`` comes from, when it is a level: values listed for
            that column in :data:`LEVEL_NAMES` get their text there (``"none"`` of
            ``victim_pruner`` is ``"original"``, ``True`` of ``adaptive`` is
            ``"adaptive attack"``).

    Returns:
        The :data:`LEVEL_NAMES` text of ``(column, value)``, if any. Else, for a string:
        the ``title`` of its registry entry (``ATTACKS``, ``PRUNERS``, ``DEFENSES``,
        ``DATASETS``), else its :data:`DISPLAY_NAMES` entry; a variant label such as
        ``"l1_unstructured@0.7"`` shows its pruner's title (``"L1 unstructured@0.7"``);
        any other string as it is. ``f"{value:g}"`` for a real number, else ``str(value)``.
    """
    named = LEVEL_NAMES.get(column, {}) if column is not None else {}
    if isinstance(value, (str, bool, np.bool_)) and value in named:
        return named[value]
    if isinstance(value, str):
        title = _title(value)
        if title is not None:
            return title
        # Variant labels ("l1_unstructured@0.7+ppb(...)"), the values of the display
        # columns victim_label / shadow_label (Variant.label): only the text is changed.
        head, at, tail = value.partition("@")
        if at:
            title = _title(head)
            if title is not None:
                return f"{title}@{tail}"
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value:g}"
    return str(value)


def _tint(color: str, amount: float = _TINT) -> tuple[float, float, float]:
    """``color`` mixed with white, keeping ``amount`` of the colour (an opaque face colour)."""
    r, g, b = mpl.colors.to_rgb(color)
    return (1 - amount + amount * r, 1 - amount + amount * g, 1 - amount + amount * b)


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn, so it stays recognisable without colour.

    Attributes:
        label: the legend text.
        color: the series' colour (hatches and outlines use it too).
        hatch: bar/histogram hatch; ``""`` is a solid fill.
        linestyle: line style of lines and histogram outlines.
        marker: marker of line plots.
        filled: whether bars and histograms are filled (``False``: outline only).
    """

    label: str
    color: str
    hatch: str
    linestyle: str | tuple[float, tuple[float, ...]]
    marker: str
    filled: bool = True

    def bar_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.bar`` (and filled histograms).

        A hatched face is a light tint of the colour with the hatch in full colour; an
        unhatched face is the full colour. Both read differently in greyscale.
        """
        if not self.filled:
            face: Any = "none"
        elif self.hatch:
            face = _tint(self.color)
        else:
            face = self.color
        return {
            "facecolor": face,
            "edgecolor": self.color,
            "hatch": self.hatch or None,
            "linewidth": 0.6,
        }

    def line_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot``: colour, line style and marker."""
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}


MEMBER_STYLE = SeriesStyle("member", PALETTE[0], "////", "-", "o", filled=True)
"""Members (in the training set): a hatched, filled blue histogram with a solid outline."""

NONMEMBER_STYLE = SeriesStyle("non-member", PALETTE[1], "", "--", "s", filled=False)
"""Non-members: an unfilled orange histogram with a dashed outline."""

ORIGINAL_STYLE = SeriesStyle("original", PALETTE[4], "", "-", "o", filled=True)
"""The original (unpruned) model: solid light-blue bars, solid lines, circles."""

PRUNED_STYLE = SeriesStyle("pruned", PALETTE[3], "xxxx", "--", "s", filled=True)
"""The pruned model: hatched vermillion bars, dashed lines, squares."""


def level_style(i: int, label: str = "") -> SeriesStyle:
    """The style of the ``i``-th level of a legend (hue): colour, hatch, line style, marker.

    Args:
        i: the level's position (0-based) in order of first appearance.
        label: its legend text.

    Returns:
        A :class:`SeriesStyle` whose hatch, line style and marker cycle independently of
        the colour, so levels stay distinct in greyscale.
    """
    return SeriesStyle(
        label=label,
        color=PALETTE[i % len(PALETTE)],
        hatch=HATCHES[i % len(HATCHES)],
        linestyle=LINESTYLES[i % len(LINESTYLES)],
        marker=MARKERS[i % len(MARKERS)],
    )


def house_rc() -> dict[str, Any]:
    """The house style as matplotlib rc parameters.

    Seaborn's ``"ticks"`` style with a light grid and ``"paper"`` context, fonts of 7-8 pt
    (readable at :data:`COLUMN_WIDTH`), thin lines, the Okabe-Ito palette, constrained
    layout, TrueType fonts in PDFs (editable text), and a fixed SVG hash salt (stable
    SVG ids). DejaVu Sans ships with matplotlib, so the figures render the same everywhere.

    Returns:
        A fresh dict for ``matplotlib.rcParams.update`` or ``matplotlib.rc_context``.
    """
    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("ticks"))
    rc.update(sns.plotting_context("paper"))
    rc.update(
        {
            "axes.prop_cycle": cycler(color=list(PALETTE)),
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans"],
            "font.size": 8.0,
            "axes.labelsize": 8.0,
            "axes.titlesize": 8.0,
            "axes.titleweight": "normal",
            "axes.titlepad": 4.0,
            "axes.labelpad": 2.0,
            "xtick.labelsize": 7.0,
            "ytick.labelsize": 7.0,
            "legend.fontsize": 7.0,
            "legend.title_fontsize": 7.0,
            "axes.linewidth": 0.6,
            "axes.edgecolor": "0.15",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "axes.axisbelow": True,
            "grid.color": "0.9",
            "grid.linewidth": 0.4,
            "grid.linestyle": "-",
            "xtick.major.width": 0.6,
            "ytick.major.width": 0.6,
            "xtick.minor.width": 0.4,
            "ytick.minor.width": 0.4,
            "xtick.major.size": 2.5,
            "ytick.major.size": 2.5,
            "xtick.minor.size": 1.5,
            "ytick.minor.size": 1.5,
            "xtick.major.pad": 2.0,
            "ytick.major.pad": 2.0,
            "lines.linewidth": 1.0,
            "lines.markersize": 3.5,
            "lines.markeredgewidth": 0.6,
            "patch.linewidth": 0.6,
            "hatch.linewidth": 0.5,
            "hatch.color": "edge",
            "errorbar.capsize": 1.5,
            "legend.frameon": True,
            "legend.framealpha": 0.85,
            "legend.edgecolor": "0.85",
            "legend.fancybox": False,
            "legend.borderpad": 0.3,
            "legend.labelspacing": 0.3,
            "legend.handlelength": 2.6,
            "legend.handletextpad": 0.5,
            "legend.columnspacing": 1.0,
            "figure.figsize": (COLUMN_WIDTH, 2.4),
            "figure.dpi": PNG_DPI,
            "figure.facecolor": "white",
            "figure.constrained_layout.use": True,
            "savefig.dpi": PNG_DPI,
            "image.cmap": "cividis",
            "mathtext.default": "regular",
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "svg.hashsalt": "miakit",
        }
    )
    return rc


def use_style() -> None:
    """Apply the house style globally (call once at the top of a notebook).

    Also selects the Agg backend when there is no display and no backend was chosen.
    The figure helpers apply the style themselves (:func:`style_context`); this makes
    ad-hoc figures match them.
    """
    _select_backend()
    mpl.rcParams.update(house_rc())


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """A context in which matplotlib uses the house style; the previous style comes back after.

    Example:
        >>> with style_context():                                     # doctest: +SKIP
        ...     fig, ax = plt.subplots()
    """
    with mpl.rc_context(house_rc()):
        yield
