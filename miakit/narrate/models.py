"""Rendered paragraphs on the data, the trained models and what pruning does to accuracy.

Notebooks 01 (splits, the victim's and shadows' accuracy) and 02 (the sparsity sweep,
the four pruning methods, compaction) display these as Markdown, built from the run's
own summarised tables (:func:`miakit.tables.summarise` of
:func:`miakit.sweep.per_seed` frames), so every number is the run's and every word is
what its intervals allow (PAPER.md, "Data and splits", "Models and training", "Pruning").

Comparisons of two settings (pruned vs original, fine-tuned only vs original) say
*higher* or *lower* only when their 95% intervals do not overlap, which is stricter
than a paired test; otherwise *not told apart*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from miakit.narrate.core import interval
from miakit.plots.style import display_name

__all__ = [
    "accuracy_paragraph",
    "compaction_sentence",
    "compare",
    "methods_paragraph",
    "split_sentence",
    "sweep_paragraph",
]

Row = Mapping[str, Any] | pd.Series


def compare(row: Row, base: Row, metric: str, base_metric: str | None = None) -> str:
    """``"higher"``, ``"lower"`` or ``"not told apart"``: ``row``'s interval against ``base``'s.

    Higher (lower) only when the 95% intervals of ``row[metric]`` and of
    ``base[base_metric]`` (default ``metric``) do not overlap; with no interval on
    either side (one seed) the two are not told apart.
    """
    other = base_metric or metric
    low, high = float(row.get(f"{metric}_low", np.nan)), float(row.get(f"{metric}_high", np.nan))
    b_low = float(base.get(f"{other}_low", np.nan))
    b_high = float(base.get(f"{other}_high", np.nan))
    if np.isfinite(low) and np.isfinite(b_high) and low > b_high:
        return "higher"
    if np.isfinite(high) and np.isfinite(b_low) and high < b_low:
        return "lower"
    return "not told apart"


def _seeds(frame: pd.DataFrame) -> str:
    n = int(frame["seeds"].min()) if "seeds" in frame and len(frame) else 1
    return f"{n} seed{'s' if n != 1 else ''}"


def _span(values: pd.Series, digits: int = 3) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.{digits}f}" if np.isclose(lo, hi) else f"{lo:.{digits}f} to {hi:.{digits}f}"


def _ints(values: pd.Series) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo} to {hi}"


def _victim(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["model"] == "victim"] if "model" in frame else frame


def _one(frame: pd.DataFrame, what: str) -> pd.Series:
    if frame.empty:
        raise ValueError(f"the summarised table has no row for {what}")
    return frame.iloc[0]


def split_sentence(roles: pd.DataFrame, dataset: str) -> str:
    """The split sizes per role (:func:`miakit.tables.split_table`), in one sentence.

    PAPER.md, "Data and splits": train (members), dev (early stopping only) and test
    (non-members) of the victim, and of the shadows (a range when they differ).
    """
    victim = _one(roles[roles["model"] == "victim"], "the victim")
    shadows = roles[roles["model"] != "victim"]
    total = int(victim["train"] + victim["dev"] + victim["test"])
    text = (
        f"The {display_name(dataset)} victim half of {total} samples splits into "
        f"{int(victim['train'])} members (train), {int(victim['dev'])} dev and "
        f"{int(victim['test'])} non-members (test)"
    )
    if shadows.empty:
        return text + "; there are no shadows."
    return text + (
        f"; each of the {len(shadows)} shadows trains on {_ints(shadows['train'])}, "
        f"stops on {_ints(shadows['dev'])} dev samples and is tested on "
        f"{_ints(shadows['test'])}: about 45 : 10 : 45, as PAPER.md's split rule gives."
    )


def accuracy_paragraph(summary: pd.DataFrame, arch: str, dataset: str) -> str:
    """The victim's and shadows' accuracy, and whether the victim overfits.

    Args:
        summary: ``tables.summarise(sweep.per_seed(tables.accuracy_table, exp))``: one row
            per role (``model``) with ``train_acc``, ``test_acc`` and their intervals,
            ``gap`` (mean train - test) and ``seeds``.
        arch: the architecture's name.
        dataset: the dataset's name.

    Returns:
        Markdown: the victim's train and test accuracy with intervals and its gap; the
        overfit is *shown* only when the train interval lies above the test interval.
        Then the shadows' ranges and how their gaps sit against the victim's.
    """
    victim = _one(summary[summary["model"] == "victim"], "the victim")
    shadows = summary[summary["model"] != "victim"]
    gap = float(victim["train_acc"] - victim["test_acc"])
    text = (
        f"**`{arch}` on {display_name(dataset)}, over {_seeds(summary)}** (mean [95% "
        f"interval]): the victim reaches train accuracy {interval(victim, 'train_acc')} and "
        f"test accuracy {interval(victim, 'test_acc')}, a gap of {gap:.3f}. "
    )
    if compare(victim, victim, "train_acc", "test_acc") == "higher":
        text += (
            "Its train accuracy is above its test accuracy (the intervals do not overlap): "
            "it fits its members better than unseen data, which membership inference feeds on."
        )
    elif gap > 0:
        text += (
            "Its train accuracy is above its test accuracy, but the intervals overlap: an "
            "overfit is not shown."
        )
    else:
        text += (
            "It fits its members no better than its non-members: there is little for a "
            "membership attack to feed on."
        )
    if shadows.empty:
        return text
    gaps = shadows["train_acc"] - shadows["test_acc"]
    text += (
        f"\n\nThe {len(shadows)} shadows (means over seeds): train accuracy "
        f"{_span(shadows['train_acc'])}, test accuracy {_span(shadows['test_acc'])}, gaps "
        f"{_span(gaps)}. "
    )
    if (gaps > gap).all():
        text += (
            "Every shadow's mean gap is above the victim's, so an attack calibrated on the "
            "shadows expects members more separated than the victim's are."
        )
    elif (gaps < gap).all():
        text += (
            "Every shadow's mean gap is below the victim's, so an attack calibrated on the "
            "shadows expects members less separated than the victim's are."
        )
    else:
        text += "The victim's gap lies within the shadows' range."
    return text


def _variant(row: Row) -> str:
    if row["pruner"] in ("none", "finetuned"):
        return display_name(row["pruner"], "victim_pruner")
    return f"{display_name(row['pruner'])} at {float(row['sparsity']):g}"


def sweep_paragraph(summary: pd.DataFrame, default_sparsity: float | None = None) -> str:
    """The victim's accuracy over a sparsity sweep, each level against the original.

    Args:
        summary: ``tables.summarise`` of ``sweep.per_seed(tables.variants_table, ...)``
            (its victim rows are used): ``pruner`` (``"none"`` the original,
            ``"finetuned"`` the fine-tune-only control), ``sparsity``,
            ``realised_sparsity``, ``train_acc``, ``test_acc`` with intervals, ``seeds``.
        default_sparsity: the profile's sparsity, whose gap is stated at the end.

    Returns:
        Markdown bullets: the original; the fine-tune-only control's train accuracy
        against the original's; each pruned level's realised sparsity and test accuracy
        against the original's (*holds* when the intervals overlap).
    """
    rows = _victim(summary)
    original = _one(rows[rows["pruner"] == "none"], "the original model")
    lines = [
        f"Over {_seeds(rows)} (victim; mean [95% interval]):",
        "",
        f"- **original**: train accuracy {interval(original, 'train_acc')}, test accuracy "
        f"{interval(original, 'test_acc')}.",
    ]
    tuned = rows[rows["pruner"] == "finetuned"]
    if not tuned.empty:
        t = tuned.iloc[0]
        word = compare(t, original, "train_acc")
        said = "not told apart from" if word == "not told apart" else f"{word} than"
        lines.append(
            f"- **fine-tuned only** (the same fine-tuning, nothing pruned): train accuracy "
            f"{interval(t, 'train_acc')}, {said} the original's; test accuracy "
            f"{interval(t, 'test_acc')}."
        )
    pruned = rows[~rows["pruner"].isin(["none", "finetuned"])]
    for _, r in pruned.iterrows():
        word = compare(r, original, "test_acc")
        verdict = {
            "higher": "above the original's",
            "lower": "below the original's",
            "not told apart": "not told apart from the original's",
        }[word]
        lines.append(
            f"- **{_variant(r)}** (realised sparsity {float(r['realised_sparsity']):.3f}): "
            f"train accuracy {interval(r, 'train_acc')}, test accuracy "
            f"{interval(r, 'test_acc')}, {verdict}."
        )
    if default_sparsity is not None:
        at = pruned[np.isclose(pruned["sparsity"].astype(float), default_sparsity)]
        if not at.empty:
            r = at.iloc[0]
            gap = float(r["train_acc"] - r["test_acc"])
            base_gap = float(original["train_acc"] - original["test_acc"])
            lines += [
                "",
                f"At the profile's sparsity, {default_sparsity:g}, the pruned victim's gap "
                f"(train - test) is {gap:.3f}, against {base_gap:.3f} "
                "for the original.",
            ]
    return "\n".join(lines)


def methods_paragraph(summary: pd.DataFrame, arch: str, num_classes: int) -> str:
    """The four pruning methods at one sparsity: sparsity reached, MACs left, accuracy.

    Args:
        summary: ``tables.summarise`` of ``sweep.per_seed(tables.sparsity_table, ...)``
            (victim rows): ``pruner``, ``sparsity``, ``realised_sparsity``,
            ``channel_sparsity``, ``macs_fraction``, ``train_acc``, ``test_acc`` (with
            intervals), ``seeds``; the original's row (``pruner == "none"``) included.
        arch: the methods architecture's name.
        num_classes: the number of classes (chance accuracy is ``1 / num_classes``).

    Returns:
        Markdown bullets, one per method, each with its test accuracy against the
        original's; a model *collapses* when its test accuracy's whole interval (the
        mean, with one seed) lies below halfway between chance and the original's mean
        (the rule is stated in the text).
    """
    rows = _victim(summary)
    original = _one(rows[rows["pruner"] == "none"], "the original model")
    chance = 1.0 / num_classes
    floor = (chance + float(original["test_acc"])) / 2
    lines = [
        f"On `{arch}` (victim, over {_seeds(rows)}; mean [95% interval]), the original "
        f"reaches train accuracy {interval(original, 'train_acc')} and test accuracy "
        f"{interval(original, 'test_acc')}.",
        "",
    ]
    collapsed = []
    for _, r in rows[rows["pruner"] != "none"].iterrows():
        word = compare(r, original, "test_acc")
        verdict = {
            "higher": "above the original's",
            "lower": "below the original's",
            "not told apart": "not told apart from the original's",
        }[word]
        parts = [f"weight sparsity {float(r['realised_sparsity']):.3f}"]
        if "channel_sparsity" in r and np.isfinite(float(r["channel_sparsity"])):
            parts.append(f"channel sparsity {float(r['channel_sparsity']):.3f}")
        if "macs_fraction" in r and np.isfinite(float(r["macs_fraction"])):
            parts.append(f"{100 * float(r['macs_fraction']):.1f}% of the MACs left")
        lines.append(
            f"- **{_variant(r)}**: {', '.join(parts)}; test accuracy "
            f"{interval(r, 'test_acc')}, {verdict}."
        )
        high = float(r.get("test_acc_high", np.nan))
        if (high if np.isfinite(high) else float(r["test_acc"])) < floor:
            collapsed.append(_variant(r))
    rule = (
        f"below {floor:.3f}, halfway between chance ({chance:.3f}) and the original's mean "
        "test accuracy"
    )
    lines.append("")
    if collapsed:
        lines.append(
            f"**Collapsed** (the whole 95% interval of the test accuracy {rule}): "
            f"{', '.join(collapsed)}. Attack results on a collapsed model describe a broken "
            "network, not a pruned one."
        )
    else:
        lines.append(f"No model collapses (none has its test accuracy's interval {rule}).")
    return "\n".join(lines)


def compaction_sentence(row: Row) -> str:
    """What compacting a structured result removed (:func:`miakit.tables.compaction`).

    One sentence: the parameters before and after, the share removed, and whether the
    masked and compacted models have the same test accuracy.
    """
    before, after = int(row["params_before"]), int(row["params_after"])
    masked, compacted = float(row["test_acc_masked"]), float(row["test_acc_compacted"])
    same = (
        f"the same test accuracy ({masked:.3f})"
        if np.isclose(masked, compacted, rtol=0, atol=1e-9)
        else f"test accuracy {masked:.3f} masked and {compacted:.3f} compacted"
    )
    share = 100 * (1 - after / before) if before else 0.0
    return (
        f"Compaction of the {display_name(row['victim_pruner'])} victim at "
        f"{float(row['victim_sparsity']):g} removes {share:.0f}% of its parameters "
        f"({before} → {after}), with {same}."
    )
