"""Shared helpers of the topic modules: rows grouped by victim, verdicts, negated rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from miakit.narrate.core import interval, shown
from miakit.plots.style import display_name
from miakit.variants import NO_PRUNER, Variant

#: The columns that name a victim variant in a result table.
VICTIM_KEYS: tuple[str, ...] = ("victim_pruner", "victim_sparsity", "victim_defense")


def victim_name(row: Mapping[str, Any] | pd.Series) -> str:
    """A victim's display name from its real columns (``"original"``, ``"L1 unstructured@0.7"``)."""
    pruner = row["victim_pruner"]
    label = Variant(None if pruner == NO_PRUNER else pruner, float(row["victim_sparsity"])).label
    defense = row.get("victim_defense", "none")
    text = display_name(label)
    return text if defense in ("none", None) or pd.isna(defense) else f"{text}+{defense}"


def by_victim(frame: pd.DataFrame) -> list[tuple[tuple[Any, ...], str, pd.DataFrame]]:
    """``(key, name, rows)`` per victim variant, in order of first appearance."""
    keys = [c for c in VICTIM_KEYS if c in frame]
    if "victim_pruner" not in keys or "victim_sparsity" not in keys:
        raise KeyError("a rendered paragraph needs the victim_pruner and victim_sparsity columns")
    out = []
    for key, rows in frame.groupby(keys, sort=False, dropna=False):
        out.append((tuple(key), victim_name(rows.iloc[0]), rows))
    return out


def is_pruned(rows: pd.DataFrame) -> bool:
    """Whether the rows' victim is pruned (not the original, not the fine-tune-only control)."""
    pruner = rows["victim_pruner"].iloc[0]
    return pruner not in (NO_PRUNER, "finetuned") and float(rows["victim_sparsity"].iloc[0]) > 0


def negated(row: pd.Series, metric: str) -> pd.Series:
    """A summarised difference row the other way round (``b - a`` from ``a - b``)."""
    out = row.copy()
    out[metric] = -row[metric]
    out[f"{metric}_low"] = -row.get(f"{metric}_high", np.nan)
    out[f"{metric}_high"] = -row.get(f"{metric}_low", np.nan)
    if "baseline_attack" in row:
        out["attack"], out["baseline_attack"] = row["baseline_attack"], row["attack"]
    return out


def verdict_text(row: Mapping[str, Any] | pd.Series, metric: str) -> str:
    """``"higher (shown: the interval excludes 0)"``, ``"lower (...)"`` or ``"not shown
    (the interval includes 0)"``."""
    word = shown(row, metric)
    if word == "not shown":
        return "not shown (the interval includes 0)"
    return f"{word} (shown: the interval excludes 0)"


def names_with_intervals(rows: pd.DataFrame, label: str, metric: str) -> str:
    """``"Conf +0.012 [+0.004, +0.020], LiRA ..."``: each row's label with its interval."""
    return ", ".join(
        f"{display_name(r[label], label)} {interval(r, metric)}" for _, r in rows.iterrows()
    )


def split_by_verdict(rows: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """The rows whose difference is ``"higher"``, ``"lower"`` and ``"not shown"``."""
    verdicts = rows.apply(lambda r: shown(r, metric), axis=1) if len(rows) else pd.Series([])
    return {v: rows[verdicts == v] for v in ("higher", "lower", "not shown")}


def seeds_text(frame: pd.DataFrame) -> str:
    """``"3 seeds"``: how many seeds a summarised table's rows rest on (the fewest)."""
    n = int(frame["seeds"].min()) if "seeds" in frame and len(frame) else 1
    return f"{n} seed{'s' if n != 1 else ''}"
