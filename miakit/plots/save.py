"""Saving figures and tables deterministically under ``figures/<profile>/``.

Every figure in the notebooks is saved with :func:`save_figure` (PNG + PDF) and every
table with :func:`save_table` (CSV), so that a rerun rewrites byte-identical files when
nothing changed (DESIGN.md, "Shape"). Files are written atomically through
:func:`miakit._util.atomic_write`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from miakit._util import atomic_write
from miakit.plots.style import PNG_DPI, WIDTHS, figure_width, style_context

__all__ = ["figures_root", "save_figure", "save_table"]

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@=+-]*")
_EXTENSIONS = (".png", ".pdf", ".csv", ".svg", ".jpg", ".jpeg")
_FILE_MODE = 0o644  # readable by everyone, like a file written with open()

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


def _check_folder(profile: Any) -> str:
    """The profile's folder name, checked to be safe: one non-empty path component.

    This checks the name as a folder only: it must be a non-empty string, not ``"."``
    or ``".."``, and hold no path separator (or NUL). Whether a profile of that name
    exists is not checked here; the profiles live in the configuration, and a custom
    profile's figures get a folder of their own.
    """
    unsafe = (
        not isinstance(profile, str)
        or profile in ("", ".", "..")
        or any(sep in profile for sep in ("/", "\\", os.sep, os.altsep or "/", "\0"))
    )
    if unsafe:
        raise ValueError(
            f"profile {profile!r} is not a safe folder name: it must be a non-empty string "
            "other than '.' or '..', without path separators (the figures go to "
            "<root>/<profile>/); pass the notebook's profile name, e.g. profile='quick'"
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
    folder = (figures_root() if root is None else Path(root)) / _check_folder(profile)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically; ``write`` fills an open binary file."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write(fh)
        os.chmod(tmp, _FILE_MODE)  # the temporary file is private (0600) until now

    atomic_write(path, fill)


def save_figure(
    fig: Figure, name: str, *, profile: str, root: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write a figure as ``<root>/<profile>/<name>.png`` and ``.pdf``, then close it.

    The files are deterministic: the same figure gives the same bytes on every run (no
    dates, a fixed PDF producer, no PNG software tag, a fixed SVG hash salt), so
    regenerated figures only show up in ``git diff`` when they really changed. Each file
    is written to a temporary file and renamed into place, so a killed run never leaves
    a half-written figure. Folders are created as needed. The PNG has
    :data:`~miakit.plots.PNG_DPI` dots per inch.

    Every figure is a column or the page wide (issue 13, item 7): a figure of another
    width is resized to the nearer of :data:`~miakit.plots.COLUMN_WIDTH` and
    :data:`~miakit.plots.FULL_WIDTH` (its height kept) and laid out again, and the files
    have exactly that width (the layout, not a trimmed bounding box, fits the contents).

    Args:
        fig: the figure (e.g. from one of the helpers here).
        name: the file stem, e.g. ``"roc_pruned"``; no folders, no extension.
        profile: the run's profile (``"smoke"``, ``"quick"``, ``"paper"``); figures of
            each profile live in their own folder, so it must be a safe folder name.
        root: the figures folder (default :func:`figures_root`, the top-level ``figures/``).

    Returns:
        The paths written: ``[png, pdf]``.

    Raises:
        ValueError: on a name with a path separator or extension, a profile that is not a
            safe folder name, or a ``fig`` that is not a matplotlib Figure.
    """
    if not isinstance(fig, Figure):
        raise ValueError(
            f"save_figure needs a matplotlib Figure, got {type(fig).__name__}; "
            "pass the figure a helper returned (or ax.figure)"
        )
    name = _check_name(name)
    folder = _output_dir(profile, root)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    common = _fitted(fig)
    try:
        with style_context():
            _write(
                paths[0],
                lambda fh: fig.savefig(
                    fh, format="png", dpi=PNG_DPI, metadata=_PNG_METADATA, **common
                ),
            )
            _write(
                paths[1],
                lambda fh: fig.savefig(fh, format="pdf", metadata=_PDF_METADATA, **common),
            )
    finally:
        plt.close(fig)
    return paths


def _fitted(fig: Figure) -> dict[str, Any]:
    """Resize ``fig`` to a column or the page wide; the ``savefig`` options every file shares."""
    width, height = fig.get_size_inches()
    if min(abs(width - w) for w in WIDTHS) > 1e-6:
        fig.set_size_inches(figure_width(width), height)
    common: dict[str, Any] = {"facecolor": "white", "edgecolor": "none"}
    if fig.get_layout_engine() is None:  # nothing lays it out: trim to its contents instead
        common.update(bbox_inches="tight", pad_inches=0.02)
    return common


def png_bytes(fig: Figure) -> bytes:
    """The figure as the PNG :func:`save_figure` would write (same width, DPI, metadata,
    so the same bytes), for embedding in a page; the figure is closed."""
    buffer = io.BytesIO()
    try:
        with style_context():
            fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata=_PNG_METADATA, **_fitted(fig))
    finally:
        plt.close(fig)
    return buffer.getvalue()


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
        profile: the run's profile (its folder; a safe folder name).
        root: the figures folder (default :func:`figures_root`).
        digits: significant digits of floating-point columns.

    Returns:
        The path written.

    Raises:
        ValueError: on a bad name, a profile that is not a safe folder name, a ``frame``
            that is not a DataFrame, or ``digits`` outside 1-17.
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
    _write(path, lambda fh: fh.write(text.encode("utf-8")))
    return path
