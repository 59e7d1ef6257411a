"""Rendered conclusions on the adversary's knowledge of the pruning (notebook 06).

PAPER.md, claim 3 and "SAMIA": the default adversary prunes its shadows like the victim;
a mismatched one uses shadows pruned at another sparsity, with another method, or not at
all. The functions here take :func:`miakit.tables.summarise` of
:func:`miakit.sweep.knowledge_grid` (AUC per victim x shadows) and of
:func:`miakit.sweep.knowledge_differences` (mismatched minus matched, paired per seed)
and return a grid of intervals or Markdown; a mismatch is said to cost the adversary only
when its paired interval lies below 0 (:func:`~miakit.narrate.core.shown`).
"""

from __future__ import annotations

import pandas as pd

from miakit.narrate._victims import names_with_intervals, seeds_text, split_by_verdict
from miakit.narrate.core import interval, shown
from miakit.plots.style import display_name

__all__ = ["interval_grid", "leakage_sentence", "mismatch_markdown"]


def interval_grid(
    summary: pd.DataFrame,
    index: str = "victim_label",
    columns: str = "shadow_label",
    metric: str = "auc",
    facet: str = "attack",
    digits: int = 3,
) -> pd.DataFrame:
    """A summarised grid as a table of ``"mean [low, high]"`` cells, for display.

    Rows: (``facet``, ``index``) levels, columns: ``columns`` levels, each in order of
    first appearance (columns that are also row levels in the rows' order, so a victim x
    shadows grid is square) and shown by :func:`~miakit.plots.style.display_name`; a
    cell with no row is empty (e.g. the diagonal of a differences grid).
    """
    cells: dict[tuple[str, str], dict[str, str]] = {}
    rows: list[str] = []
    for _, r in summary.iterrows():
        key = (display_name(r[facet], facet), display_name(r[index], index))
        cells.setdefault(key, {})[display_name(r[columns], columns)] = interval(r, metric, digits)
        rows.append(key[1])
    named = [display_name(c, columns) for c in summary[columns]]
    order = list(dict.fromkeys([r for r in rows if r in named] + named))
    grid = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=order).fillna("")
    grid.index = pd.MultiIndex.from_tuples(grid.index, names=[facet, index])
    grid.columns.name = columns
    return grid


def leakage_sentence(summary: pd.DataFrame, metric: str = "auc") -> str:
    """The range of the matched adversary's ``metric`` on a grid (how much the models leak)."""
    matched = summary[summary["adaptive"].astype(bool)]
    if matched.empty:
        return ""
    low, high = matched.loc[matched[metric].idxmin()], matched.loc[matched[metric].idxmax()]
    return (
        f"The matched adversary's {display_name(metric)} ranges from "
        f"{interval(low, metric)} ({display_name(low['attack'])} against "
        f"{display_name(low['victim_label'])}) to {interval(high, metric)} "
        f"({display_name(high['attack'])} against {display_name(high['victim_label'])})."
    )


def _direction(row: pd.Series) -> str:
    shadow, victim = float(row["shadow_sparsity"]), float(row["victim_sparsity"])
    if shadow > victim:
        return "shadows pruned harder than the victim"
    if shadow < victim:
        return "shadows pruned less than the victim"
    return "shadows at the victim's sparsity, pruned another way"


def mismatch_markdown(
    differences: pd.DataFrame, victim: str | None = None, metric: str = "auc"
) -> str:
    """What a mismatched adversary loses, per attack, from paired differences.

    Args:
        differences: ``summarise(sweep.knowledge_differences(...))`` (mismatched minus
            matched shadows; ``victim_label``, ``shadow_label``, ``shadow_pruner``,
            ``shadow_sparsity``, ``victim_sparsity``).
        victim: a victim's label (:attr:`Variant.label`, e.g. the profile's pruned one)
            for which the adversary with unpruned shadows is stated separately.
        metric: the metric compared (default AUC).

    Returns:
        One bullet per attack: the unaware adversary on ``victim``; how many mismatched
        pairs are shown lower or higher than matched; the same by direction of the
        mismatch (shadows pruned harder, less, or another way) with the losses shown.
    """
    if differences.empty:
        raise ValueError("mismatch_markdown needs a non-empty summarised differences table")
    pairs = differences.assign(
        pair=differences["victim_label"].map(display_name)
        + " / "
        + differences["shadow_label"].map(display_name)
    )
    lines = [
        f"Mismatched minus matched shadows, paired per seed, 95% intervals over "
        f"{seeds_text(differences)} (negative: the mismatched adversary does worse)."
    ]
    for attack, rows in pairs.groupby("attack", sort=False):
        parts = []
        unaware = rows[(rows["victim_label"] == victim) & (rows["shadow_pruner"] == "none")]
        if victim is not None and not unaware.empty:
            r = unaware.iloc[0]
            word = shown(r, metric)
            parts.append(
                f"with unpruned shadows (an adversary unaware of the pruning) against "
                f"{display_name(victim)}: {interval(r, metric)}, "
                + ("not shown" if word == "not shown" else f"{word} (shown)")
            )
        split = split_by_verdict(rows, metric)
        parts.append(
            f"of {len(rows)} mismatched pairs, {len(split['lower'])} shown lower and "
            f"{len(split['higher'])} shown higher than the matched adversary"
        )
        for direction, group in rows.groupby(rows.apply(_direction, axis=1), sort=False):
            lower = split_by_verdict(group, metric)["lower"]
            text = f"{direction}: {len(lower)} of {len(group)} shown lower"
            if len(lower):
                text += f" (victim / shadows: {names_with_intervals(lower, 'pair', metric)})"
            parts.append(text)
        lines.append(f"- **{display_name(attack)}**: " + "; ".join(parts) + ".")
    return "\n".join(lines)
