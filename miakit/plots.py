"""The house style and the figure helpers the notebooks call (DESIGN.md, "Shape").

Every figure in the notebooks is one call here, and every figure is saved with
:func:`save_figure` (PNG + PDF under ``figures/<profile>/``) so that a rerun
rewrites byte-identical files when nothing changed. The figures follow the
paper's analyses (PAPER.md, "Prediction divergence (the analysis)" and
"Reporting"):

* :func:`divergence_histograms`: member vs non-member histograms of the
  ground-truth-class confidence (or sensitivity), original vs pruned model.
* :func:`class_gap_bars`: per-class member - non-member mean gaps, original vs pruned
  (:func:`class_gaps` builds its input from two :func:`miakit.metrics.divergence_stats`).
* :func:`roc_loglog`: log-log ROC curves for the low-FPR regime.
* :func:`attack_bars`: attack AUC (or accuracy, TPR at low FPR) per attack and victim.
* :func:`metric_lines`: a metric against a setting, e.g. attack AUC vs sparsity per pruner.
* :func:`privacy_utility`: test accuracy vs attack success per defense setting.
* :func:`heatmap`: e.g. attack AUC for victim pruner x shadow pruner (adversary knowledge).

The house style (:func:`use_style`) is sized for a paper column
(:data:`COLUMN_WIDTH`, :data:`FULL_WIDTH`), uses the Okabe-Ito colour-blind-safe
palette, and never tells series apart by colour alone: members and non-members,
original and pruned models, and the levels of every legend also differ by
hatch, line style or marker (:class:`SeriesStyle`), so figures survive greyscale
printing. The helpers draw inside :func:`style_context`, so their output does not
depend on whether :func:`use_style` was called.

Example:
    >>> from miakit import plots
    >>> plots.use_style()                                              # doctest: +SKIP
    >>> fig = plots.attack_bars(table, metric="auc")                   # doctest: +SKIP
    >>> plots.save_figure(fig, "attack_auc", profile="quick")          # doctest: +SKIP
    [PosixPath('figures/quick/attack_auc.png'), PosixPath('figures/quick/attack_auc.pdf')]
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import matplotlib as mpl
import numpy as np
import pandas as pd
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

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

__all__ = [
    "figures_root",
    "COLUMN_WIDTH",
    "DISPLAY_NAMES",
    "FULL_WIDTH",
    "HATCHES",
    "LINESTYLES",
    "MARKERS",
    "MEMBER_STYLE",
    "NONMEMBER_STYLE",
    "ORIGINAL_STYLE",
    "PALETTE",
    "PNG_DPI",
    "PRUNED_STYLE",
    "SeriesStyle",
    "attack_bars",
    "class_gap_bars",
    "class_gaps",
    "display_name",
    "divergence_histograms",
    "heatmap",
    "house_rc",
    "level_style",
    "metric_lines",
    "privacy_utility",
    "roc_loglog",
    "save_figure",
    "save_table",
    "style_context",
    "use_style",
]

# --------------------------------------------------------------------------------------------------
# the house style
# --------------------------------------------------------------------------------------------------

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
_CHANCE = {"color": "0.35", "linestyle": ":", "linewidth": 0.8}

DISPLAY_NAMES: dict[str, str] = {
    # attacks (PAPER.md, "The eight existing attacks", "SAMIA"; miakit.attacks.ATTACKS)
    "gap": "Gap",
    "conf": "Conf",
    "xent": "Xent",
    "mentr": "Mentr",
    "top1_conf": "Top1-conf",
    "nn": "NN",
    "top3_nn": "Top3-NN",
    "nncls": "NNCls",
    "samia": "SAMIA",
    "lira": "LiRA",
    "rmia": "RMIA",
    # pruning methods (PAPER.md, "Pruning"; miakit.prune.PRUNERS)
    "l1_unstructured": "L1 unstructured",
    "l1_structured": "L1 structured",
    "l2_structured": "L2 structured",
    "slimming": "network slimming",
    # defenses (PAPER.md, "The defense"; miakit.defenses.DEFENSES)
    "none": "no defense",
    "ppb": "PPB",
    "advreg": "AdvReg",
    "dpsgd": "DP-SGD",
    # columns of results_frame and the Experiment tables
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
}
"""Names shown on axes, ticks and legends for the kit's identifiers (the paper's words).

