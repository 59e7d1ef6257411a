"""The conclusions of notebook 09: stronger attacks, the low-FPR regime, and who pays.

Beyond the paper (PAPER.md, "Reporting", reports balanced accuracy): which attack is
strongest at a low false-positive rate (Carlini et al. 2022), whether pruning moves that,
and which classes pay (claim 1). Every function takes summarised tables
(:func:`miakit.tables.summarise` of :func:`miakit.tables.attack_table`, of
:func:`miakit.tables.difference` and of :func:`miakit.contrasts.per_class_change`) and
returns Markdown whose numbers are the tables'. An attack is called stronger than another
only when their paired difference's interval excludes 0 (:func:`~miakit.narrate.core.shown`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.narrate.core import interval, shown
from miakit.plots.style import display_name

__all__ = [
    "change_sentence",
    "leader",
    "leader_sentence",
    "low_fpr_paragraph",
    "per_class_paragraph",
]


def _victim(summary: pd.DataFrame, victim_pruner: str) -> pd.DataFrame:
    rows = summary[summary["victim_pruner"] == victim_pruner]
    if rows.empty:
        raise ValueError(f"no rows of victim_pruner {victim_pruner!r} in the summarised table")
    return rows


def leader(summary: pd.DataFrame, metric: str, victim_pruner: str) -> str:
    """The attack with the highest mean ``metric`` against one victim (a ``victim_pruner``
    value), e.g. the one the others are paired against at 1% FPR."""
    rows = _victim(summary, victim_pruner)
    return str(rows.loc[rows[metric].idxmax(), "attack"])


def leader_sentence(
    summary: pd.DataFrame,
    versus: pd.DataFrame,
    metric: str,
    victim_pruner: str,
    digits: int = 3,
) -> str:
    """Which attack leads at ``metric`` on one victim, and which of the others the paired
    differences (``versus``: each attack minus the leader, summarised) show below it."""
    rows = _victim(summary, victim_pruner)
    first = leader(summary, metric, victim_pruner)
    top = rows[rows["attack"] == first].iloc[0]
    others = versus[(versus["attack"] != versus["baseline_attack"])]
    others = others[others["baseline_attack"] == first]
    if "victim_pruner" in others:
        others = others[others["victim_pruner"] == victim_pruner]
    below, level = [], []
    for _, r in others.iterrows():
        item = f"{display_name(r['attack'])} ({interval(r, metric, digits)})"
        (below if shown(r, metric) == "lower" else level).append(item)
    text = (
        f"Highest {display_name(metric)}: {display_name(first)}, {interval(top, metric, digits)}. "
        f"Paired against it (attack minus {display_name(first)}): "
    )
    text += f"shown lower for {', '.join(below)}" if below else "none shown lower"
    text += f"; not told apart from {', '.join(level)}." if level else "."
    if not below and level:
        text += f" So {display_name(first)} is not shown to be the strongest at this rate."
    return text


def change_sentence(
    differences: pd.DataFrame, metric: str, subject: str = "pruned - original", digits: int = 3
) -> str:
    """Per attack, a summarised paired difference and what its interval says, grouped:
    ``"TPR at 1% FPR, pruned - original: lower for ...; not shown for ..."``."""
    groups: dict[str, list[str]] = {"higher": [], "lower": [], "not shown": []}
    for _, r in differences.iterrows():
        groups[shown(r, metric)].append(
            f"{display_name(r['attack'])} {interval(r, metric, digits)}"
        )
    said = [f"{word} for {', '.join(items)}" for word, items in groups.items() if items]
    return _first_upper(f"{display_name(metric)}, {subject}: " + "; ".join(said) + ".")


def _counts(summary: pd.DataFrame, victim_pruner: str, budget: str) -> str:
    rows = _victim(summary, victim_pruner)
    tp, fp = f"tp@{budget}fpr", f"fp@{budget}fpr"
    if tp not in rows or fp not in rows:
        return ""
    return (
        f"At {budget} FPR the attacks found {_span(rows[tp])} members (mean over seeds) with "
        f"{_span(rows[fp])} false positives: an order of magnitude, not a measurement."
    )


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _span(values: pd.Series) -> str:
    """``"4-7"``, or ``"0"`` when every value rounds alike."""
    low, high = f"{values.min():.0f}", f"{values.max():.0f}"
    return low if low == high else f"{low}-{high}"


def low_fpr_paragraph(
    summary: pd.DataFrame,
    versus: pd.DataFrame,
    pruned_vs_original: pd.DataFrame,
    victim_pruner: str,
    metric: str = "tpr@1%fpr",
    digits: int = 3,
) -> str:
    """Notebook 09's low-FPR conclusions on one (pruned) victim.

    Args:
        summary: the summarised attack table (original and pruned victims).
        versus: summarised :func:`miakit.tables.difference` of every attack against the
            :func:`leader` at ``metric`` (``against=``), on the ``victim_pruner`` victim.
        pruned_vs_original: summarised :func:`miakit.tables.difference` of the pruned
            victim against the original, per attack.
        victim_pruner: the pruned victim's ``victim_pruner``.
        metric: the low-FPR metric the leader is chosen by.
        digits: decimals shown.
    """
    seeds = int(summary["seeds"].max())
    auc = _victim(summary, victim_pruner).sort_values("auc", ascending=False)
    ranking = "; ".join(
        f"{display_name(r['attack'])} {interval(r, 'auc', digits)}" for _, r in auc.iterrows()
    )
    parts = [
        f"Over {seeds} seed{'s' if seeds != 1 else ''}; intervals are 95%, differences are "
        "paired by seed.",
        f"{_first_upper(display_name('auc'))} against the pruned victim, highest first: {ranking}.",
        leader_sentence(summary, versus, metric, victim_pruner, digits),
        _counts(summary, victim_pruner, "0.1%"),
        change_sentence(pruned_vs_original, "auc", digits=digits),
        change_sentence(pruned_vs_original, metric, digits=digits),
    ]
    return "\n\n".join(p for p in parts if p)


def per_class_paragraph(change: pd.DataFrame, digits: int = 3) -> str:
    """Per attack: the classes whose AUC change (summarised
    :func:`miakit.contrasts.per_class_change`) is shown up, shown down or not shown, and
    the range of the mean changes. With one seed a class has no interval."""
    said = []
    for attack in dict.fromkeys(change["attack"]):
        rows = change[change["attack"] == attack]
        words = [shown(r, "auc") for _, r in rows.iterrows()]
        up = [str(c) for c, w in zip(rows["class"], words, strict=True) if w == "higher"]
        down = [str(c) for c, w in zip(rows["class"], words, strict=True) if w == "lower"]
        lo, hi = rows.loc[rows["auc"].idxmin()], rows.loc[rows["auc"].idxmax()]
        text = (
            f"{display_name(attack)}: the mean change runs from {float(lo['auc']):+.{digits}f} "
            f"(class {lo['class']}) to {float(hi['auc']):+.{digits}f} (class {hi['class']}); "
        )
        if not np.isfinite(pd.to_numeric(rows["auc_low"], errors="coerce")).any():
            text += "one seed, so no class has an interval"
        else:
            text += (
                f"shown up in {len(up)} of {len(rows)} classes"
                + (f" ({', '.join(up)})" if up else "")
                + f", shown down in {len(down)}"
                + (f" ({', '.join(down)})" if down else "")
            )
        said.append(text)
    return "Per-class AUC change, pruned - original: " + "; ".join(said) + "."
