"""The conclusions of notebook 05: pruning methods x sparsity, with the fine-tune-only control.

PAPER.md, claim 3 (the risk depends on the pruning approach and the sparsity) and claim 1
at three levels (issue 13): the original, the fine-tune-only control (``victim_pruner ==
"finetuned"``, the same fine-tuning with nothing pruned: the sparsity-0 level of the
pruned and fine-tuned models) and each pruned model. Every function takes summarised
tables (:func:`miakit.tables.summarise` of :func:`miakit.sweep.pruning_grid` and of
:func:`miakit.contrasts.pruning_differences`) and returns Markdown whose every number is
the table's; a difference is "higher" or "lower" only when its interval excludes 0
(:func:`~miakit.narrate.core.shown`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from miakit.narrate.core import interval, shown
from miakit.plots.style import display_name

__all__ = [
    "differences_table",
    "level_name",
    "methods_paragraph",
    "sparsity_paragraph",
    "utility_table",
    "verdict_sentence",
]

#: The victim columns that name a model level of a pruning grid.
LEVEL_KEYS: tuple[str, ...] = ("victim_pruner", "victim_sparsity")

_BASELINES = {"none": "the original", "finetuned": "the fine-tune-only control"}


def level_name(row: Mapping[str, Any] | pd.Series, prefix: str = "victim") -> str:
    """``"original"``, ``"fine-tuned only"`` or ``"L1 unstructured at 0.7"``."""
    pruner = row[f"{prefix}_pruner"]
    if pruner in ("none", "finetuned"):
        return display_name(pruner, "victim_pruner")
    return f"{display_name(pruner)} at {float(row[f'{prefix}_sparsity']):g}"


def _number(value: Any, digits: int = 3) -> str:
    value = float(value) if value is not None else np.nan
    return f"{value:.{digits}f}" if np.isfinite(value) else "–"


def _models(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per model level (the victim columns repeat on every attack's row)."""
    if summary.empty:
        raise ValueError("a summarised pruning grid is empty; run sweep.pruning_grid first")
    return summary.drop_duplicates(list(LEVEL_KEYS))