Unknown values are shown as they are; a notebook may add entries.
"""


def display_name(value: Any) -> str:
    """The text shown for a column name or a category level.

    Args:
        value: a column name (``"auc"``), a level (``"samia"``, ``"l1_unstructured"``) or a
            number.

    Returns:
        The :data:`DISPLAY_NAMES` entry of a string that has one (for a variant label
        such as ``"l1_unstructured@0.7"``, of its pruner: ``"L1 unstructured@0.7"``),
        ``f"{value:g}"`` for a real number, else ``str(value)``.
    """
    if isinstance(value, str):
        if value in DISPLAY_NAMES:
            return DISPLAY_NAMES[value]
        head, at, tail = value.partition("@")  # Variant labels: "l1_unstructured@0.7+ppb(...)"
        if at and head in DISPLAY_NAMES:
            return f"{DISPLAY_NAMES[head]}@{tail}"
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


# --------------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@=+-]*")
_PROFILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_EXTENSIONS = (".png", ".pdf", ".csv", ".svg", ".jpg", ".jpeg")

#: PDF metadata with no dates and a fixed producer, so the bytes depend only on the figure.
_PDF_METADATA: dict[str, Any] = {
    "Creator": "miakit",
    "Producer": "miakit (matplotlib)",
    "CreationDate": None,
    "ModDate": None,
}
#: PNG metadata without the matplotlib version.
_PNG_METADATA: dict[str, Any] = {"Software": None}


def _check_name(name: Any, what: str = "name") -> str:
    """A figure or table name, validated: one file-name stem, no folders, no extension."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string such as 'roc_pruned', got {name!r}")
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name) or os.sep in name:
        raise ValueError(
            f"{what} {name!r} contains a path separator; give a bare file stem such as "
            "'roc_pruned' (the folder is figures/<profile>/, chosen by profile and root)"
        )
    if name.lower().endswith(_EXTENSIONS):
        raise ValueError(
            f"{what} {name!r} has a file extension; give the stem only (e.g. "
            f"{name.rsplit('.', 1)[0]!r}): the PNG, PDF or CSV extension is added for you"
        )
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} must start with a letter, digit or '_' and contain only letters, "
            "digits and _ . @ = + -; rename it, e.g. 'auc_vs_sparsity'"
        )
    return name


def _check_profile(profile: Any) -> str:
    """A profile name (``smoke``, ``quick``, ``paper`` or a custom one), validated."""
    if not isinstance(profile, str) or not _PROFILE_RE.fullmatch(profile):
        raise ValueError(
            f"profile must be a profile name such as 'smoke', 'quick' or 'paper' (letters, "
            f"digits, _ . -; no path separators), got {profile!r}; pass the notebook's profile, "
            "e.g. profile=config_profile"
        )
    return profile


def figures_root() -> Path:
    """Where figures go: ``MIAKIT_FIGURES``, else the repository's ``figures/``.

    The repository is found by walking up from the working directory to a folder
    holding both ``pyproject.toml`` and ``notebooks/`` (so a notebook run from
    ``notebooks/`` by JupyterLab, papermill or nbval writes to the top-level
    ``figures/``); outside a checkout, ``./figures``.
    """
    env = os.environ.get("MIAKIT_FIGURES")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder / "figures"
    return here / "figures"


