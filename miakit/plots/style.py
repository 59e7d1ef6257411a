"""The house style: rc parameters, palette, series and attack styles, and figure widths.

Figures are sized for a paper column (:data:`COLUMN_WIDTH`, :data:`FULL_WIDTH`), use the
Okabe-Ito colour-blind-safe palette, and never tell series apart by colour alone: members
and non-members, original and pruned models, and the levels of every legend also differ by
hatch, line style or marker (:class:`SeriesStyle`), so figures survive greyscale printing
(DESIGN.md, "Shape"; PAPER.md, "Reporting"). Each attack has one style in every figure
(:func:`attack_style`), and a figure is a column or the page wide (:func:`figure_width`).
The display names live in :mod:`miakit.plots.names` (re-exported here). The helpers draw
inside :func:`style_context`, so their output does not depend on whether :func:`use_style`
was called.

Importing this module chooses the Agg backend when there is no display and no backend was
chosen, before seaborn (and so ``matplotlib.pyplot``) is imported; ``miakit.plots`` imports
it first.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
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

from miakit.plots.names import DISPLAY_NAMES, LEVEL_NAMES, display_name  # noqa: E402

__all__ = [
    "ATTACK_COLUMNS",
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
    "attack_style",
    "display_name",
    "figure_width",
    "house_rc",
    "level_style",
    "series_styles",
    "style_context",
    "use_style",
]

COLUMN_WIDTH: float = 3.3
"""Width in inches of a single-column figure (a two-column paper's column; issue 13)."""

FULL_WIDTH: float = 7.0
"""Width in inches of a figure spanning both columns."""

WIDTHS: tuple[float, float] = (COLUMN_WIDTH, FULL_WIDTH)
"""The only figure widths: a column or the full page (issue 13, item 7)."""

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


ATTACK_COLUMNS: tuple[str, ...] = ("attack", "baseline_attack")
"""Columns whose levels are attack names: their series take :func:`attack_style`."""

_ATTACK_COLOURS = (*PALETTE[:7], "#8C8C8C")  # grey for yellow: an attack must read on white


def _attack_slot(i: int, label: str) -> SeriesStyle:
    """The ``i``-th attack slot of :func:`attack_style`.

    Eight colours and nine markers in turn; the line style changes once every eight
    slots (so two attacks of one colour differ in line style too), and so does the
    hatch's offset. Colour and marker, line style and marker, and colour and hatch each
    differ between any two of the first 56 slots.
    """
    turn = i // len(_ATTACK_COLOURS)
    return SeriesStyle(
        label=label,
        color=_ATTACK_COLOURS[i % len(_ATTACK_COLOURS)],
        hatch=HATCHES[(i + 3 * turn) % len(HATCHES)],
        linestyle=LINESTYLES[turn % len(LINESTYLES)],
        marker=MARKERS[i % len(MARKERS)],
    )


def attack_style(name: str, label: str = "") -> SeriesStyle | None:
    """The one style of an attack in every figure: colour, marker, line style and hatch.

    Fixed by the attack's position in :data:`miakit.attacks.ATTACKS` (the paper's order,
    then the attacks beyond it), so SAMIA has the same colour and marker in a ROC plot,
    a bar chart and a sweep, whichever other attacks share the figure (issue 13, item 7).
    Colour and marker together differ between any two attacks (and so do line style
    and marker, for greyscale); two attacks share a colour only eight places apart in
    the registry (Gap and SAMIA, Conf and Max-conf, ...), with different line styles.

    Returns:
        The style, or ``None`` for a name that is not a registered attack.
    """
    from miakit.attacks import ATTACKS  # lazily: the registry pulls in torch

    names = list(ATTACKS)
    return _attack_slot(names.index(name), label) if name in ATTACKS else None


def series_styles(column: str | None, values: Sequence[Any]) -> list[SeriesStyle]:
    """The style of each level of a legend: an attack's own, else :func:`level_style`.

    Levels of an attack column (:data:`ATTACK_COLUMNS`, or levels that are all attack
    names) take :func:`attack_style`; a level of such a column that is no registered
    attack takes a slot after every registered one, so it never repeats an attack's
    style. Levels of any other column take ``level_style(i)`` in order.
    """
    from miakit.attacks import ATTACKS

    attacks = column in ATTACK_COLUMNS or (
        bool(values) and all(isinstance(v, str) and v in ATTACKS for v in values)
    )
    if not attacks:
        return [level_style(i) for i in range(len(values))]
    out, extra = [], len(ATTACKS)
    for v in values:
        style = attack_style(v) if isinstance(v, str) else None
        if style is None:
            style, extra = _attack_slot(extra, ""), extra + 1
        out.append(style)
    return out


def figure_width(width: float) -> float:
    """The allowed width nearest ``width``: :data:`COLUMN_WIDTH` or :data:`FULL_WIDTH`.

    A paper's figures are a column or the page wide (issue 13, item 7); the helpers and
    :func:`~miakit.plots.save_figure` give every figure one of the two.
    """
    return min(WIDTHS, key=lambda w: (abs(float(width) - w), w))


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
