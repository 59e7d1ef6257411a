"""Table checks and shaping shared by the figure helpers (private to ``miakit.plots``).

The helpers take tidy tables (one row per model x attack x setting) and column names;
these functions check the columns, keep category levels in order of first appearance,
and average repeated rows (e.g. seeds) into a mean and a standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["aggregate", "levels", "numeric", "panel_levels", "require_columns"]


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
    """Mean and standard deviation of ``value`` per ``keys`` (several seeds -> error bars)."""
    data = frame.assign(_value=numeric(frame, value, func))
    stats = data.groupby(list(keys), sort=False, dropna=False)["_value"].agg(
        ["mean", "std", "size"]
    )
    return stats, bool((stats["size"] > 1).any())