def _output_dir(profile: str, root: str | os.PathLike[str] | None) -> Path:
    folder = (figures_root() if root is None else Path(root)) / _check_profile(profile)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_figure(
    fig: Figure, name: str, *, profile: str, root: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write a figure as ``<root>/<profile>/<name>.png`` and ``.pdf``, then close it.

    The files are deterministic: the same figure gives the same bytes on every run (no
    dates, a fixed PDF producer, no PNG software tag, a fixed SVG hash salt), so
    regenerated figures only show up in ``git diff`` when they really changed. Each file
    is written to a temporary file and renamed into place, so a killed run never leaves
    a half-written figure. Folders are created as needed.

    Args:
        fig: the figure (e.g. from one of the helpers here).
        name: the file stem, e.g. ``"roc_pruned"``; no folders, no extension.
        profile: the run's profile (``"smoke"``, ``"quick"``, ``"paper"``); figures of
            each profile live in their own folder.
        root: the figures folder (default :func:`figures_root`, the top-level ``figures/``).

    Returns:
        The paths written: ``[png, pdf]``.

    Raises:
        ValueError: on a name with a path separator or extension, a bad profile, or a
            ``fig`` that is not a matplotlib Figure.
    """
    if not isinstance(fig, Figure):
        raise ValueError(
            f"save_figure needs a matplotlib Figure, got {type(fig).__name__}; "
            "pass the figure a helper returned (or ax.figure)"
        )
    name = _check_name(name)
    folder = _output_dir(profile, root)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    common = {"facecolor": "white", "edgecolor": "none", "bbox_inches": "tight", "pad_inches": 0.02}
    try:
        with style_context():
            _atomic_write(
                paths[0],
                lambda fh: fig.savefig(
                    fh, format="png", dpi=PNG_DPI, metadata=_PNG_METADATA, **common
                ),
            )
            _atomic_write(
                paths[1],
                lambda fh: fig.savefig(fh, format="pdf", metadata=_PDF_METADATA, **common),
            )
    finally:
        plt.close(fig)
    return paths


def save_table(
    frame: pd.DataFrame,
    name: str,
    *,
    profile: str,
    root: str | os.PathLike[str] | None = None,
    digits: int = 6,
) -> Path:
    """Write a table as ``<root>/<profile>/<name>.csv`` beside the figures.

    Deterministic: no index column, ``\\n`` line ends, UTF-8, and floats written with
    ``digits`` significant digits (``%.6g``), so rounding noise in the last bits does not
    change the file. Written atomically (temporary file, then rename).

    Args:
        frame: the table, e.g. :func:`miakit.metrics.results_frame` output.
        name: the file stem, e.g. ``"attack_results"``; no folders, no extension.
        profile: the run's profile (its folder).
        root: the figures folder (default :func:`figures_root`).
        digits: significant digits of floating-point columns.

    Returns:
        The path written.

    Raises:
        ValueError: on a bad name or profile, a ``frame`` that is not a DataFrame, or
            ``digits`` outside 1-17.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"save_table needs a pandas DataFrame, got {type(frame).__name__}; "
            "wrap it, e.g. pd.DataFrame(rows)"
        )
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ValueError(f"digits must be an integer in 1-17 (significant digits), got {digits!r}")
    name = _check_name(name)
    folder = _output_dir(profile, root)
    path = folder / f"{name}.csv"
    text = frame.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return path


# --------------------------------------------------------------------------------------------------
# input checks and small helpers
# --------------------------------------------------------------------------------------------------


def _require_columns(frame: Any, columns: Sequence[str | None], func: str) -> pd.DataFrame:
    """Raise a clear error unless ``frame`` is a non-empty DataFrame holding ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{func} needs a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise KeyError(
            f"{func}: column(s) {missing} not in the table; it has {list(frame.columns)}. "
            "Pass column names the table has, or add the missing column first"
        )
    if frame.empty:
        raise ValueError(f"{func}: the table is empty; there is nothing to plot")
    return frame


def _levels(frame: pd.DataFrame, column: str | None) -> list[Any]:
    """The distinct values of a column, in order of first appearance."""
    if column is None:
        return [None]
    values = frame[column]
    if values.isna().any():
        raise ValueError(
            f"column {column!r} has missing values; fill them (e.g. .fillna('none')) "
            "or drop those rows"
        )
    return list(pd.unique(values))


def _numeric(frame: pd.DataFrame, column: str, func: str) -> pd.Series:
    """A column as floats; raise ``ValueError`` if it is not numeric."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        raise ValueError(
            f"{func}: column {column!r} must be numeric, got values such as "
            f"{frame[column][bad].iloc[:3].tolist()}; pick a numeric column or convert it"
        )
    return values.astype(float)


