"""The building blocks of rendered conclusions: intervals, differences, rankings, tables.

A notebook's "what we measured" paragraph is a code cell that calls one of these on the
run's own tables and displays the Markdown, so every number in it is the run's and the
same text is true under the smoke, quick and paper profiles. Intervals are the 95%
intervals of :func:`miakit.tables.summarise`; a difference is called *shown* only when
its interval excludes 0 (:func:`miakit.claims.verdict`'s rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from miakit.plots.style import display_name

__all__ = [
    "difference_sentence",
    "interval",
    "markdown_table",
    "ranking_sentence",
    "shown",
]


def interval(row: Mapping[str, Any] | pd.Series, metric: str, digits: int = 3) -> str:
    """``"0.795 [0.780, 0.810]"``: a summarised metric with its 95% interval.

    With no interval (one seed and no sampling error; or no ``_low``/``_high`` columns)
    the mean alone, followed by ``(one run)``.
    """
    mean = float(row[metric])
    low = float(row.get(f"{metric}_low", np.nan))
    high = float(row.get(f"{metric}_high", np.nan))
    signed = "+" if _is_difference(row) else ""
    text = f"{mean:{signed}.{digits}f}"
    if np.isfinite(low) and np.isfinite(high):
        return f"{text} [{low:{signed}.{digits}f}, {high:{signed}.{digits}f}]"
    return f"{text} (one run)"


def _is_difference(row: Mapping[str, Any] | pd.Series) -> bool:
    return "baseline_attack" in row


def shown(row: Mapping[str, Any] | pd.Series, metric: str) -> str:
    """``"higher"``, ``"lower"`` or ``"not shown"``: what a difference's interval says."""
    low = float(row.get(f"{metric}_low", np.nan))
    high = float(row.get(f"{metric}_high", np.nan))
    if np.isfinite(low) and low > 0:
        return "higher"
    if np.isfinite(high) and high < 0:
        return "lower"
    return "not shown"


def difference_sentence(
    row: Mapping[str, Any] | pd.Series, subject: str, metric: str = "auc", digits: int = 3
) -> str:
    """One sentence on a summarised paired difference (a row of ``summarise(difference(...))``).

    Example: ``"Conf AUC, pruned - original: +0.012 [+0.004, +0.020] over 3 seeds, higher
    (shown: the interval excludes 0)."``
    """
    verdict = shown(row, metric)
    seeds = int(row.get("seeds", 1))
    tail = (
        f"{verdict} (shown: the interval excludes 0)"
        if verdict != "not shown"
        else "not shown (the interval includes 0)"
    )
    name = display_name(row["attack"]) if "attack" in row else ""
    return (
        f"{name} {display_name(metric)}, {subject}: {interval(row, metric, digits)} over "
        f"{seeds} seed{'s' if seeds != 1 else ''}, {tail}."
    ).strip()


def ranking_sentence(
    summary: pd.DataFrame, metric: str = "auc", by: str = "attack", top: int = 3, digits: int = 3
) -> str:
    """The ``top`` levels of ``by`` by mean ``metric``, with intervals, and whether the
    first two are told apart (their intervals overlap or not; for a paired test use
    :func:`difference_sentence` on :func:`miakit.tables.difference`)."""
    if summary.empty:
        raise ValueError("ranking_sentence needs a non-empty summarised table")
    ordered = summary.sort_values(metric, ascending=False).head(top)
    parts = [
        f"{display_name(r[by], by)} {interval(r, metric, digits)}" for _, r in ordered.iterrows()
    ]
    text = f"Highest {display_name(metric)}: " + "; ".join(parts) + "."
    if len(ordered) >= 2 and f"{metric}_low" in ordered:
        first, second = ordered.iloc[0], ordered.iloc[1]
        if np.isfinite(first[f"{metric}_low"]) and np.isfinite(second[f"{metric}_high"]):
            apart = first[f"{metric}_low"] > second[f"{metric}_high"]
            text += (
                " The first two are apart (their intervals do not overlap)."
                if apart
                else " The first two are not told apart (their intervals overlap)."
            )
    return text


def markdown_table(
    frame: pd.DataFrame,
    columns: Sequence[str],
    metrics: Sequence[str] = ("auc",),
    digits: int = 3,
) -> str:
    """A Markdown table: ``columns`` as they are (display names), each metric with its
    interval (:func:`interval`)."""
    head = [display_name(c) for c in columns] + [display_name(m) for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in frame.iterrows():
        cells = [str(display_name(r[c], c)) for c in columns]
        cells += [interval(r, m, digits) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def interval_pivot(
    summary: pd.DataFrame, index: str, columns: str, metric: str = "auc", digits: int = 3
) -> pd.DataFrame:
    """A pivot of a summarised table whose cells read ``"0.795 [0.780, 0.810]"``.

    Rows and columns keep their order of first appearance; labels are display names.
    """
    cells = summary.assign(_text=[interval(r, metric, digits) for _, r in summary.iterrows()])
    table = cells.pivot(index=index, columns=columns, values="_text")
    table = table.reindex(index=summary[index].unique(), columns=summary[columns].unique())
    table.index = [display_name(v, index) for v in table.index]
    table.columns = [display_name(v, columns) for v in table.columns]
    return table


def accuracy_sentence(summary: pd.DataFrame, by: str = "variant", digits: int = 3) -> str:
    """Train and test accuracy of each model in a summarised ``variants_table`` (victim rows).

    Example: ``"Victim accuracy (train / test, 95% intervals over 3 seeds): original 0.898
    [...] / 0.510 [...]; pruned ...."``
    """
    rows = summary[summary["model"] == "victim"] if "model" in summary else summary
    if rows.empty:
        raise ValueError("accuracy_sentence needs the victim's rows of a summarised table")
    seeds = int(rows["seeds"].max()) if "seeds" in rows else 1
    parts = [
        f"{display_name(r[by], by)} {interval(r, 'train_acc', digits)} / "
        f"{interval(r, 'test_acc', digits)}"
        for _, r in rows.iterrows()
    ]
    return (
        f"Victim accuracy (train / test, 95% intervals over {seeds} seed"
        f"{'s' if seeds != 1 else ''}): " + "; ".join(parts) + "."
    )
