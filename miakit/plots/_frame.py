"""Table checks and shaping shared by the figure helpers (private to ``miakit.plots``).

The helpers take tidy tables (one row per model x attack x setting) and column names;
these functions check the columns, keep category levels in order of first appearance,
and average repeated rows (seeds) into a mean with its 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from miakit.metrics.intervals import seed_interval

__all__ = ["aggregate", "error_bars", "levels", "numeric", "panel_levels", "require_columns"]


def require_columns(frame: Any, columns: Sequence[str | None], func: str) -> pd.DataFrame:
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


def levels(frame: pd.DataFrame, column: str | None) -> list[Any]:
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


def panel_levels(frame: pd.DataFrame, column: str) -> list[Any]:
    """The panels of a faceted figure: a column's levels, ``False`` before ``True``.

    A boolean column (e.g. ``adaptive``) gives its panels in that order; any other
    column in order of first appearance, like :func:`levels`.
    """
    values = levels(frame, column)
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return sorted(values)
    return values


def numeric(frame: pd.DataFrame, column: str, func: str) -> pd.Series:
    """A column as floats; raise ``ValueError`` if it is not numeric."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        raise ValueError(
            f"{func}: column {column!r} must be numeric, got values such as "
            f"{frame[column][bad].iloc[:3].tolist()}; pick a numeric column or convert it"
        )
    return values.astype(float)


def aggregate(
    frame: pd.DataFrame, keys: Sequence[str], value: str, func: str
) -> tuple[pd.DataFrame, bool]:
    """Mean and 95% interval of ``value`` per ``keys``: one point per setting.

    Several rows for one point are seeds: their interval is
    :func:`miakit.metrics.intervals.seed_interval`'s, with the rows' bootstrap errors
    (``<value>_se``) when the table has them. A single row of a summarised table
    (:func:`miakit.tables.summarise`) keeps its own ``<value>_low`` / ``<value>_high``.

    Returns:
        ``(stats, has_intervals)``: ``stats`` indexed by ``keys`` with ``mean``, ``low``,
        ``high`` and ``size``; ``has_intervals`` whether any point has an interval.
    """
    data = frame.assign(_value=numeric(frame, value, func))
    low, high, se = f"{value}_low", f"{value}_high", f"{value}_se"
    rows, index = [], []
    for key, part in data.groupby(list(keys), sort=False, dropna=False):
        if len(part) == 1 and low in part and high in part:
            point = (part["_value"].iloc[0], part[low].iloc[0], part[high].iloc[0])
        else:
            errors = part[se].to_numpy(dtype=float) if se in part else None
            iv = seed_interval(part["_value"].to_numpy(dtype=float), errors)
            point = (iv.mean, iv.low, iv.high)
        rows.append((*point, len(part)))
        index.append(key)
    names = list(keys)
    idx = (
        pd.MultiIndex.from_tuples(index, names=names)
        if len(names) > 1
        else pd.Index([k[0] if isinstance(k, tuple) else k for k in index], name=names[0])
    )
    stats = pd.DataFrame(rows, index=idx, columns=["mean", "low", "high", "size"])
    stats[["low", "high"]] = stats[["low", "high"]].astype(float)
    return stats, bool(stats[["low", "high"]].notna().any().any())


def error_bars(mean: Any, low: Any, high: Any) -> np.ndarray:
    """``(2, n)`` distances below and above each mean for ``yerr`` (0 where no interval)."""
    m = np.asarray(mean, dtype=float)
    below = np.nan_to_num(m - np.asarray(low, dtype=float))
    above = np.nan_to_num(np.asarray(high, dtype=float) - m)
    return np.vstack([np.maximum(below, 0.0), np.maximum(above, 0.0)])