def _aggregate(
    frame: pd.DataFrame, keys: Sequence[str], value: str, func: str
) -> tuple[pd.DataFrame, bool]:
    """Mean and standard deviation of ``value`` per ``keys`` (several seeds -> error bars)."""
    data = frame.assign(_value=_numeric(frame, value, func))
    stats = data.groupby(list(keys), sort=False, dropna=False)["_value"].agg(
        ["mean", "std", "size"]
    )
    return stats, bool((stats["size"] > 1).any())


def _new_axes(ax: Axes | None, figsize: tuple[float, float] | None) -> tuple[Figure, Axes]:
    """The given axes and their figure, or a new constrained-layout figure with one axes."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new = plt.subplots(figsize=figsize or (COLUMN_WIDTH, 2.4), layout="constrained")
    return fig, new


def _membership(values: Any, membership: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite 1-D values and a 0/1 membership of equal length with both groups present."""
    v = np.asarray(values, dtype=float)
    m = np.asarray(membership)
    if v.ndim != 1 or m.ndim != 1 or v.shape != m.shape:
        raise ValueError(
            f"values_{what} and membership_{what} must be 1-D arrays of the same length, got "
            f"shapes {v.shape} and {m.shape}"
        )
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"membership_{what} must hold only 0 (non-member) and 1 (member)")
    m = m.astype(bool)
    if m.all() or not m.any():
        raise ValueError(
            f"membership_{what} needs both members and non-members, got {int(m.sum())} members "
            f"of {m.size}"
        )
    if not np.isfinite(v).all():
        raise ValueError(f"values_{what} must be finite; clip or drop NaN/inf first")
    return v, m


def _axes_width_pt(ax: Axes) -> float:
    """Roughly the axes' width in points once constrained layout has run (0.85 of its share)."""
    return 72.0 * ax.figure.get_figwidth() * ax.get_position().width / 0.775 * 0.85


def _category_ticks(ax: Axes, labels: Sequence[str], *, offset: float = 0.0) -> None:
    """Category tick labels at ``offset + 0, 1, ...``: level, else slanted, else every k-th.

    Estimated from the label lengths and the axes width, so a crowded axis (11 attacks in a
    column, 100 classes: every 5th or 10th) stays readable.
    """
    n = len(labels)
    positions = np.arange(n, dtype=float) + offset
    font = mpl.font_manager.FontProperties(size=mpl.rcParams["xtick.labelsize"])
    size = font.get_size_in_points()
    slot = _axes_width_pt(ax) / max(n, 1)
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