def utility_table(summary: pd.DataFrame, digits: int = 3) -> str:
    """A Markdown table of each model level: train and test accuracy with intervals,
    realised weight sparsity, and, where the grid has them, channel sparsity and the
    fraction of MACs left (``victim_channel_sparsity``, ``victim_macs_left``: structured
    pruning zeroes whole channels, which weight sparsity does not count)."""
    models = _models(summary)
    extra = [
        c
        for c in ("victim_channel_sparsity", "victim_macs_left")
        if c in models and np.isfinite(pd.to_numeric(models[c], errors="coerce")).any()
    ]
    names = {"victim_channel_sparsity": "channel sparsity", "victim_macs_left": "MACs left"}
    head = ["model", "train accuracy", "test accuracy", "realised sparsity"]
    head += [names[c] for c in extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in models.iterrows():
        cells = [level_name(r)]
        cells += [interval(r, m, digits) for m in ("victim_train_acc", "victim_test_acc")]
        cells += [_number(r.get("victim_realised_sparsity"), digits)]
        cells += [_number(r[c], digits) for c in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _accuracy_sentence(summary: pd.DataFrame, digits: int = 3) -> str:
    """Which levels' test accuracy lies below the original's (the intervals do not meet)."""
    models = _models(summary)
    original = models[models["victim_pruner"] == "none"]
    if original.empty or "victim_test_acc_low" not in models:
        return ""
    low = float(original["victim_test_acc_low"].iloc[0])
    if not np.isfinite(low):
        return "With one seed the accuracies carry no interval."
    below = models[models["victim_test_acc_high"] < low]
    if below.empty:
        return "No model's test accuracy interval lies below the original's."
    names = ", ".join(
        f"{level_name(r)} ({interval(r, 'victim_test_acc', digits)})" for _, r in below.iterrows()
    )
    reference = interval(original.iloc[0], "victim_test_acc", digits)
    return (
        f"Test accuracy below the original's {reference} (the intervals do not overlap): {names}."
    )


def differences_table(
    differences: pd.DataFrame, metrics: Sequence[str] = ("auc", "tpr@1%fpr"), digits: int = 3
) -> str:
    """A Markdown table of summarised paired differences: one row per model x baseline x
    attack, each metric's difference with its interval and what the interval says."""
    head = ["model", "minus", "attack"] + [display_name(m) for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in differences.iterrows():
        cells = [level_name(r), level_name(r, "baseline"), display_name(r["attack"])]
        cells += [f"{interval(r, m, digits)} {shown(r, m)}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_sentence(
    differences: pd.DataFrame,
    baseline: str,
    metric: str = "auc",
    *,
    pruned_only: bool = True,
    digits: int = 3,
) -> str:
    """How many (model, attack) differences against ``baseline`` (a ``baseline_pruner``
    value: ``"none"``, ``"finetuned"``) are higher, lower or not shown, and the largest
    highest and lowest difference with their intervals. ``pruned_only`` leaves the fine-tune-only
    control's own rows out (they are the control, not a pruned model)."""
    part = differences[differences["baseline_pruner"] == baseline]
    if pruned_only:
        part = part[part["victim_pruner"] != "finetuned"]
    if part.empty:
        return ""
    words = [shown(r, metric) for _, r in part.iterrows()]
    n = len(words)
    text = (
        f"Against {_BASELINES.get(baseline, baseline)}, {display_name(metric)} was higher "
        f"(interval above 0) in {words.count('higher')} of {n} (model, attack) pairs, lower "
        f"(interval below 0) in {words.count('lower')}, and not shown in "
        f"{words.count('not shown')}."
    )
    top = part.loc[part[metric].idxmax()]
    bottom = part.loc[part[metric].idxmin()]
    text += (
        f" Highest difference: {interval(top, metric, digits)} ({display_name(top['attack'])}, "
        f"{level_name(top)}, {shown(top, metric)}); lowest: "
        f"{interval(bottom, metric, digits)} ({display_name(bottom['attack'])}, "
        f"{level_name(bottom)}, {shown(bottom, metric)})."
    )
    return text


def _control_sentence(differences: pd.DataFrame, metric: str = "auc", digits: int = 3) -> str:
    """What fine-tuning alone did: the control minus the original, attack by attack."""
    part = differences[
        (differences["baseline_pruner"] == "none") & (differences["victim_pruner"] == "finetuned")
    ]
    if part.empty:
        return ""
    groups: dict[str, list[str]] = {"higher": [], "lower": [], "not shown": []}
    for _, r in part.iterrows():
        groups[shown(r, metric)].append(
            f"{display_name(r['attack'])} {interval(r, metric, digits)}"
        )
    said = [f"{word} for {', '.join(items)}" for word, items in groups.items() if items]
    return (
        f"Fine-tuning alone (fine-tuned only minus the original), {display_name(metric)}: "
        + "; ".join(said)
        + "."
    )


def _paragraph(
    summary: pd.DataFrame, differences: pd.DataFrame, metrics: Sequence[str], digits: int
) -> list[str]:
    seeds = int(summary["seeds"].max()) if "seeds" in summary else 1
    parts = [
        f"Over {seeds} seed{'s' if seeds != 1 else ''}; intervals are 95%, differences "
        "are paired by seed.",
        utility_table(summary, digits),
        _accuracy_sentence(summary, digits),
    ]
    parts += [_control_sentence(differences, m, digits) for m in metrics]
    for baseline in ("none", "finetuned"):
        parts += [verdict_sentence(differences, baseline, m, digits=digits) for m in metrics]
    parts.append(differences_table(differences, metrics, digits))
    return [p for p in parts if p]


def sparsity_paragraph(
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    metrics: Sequence[str] = ("auc", "tpr@1%fpr"),
    digits: int = 3,
) -> str:
    """The sparsity slice of notebook 05: each sparsity of one pruning method against the
    original and the fine-tune-only control (its sparsity-0 level).

    Args:
        summary: :func:`miakit.tables.summarise` of :func:`miakit.sweep.pruning_grid`.
        differences: :func:`miakit.tables.summarise` of
            :func:`miakit.contrasts.pruning_differences` on the same victims.
        metrics: the metrics whose differences are stated.
        digits: decimals shown.
    """
    return "\n\n".join(_paragraph(summary, differences, metrics, digits))


def methods_paragraph(
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    metrics: Sequence[str] = ("auc", "tpr@1%fpr"),
    digits: int = 3,
) -> str:
    """The method slice of notebook 05: each pruning method at one sparsity against the
    original and the fine-tune-only control, with channel sparsity and MACs left where
    the grid has them (network slimming removes channels, not weights).

    Arguments as :func:`sparsity_paragraph`.
    """
    return "\n\n".join(_paragraph(summary, differences, metrics, digits))