def _legend_above(
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
    width = _axes_width_pt(ax)
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


def _chance_line(ax: Axes, metric: str, *, horizontal: bool = True) -> None:
    """The 0.5 line of a guessing attack, for AUC and balanced accuracy."""
    if metric in ("auc", "balanced_accuracy"):
        if horizontal:
            ax.axhline(0.5, label="chance (0.5)", zorder=1, **_CHANCE)
        else:
            ax.axvline(0.5, label="chance (0.5)", zorder=1, **_CHANCE)


# --------------------------------------------------------------------------------------------------
# prediction divergence (PAPER.md, "Prediction divergence (the analysis)")
# --------------------------------------------------------------------------------------------------


def divergence_histograms(
    values_original: Any,
    values_pruned: Any,
    membership_original: Any,
    membership_pruned: Any,
    *,
    xlabel: str = "ground-truth-class confidence",
    log: bool = False,
    bins: int = 30,
    titles: tuple[str, str] = ("original", "pruned"),
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Member vs non-member histograms of a signal, original model | pruned model.

    The paper's "prediction divergence" (PAPER.md, "Prediction divergence (the
    analysis)"): pruning pushes members' ground-truth-class confidence up more than
    non-members' (CIFAR-10 DenseNet121, L1 unstructured at 0.7: means about 0.81 vs
    0.67 before pruning and 0.96 vs 0.73 after). Members are a hatched filled
    histogram, non-members an unfilled dashed outline; solid/dashed vertical lines
    mark each group's mean, also written in each panel. Both panels share bins and
    axes, and show densities so that groups of different sizes compare.

    Args:
        values_original: ``(n,)`` the signal on the original model, e.g.
            ``posteriors[np.arange(n), labels]`` (confidence) or the sensitivity ``s_y``.
        values_pruned: ``(n',)`` the same signal on the pruned model.
        membership_original: ``(n,)`` 0/1, 1 = member.
        membership_pruned: ``(n',)`` 0/1, 1 = member.
        xlabel: the signal's name.
        log: logarithmic density axis (confidences pile up near 1).
        bins: number of shared bins.
        titles: panel titles.
        figsize: ``(width, height)`` in inches; default column width.

    Returns:
        The figure (two axes).

    Raises:
        ValueError: on mismatched shapes, non-0/1 membership, a missing group or
            non-finite values.
    """
    v0, m0 = _membership(values_original, membership_original, "original")
    v1, m1 = _membership(values_pruned, membership_pruned, "pruned")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.histogram_bin_edges(np.concatenate([v0, v1]), bins=bins)
    with style_context():
        fig, axes = plt.subplots(
            1,
            2,
            figsize=figsize or (COLUMN_WIDTH, 2.1),
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for ax, v, m, title in zip(axes, (v0, v1), (m0, m1), titles, strict=True):
            means = []
            for style, group in ((MEMBER_STYLE, v[m]), (NONMEMBER_STYLE, v[~m])):
                mean = float(group.mean())
                means.append(f"{style.label} {mean:.2f}")
                ax.hist(
                    group,
                    bins=edges,
                    density=True,
                    histtype="stepfilled" if style.filled else "step",
                    log=log,
                    label=style.label,
                    **{
                        **style.bar_kwargs(),
                        "linestyle": style.linestyle,
                        "linewidth": 0.8 if style.filled else 1.2,
                    },
                )
                ax.axvline(
                    mean,
                    color=style.color,
                    linestyle=style.linestyle,
                    linewidth=0.9,
                    zorder=3,
                    gid=f"mean {style.label}",
                )
            # The means go in the upper corner away from most of the data.
            right_heavy = np.mean(v > (edges[0] + edges[-1]) / 2) > 0.5
            ax.text(
                0.03 if right_heavy else 0.97,
                0.97,
                "mean\n" + "\n".join(means),
                transform=ax.transAxes,
                ha="left" if right_heavy else "right",
                va="top",
                fontsize=6.5,
                linespacing=1.15,
                bbox={"boxstyle": "square,pad=0.25", "fc": "white", "ec": "0.85", "lw": 0.4},
                zorder=5,
            )
            ax.set_title(title)
        axes[0].set_ylabel("density (log)" if log else "density")
        fig.supxlabel(xlabel, fontsize=mpl.rcParams["axes.labelsize"])
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, handlelength=2.0)
    return fig


def class_gaps(
    original: pd.DataFrame, pruned: pd.DataFrame, *, column: str = "gap"
) -> pd.DataFrame:
    """Per-class gaps of the original and the pruned model side by side.

    Args:
        original: :func:`miakit.metrics.divergence_stats` of the original model.
        pruned: :func:`miakit.metrics.divergence_stats` of the pruned model.
        column: the column to compare (default ``"gap"``: member mean - non-member mean).

    Returns:
        A DataFrame with columns ``class``, ``original``, ``pruned`` (one row per class
        in either table, sorted by class): the input of :func:`class_gap_bars`.

    Raises:
        KeyError: when a table lacks ``class`` or ``column``.
    """
    for what, table in (("original", original), ("pruned", pruned)):
        _require_columns(table, ["class", column], f"class_gaps({what})")
    merged = pd.merge(
        original[["class", column]].rename(columns={column: "original"}),
        pruned[["class", column]].rename(columns={column: "pruned"}),
        on="class",
        how="outer",
        sort=True,
    )
    return merged.reset_index(drop=True)


def class_gap_bars(
    gaps: pd.DataFrame,
    *,
    ylabel: str = "member - non-member mean",
    xlabel: str = "class",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Per-class member - non-member mean gaps as grouped bars, original vs pruned.

    The paper's per-class bar charts (PAPER.md, "Prediction divergence (the
    analysis)"): the gap differs from class to class and pruning widens it (CIFAR-10:
    confidence gaps about 0.08-0.18 before pruning, 0.09-0.37 after). Original bars are
    solid, pruned bars hatched.

    Args:
        gaps: columns ``class``, ``original``, ``pruned`` (e.g. from :func:`class_gaps`).
        ylabel: what the gap is of.
        xlabel: the x-axis label.
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
    """
    _require_columns(gaps, ["class", "original", "pruned"], "class_gap_bars")
    classes = list(gaps["class"])
    x = np.arange(len(classes), dtype=float)
    width = 0.4
    with style_context():
        fig, ax = _new_axes(ax, figsize)
        for k, style in enumerate((ORIGINAL_STYLE, PRUNED_STYLE)):
            ax.bar(
                x + (k - 0.5) * width,
                _numeric(gaps, style.label, "class_gap_bars").to_numpy(dtype=float),
                width=width,
                label=style.label,
                **style.bar_kwargs(),
            )
        ax.axhline(0.0, color="0.15", linewidth=0.6, zorder=1)
        _category_ticks(ax, [display_name(c) for c in classes])
        ax.set_xlim(-0.6, len(classes) - 0.4)
        ax.grid(False, axis="x")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _legend_above(ax)
    return fig


# --------------------------------------------------------------------------------------------------
# ROC (PAPER.md, "Reporting")
# --------------------------------------------------------------------------------------------------


def roc_loglog(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    aucs: Mapping[str, float] | None = None,
    title: str | None = None,
    floor: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """ROC curves on log-log axes, for the low-FPR regime (PAPER.md, "Reporting").

    Each curve gets its own colour, line style and marker (so they stay distinct in
    greyscale); the dotted diagonal (labelled "chance") is a guessing attack. The axes
    start at ``floor`` (default: the smallest positive FPR of the curves, about
    ``1 / n_nonmembers``, rounded down to a power of ten and at least ``1e-5``); points
    below it, including the ``(0, 0)`` start, are drawn on the axis edge.

    Args:
        curves: legend name -> ``(fpr, tpr)``, e.g. the first two arrays of
            :func:`miakit.metrics.roc_curve`.
        aucs: legend name -> AUC, shown in the legend when given.
        title: a short title.
        floor: the lower end of both axes.
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        ValueError: on no curves, arrays of different lengths, rates outside [0, 1], or
            a ``floor`` outside (0, 1).
    """
    if not curves:
        raise ValueError("roc_loglog needs at least one curve: {name: (fpr, tpr)}")
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, pair in curves.items():
        if len(pair) < 2:
            raise ValueError(f"curve {name!r} must be (fpr, tpr), got {len(pair)} item(s)")
        fpr, tpr = (np.asarray(a, dtype=float) for a in pair[:2])
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
            raise ValueError(
                f"curve {name!r}: fpr and tpr must be 1-D arrays of the same length, "
                f"got shapes {fpr.shape} and {tpr.shape}"
            )
        if not (np.all((fpr >= 0) & (fpr <= 1)) and np.all((tpr >= 0) & (tpr <= 1))):
            raise ValueError(f"curve {name!r}: rates must lie in [0, 1]")
        checked[str(name)] = (fpr, tpr)
    if floor is None:
        positive = [f[f > 0].min() for f, _ in checked.values() if (f > 0).any()]
        low = min(positive) if positive else 1e-4
        floor = max(1e-5, 10.0 ** math.floor(math.log10(low) + 1e-9))
    elif not 0 < floor < 1:
        raise ValueError(f"floor must lie in (0, 1), e.g. 1e-4, got {floor!r}")
    with style_context():
        many = len(checked) > 5 and ax is None  # then a figure legend goes below the axes
        height = COLUMN_WIDTH * 0.85 + (0.12 * math.ceil(len(checked) / 2) + 0.1 if many else 0)
        fig, ax = _new_axes(ax, figsize or (COLUMN_WIDTH, height))
        ax.plot([floor, 1.0], [floor, 1.0], zorder=1, gid="chance", **_CHANCE)
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
            color=_CHANCE["color"],
        )
        for i, (name, (fpr, tpr)) in enumerate(checked.items()):
            label = display_name(name)
            if aucs is not None and name in aucs:
                label = f"{label} (AUC {aucs[name]:.3f})"
            ax.plot(
                np.clip(fpr, floor, 1.0),
                np.clip(tpr, floor, 1.0),
                label=label,
                markevery=0.1,
                markersize=3.0,
                **level_style(i).line_kwargs(),
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
        if many:
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
        elif len(checked) <= 5 and _axes_width_pt(ax) >= 150:
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


# --------------------------------------------------------------------------------------------------
# results tables (miakit.metrics.results_frame, Experiment tables)
# --------------------------------------------------------------------------------------------------


def attack_bars(
    frame: pd.DataFrame,
    *,
    metric: str = "auc",
    by: str = "attack",
    hue: str | None = "victim",
    ylabel: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Grouped bars of an attack metric, e.g. each attack's AUC against each victim.

    Takes a :func:`miakit.metrics.results_frame`-style table (``Experiment.attack_table``
    rows concatenated). Groups follow ``by`` and bars within a group follow ``hue``,
    in order of first appearance; each hue level has its own colour *and* hatch.
    Several rows for one bar (e.g. seeds) are averaged, with a standard-deviation error
    bar. For AUC and balanced accuracy a dotted line marks chance (0.5).

    Args:
        frame: the results table.
        metric: the column plotted (``"auc"``, ``"balanced_accuracy"``,
            ``"tpr@0.1%fpr"``, ...).
        by: the column along the x axis.
        hue: the column telling bars in a group apart (``None``: one bar per group).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table or a non-numeric metric.
    """
    _require_columns(frame, [metric, by, hue], "attack_bars")
    groups = _levels(frame, by)
    hues = _levels(frame, hue)
    keys = [by] if hue is None else [by, hue]
    stats, spread = _aggregate(frame, keys, metric, "attack_bars")
    width = 0.8 / len(hues)
    x = np.arange(len(groups), dtype=float)
    with style_context():
        fig, ax = _new_axes(ax, figsize)
        for j, level in enumerate(hues):
            key = (lambda g: g) if hue is None else (lambda g, lv=level: (g, lv))
            mean = np.array([stats["mean"].get(key(g), np.nan) for g in groups], dtype=float)
            std = np.array([stats["std"].get(key(g), np.nan) for g in groups], dtype=float)
            style = level_style(j)
            ax.bar(
                x + (j - (len(hues) - 1) / 2) * width,
                mean,
                width=width,
                yerr=np.nan_to_num(std) if spread else None,
                error_kw={"elinewidth": 0.6, "ecolor": "0.2"},
                label=None if hue is None else display_name(level),
                **style.bar_kwargs(),
            )
        _chance_line(ax, metric)
        _category_ticks(ax, [display_name(g) for g in groups])
        ax.set_xlim(-0.6, len(groups) - 0.4)
        if metric in ("auc", "balanced_accuracy"):
            top = float(np.nanmax(stats["mean"] + np.nan_to_num(stats["std"])))
            ax.set_ylim(0.0, max(1.0, top))
        ax.grid(False, axis="x")
        ax.set_xlabel(display_name(by))
        ax.set_ylabel(ylabel or display_name(metric))
        _legend_above(ax, title=None if hue is None else display_name(hue))
    return fig


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
    _require_columns(frame, [x, y, hue, style], "metric_lines")
    hues = _levels(frame, hue)
    styles = _levels(frame, style)
    data = frame.assign(_x=_numeric(frame, x, "metric_lines"))
    keys = [hue, "_x"] if style is None else [hue, style, "_x"]
    stats, spread = _aggregate(data, keys, y, "metric_lines")
    stats = stats.reset_index()
    with style_context():
        fig, ax = _new_axes(ax, figsize)
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
        _chance_line(ax, y)
        ax.set_xlabel(xlabel or display_name(x))
        ax.set_ylabel(ylabel or display_name(y))
        handles: list[Any] = []
        if style is None:
            _legend_above(ax, title=display_name(hue))
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
                handles.append(Line2D([], [], label="chance (0.5)", **_CHANCE))
            _legend_above(ax, handles)
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
    _require_columns(frame, [x, y, hue, label], "privacy_utility")
    xs = _numeric(frame, x, "privacy_utility")
    ys = _numeric(frame, y, "privacy_utility")
    with style_context():
        fig, ax = _new_axes(ax, figsize)
        for i, h in enumerate(_levels(frame, hue)):
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
        _chance_line(ax, y)
        ax.set_xlabel(xlabel or display_name(x))
        ax.set_ylabel(ylabel or display_name(y))
        legend_title = display_name(hue)
        if label is not None:
            legend_title = f"{legend_title} (labels: {display_name(label)})"
        _legend_above(ax, title=legend_title)
    return fig


def heatmap(
    frame: pd.DataFrame,
    *,
    index: str,
    columns: str,
    values: str,
    fmt: str = ".2f",
    cmap: str = "cividis",
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """An annotated heat map, e.g. attack AUC for victim pruner x shadow pruner.

    PAPER.md claim 3 ("SAMIA": adversary knowledge): how the attack fares when the
    shadows are pruned with another method or sparsity than the victim. Rows and columns
    keep their order of first appearance; several rows for a cell are averaged. Every
    cell is annotated, and the default ``cividis`` map is colour-blind safe with
    monotone lightness, so it reads in greyscale.

    Args:
        frame: a tidy table.
        index: the column along the rows (e.g. ``"victim"``).
        columns: the column along the columns (e.g. ``"shadows"``).
        values: the numeric column shown (e.g. ``"auc"``).
        fmt: the annotation format.
        cmap: the colour map.
        vmin: the lower end of the colour scale.
        vmax: the upper end of the colour scale.
        xlabel: the x-axis label (default from :data:`DISPLAY_NAMES`).
        ylabel: the y-axis label (default from :data:`DISPLAY_NAMES`).
        ax: draw into these axes instead of a new figure.
        figsize: ``(width, height)`` of a new figure.

    Returns:
        The figure.

    Raises:
        KeyError: when a column is missing.
        ValueError: on an empty table or non-numeric values.
    """
    _require_columns(frame, [index, columns, values], "heatmap")
    rows = _levels(frame, index)
    cols = _levels(frame, columns)
    data = frame.assign(_v=_numeric(frame, values, "heatmap"))
    grid = data.pivot_table(index=index, columns=columns, values="_v", aggfunc="mean", sort=False)
    grid = grid.reindex(index=rows, columns=cols)
    grid.index = [display_name(r) for r in rows]
    grid.columns = [display_name(c) for c in cols]
    with style_context():
        fig, ax = _new_axes(ax, figsize)
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=fmt,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            linewidths=0.5,
            linecolor="white",
            annot_kws={"fontsize": 7.0},
            cbar_kws={"label": display_name(values), "shrink": 0.9},
        )
        ax.set_xlabel(xlabel or display_name(columns))
        ax.set_ylabel(ylabel or display_name(index))
        ax.tick_params(axis="both", length=0)
        ax.tick_params(axis="y", labelrotation=0)
        _category_ticks(ax, list(grid.columns), offset=0.5)
    return fig
